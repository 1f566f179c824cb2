package authz

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
)

var updateSecurityDoc = flag.Bool("update-security-doc", false, "rewrite the corpus table in SECURITY.md from TestSecurityCorpus")

// securityPolicies is the corpus configuration; SECURITY.md describes it.
const securityPolicies = `"trustedHops": 1, "policies": [
  {"name": "deny-admin", "action": "DENY", "rules": [
    {"to": [{"operation": {"paths": ["/admin", "/admin/*"]}}]},
    {"to": [{"operation": {"hosts": ["admin.example.com"]}}]}]},
  {"name": "deny-internal", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/api/internal/*", "/api/secret"]}}]}]},
  {"name": "deny-httpbin", "action": "DENY", "rules": [{"to": [{"operation": {"hosts": ["httpbin.foo"]}}]}]},
  {"name": "deny-blocked-client", "action": "DENY", "rules": [{"from": [{"source": {"remoteIpBlocks": ["203.0.113.0/24"]}}]}]},
  {"name": "deny-guest-deletes", "action": "DENY", "rules": [{"to": [{"operation": {"methods": ["DELETE"]}}],
    "when": [{"key": "request.headers[x-user-role]", "values": ["guest"]}]}]},
  {"name": "allow-mesh", "rules": [{"from": [{"source": {"notNamespaces": ["untrusted"]}}], "to": [{"operation": {"paths": ["/api/*", "/public"]}}]}]},
  {"name": "allow-orders", "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/production/sa/order-service"]}}], "to": [{"operation": {"paths": ["/orders/*"]}}]}]},
  {"name": "allow-prod", "rules": [{"from": [{"source": {"namespaces": ["production"]}}], "to": [{"operation": {"paths": ["/prod/*"]}}]}]},
  {"name": "allow-role", "rules": [{"to": [{"operation": {"paths": ["/role/*"]}}], "when": [{"key": "request.headers[X-User-Role]", "notValues": ["guest"]}]}]},
  {"name": "allow-key", "rules": [{"to": [{"operation": {"paths": ["/key/*"]}}], "when": [{"key": "request.headers[x-api-key]", "values": ["k1"]}]}]},
  {"name": "allow-net", "rules": [{"from": [{"source": {"remoteIpBlocks": ["198.51.100.0/24"]}}], "to": [{"operation": {"paths": ["/net/*"]}}]}]},
  {"name": "allow-jwt", "rules": [{"from": [{"source": {"requestPrincipals": ["` + testIssuer + `/alice"]}}], "to": [{"operation": {"paths": ["/jwt/*"]}}]}]}]`

// secCase is one row of the adversarial corpus. Every case is refused (400,
// 401 or 403) unless it is a control: a legitimate request that must stay
// allowed, so the corpus cannot pass by denying everything.
type secCase struct {
	name    string         // unique; the row's first column
	trick   string         // what the request tries, markdown
	ref     string         // advisory or reference the trick comes from
	req     func(*Request) // changes the baseline request
	engine  func() *Engine // nil: the corpus engine
	want    Verdict        // Deny, Unauthenticated or BadRequest; Allow for controls
	control bool           // a legitimate request; want is Allow
}

// securityCorpus builds the cases. The baseline request is a plain GET of
// /api/x over mTLS from cluster.local/ns/production/sa/order-service,
// peer 10.1.2.3, :authority payment-service:8080, no headers.
func securityCorpus(t testing.TB) []secCase {
	k := getKeys(t)
	clk := newFakeClock()
	now := clk.now
	cfg := strings.TrimSuffix(jwtConfigJSON(t, ""), "}") + "," + securityPolicies + "}"
	corpus := New(mustParse(t, cfg), Options{Clock: clk.Now})
	b64 := base64.RawURLEncoding.EncodeToString
	good := func() map[string]any { return goodClaims(now) }
	rs := func(claims map[string]any) string { return sign(t, jose.RS256, k.rsa, "rsa", claims) }
	valid := rs(good())
	unsigned := func(header string, claims map[string]any) string {
		return b64([]byte(header)) + "." + b64(mustJSON(t, claims)) + "."
	}
	rsaDER := mustPKIX(t, k)
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaDER})
	seg := strings.Split(valid, ".")

	// An engine whose key set names two keys "dup": first an EC key, then
	// the RSA key tokens are signed with.
	dupJWKS, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &k.ec256.PublicKey, KeyID: "dup"},
		{Key: &k.rsa.PublicKey, KeyID: "dup"},
	}})
	require.NoError(t, err)
	dupCfg := `{"jwt": {"providers": [{"issuer": "` + testIssuer + `", "jwks": ` + jsonString(string(dupJWKS)) +
		`, "outputClaimToHeaders": [{"header": "x-jwt-sub", "claim": "sub"}]}]}, ` + securityPolicies + `}`
	dup := New(mustParse(t, dupCfg), Options{Clock: clk.Now})
	dupEngine := func() *Engine { return dup }

	at := func(p string, more ...func(*Request)) func(*Request) {
		return func(r *Request) {
			r.Path = p
			for _, m := range more {
				m(r)
			}
		}
	}
	jwtAt := func(tok string) func(*Request) { return at("/jwt/x", token(tok)) }
	role := func(p, v string) func(*Request) { return at(p, header("x-user-role", v)) }
	apiKey := func(v string) func(*Request) { return at("/key/x", header("x-api-key", v)) }
	host := func(h string) func(*Request) { return func(r *Request) { r.Authority = h } }
	xff := func(p, v string) func(*Request) { return at(p, header("x-forwarded-for", v)) }
	san := func(p, id string, more ...func(*Request)) func(*Request) {
		return at(p, append([]func(*Request){func(r *Request) { r.PeerURISAN = id }}, more...)...)
	}
	method := func(m string, more ...func(*Request)) func(*Request) {
		return func(r *Request) {
			r.Method = m
			for _, f := range more {
				f(r)
			}
		}
	}
	zeroSig := func() string { // ES256 with r = s = 0
		tok := sign(t, jose.ES256, k.ec256, "ec256", good())
		parts := strings.Split(tok, ".")
		return parts[0] + "." + parts[1] + "." + b64(make([]byte, 64))
	}

	const (
		rCVE9901  = "CVE-2019-9901 (Envoy matched unnormalized paths)"
		rCVE31920 = "CVE-2021-31920 (Istio escaped slashes)"
		rCVE39156 = "CVE-2021-39156 (Istio fragment in path)"
		rCVE39155 = "CVE-2021-39155 (Istio host case)"
		rShiro    = "CVE-2020-1957 (Shiro/Tomcat `;` path parameters)"
		rJetty    = "CVE-2021-28164 (Jetty encoded dot segments)"
		rIIS      = "CVE-2000-0884 (IIS overlong UTF-8)"
		rTomcat8  = "CVE-2008-2938 (Tomcat overlong UTF-8)"
		rDouble   = "CVE-2001-0333 (IIS double decoding)"
		rBackslsh = "CVE-2007-0450 (Tomcat `\\` separator)"
		rNul      = "CVE-2019-9900 (Envoy NUL in header values); CWE-158"
		rDupHdr   = "CVE-2020-25017 (Envoy matched only the first of repeated headers)"
		rRFCPath  = "RFC 3986 5.2.4 (dot segments)"
		rCase     = "case-insensitive servers (IIS, Spring `caseSensitive=false`)"
		rTrail    = "servers that ignore a trailing slash"
		rNFKC     = "Unicode NFKC folding in frameworks (CWE-176)"
		rOWS      = "RFC 9110 5.5 (optional whitespace)"
		rXFF      = "Envoy `xff_num_trusted_hops`; spoofed x-forwarded-for"
		rOctal    = "CVE-2021-29923 (Go net.ParseIP leading zeros)"
		rXFCC     = "Envoy `forward_client_cert_details`; spoofed XFCC"
		rISTIO04  = "ISTIO-SECURITY-2021-004 (plain text vs negative matches)"
		rSPIFFE   = "SPIFFE-ID standard, section 2"
		rNone     = "RFC 8725 3.1; CVE-2015-2951 (alg none)"
		rConfuse  = "CVE-2015-9235 (HS/RS key confusion)"
		rJWK      = "CVE-2018-0114 (embedded jwk trusted)"
		rKid      = "RFC 8725 3.10 (kid injection)"
		rPsychic  = "CVE-2022-21449 (ECDSA zero signature)"
		rTime     = "RFC 7519 4.1.4-4.1.5"
		rIssAud   = "RFC 7519 4.1.1, 4.1.3; RFC 8725 3.8-3.9"
		rJWS      = "RFC 7515 / RFC 7519 7.2 (compact JWS only)"
		rDoS      = "resource exhaustion (CWE-400)"
		rSplit    = "request splitting (CWE-113)"
		rHost     = "Envoy `strip_any_host_port`, `strip_trailing_host_dot`"
		rAuthHdr  = "RFC 9110 7.2 (Host); parser differentials"
		rOrig     = "Envoy internal header `x-envoy-original-path`"
		rClaim    = "Istio `outputClaimToHeaders`: claims only after verification"
		rControl  = "control"
	)

	cases := []secCase{
		// --- controls: legitimate requests stay allowed.
		{name: "control: baseline", trick: "GET `/api/x` over mTLS from order-service", ref: rControl, control: true},
		{name: "control: query after an allowed path", trick: "`/api/x?/admin`: the query is not the path", ref: rControl, req: at("/api/x?/admin"), control: true},
		{name: "control: role that is not guest", trick: "`x-user-role: admin` on `/role/x`", ref: rControl, req: role("/role/x", "admin"), control: true},
		{name: "control: no role header", trick: "no `x-user-role` on `/role/x` (`notValues` is satisfied by absence, as in Istio)", ref: rControl, req: at("/role/x"), control: true},
		{name: "control: required key with optional whitespace", trick: "`x-api-key:  k1 `: Envoy trims OWS too", ref: rControl, req: apiKey(" k1 "), control: true},
		{name: "control: allowed network via the trusted entry", trick: "`x-forwarded-for: 1.2.3.4, 198.51.100.7` on `/net/x`", ref: rControl, req: xff("/net/x", "1.2.3.4, 198.51.100.7"), control: true},
		{name: "control: valid SPIFFE identity", trick: "order-service on `/orders/x`", ref: rControl, req: at("/orders/x"), control: true},
		{name: "control: valid token", trick: "RS256 token of alice on `/jwt/x`", ref: rControl, req: jwtAt(valid), control: true},
		{name: "control: audience array with ours", trick: "`aud: [\"orders\", \"payments\"]`", ref: rControl, req: jwtAt(rs(with(good(), "aud", []string{"orders", "payments"}))), control: true},
		{name: "control: duplicate kid, genuine key", trick: "two keys named `dup`; the token verifies with the second", ref: rControl, req: jwtAt(sign(t, jose.RS256, k.rsa, "dup", good())), engine: dupEngine, control: true},
		{name: "control: lowercase bearer prefix", trick: "`authorization: bearer <valid>`", ref: rControl, req: at("/jwt/x", header("authorization", "bearer "+valid)), control: true},

		// --- paths: dot segments and slashes.
		{name: "path: dot-dot to a denied prefix", trick: "`/api/../admin/users`", ref: rCVE9901, req: at("/api/../admin/users"), want: Deny},
		{name: "path: dot-dot alone", trick: "`/..`", ref: rRFCPath, req: at("/.."), want: Deny},
		{name: "path: dot-dot above root", trick: "`/../../../admin`", ref: rRFCPath, req: at("/../../../admin"), want: Deny},
		{name: "path: dot-dot out of an allowed prefix", trick: "`/api/x/../../admin`", ref: rCVE9901, req: at("/api/x/../../admin"), want: Deny},
		{name: "path: trailing dot-dot", trick: "`/api/internal/x/..` is the directory `/api/internal/`", ref: rRFCPath, req: at("/api/internal/x/.."), want: Deny},
		{name: "path: dot segments", trick: "`/./admin/./x`", ref: rRFCPath, req: at("/./admin/./x"), want: Deny},
		{name: "path: trailing dot segment", trick: "`/admin/.`", ref: rRFCPath, req: at("/admin/."), want: Deny},
		{name: "path: double slash", trick: "`//admin`", ref: "Envoy `merge_slashes`", req: at("//admin"), want: Deny},
		{name: "path: many slashes", trick: "`///admin///x`", ref: "Envoy `merge_slashes`", req: at("///admin///x"), want: Deny},
		{name: "path: empty segment before dot-dot", trick: "`/api//../admin`", ref: "Envoy `merge_slashes`", req: at("/api//../admin"), want: Deny},
		{name: "path: many dot-dots", trick: "`/api/` + 1000 × `../` + `admin`", ref: rDoS, req: at("/api/" + strings.Repeat("../", 1000) + "admin"), want: Deny},
		{name: "path: very long path under a denied prefix", trick: "`/admin/` + 64 KiB", ref: rDoS, req: at("/admin/" + strings.Repeat("a", 64<<10)), want: Deny},

		// --- paths: escapes.
		{name: "path: encoded dot-dot", trick: "`/api/%2e%2e/admin`", ref: rJetty, req: at("/api/%2e%2e/admin"), want: Deny},
		{name: "path: uppercase encoded dot-dot", trick: "`/api/%2E%2E/admin`", ref: rJetty, req: at("/api/%2E%2E/admin"), want: Deny},
		{name: "path: mixed-case encoded dots", trick: "`/api/%2E%2e/admin`", ref: rJetty, req: at("/api/%2E%2e/admin"), want: Deny},
		{name: "path: half-encoded dot-dot", trick: "`/api/.%2e/admin`", ref: rJetty, req: at("/api/.%2e/admin"), want: Deny},
		{name: "path: encoded single dot", trick: "`/%2e/admin`", ref: rJetty, req: at("/%2e/admin"), want: Deny},
		{name: "path: encoded letters", trick: "`/%61dmin`", ref: "Istio path normalization (unreserved escapes)", req: at("/%61dmin"), want: Deny},
		{name: "path: encoded letters around a traversal", trick: "`/%61pi/%2e%2e/%61dmin`", ref: rJetty, req: at("/%61pi/%2e%2e/%61dmin"), want: Deny},
		{name: "path: backslash traversal", trick: "`/api\\..\\admin`", ref: rBackslsh, req: at("/api\\..\\admin"), want: Deny},
		{name: "path: mixed separators", trick: "`/api/..\\admin`", ref: rBackslsh, req: at("/api/..\\admin"), want: Deny},
		{name: "path: leading backslash", trick: "`\\admin`", ref: rBackslsh, req: at("\\admin"), want: BadRequest},
		{name: "path: encoded slash", trick: "`/api%2F..%2Fadmin`: one segment for the proxy, a traversal for the app", ref: rCVE31920, req: at("/api%2F..%2Fadmin"), want: BadRequest},
		{name: "path: lowercase encoded slash", trick: "`/api%2f..%2fadmin`", ref: rCVE31920, req: at("/api%2f..%2fadmin"), want: BadRequest},
		{name: "path: encoded backslash", trick: "`/api%5C..%5Cadmin`", ref: rCVE31920, req: at("/api%5C..%5Cadmin"), want: BadRequest},
		{name: "path: lowercase encoded backslash", trick: "`/api%5c..%5cadmin`", ref: rCVE31920, req: at("/api%5c..%5cadmin"), want: BadRequest},
		{name: "path: encoded slash inside a denied name", trick: "`/admin%2Fx`", ref: rCVE31920, req: at("/admin%2Fx"), want: BadRequest},
		{name: "path: encoded dot-dot and slash", trick: "`/api/%2e%2e%2fadmin`", ref: rCVE31920, req: at("/api/%2e%2e%2fadmin"), want: BadRequest},
		{name: "path: encoded nul", trick: "`/api/x%00.json` truncates in C-based backends", ref: rNul, req: at("/api/x%00.json"), want: BadRequest},
		{name: "path: raw nul", trick: "`/admin\\0/api`", ref: rNul, req: at("/admin\x00/api"), want: BadRequest},
		{name: "path: encoded nul before a traversal", trick: "`/api/%00/../admin`", ref: rNul, req: at("/api/%00/../admin"), want: BadRequest},
		{name: "path: truncated escape", trick: "`/api/%2`", ref: "RFC 3986 2.1", req: at("/api/%2"), want: BadRequest},
		{name: "path: bad hex escape", trick: "`/api/%zz/../admin`", ref: "RFC 3986 2.1", req: at("/api/%zz/../admin"), want: BadRequest},
		{name: "path: lone percent", trick: "`/api/%`", ref: "RFC 3986 2.1", req: at("/api/%"), want: BadRequest},
		{name: "path: IIS %u escape", trick: "`/api/%u002e%u002e/admin`", ref: "IIS `%u` decoding (CVE-2021-34429 class)", req: at("/api/%u002e%u002e/admin"), want: BadRequest},
		{name: "path: double-encoded dots", trick: "`/api/%252e%252e/admin` is `..` after a second decode", ref: rDouble, req: at("/api/%252e%252e/admin"), want: BadRequest},
		{name: "path: double-encoded slash", trick: "`/api%252f..%252fadmin`", ref: rDouble, req: at("/api%252f..%252fadmin"), want: BadRequest},
		{name: "path: double-encoded backslash", trick: "`/api%255c..%255cadmin`", ref: rDouble, req: at("/api%255c..%255cadmin"), want: BadRequest},
		{name: "path: double-encoded nul", trick: "`/admin%2500`", ref: rDouble, req: at("/admin%2500"), want: BadRequest},
		{name: "path: double encoding built from escapes", trick: "`/api/%25%32%65%25%32%65/admin` decodes once to `%2e%2e`", ref: rDouble, req: at("/api/%25%32%65%25%32%65/admin"), want: BadRequest},

		// --- paths: parameters, queries, fragments.
		{name: "path: parameter hides a denied segment", trick: "`/admin;x=y/action`", ref: rShiro, req: at("/admin;x=y/action"), want: Deny},
		{name: "path: parameter on dot-dot", trick: "`/api/..;a=b/admin` (Tomcat drops `;a=b`, then resolves `..`)", ref: rShiro, req: at("/api/..;a=b/admin"), want: Deny},
		{name: "path: parameter on dot-dot at the root", trick: "`/user/..;/admin`", ref: rShiro, req: at("/user/..;/admin"), want: Deny},
		{name: "path: parameter-only segment", trick: "`/api/;/../admin`", ref: rShiro, req: at("/api/;/../admin"), want: Deny},
		{name: "path: parameter on the last segment", trick: "`/admin;jsessionid=1`", ref: rShiro, req: at("/admin;jsessionid=1"), want: Deny},
		{name: "path: parameter on encoded dots", trick: "`/api/%2e%2e;x/admin`", ref: rShiro, req: at("/api/%2e%2e;x/admin"), want: Deny},
		{name: "path: parameter on a denied exact path", trick: "`/api/secret;x`", ref: rShiro, req: at("/api/secret;x"), want: Deny},
		{name: "path: fragment", trick: "`/admin#/api/x`", ref: rCVE39156, req: at("/admin#/api/x"), want: BadRequest},
		{name: "path: fragment hides a traversal", trick: "`/api/x#/../../admin`", ref: rCVE39156, req: at("/api/x#/../../admin"), want: BadRequest},
		{name: "path: fragment after the query", trick: "`/api/x?a#b`", ref: rCVE39156, req: at("/api/x?a#b"), want: BadRequest},
		{name: "path: encoded fragment is data", trick: "`/admin%23/api/x` is one segment `admin%23`", ref: rCVE39156, req: at("/admin%23/api/x"), want: Deny},
		{name: "path: query cannot smuggle a path", trick: "`/admin?/api/x`", ref: "Istio: query stripped before matching", req: at("/admin?/api/x"), want: Deny},
		{name: "path: query with a traversal", trick: "`/admin?x=/../api/x`", ref: "Istio: query stripped before matching", req: at("/admin?x=/../api/x"), want: Deny},
		{name: "path: encoded question mark is data", trick: "`/api%3F/../admin`", ref: "RFC 3986 3.4", req: at("/api%3F/../admin"), want: Deny},
		{name: "path: empty path before the query", trick: "`?/api/x`", ref: "RFC 9112 3.2.1", req: at("?/api/x"), want: BadRequest},

		// --- paths: case and trailing slash.
		{name: "path: mixed-case denied prefix", trick: "`/api/Internal/x`", ref: rCase, req: at("/api/Internal/x"), want: Deny},
		{name: "path: uppercase denied prefix", trick: "`/api/INTERNAL/x`", ref: rCase, req: at("/api/INTERNAL/x"), want: Deny},
		{name: "path: uppercase denied exact path", trick: "`/api/SECRET`", ref: rCase, req: at("/api/SECRET"), want: Deny},
		{name: "path: uppercase denied root", trick: "`/ADMIN/x`", ref: rCase, req: at("/ADMIN/x"), want: Deny},
		{name: "path: uppercase allowed prefix is not allowed", trick: "`/API/x` does not match ALLOW `/api/*`", ref: rCase, req: at("/API/x"), want: Deny},
		{name: "path: trailing slash on a denied exact path", trick: "`/api/secret/`", ref: rTrail, req: at("/api/secret/"), want: Deny},
		{name: "path: trailing dot segment on a denied exact path", trick: "`/api/secret/.`", ref: rTrail, req: at("/api/secret/."), want: Deny},
		{name: "path: trailing double slash", trick: "`/api/secret//`", ref: rTrail, req: at("/api/secret//"), want: Deny},
		{name: "path: denied directory without its slash", trick: "`/api/internal` for DENY `/api/internal/*`", ref: rTrail, req: at("/api/internal"), want: Deny},
		{name: "path: case and trailing slash together", trick: "`/api/Secret/`", ref: rCase, req: at("/api/Secret/"), want: Deny},

		// --- paths: overlong and non-UTF-8 sequences, look-alikes, raw bytes.
		{name: "path: overlong dot", trick: "`/api/%c0%ae%c0%ae/admin`", ref: rTomcat8, req: at("/api/%c0%ae%c0%ae/admin"), want: BadRequest},
		{name: "path: overlong slash", trick: "`/api/..%c0%af..%c0%afadmin`", ref: rIIS, req: at("/api/..%c0%af..%c0%afadmin"), want: BadRequest},
		{name: "path: three-byte overlong dot", trick: "`/api/%e0%80%ae%e0%80%ae/admin`", ref: rTomcat8, req: at("/api/%e0%80%ae%e0%80%ae/admin"), want: BadRequest},
		{name: "path: overlong backslash", trick: "`/api/..%c1%9cadmin`", ref: rIIS, req: at("/api/..%c1%9cadmin"), want: BadRequest},
		{name: "path: UTF-16 surrogate", trick: "`/api/%ed%a0%80/../admin`", ref: "RFC 3629 3", req: at("/api/%ed%a0%80/../admin"), want: BadRequest},
		{name: "path: stray continuation byte", trick: "`/api/%80/../admin`", ref: "RFC 3629 3", req: at("/api/%80/../admin"), want: BadRequest},
		{name: "path: five-byte sequence", trick: "`/api/%f8%80%80%80%ae`", ref: rIIS, req: at("/api/%f8%80%80%80%ae"), want: BadRequest},
		{name: "path: Latin-1 byte", trick: "`/api/caf%e9` (not UTF-8)", ref: "RFC 3986 2.5", req: at("/api/caf%e9"), want: BadRequest},
		{name: "path: raw non-UTF-8 byte", trick: "`/api/\\xff/../admin`", ref: "RFC 3986 2 (raw bytes)", req: at("/api/\xff/../admin"), want: BadRequest},
		{name: "path: raw overlong bytes", trick: "`/api/\\xc0\\xae\\xc0\\xae/admin`", ref: rTomcat8, req: at("/api/\xc0\xae\xc0\xae/admin"), want: BadRequest},
		{name: "path: fullwidth dots", trick: "`/api/%ef%bc%8e%ef%bc%8e/admin` (U+FF0E)", ref: rNFKC, req: at("/api/%ef%bc%8e%ef%bc%8e/admin"), want: BadRequest},
		{name: "path: fullwidth slash", trick: "`/api%ef%bc%8f..%ef%bc%8fadmin` (U+FF0F)", ref: rNFKC, req: at("/api%ef%bc%8f..%ef%bc%8fadmin"), want: BadRequest},
		{name: "path: division slash", trick: "`/api%e2%88%95..%e2%88%95admin` (U+2215)", ref: rNFKC, req: at("/api%e2%88%95..%e2%88%95admin"), want: BadRequest},
		{name: "path: two dot leader", trick: "`/api/%e2%80%a5/admin` (U+2025)", ref: rNFKC, req: at("/api/%e2%80%a5/admin"), want: BadRequest},
		{name: "path: raw space", trick: "`/api/x /../admin`", ref: rSplit, req: at("/api/x /../admin"), want: BadRequest},
		{name: "path: raw tab", trick: "`/api/x\\t/../admin`", ref: rSplit, req: at("/api/x\t/../admin"), want: BadRequest},
		{name: "path: CR LF", trick: "`/api/x\\r\\nx-user-role: admin`", ref: rSplit, req: at("/api/x\r\nx-user-role: admin"), want: BadRequest},
		{name: "path: absolute form", trick: "`http://admin.example.com/admin` as `:path`", ref: "RFC 9112 3.2", req: at("http://admin.example.com/admin"), want: BadRequest},
		{name: "path: relative", trick: "`admin`", ref: "RFC 9112 3.2", req: at("admin"), want: BadRequest},
		{name: "path: asterisk form", trick: "`*` with GET", ref: "RFC 9112 3.2.4", req: at("*"), want: Deny},

		// --- hosts.
		{name: "host: case", trick: "`Httpbin.Foo`", ref: rCVE39155, req: host("Httpbin.Foo"), want: Deny},
		{name: "host: uppercase with port", trick: "`HTTPBIN.FOO:80`", ref: rCVE39155, req: host("HTTPBIN.FOO:80"), want: Deny},
		{name: "host: with port", trick: "`httpbin.foo:8080`", ref: rHost, req: host("httpbin.foo:8080"), want: Deny},
		{name: "host: empty port", trick: "`httpbin.foo:`", ref: rHost, req: host("httpbin.foo:"), want: Deny},
		{name: "host: trailing dot", trick: "`httpbin.foo.`", ref: rHost, req: host("httpbin.foo."), want: Deny},
		{name: "host: trailing dot and port", trick: "`httpbin.foo.:80`", ref: rHost, req: host("httpbin.foo.:80"), want: Deny},
		{name: "host: case and port on another policy", trick: "`ADMIN.Example.COM:443`", ref: rCVE39155, req: host("ADMIN.Example.COM:443"), want: Deny},
		{name: "host: user info", trick: "`evil@httpbin.foo`", ref: rAuthHdr, req: host("evil@httpbin.foo"), want: BadRequest},
		{name: "host: path in the authority", trick: "`payment-service/../httpbin.foo`", ref: rAuthHdr, req: host("payment-service/../httpbin.foo"), want: BadRequest},
		{name: "host: whitespace", trick: "`httpbin.foo ` and `httpbin.foo\\t`", ref: rAuthHdr, req: host("httpbin.foo\t"), want: BadRequest},
		{name: "host: nul", trick: "`httpbin.foo\\0.evil`", ref: rNul, req: host("httpbin.foo\x00.evil"), want: BadRequest},
		{name: "host: backslash", trick: "`httpbin.foo\\@evil`", ref: rAuthHdr, req: host("httpbin.foo\\@evil"), want: BadRequest},
		{name: "host: non-ASCII", trick: "`httpbın.foo` (dotless i)", ref: rAuthHdr, req: host("httpb\u0131n.foo"), want: BadRequest},

		// --- headers.
		{name: "header: duplicate role, restricted value last", trick: "`x-user-role: admin` then `guest` (Envoy joins `admin,guest`)", ref: rDupHdr, req: role("/role/x", "admin,guest"), want: Deny},
		{name: "header: duplicate role, restricted value first", trick: "`guest,admin`", ref: rDupHdr, req: role("/role/x", "guest,admin"), want: Deny},
		{name: "header: duplicate role with spaces", trick: "`admin, guest`", ref: rDupHdr, req: role("/role/x", "admin, guest"), want: Deny},
		{name: "header: duplicate role with tabs", trick: "`admin,\\tguest`", ref: rDupHdr, req: role("/role/x", "admin,\tguest"), want: Deny},
		{name: "header: duplicate role with an empty element", trick: "`admin,,guest`", ref: rDupHdr, req: role("/role/x", "admin,,guest"), want: Deny},
		{name: "header: restricted value with whitespace", trick: "`x-user-role:  guest `", ref: rOWS, req: role("/role/x", " guest\t"), want: Deny},
		{name: "header: restricted value in uppercase", trick: "`GUEST`", ref: rCase, req: role("/role/x", "GUEST"), want: Deny},
		{name: "header: restricted value mixed case among duplicates", trick: "`Admin, Guest`", ref: rDupHdr, req: role("/role/x", "Admin, Guest"), want: Deny},
		{name: "header: mixed-case name in the policy", trick: "policy says `request.headers[X-User-Role]`; Envoy hands over `x-user-role: guest`", ref: "RFC 9110 5.1", req: role("/role/x", "guest"), want: Deny},
		{name: "header: very long restricted list", trick: "100 000 × `admin,` then `guest`", ref: rDoS, req: role("/role/x", strings.Repeat("admin,", 100000)+"guest"), want: Deny},
		{name: "header: required key duplicated with a wrong one", trick: "`x-api-key: k1` then `k2`", ref: rDupHdr, req: apiKey("k1,k2"), want: Deny},
		{name: "header: wrong key first", trick: "`k2, k1`", ref: rDupHdr, req: apiKey("k2, k1"), want: Deny},
		{name: "header: required key in uppercase", trick: "`K1`", ref: rCase, req: apiKey("K1"), want: Deny},
		{name: "header: required key as a prefix", trick: "`k1x`", ref: "exact match", req: apiKey("k1x"), want: Deny},
		{name: "header: required key with a nul", trick: "`k1\\0`", ref: rNul, req: apiKey("k1\x00"), want: Deny},
		{name: "header: very long key", trick: "`k1` + 1 MiB", ref: rDoS, req: apiKey("k1" + strings.Repeat("x", 1<<20)), want: Deny},
		{name: "header: required key in a look-alike header", trick: "`x-api-keys: k1`", ref: "exact header names", req: at("/key/x", header("x-api-keys", "k1")), want: Deny},
		{name: "header: required key missing", trick: "no `x-api-key`", ref: "Istio `values`", req: at("/key/x"), want: Deny},
		{name: "header: DENY matches one of repeated headers", trick: "`DELETE` with `x-user-role: admin,guest`", ref: rDupHdr, req: method("DELETE", header("x-user-role", "admin,guest")), want: Deny},
		{name: "header: DENY ignores value case", trick: "`DELETE` with `x-user-role: Guest`", ref: rCase, req: method("DELETE", header("x-user-role", "Guest")), want: Deny},
		{name: "header: forged x-envoy-original-path", trick: "`/admin` with `x-envoy-original-path: /api/x`", ref: rOrig, req: at("/admin", header("x-envoy-original-path", "/api/x")), want: Deny},
		{name: "header: forged original path into a denied prefix", trick: "`/api/internal/x` with `x-envoy-original-path: /api/x`", ref: rOrig, req: at("/api/internal/x", header("x-envoy-original-path", "/api/x")), want: Deny},
		{name: "header: forged x-forwarded-client-cert over plain text", trick: "plain text with `x-forwarded-client-cert: URI=spiffe://.../sa/order-service`", ref: rXFCC,
			req: at("/orders/x", header("x-forwarded-client-cert", "URI=spiffe://cluster.local/ns/production/sa/order-service"), func(r *Request) { r.MTLS, r.PeerURISAN = false, "" }), want: Deny},
		{name: "header: forged XFCC over mTLS as another identity", trick: "mTLS as `ns/untrusted` plus an XFCC naming order-service", ref: rXFCC,
			req: san("/orders/x", "spiffe://cluster.local/ns/untrusted/sa/x", header("x-forwarded-client-cert", "By=spiffe://cluster.local/ns/production/sa/order-service;URI=spiffe://cluster.local/ns/production/sa/order-service")), want: Deny},
		{name: "header: forged claim header without a token", trick: "`x-jwt-sub: alice` on `/jwt/x`", ref: rClaim, req: at("/jwt/x", header("x-jwt-sub", "alice")), want: Deny},
		{name: "header: forged claim header next to another subject's token", trick: "bob's token plus `x-jwt-sub: alice`", ref: rClaim, req: jwtAt(rs(with(good(), "sub", "bob"))), want: Deny},
		{name: "header: forged x-forwarded-for over a direct peer", trick: "peer 203.0.113.5 sends no XFF: its own address is used", ref: rXFF, req: func(r *Request) { r.SourceAddress = "203.0.113.5:4000" }, want: Deny},

		// --- methods.
		{name: "method: lowercase method", trick: "`delete` with `x-user-role: guest`", ref: rCase, req: method("delete", header("x-user-role", "guest")), want: Deny},
		{name: "method: mixed-case method", trick: "`Delete` with `x-user-role: guest`", ref: rCase, req: method("Delete", header("x-user-role", "guest")), want: Deny},

		// --- x-forwarded-for.
		{name: "xff: trusted hop entry used", trick: "rightmost entry `203.0.113.9`", ref: rXFF, req: xff("/api/x", "198.51.100.1, 203.0.113.9"), want: Deny},
		{name: "xff: client-supplied allowed address on the left", trick: "`198.51.100.7, 192.0.2.1` on `/net/x`", ref: rXFF, req: xff("/net/x", "198.51.100.7, 192.0.2.1"), want: Deny},
		{name: "xff: many client-supplied entries", trick: "50 × `198.51.100.7,` then `192.0.2.1` on `/net/x`", ref: rXFF, req: xff("/net/x", strings.Repeat("198.51.100.7,", 50)+"192.0.2.1"), want: Deny},
		{name: "xff: whitespace around the trusted entry", trick: "`1.1.1.1,  203.0.113.9 `", ref: rXFF, req: xff("/api/x", "1.1.1.1,  203.0.113.9 "), want: Deny},
		{name: "xff: IPv4-mapped IPv6", trick: "`::ffff:203.0.113.9`", ref: rXFF, req: xff("/api/x", "::ffff:203.0.113.9"), want: Deny},
		{name: "xff: garbage trusted entry", trick: "`203.0.113.9, evil` (a DENY on the address must not be skipped)", ref: rXFF, req: xff("/api/x", "203.0.113.9, evil"), want: BadRequest},
		{name: "xff: port in the trusted entry", trick: "`203.0.113.9:443`", ref: rXFF, req: xff("/api/x", "203.0.113.9:443"), want: BadRequest},
		{name: "xff: empty trusted entry", trick: "`203.0.113.9,`", ref: rXFF, req: xff("/api/x", "203.0.113.9,"), want: BadRequest},
		{name: "xff: zone in the trusted entry", trick: "`fe80::1%eth0`", ref: rXFF, req: xff("/api/x", "fe80::1%eth0"), want: BadRequest},
		{name: "xff: bracketed IPv6", trick: "`[2001:db8::1]`", ref: rXFF, req: xff("/api/x", "[2001:db8::1]"), want: BadRequest},
		{name: "xff: leading zeros", trick: "`0203.0.113.9` (octal to some parsers)", ref: rOctal, req: xff("/api/x", "0203.0.113.9"), want: BadRequest},

		// --- identity.
		{name: "mtls: plain text cannot satisfy notNamespaces", trick: "plain text against ALLOW `notNamespaces`", ref: rISTIO04, req: func(r *Request) { r.MTLS, r.PeerURISAN = false, "" }, want: Deny},
		{name: "mtls: SAN without the mTLS flag", trick: "a SAN while `connection.mtls` is false", ref: rISTIO04, req: func(r *Request) { r.MTLS = false }, want: Deny},
		{name: "mtls: non-SPIFFE SAN", trick: "`https://cluster.local/ns/production/sa/x`", ref: rSPIFFE, req: func(r *Request) { r.PeerURISAN = "https://cluster.local/ns/production/sa/x" }, want: Deny},
		{name: "mtls: excluded namespace", trick: "`ns/untrusted`", ref: "Istio `notNamespaces`", req: func(r *Request) { r.PeerURISAN = "spiffe://cluster.local/ns/untrusted/sa/x" }, want: Deny},
		{name: "spiffe: extra segment after the service account", trick: "`.../sa/order-service/x`", ref: rSPIFFE, req: san("/orders/x", "spiffe://cluster.local/ns/production/sa/order-service/x"), want: Deny},
		{name: "spiffe: dot-dot segment", trick: "`.../ns/untrusted/sa/x/../../../ns/production/sa/order-service`", ref: rSPIFFE, req: san("/orders/x", "spiffe://cluster.local/ns/untrusted/sa/x/../../../ns/production/sa/order-service"), want: Deny},
		{name: "spiffe: dot segment", trick: "`.../ns/production/./sa/order-service`", ref: rSPIFFE, req: san("/prod/x", "spiffe://cluster.local/ns/production/./sa/order-service"), want: Deny},
		{name: "spiffe: wildcard namespace", trick: "`.../ns/*/sa/order-service`", ref: rSPIFFE, req: san("/prod/x", "spiffe://cluster.local/ns/*/sa/order-service"), want: Deny},
		{name: "spiffe: empty segment", trick: "`.../ns//production/sa/x`", ref: rSPIFFE, req: san("/prod/x", "spiffe://cluster.local/ns//production/sa/x"), want: Deny},
		{name: "spiffe: uppercase trust domain", trick: "`spiffe://CLUSTER.LOCAL/...`", ref: rSPIFFE, req: san("/orders/x", "spiffe://CLUSTER.LOCAL/ns/production/sa/order-service"), want: Deny},
		{name: "spiffe: uppercase scheme", trick: "`SPIFFE://cluster.local/...`", ref: rSPIFFE, req: san("/orders/x", "SPIFFE://cluster.local/ns/production/sa/order-service"), want: Deny},
		{name: "spiffe: percent-encoded slashes", trick: "`.../ns/production%2Fsa%2Forder-service`", ref: rSPIFFE, req: san("/prod/x", "spiffe://cluster.local/ns/production%2Fsa%2Forder-service"), want: Deny},
		{name: "spiffe: port in the trust domain", trick: "`spiffe://cluster.local:443/...`", ref: rSPIFFE, req: san("/orders/x", "spiffe://cluster.local:443/ns/production/sa/order-service"), want: Deny},
		{name: "spiffe: user info", trick: "`spiffe://evil@cluster.local/...`", ref: rSPIFFE, req: san("/orders/x", "spiffe://evil@cluster.local/ns/production/sa/order-service"), want: Deny},
		{name: "spiffe: trailing slash", trick: "`.../sa/order-service/`", ref: rSPIFFE, req: san("/orders/x", "spiffe://cluster.local/ns/production/sa/order-service/"), want: Deny},
		{name: "spiffe: namespace in another position", trick: "`.../sa/x/ns/production/sa/y`", ref: rSPIFFE, req: san("/prod/x", "spiffe://cluster.local/sa/x/ns/production/sa/y"), want: Deny},
		{name: "spiffe: query in the id", trick: "`.../sa/order-service?x`", ref: rSPIFFE, req: san("/orders/x", "spiffe://cluster.local/ns/production/sa/order-service?x"), want: Deny},
		{name: "spiffe: trust domain look-alike", trick: "`spiffe://cluster.local.evil/...` for an exact principal", ref: rSPIFFE, req: san("/orders/x", "spiffe://cluster.local.evil/ns/production/sa/order-service"), want: Deny},

		// --- JWT.
		{name: "jwt: alg none", trick: "unsigned token", ref: rNone, req: jwtAt(unsigned(`{"alg":"none"}`, good())), want: Unauthenticated},
		{name: "jwt: alg None", trick: "`\"alg\":\"None\"`", ref: rNone, req: jwtAt(unsigned(`{"alg":"None"}`, good())), want: Unauthenticated},
		{name: "jwt: alg none with a signature", trick: "`alg: none` plus the signature of a valid token", ref: rNone, req: jwtAt(b64([]byte(`{"alg":"none","kid":"rsa"}`)) + "." + seg[1] + "." + seg[2]), want: Unauthenticated},
		{name: "jwt: HS256 signed with the RSA public key", trick: "key confusion with the DER public key as the secret", ref: rConfuse, req: jwtAt(sign(t, jose.HS256, rsaDER, "rsa", good())), want: Unauthenticated},
		{name: "jwt: HS256 signed with the PEM public key", trick: "key confusion with the PEM text as the secret", ref: rConfuse, req: jwtAt(sign(t, jose.HS256, rsaPEM, "rsa", good())), want: Unauthenticated},
		{name: "jwt: HS512 without kid", trick: "HMAC and no `kid`", ref: rConfuse, req: jwtAt(sign(t, jose.HS512, rsaDER, "", good())), want: Unauthenticated},
		{name: "jwt: embedded jwk header", trick: "the attacker's key in the `jwk` header", ref: rJWK, req: jwtAt(signWithHeader(t, k, "jwk", nil, good())), want: Unauthenticated},
		{name: "jwt: jku header", trick: "`jku` pointing at the attacker's key set", ref: rJWK, req: jwtAt(signWithHeader(t, k, "jku", "https://evil.example/jwks.json", good())), want: Unauthenticated},
		{name: "jwt: x5u header", trick: "`x5u` pointing at the attacker's certificate", ref: rJWK, req: jwtAt(signWithHeader(t, k, "x5u", "https://evil.example/cert.pem", good())), want: Unauthenticated},
		{name: "jwt: kid path traversal", trick: "`kid: ../../../../dev/null`", ref: rKid, req: jwtAt(sign(t, jose.RS256, k.other, "../../../../dev/null", good())), want: Unauthenticated},
		{name: "jwt: kid path traversal to a real kid", trick: "`kid: x/../rsa`", ref: rKid, req: jwtAt(sign(t, jose.RS256, k.rsa, "x/../rsa", good())), want: Unauthenticated},
		{name: "jwt: kid with a nul", trick: "`kid: rsa\\0`", ref: rKid, req: jwtAt(sign(t, jose.RS256, k.rsa, "rsa\x00", good())), want: Unauthenticated},
		{name: "jwt: kid injection", trick: "`kid: rsa' OR '1'='1`", ref: rKid, req: jwtAt(sign(t, jose.RS256, k.other, "rsa' OR '1'='1", good())), want: Unauthenticated},
		{name: "jwt: kid with different case", trick: "`kid: RSA`", ref: rKid, req: jwtAt(sign(t, jose.RS256, k.rsa, "RSA", good())), want: Unauthenticated},
		{name: "jwt: kid of a key of another type", trick: "RS256 token naming the EC key `ec256`", ref: rKid, req: jwtAt(sign(t, jose.RS256, k.rsa, "ec256", good())), want: Unauthenticated},
		{name: "jwt: kid pinned to another algorithm", trick: "PS256 token naming `rs256-only`", ref: "RFC 7517 4.4 (`alg` of a key)", req: jwtAt(sign(t, jose.PS256, k.rsa, "rs256-only", good())), want: Unauthenticated},
		{name: "jwt: no kid, attacker's key", trick: "RS256 by a key outside the set, no `kid`", ref: "signature", req: jwtAt(sign(t, jose.RS256, k.other, "", good())), want: Unauthenticated},
		{name: "jwt: tampered claims", trick: "`sub` changed after signing", ref: "signature", req: jwtAt(tamper(valid)), want: Unauthenticated},
		{name: "jwt: tampered header", trick: "`kid` rewritten after signing", ref: "signature", req: jwtAt(b64([]byte(`{"alg":"RS256","kid":"rs256-only","typ":"JWT"}`)) + "." + seg[1] + "." + seg[2]), want: Unauthenticated},
		{name: "jwt: signature stripped", trick: "`header.payload.`", ref: "CVE-2020-28042 (missing signature accepted)", req: jwtAt(seg[0] + "." + seg[1] + "."), want: Unauthenticated},
		{name: "jwt: signature of another token", trick: "bob's claims with alice's signature", ref: "signature", req: jwtAt(seg[0] + "." + b64(mustJSON(t, with(good(), "sub", "bob"))) + "." + seg[2]), want: Unauthenticated},
		{name: "jwt: ECDSA zero signature", trick: "ES256 with r = s = 0", ref: rPsychic, req: jwtAt(zeroSig()), want: Unauthenticated},
		{name: "jwt: expired", trick: "`exp` past the skew", ref: rTime, req: jwtAt(rs(with(good(), "exp", now.Add(-2*time.Minute).Unix()))), want: Unauthenticated},
		{name: "jwt: expired by one second past the skew", trick: "`exp` = now − 61 s with 60 s skew", ref: rTime, req: jwtAt(rs(with(good(), "exp", now.Add(-61*time.Second).Unix()))), want: Unauthenticated},
		{name: "jwt: nbf in the future", trick: "`nbf` = now + 2 min", ref: rTime, req: jwtAt(rs(with(good(), "nbf", now.Add(2*time.Minute).Unix()))), want: Unauthenticated},
		{name: "jwt: exp as a string", trick: "`\"exp\": \"9999999999\"`", ref: rTime, req: jwtAt(rs(with(good(), "exp", "9999999999"))), want: Unauthenticated},
		{name: "jwt: exp beyond any date", trick: "`exp: 1e300`", ref: rTime, req: jwtAt(rs(with(good(), "exp", 1e300))), want: Unauthenticated},
		{name: "jwt: negative exp", trick: "`exp: -1`", ref: rTime, req: jwtAt(rs(with(good(), "exp", -1))), want: Unauthenticated},
		{name: "jwt: nbf as a string", trick: "`\"nbf\": \"0\"`", ref: rTime, req: jwtAt(rs(with(good(), "nbf", "0"))), want: Unauthenticated},
		{name: "jwt: wrong issuer", trick: "`iss: https://evil`", ref: rIssAud, req: jwtAt(rs(with(good(), "iss", "https://evil"))), want: Unauthenticated},
		{name: "jwt: issuer with a trailing slash", trick: "`iss: https://issuer.example/`", ref: rIssAud, req: jwtAt(rs(with(good(), "iss", testIssuer+"/"))), want: Unauthenticated},
		{name: "jwt: issuer in another case", trick: "`iss: HTTPS://ISSUER.EXAMPLE`", ref: rIssAud, req: jwtAt(rs(with(good(), "iss", strings.ToUpper(testIssuer)))), want: Unauthenticated},
		{name: "jwt: issuer as an array", trick: "`iss: [\"https://issuer.example\"]`", ref: rIssAud, req: jwtAt(rs(with(good(), "iss", []string{testIssuer}))), want: Unauthenticated},
		{name: "jwt: wrong audience", trick: "`aud: orders`", ref: rIssAud, req: jwtAt(rs(with(good(), "aud", "orders"))), want: Unauthenticated},
		{name: "jwt: audience array without ours", trick: "`aud: [\"orders\", \"shipping\"]`", ref: rIssAud, req: jwtAt(rs(with(good(), "aud", []string{"orders", "shipping"}))), want: Unauthenticated},
		{name: "jwt: audience prefix", trick: "`aud: payments-evil`", ref: rIssAud, req: jwtAt(rs(with(good(), "aud", "payments-evil"))), want: Unauthenticated},
		{name: "jwt: audience as a number", trick: "`aud: 1`", ref: rIssAud, req: jwtAt(rs(with(good(), "aud", 1))), want: Unauthenticated},
		{name: "jwt: audience array with a non-string", trick: "`aud: [\"payments\", 1]`", ref: rIssAud, req: jwtAt(rs(with(good(), "aud", []any{"payments", 1}))), want: Unauthenticated},
		{name: "jwt: duplicate kid, attacker's key", trick: "two keys named `dup`; token by a third key", ref: "RFC 7517 4.5 (kid)", req: jwtAt(sign(t, jose.RS256, k.other, "dup", good())), engine: dupEngine, want: Unauthenticated},
		{name: "jwt: duplicate kid, HS256 with one of the keys", trick: "two keys named `dup`; HS256 keyed with the RSA public key", ref: rConfuse, req: jwtAt(sign(t, jose.HS256, rsaDER, "dup", good())), engine: dupEngine, want: Unauthenticated},
		{name: "jwt: duplicate kid, wrong curve", trick: "two keys named `dup`; ES384 token", ref: "RFC 7518 3.4", req: jwtAt(sign(t, jose.ES384, k.ec384, "dup", good())), engine: dupEngine, want: Unauthenticated},
		{name: "jwt: megabyte token", trick: "1 MiB of base64url", ref: rDoS, req: jwtAt(strings.Repeat("a", 1<<20)), want: Unauthenticated},
		{name: "jwt: oversized valid-looking token", trick: "a signed token with a 20 KiB claim", ref: rDoS, req: jwtAt(rs(with(good(), "pad", strings.Repeat("x", 20<<10)))), want: Unauthenticated},
		{name: "jwt: garbage base64", trick: "`!!!.@@@.###`", ref: rJWS, req: jwtAt("!!!.@@@.###"), want: Unauthenticated},
		{name: "jwt: standard base64 alphabet", trick: "`+` and `/` instead of `-` and `_`", ref: "RFC 7515 2 (base64url)", req: jwtAt(toStdBase64(valid)), want: Unauthenticated},
		{name: "jwt: padded base64", trick: "`=` padding on every segment", ref: "RFC 7515 2 (no padding)", req: jwtAt(seg[0] + "==." + seg[1] + "==." + seg[2] + "=="), want: Unauthenticated},
		{name: "jwt: whitespace inside", trick: "a space in the payload", ref: rJWS, req: jwtAt(seg[0] + "." + seg[1][:10] + " " + seg[1][10:] + "." + seg[2]), want: Unauthenticated},
		{name: "jwt: two segments", trick: "`header.payload`", ref: rJWS, req: jwtAt(seg[0] + "." + seg[1]), want: Unauthenticated},
		{name: "jwt: four segments", trick: "valid token + `.x`", ref: rJWS, req: jwtAt(valid + ".x"), want: Unauthenticated},
		{name: "jwt: five segments", trick: "JWE-shaped token", ref: "RFC 7516 (JWE is not accepted)", req: jwtAt("eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d"), want: Unauthenticated},
		{name: "jwt: JSON serialization", trick: "non-compact JWS", ref: rJWS, req: jwtAt(`{"protected":"e30","payload":"e30","signature":""}`), want: Unauthenticated},
		{name: "jwt: header not JSON", trick: "`base64url(\"not json\")`", ref: rJWS, req: jwtAt(b64([]byte("not json")) + "." + seg[1] + "." + seg[2]), want: Unauthenticated},
		{name: "jwt: payload not JSON", trick: "a correctly signed payload `not json`", ref: rJWS, req: jwtAt(signRaw(t, k, []byte("not json"))), want: Unauthenticated},
		{name: "jwt: payload is an array", trick: "a correctly signed payload `[]`", ref: rJWS, req: jwtAt(signRaw(t, k, []byte("[]"))), want: Unauthenticated},
		{name: "jwt: payload with duplicate iss", trick: "signed `{\"iss\":\"https://evil\",\"iss\":\"https://issuer.example\"}` (parsers disagree on which wins)", ref: "RFC 8259 4 (duplicate names)",
			req: jwtAt(signRaw(t, k, []byte(`{"iss":"`+testIssuer+`","sub":"alice","aud":"payments","exp":`+fmt.Sprint(now.Add(time.Hour).Unix())+`,"iss":"https://evil"}`))), want: Unauthenticated},
		{name: "jwt: duplicate alg in the header", trick: "`{\"alg\":\"RS256\",\"alg\":\"none\"}` unsigned", ref: rNone, req: jwtAt(b64([]byte(`{"alg":"RS256","alg":"none"}`)) + "." + seg[1] + "."), want: Unauthenticated},
		{name: "jwt: crit header", trick: "signed with `crit: [\"exp\"]`", ref: "RFC 7515 4.1.11 (crit)", req: jwtAt(signWithHeader(t, k, "crit", []string{"exp"}, good())), want: Unauthenticated},
		{name: "jwt: unencoded payload", trick: "signed with `b64: false` and `crit: [\"b64\"]`", ref: "RFC 7797 7 (not for JWTs)", req: jwtAt(signWithHeader(t, k, "b64", false, good())), want: Unauthenticated},
		{name: "jwt: b64 without crit", trick: "signed with `b64: false` only", ref: "RFC 7797 6", req: jwtAt(signWithHeader(t, k, "b64-only", false, good())), want: Unauthenticated},
		{name: "jwt: token in the query", trick: "`/jwt/x?access_token=<alg none>`", ref: rNone, req: at("/jwt/x?access_token=" + unsigned(`{"alg":"none"}`, good())), want: Unauthenticated},
		{name: "jwt: lowercase bearer with a forged token", trick: "`bearer <tampered>`", ref: "signature", req: at("/jwt/x", header("authorization", "bearer "+tamper(valid))), want: Unauthenticated},
		{name: "jwt: subject with CR LF", trick: "a valid token with `sub: \"alice\\r\\nx-admin: 1\"`", ref: rSplit, req: jwtAt(rs(with(good(), "sub", "alice\r\nx-admin: 1"))), want: Deny},
		{name: "jwt: subject with a nul", trick: "`sub: \"alice\\0\"`", ref: rNul, req: jwtAt(rs(with(good(), "sub", "alice\x00"))), want: Deny},
		{name: "jwt: valid token of another subject", trick: "bob on `/jwt/x`", ref: "Istio `requestPrincipals`", req: jwtAt(rs(with(good(), "sub", "bob"))), want: Deny},
		{name: "jwt: no token on a protected path", trick: "`/jwt/x` without a token", ref: "Istio `requestPrincipals`", req: at("/jwt/x"), want: Deny},
		{name: "jwt: Basic credentials", trick: "`authorization: Basic YWxpY2U6`", ref: "Istio `requestPrincipals`", req: at("/jwt/x", header("authorization", "Basic YWxpY2U6")), want: Deny},
	}
	for i := range cases {
		if cases[i].engine == nil {
			cases[i].engine = func() *Engine { return corpus }
		}
	}
	return cases
}

// TestSecurityCorpus is the adversarial corpus documented in SECURITY.md;
// TestSecurityCorpus_Doc keeps the two in sync.
func TestSecurityCorpus(t *testing.T) {
	cases := securityCorpus(t)
	require.GreaterOrEqual(t, len(cases), 150)
	names := map[string]bool{}
	refused := 0
	for _, tc := range cases {
		require.False(t, names[tc.name], "duplicate case %q", tc.name)
		names[tc.name] = true
		require.Equal(t, tc.control, tc.want == Allow, "%s: only controls may be allowed", tc.name)
		if !tc.control {
			refused++
		}
		t.Run(tc.name, func(t *testing.T) {
			r := mtlsReq()
			r.Method = "GET"
			r.Path = "/api/x"
			r.Headers = hdrs{}
			if tc.req != nil {
				tc.req(r)
			}
			e := tc.engine()
			d := check(e, r)
			require.Equal(t, tc.want, d.Verdict, "reason %q", d.Reason)
			require.Equal(t, d, checkReadingOnly(t, e, r), "with only the properties the policies read")
			require.Equal(t, map[Verdict]int{Allow: 0, Deny: 403, Unauthenticated: 401, BadRequest: 400}[tc.want], d.Status)
			// Client copies of claim headers never reach upstream.
			require.Contains(t, d.RemoveRequestHeaders, "x-jwt-sub")
			for _, h := range d.SetRequestHeaders {
				require.NotContains(t, h.Value, "\r", "claim values with controls are never forwarded")
				require.NotContains(t, h.Value, "\x00")
			}
		})
	}
	t.Logf("%d cases: %d refused, %d controls", len(cases), refused, len(cases)-refused)
}

const (
	corpusBegin = "<!-- corpus:begin (generated by go test ./authz -run TestSecurityCorpus_Doc -update-security-doc) -->"
	corpusEnd   = "<!-- corpus:end -->"
)

// TestSecurityCorpus_Doc checks that SECURITY.md lists exactly the corpus,
// with the same expectations. Run with -update-security-doc to rewrite it.
func TestSecurityCorpus_Doc(t *testing.T) {
	var b strings.Builder
	b.WriteString("| Case | Trick | Expected | Advisory / reference |\n|---|---|---|---|\n")
	for _, tc := range securityCorpus(t) {
		want := map[Verdict]string{Allow: "allowed (control)", Deny: "403", Unauthenticated: "401", BadRequest: "400"}[tc.want]
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", tc.name, strings.ReplaceAll(tc.trick, "|", "\\|"), want, tc.ref)
	}
	doc, err := os.ReadFile("SECURITY.md")
	require.NoError(t, err)
	text := string(doc)
	i, j := strings.Index(text, corpusBegin), strings.Index(text, corpusEnd)
	require.True(t, i >= 0 && j > i, "SECURITY.md needs the corpus markers")
	table := b.String()
	if *updateSecurityDoc {
		text = text[:i+len(corpusBegin)] + "\n" + table + text[j:]
		require.NoError(t, os.WriteFile("SECURITY.md", []byte(text), 0o644))
		return
	}
	require.Equal(t, table, text[i+len(corpusBegin)+1:j], "SECURITY.md is stale: go test ./authz -run TestSecurityCorpus_Doc -update-security-doc")
}

func header(name, value string) func(*Request) {
	return func(r *Request) { r.Headers.(hdrs)[name] = value }
}

func token(tok string) func(*Request) {
	return func(r *Request) { r.Headers.(hdrs)["authorization"] = "Bearer " + tok }
}

func mustPKIX(t testing.TB, k testKeys) []byte {
	der, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	require.NoError(t, err)
	return der
}

// signWithHeader signs claims under kid "rsa" and adds one header. "jwk",
// "jku" and "x5u" point at the attacker's key, which signs; any other
// header is signed with the genuine key, so only the header can fail it.
func signWithHeader(t testing.TB, k testKeys, name string, value any, claims map[string]any) string {
	key := k.rsa
	if name == "jwk" || name == "jku" || name == "x5u" {
		key = k.other
	}
	opts := (&jose.SignerOptions{}).WithHeader("kid", "rsa")
	switch name {
	case "jwk":
		opts.EmbedJWK = true
	case "b64":
		opts = opts.WithBase64(value.(bool))
	case "b64-only":
		opts = opts.WithHeader("b64", value)
	default:
		opts = opts.WithHeader(jose.HeaderKey(name), value)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, opts)
	require.NoError(t, err)
	obj, err := s.Sign(mustJSON(t, claims))
	require.NoError(t, err)
	tok, err := obj.CompactSerialize()
	require.NoError(t, err)
	return tok
}

// signRaw signs an arbitrary payload with the genuine RSA key.
func signRaw(t testing.TB, k testKeys, payload []byte) string {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k.rsa}, (&jose.SignerOptions{}).WithHeader("kid", "rsa"))
	require.NoError(t, err)
	obj, err := s.Sign(payload)
	require.NoError(t, err)
	tok, err := obj.CompactSerialize()
	require.NoError(t, err)
	return tok
}

func toStdBase64(tok string) string {
	r := strings.NewReplacer("-", "+", "_", "/")
	out := r.Replace(tok)
	if out == tok {
		// Make sure the alphabet differs: a '/' where a '_' never was.
		out = strings.Replace(out, ".", "/.", 1)
	}
	return out
}
