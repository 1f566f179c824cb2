package authz_test

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	core "github.com/meshwasm/meshwasm/authz"
	"github.com/meshwasm/meshwasm/filters/authz"
	"github.com/meshwasm/meshwasm/filters/internal/registry"
	"github.com/meshwasm/meshwasm/filters/internal/wasmhost"
)

// seedConfig is the seeds' payment-service policy and deny-all default, as
// authz/README.md writes them.
const seedConfig = `{
  "policies": [
    {
      "name": "payment-service-policy",
      "action": "ALLOW",
      "rules": [{
        "from": [{"source": {"principals": ["cluster.local/ns/production/sa/order-service"], "namespaces": ["production"]}}],
        "to": [{"operation": {"methods": ["POST"], "paths": ["/api/payments/*"]}}],
        "when": [{"key": "request.headers[x-user-role]", "notValues": ["guest"]}]
      }]
    },
    {
      "name": "deny-all-default",
      "action": "DENY",
      "rules": [{"from": [{"source": {"notPrincipals": ["cluster.local/ns/production/sa/*"]}}]}]
    }
  ]
}`

func TestModule_BadConfigRefused(t *testing.T) {
	tests := []struct {
		name, config, wantLog string
	}{
		{name: "not json", config: `{"policies": [`, wantLog: "authz: configuration refused: "},
		{name: "empty path", config: `{"policies": [{"name": "a", "rules": [{}]}, {"name": "b", "rules": [{"to": [{"operation": {"paths": ["/a", "/b", ""]}}]}]}]}`,
			wantLog: "policies[1].rules[0].to[0].operation.paths[2]: empty string"},
		{name: "unknown key", config: `{"policies": [{"name": "a", "rules": [{"from": [{"source": {"principal": ["x"]}}]}]}]}`,
			wantLog: "policies[0].rules[0].from[0].source.principal"},
		{name: "bad cidr", config: `{"policies": [{"name": "a", "rules": [{"from": [{"source": {"ipBlocks": ["10.0.0.0/33"]}}]}]}]}`,
			wantLog: "policies[0].rules[0].from[0].source.ipBlocks[0]"},
		{name: "unknown action", config: `{"policies": [{"name": "a", "action": "PERMIT", "rules": [{}]}]}`, wantLog: "policies[0].action"},
		{name: "unknown when key", config: `{"policies": [{"name": "a", "rules": [{"when": [{"key": "request.cookie", "values": ["x"]}]}]}]}`,
			wantLog: "policies[0].rules[0].when[0].key"},
		{name: "bad inline jwks", config: `{"jwt": {"providers": [{"issuer": "i", "jwks": "{\"keys\": 1}"}]}}`, wantLog: "jwt.providers[0].jwks"},
		{name: "unknown top-level key", config: `{"polices": []}`, wantLog: "polices"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := wasmhost.Load(t, module)
			p := h.NewPlugin(wasmhost.VMOptions{}, wasmhost.PluginOptions{RootID: module, Config: []byte(tc.config)})
			require.False(t, p.Started())
			require.NotEmpty(t, p.VM().LogsContaining(logCritical, tc.wantLog), "logs: %v", p.VM().Logs())
		})
	}
}

func TestModule_MetricsDefinedAtStart(t *testing.T) {
	h := wasmhost.Load(t, module)
	start(t, h, seedConfig)
	names := h.MetricNames()
	for _, policy := range []string{"payment-service-policy", "deny-all-default"} {
		for _, what := range []string{"allowed", "denied", "audited", "dry_run_denied"} {
			require.Contains(t, names, "meshwasm.authz."+policy+"."+what)
		}
	}
	for _, r := range core.JWTFailureReasons() {
		require.Contains(t, names, "meshwasm.authz.jwt."+r.String())
	}
	for _, m := range []string{authz.MetricDefaultDenied, authz.MetricBadRequest, authz.MetricJWKSFetched, authz.MetricJWKSFetchErrors,
		authz.MetricExtAuthzCalls, authz.MetricExtAuthzCacheHits, authz.MetricExtAuthzErrors, authz.MetricHeaderErrors} {
		require.Contains(t, names, m)
	}
	_, panics := h.Metric(registry.PanicMetric(module))
	require.False(t, panics, "defined on the first panic only")
}

// TestModule_Seed runs the payment-service policy: properties (mTLS flag,
// SPIFFE SAN) and headers in, local response or continue out.
func TestModule_Seed(t *testing.T) {
	tests := []struct {
		name       string
		conn       conn
		headers    [][2]string
		wantStatus uint32 // 0: continued upstream
		wantMetric string
	}{
		{name: "order-service posts a payment", conn: orderMTLS, headers: req("POST", "/api/payments/42", "x-user-role", "admin"),
			wantMetric: authz.PolicyMetric("payment-service-policy", core.OutcomeAllowed)},
		{name: "query is not part of the path", conn: orderMTLS, headers: req("POST", "/api/payments/42?debug=/admin"),
			wantMetric: authz.PolicyMetric("payment-service-policy", core.OutcomeAllowed)},
		{name: "guest role", conn: orderMTLS, headers: req("POST", "/api/payments/42", "x-user-role", "guest"),
			wantStatus: 403, wantMetric: authz.MetricDefaultDenied},
		{name: "wrong method", conn: orderMTLS, headers: req("GET", "/api/payments/42"),
			wantStatus: 403, wantMetric: authz.MetricDefaultDenied},
		{name: "dot-dot out of the allowed prefix", conn: orderMTLS, headers: req("POST", "/api/payments/../refunds/1"),
			wantStatus: 403, wantMetric: authz.MetricDefaultDenied},
		{name: "other production account", conn: conn{san: "spiffe://cluster.local/ns/production/sa/inventory", mtls: true},
			headers: req("POST", "/api/payments/42"), wantStatus: 403, wantMetric: authz.MetricDefaultDenied},
		{name: "foreign namespace", conn: conn{san: "spiffe://cluster.local/ns/evil/sa/order-service", mtls: true},
			headers: req("POST", "/api/payments/42"), wantStatus: 403, wantMetric: authz.PolicyMetric("deny-all-default", core.OutcomeDenied)},
		{name: "plain text", conn: plainText, headers: req("POST", "/api/payments/42"),
			wantStatus: 403, wantMetric: authz.PolicyMetric("deny-all-default", core.OutcomeDenied)},
		{name: "SAN reported without mTLS is no identity", conn: conn{san: orderSAN}, headers: req("POST", "/api/payments/42"),
			wantStatus: 403, wantMetric: authz.PolicyMetric("deny-all-default", core.OutcomeDenied)},
		{name: "principal header from the client is ignored", conn: plainText,
			headers:    req("POST", "/api/payments/42", "x-forwarded-client-cert", "URI="+orderSAN),
			wantStatus: 403, wantMetric: authz.PolicyMetric("deny-all-default", core.OutcomeDenied)},
		{name: "encoded slash", conn: orderMTLS, headers: req("POST", "/api/payments%2F..%2Fadmin"), wantStatus: 400, wantMetric: authz.MetricBadRequest},
		{name: "encoded nul", conn: orderMTLS, headers: req("POST", "/api/payments/1%00.json"), wantStatus: 400, wantMetric: authz.MetricBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := wasmhost.Load(t, module)
			p := start(t, h, seedConfig)
			action, s := send(t, p, tc.conn, tc.headers)
			require.Equal(t, tc.wantStatus, status(t, action, s))
			require.Equal(t, uint64(1), metric(t, h, tc.wantMetric))
			if tc.wantStatus == 403 {
				require.Equal(t, "RBAC: access denied", string(s.Local.Body), "the denial never names the rule")
			}
			var decisions int
			for _, l := range p.VM().LogsContaining(1, "authz: ") {
				if !strings.Contains(l, "started") {
					decisions++
				}
			}
			require.Equal(t, 1, decisions, "one debug line per decision: %v", p.VM().Logs())
		})
	}
}

func TestModule_DebugLogNamesPolicyAndRule(t *testing.T) {
	h := wasmhost.Load(t, module)
	p := start(t, h, seedConfig)
	_, s := send(t, p, plainText, req("POST", "/api/payments/42"))
	require.Equal(t, uint32(403), s.Local.Status)
	require.Len(t, p.VM().LogsContaining(1, "authz: deny policy=deny-all-default rule=0"), 1, "logs: %v", p.VM().Logs())
}

func TestModule_AuditAndDryRun(t *testing.T) {
	h := wasmhost.Load(t, module)
	p := start(t, h, `{"policies": [
		{"name": "audit-payments", "action": "AUDIT", "rules": [{"to": [{"operation": {"paths": ["/api/payments/*"]}}]}]},
		{"name": "deny-posts", "action": "DENY", "dryRun": true, "rules": [{"to": [{"operation": {"methods": ["POST"]}}]}]}]}`)
	action, s := send(t, p, plainText, req("POST", "/api/payments/1"))
	require.Zero(t, status(t, action, s), "dry run and audit never enforce")
	require.Equal(t, uint64(1), policyMetric(t, h, "audit-payments", core.OutcomeAudited))
	require.Equal(t, uint64(1), policyMetric(t, h, "deny-posts", core.OutcomeDryRunDenied))
	require.Zero(t, policyMetric(t, h, "deny-posts", core.OutcomeDenied))
}

func jwtConfig(t testing.TB, provider string) string {
	return `{"jwt": {"providers": [{"issuer": "` + issuer + `", "audiences": ["payments"], ` + provider + `,
		"outputClaimToHeaders": [{"header": "x-jwt-sub", "claim": "sub"}]}]},
	  "policies": [{"name": "require-jwt", "action": "DENY", "rules": [{"from": [{"source": {"notRequestPrincipals": ["*"]}}]}]},
	               {"name": "alice-only", "rules": [{"from": [{"source": {"requestPrincipals": ["` + issuer + `/alice"]}}]}]}]}`
}

func TestModule_JWTInline(t *testing.T) {
	k := getKeys(t)
	set := jwks(t, rsaJWK(k.rsa, "rsa"), jose.JSONWebKey{Key: &k.ec.PublicKey, KeyID: "ec"})
	config := jwtConfig(t, `"jwks": `+jsonString(set))
	h := wasmhost.Load(t, module)
	now := h.Clock.Now()

	tests := []struct {
		name       string
		headers    [][2]string
		wantStatus uint32
		wantReason core.JWTFailure
	}{
		{name: "valid RS256", headers: req("GET", "/x", bearer(sign(t, jose.RS256, k.rsa, "rsa", claims(now)))...)},
		{name: "valid ES256", headers: req("GET", "/x", bearer(sign(t, jose.ES256, k.ec, "ec", claims(now)))...)},
		{name: "valid token of another subject", headers: req("GET", "/x", bearer(sign(t, jose.RS256, k.rsa, "rsa", claims(now, "sub", "bob")))...),
			wantStatus: 403},
		{name: "no token", headers: req("GET", "/x"), wantStatus: 403},
		{name: "expired", headers: req("GET", "/x", bearer(sign(t, jose.RS256, k.rsa, "rsa", claims(now, "exp", now.Add(-2*time.Hour).Unix())))...),
			wantStatus: 401, wantReason: core.JWTExpired},
		{name: "not yet valid", headers: req("GET", "/x", bearer(sign(t, jose.RS256, k.rsa, "rsa", claims(now, "nbf", now.Add(time.Hour).Unix())))...),
			wantStatus: 401, wantReason: core.JWTNotYetValid},
		{name: "alg none", headers: req("GET", "/x", bearer(unsigned(t, claims(now)))...), wantStatus: 401, wantReason: core.JWTAlgorithm},
		{name: "wrong audience", headers: req("GET", "/x", bearer(sign(t, jose.RS256, k.rsa, "rsa", claims(now, "aud", []string{"orders"})))...),
			wantStatus: 401, wantReason: core.JWTAudience},
		{name: "wrong issuer", headers: req("GET", "/x", bearer(sign(t, jose.RS256, k.rsa, "rsa", claims(now, "iss", "https://evil.example")))...),
			wantStatus: 401, wantReason: core.JWTUnknownIssuer},
		{name: "signed by another key", headers: req("GET", "/x", bearer(sign(t, jose.RS256, k.rotated, "rsa", claims(now)))...),
			wantStatus: 401, wantReason: core.JWTSignature},
		{name: "unknown kid", headers: req("GET", "/x", bearer(sign(t, jose.RS256, k.rotated, "nope", claims(now)))...),
			wantStatus: 401, wantReason: core.JWTUnknownKID},
		{name: "garbage", headers: req("GET", "/x", "authorization", "Bearer a.b.c"), wantStatus: 401, wantReason: core.JWTMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := wasmhost.Load(t, module)
			p := start(t, h, config)
			headers := append(tc.headers, [2]string{"x-jwt-sub", "admin"}) // a spoofed claim header
			action, s := send(t, p, plainText, headers)
			require.Equal(t, tc.wantStatus, status(t, action, s))
			switch tc.wantStatus {
			case 0:
				sub := "alice"
				require.Equal(t, sub, s.RequestHeader("x-jwt-sub"), "claim from the verified token")
				require.False(t, s.HasRequestHeader("authorization"), "forwardOriginalToken is false")
			case 401:
				require.Equal(t, `Bearer realm="meshwasm", error="invalid_token"`, s.Local.Header("www-authenticate"))
				require.Equal(t, uint64(1), metric(t, h, authz.JWTMetric(tc.wantReason)))
			case 403:
				require.Equal(t, "RBAC: access denied", string(s.Local.Body))
			}
		})
	}
}

func TestModule_JWTSpoofedClaimHeaderRemovedWithoutToken(t *testing.T) {
	k := getKeys(t)
	h := wasmhost.Load(t, module)
	p := start(t, h, `{"jwt": {"providers": [{"issuer": "`+issuer+`", "jwks": `+jsonString(jwks(t, rsaJWK(k.rsa, "rsa")))+`,
		"outputClaimToHeaders": [{"header": "x-jwt-sub", "claim": "sub"}]}]}}`)
	action, s := send(t, p, plainText, req("GET", "/x", "x-jwt-sub", "admin"))
	require.Zero(t, status(t, action, s))
	require.False(t, s.HasRequestHeader("x-jwt-sub"))
}

// TestModule_RemoteJWKS: the key set is fetched by a root-context callout at
// start, shared with other workers through shared data, refreshed on a tick,
// and tokens fail closed until it arrives.
func TestModule_RemoteJWKS(t *testing.T) {
	k := getKeys(t)
	h := wasmhost.Load(t, module)
	config := jwtConfig(t, `"jwksUri": "http://jwks.example/keys.json", "cluster": "jwks", "refreshInterval": "10m", "timeout": "2s"`)
	w1 := start(t, h, config, "jwks")
	now := h.Clock.Now()
	tok1 := sign(t, jose.RS256, k.rsa, "k1", claims(now, "exp", now.Add(2*time.Hour).Unix()))
	tok2 := sign(t, jose.RS256, k.rotated, "k2", claims(now, "exp", now.Add(2*time.Hour).Unix()))

	calls := w1.VM().Callouts()
	require.Len(t, calls, 1, "fetched at plugin start")
	c := calls[0]
	require.Equal(t, "jwks", c.Cluster)
	require.Equal(t, "GET", c.Header(":method"))
	require.Equal(t, "/keys.json", c.Header(":path"))
	require.Equal(t, "jwks.example", c.Header(":authority"))
	require.Equal(t, uint32(2000), c.Timeout)

	action, s := send(t, w1, plainText, req("GET", "/x", bearer(tok1)...))
	require.Equal(t, uint32(401), status(t, action, s), "no keys yet: fail closed")
	require.Equal(t, uint64(1), metric(t, h, authz.JWTMetric(core.JWTNoKeys)))

	c.Respond(200, [][2]string{{"content-type", "application/json"}}, []byte(jwks(t, rsaJWK(k.rsa, "k1"))), nil)
	require.Equal(t, uint64(1), metric(t, h, authz.MetricJWKSFetched))
	action, s = send(t, w1, plainText, req("GET", "/x", bearer(tok1)...))
	require.Zero(t, status(t, action, s))
	require.Equal(t, "alice", s.RequestHeader("x-jwt-sub"))

	// A second worker adopts the shared keys instead of fetching them.
	w2 := start(t, h, config, "jwks")
	require.Empty(t, w2.VM().Callouts())
	action, s = send(t, w2, plainText, req("GET", "/x", bearer(tok1)...))
	require.Zero(t, status(t, action, s))

	// Nothing is due before the refresh interval.
	h.Clock.Advance(5 * time.Minute)
	w1.Tick()
	w2.Tick()
	require.Empty(t, w1.VM().Callouts())
	require.Empty(t, w2.VM().Callouts())

	// A failed refresh keeps the keys.
	h.Clock.Advance(6 * time.Minute)
	w1.Tick()
	w2.Tick()
	calls = append(w1.VM().Callouts(), w2.VM().Callouts()...)
	require.Len(t, calls, 1, "one worker takes the lease")
	calls[0].Fail()
	require.Equal(t, uint64(1), metric(t, h, authz.MetricJWKSFetchErrors))
	action, s = send(t, w1, plainText, req("GET", "/x", bearer(tok1)...))
	require.Zero(t, status(t, action, s), "old keys still serve")

	// The next refresh (after the back-off) rotates the keys on both workers.
	h.Clock.Advance(time.Minute)
	w1.Tick()
	w2.Tick()
	calls = append(w1.VM().Callouts(), w2.VM().Callouts()...)
	require.Len(t, calls, 1)
	calls[0].Respond(200, nil, []byte(jwks(t, rsaJWK(k.rotated, "k2"))), nil)
	w1.Tick()
	w2.Tick()
	for i, w := range []*wasmhost.Plugin{w1, w2} {
		action, s = send(t, w, plainText, req("GET", "/x", bearer(tok2)...))
		require.Zero(t, status(t, action, s), "worker %d: rotated key", i+1)
		action, s = send(t, w, plainText, req("GET", "/x", bearer(tok1)...))
		require.Equal(t, uint32(401), status(t, action, s), "worker %d: retired key", i+1)
	}
	require.Equal(t, uint64(2), metric(t, h, authz.MetricJWKSFetched))
}

func TestModule_RemoteJWKSUnknownCluster(t *testing.T) {
	h := wasmhost.Load(t, module)
	p := start(t, h, jwtConfig(t, `"jwksUri": "http://jwks.example/keys.json", "cluster": "missing"`))
	require.Empty(t, p.VM().Callouts())
	require.Equal(t, uint64(1), metric(t, h, authz.MetricJWKSFetchErrors))
	k := getKeys(t)
	action, s := send(t, p, plainText, req("GET", "/x", bearer(sign(t, jose.RS256, k.rsa, "k1", claims(h.Clock.Now())))...))
	require.Equal(t, uint32(401), status(t, action, s))
}

const extConfig = `{
  "extensionProviders": [{"name": "ext", "envoyExtAuthzHttp": {
    "cluster": "ext-authz", "pathPrefix": "/check", "timeout": "300ms",
    "includeRequestHeadersInCheck": ["x-user"],
    "headersToUpstreamOnAllow": ["x-authz-*"], "headersToDownstreamOnAllow": ["x-authz-trace"],
    "headersToDownstreamOnDeny": ["www-authenticate"]%s}}],
  "policies": [{"name": "ext-check", "action": "CUSTOM", "provider": {"name": "ext"}, "rules": [{"to": [{"operation": {"paths": ["/api/*"]}}]}]}]
}`

func extAuthz(extra string) string { return strings.Replace(extConfig, "%s", extra, 1) }

func TestModule_ExtAuthz(t *testing.T) {
	tests := []struct {
		name       string
		extra      string
		respond    func(c *wasmhost.Callout)
		wantStatus uint32
		wantBody   string
		wantDown   [2]string // a header on the local or upstream response
		wantUp     [2]string // a header set on the upstream request
		wantErrors uint64
	}{
		{name: "allow", respond: func(c *wasmhost.Callout) {
			c.Respond(200, [][2]string{{"x-authz-user", "alice"}, {"x-authz-trace", "t1"}, {"x-other", "dropped"}}, nil, nil)
		}, wantUp: [2]string{"x-authz-user", "alice"}, wantDown: [2]string{"x-authz-trace", "t1"}},
		{name: "deny with the service's status, body and headers", respond: func(c *wasmhost.Callout) {
			c.Respond(401, [][2]string{{"www-authenticate", "Basic"}}, []byte("nope"), nil)
		}, wantStatus: 401, wantBody: "nope", wantDown: [2]string{"www-authenticate", "Basic"}},
		{name: "failed callout fails closed", respond: func(c *wasmhost.Callout) { c.Fail() },
			wantStatus: 403, wantBody: "RBAC: access denied", wantErrors: 1},
		{name: "5xx from the service is a failed check, as in Envoy", extra: `, "statusOnError": 503`, respond: func(c *wasmhost.Callout) {
			c.Respond(503, nil, []byte("upstream connect error or disconnect/reset before headers"), nil)
		}, wantStatus: 503, wantBody: "RBAC: access denied", wantErrors: 1},
		{name: "5xx with failOpen", extra: `, "failOpen": true`, respond: func(c *wasmhost.Callout) { c.Respond(500, nil, nil, nil) }, wantErrors: 1},
		{name: "failOpen", extra: `, "failOpen": true`, respond: func(c *wasmhost.Callout) { c.Fail() }, wantErrors: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := wasmhost.Load(t, module)
			p := start(t, h, extAuthz(tc.extra), "ext-authz")
			s := p.NewStream()
			action := s.SendRequestHeaders(req("GET", "/api/orders?id=1", "x-user", "alice", "x-secret", "s", "x-authz-user", "spoofed"), true)
			require.Equal(t, types.ActionPause, action)
			require.Nil(t, s.Local)
			calls := p.VM().Callouts()
			require.Len(t, calls, 1)
			c := calls[0]
			require.Equal(t, "ext-authz", c.Cluster)
			require.Equal(t, uint32(300), c.Timeout)
			require.Equal(t, "/check/api/orders?id=1", c.Header(":path"))
			require.Equal(t, "alice", c.Header("x-user"))
			require.Empty(t, c.Header("x-secret"), "only configured headers are forwarded")
			tc.respond(c)
			require.Equal(t, tc.wantErrors, metric(t, h, authz.MetricExtAuthzErrors))
			if tc.wantStatus != 0 {
				require.NotNil(t, s.Local)
				require.Equal(t, tc.wantStatus, s.Local.Status)
				require.Equal(t, tc.wantBody, string(s.Local.Body))
				if tc.wantDown[0] != "" {
					require.Equal(t, tc.wantDown[1], s.Local.Header(tc.wantDown[0]))
				}
				require.Zero(t, s.RequestResumed)
				return
			}
			require.Nil(t, s.Local)
			require.Equal(t, 1, s.RequestResumed)
			if tc.wantUp[0] != "" {
				require.Equal(t, tc.wantUp[1], s.RequestHeader(tc.wantUp[0]), "service's header replaces the client's")
			}
			s.SendResponseHeaders([][2]string{{":status", "200"}}, true)
			if tc.wantDown[0] != "" {
				require.Equal(t, tc.wantDown[1], s.ResponseHeader(tc.wantDown[0]))
			}
			require.Empty(t, s.ResponseHeader("x-other"))
		})
	}
}

func TestModule_ExtAuthzCache(t *testing.T) {
	h := wasmhost.Load(t, module)
	config := extAuthz(`, "cache": {"ttl": "30s", "keyHeaders": ["x-user", ":path"]}`)
	w1 := start(t, h, config, "ext-authz")
	w2 := start(t, h, config, "ext-authz")

	s := w1.NewStream()
	require.Equal(t, types.ActionPause, s.SendRequestHeaders(req("GET", "/api/orders", "x-user", "alice"), true))
	calls := w1.VM().Callouts()
	require.Len(t, calls, 1)
	calls[0].Respond(200, [][2]string{{"x-authz-user", "alice"}}, nil, nil)
	require.Equal(t, 1, s.RequestResumed)

	// Another worker answers the same key from the shared cache.
	action, s := send(t, w2, plainText, req("GET", "/api/orders", "x-user", "alice"))
	require.Zero(t, status(t, action, s))
	require.Empty(t, w2.VM().Callouts())
	require.Equal(t, "alice", s.RequestHeader("x-authz-user"))
	require.Equal(t, uint64(1), metric(t, h, authz.MetricExtAuthzCacheHits))

	// Another key asks again; so does the same key after the TTL.
	s = w2.NewStream()
	require.Equal(t, types.ActionPause, s.SendRequestHeaders(req("GET", "/api/orders", "x-user", "bob"), true))
	require.Len(t, w2.VM().Callouts(), 1)
	w2.VM().Callouts()[0].Respond(403, nil, nil, nil)
	require.Equal(t, uint32(403), s.Local.Status)

	h.Clock.Advance(31 * time.Second)
	s = w1.NewStream()
	require.Equal(t, types.ActionPause, s.SendRequestHeaders(req("GET", "/api/orders", "x-user", "alice"), true))
	require.Len(t, w1.VM().Callouts(), 1, "expired entry")
	require.Equal(t, uint64(3), metric(t, h, authz.MetricExtAuthzCalls))
}

func TestModule_ExtAuthzNotMatchedOrUnknownCluster(t *testing.T) {
	h := wasmhost.Load(t, module)
	p := start(t, h, extAuthz(""), "ext-authz")
	action, s := send(t, p, plainText, req("GET", "/public"))
	require.Zero(t, status(t, action, s), "CUSTOM rule does not match")
	require.Empty(t, p.VM().Callouts())

	p2 := start(t, h, extAuthz(""), "some-other-cluster")
	action, s = send(t, p2, plainText, req("GET", "/api/x"))
	require.Equal(t, uint32(403), status(t, action, s), "a refused dispatch fails closed")
	require.Equal(t, uint64(1), metric(t, h, authz.MetricExtAuthzErrors))
}

// TestModule_GarbageIsPanicFree throws random headers, paths and connection
// properties at a configuration that uses every part of the engine: each
// request is answered or passed, never crashes the VM.
func TestModule_GarbageIsPanicFree(t *testing.T) {
	k := getKeys(t)
	h := wasmhost.Load(t, module)
	p := start(t, h, `{"trustedHops": 1,
	  "jwt": {"providers": [{"issuer": "`+issuer+`", "jwks": `+jsonString(jwks(t, rsaJWK(k.rsa, "rsa")))+`,
	    "fromHeaders": [{"name": "authorization", "prefix": "Bearer "}, {"name": "x-token"}], "fromParams": ["token"],
	    "outputClaimToHeaders": [{"header": "x-jwt-sub", "claim": "sub"}]}]},
	  "policies": [
	    {"name": "deny", "action": "DENY", "rules": [{"from": [{"source": {"remoteIpBlocks": ["203.0.113.0/24"], "notNamespaces": ["prod"]}}],
	      "to": [{"operation": {"hosts": ["admin.*"], "notPorts": ["443"]}}], "when": [{"key": "request.auth.claims[org][team]", "values": ["x"]}]}]},
	    {"name": "allow", "rules": [{"from": [{"source": {"requestPrincipals": ["*"]}}]}, {"to": [{"operation": {"paths": ["/public/*"]}}],
	      "when": [{"key": "destination.port", "values": ["8080"]}, {"key": "connection.sni", "notValues": ["*.evil"]}]}]}]}`)
	rng := rand.New(rand.NewPCG(1, 2))
	junk := func(n int) string {
		b := make([]byte, rng.IntN(n))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return string(b)
	}
	prefixes := []string{"", "/", "/public/", "Bearer ", "%", "spiffe://", "10.0.0.1:", "[::1]:"}
	pick := func() string { return prefixes[rng.IntN(len(prefixes))] + junk(40) }
	for i := 0; i < 300; i++ {
		s := p.NewStream()
		s.Properties["source.address"] = []byte(pick())
		s.Properties["destination.address"] = []byte(pick())
		s.Properties["connection.mtls"] = []byte(junk(3))
		s.Properties["connection.uri_san_peer_certificate"] = []byte(pick())
		s.Properties["connection.requested_server_name"] = []byte(pick())
		action := s.SendRequestHeaders([][2]string{{":method", junk(8)}, {":path", pick()}, {":authority", pick()},
			{"authorization", pick()}, {"x-token", pick() + "." + pick() + "." + pick()}, {"x-forwarded-for", pick()}}, true)
		if s.Local == nil {
			require.Equal(t, types.ActionContinue, action)
		} else {
			require.Contains(t, []uint32{400, 401, 403}, s.Local.Status)
		}
		s.Finish()
	}
	_, ok := h.Metric(registry.PanicMetric(module))
	require.False(t, ok, "no panic recovered: %v", lines(p.VM().LogsContaining(logCritical, "")))
	require.Empty(t, p.VM().LogsContaining(logCritical, ""))
}
