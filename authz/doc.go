// Package authz owns the decision logic of meshwasm's authorization filter:
// Istio AuthorizationPolicy semantics (CUSTOM, DENY, ALLOW, AUDIT, dryRun),
// RequestAuthentication (JWT) verification, HTTP external authorization
// reply handling and Istio-style path normalization, as pure Go.
//
// The package never talks to a proxy. The filter layer parses the plugin
// configuration once with [Parse], builds an [Engine] per VM with [New], and
// per request fills a [Request] and calls [Engine.Check]. Everything the
// engine cannot do itself (HTTP callouts, cross-worker shared data, the
// clock) is either returned as a value describing what to do ([Callout],
// [JWKSFetch]) or reached through a small interface ([SharedData]).
//
// See https://istio.io/latest/docs/reference/config/security/authorization-policy/,
// https://istio.io/latest/docs/reference/config/security/request_authentication/,
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/http/ext_authz/v3/ext_authz.proto
// and RFC 7515, 7517, 7519 for the token formats.
package authz
