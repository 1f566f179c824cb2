package authz

import (
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
)

// TestSecurityCorpus is the adversarial corpus documented in SECURITY.md;
// keep the two in sync (same case names).
func TestSecurityCorpus(t *testing.T) {
	k := getKeys(t)
	clk := newFakeClock()
	now := clk.now
	cfg := strings.TrimSuffix(jwtConfigJSON(t, ""), "}") + `,"trustedHops":1,"policies":[
  {"name":"deny-admin","action":"DENY","rules":[{"to":[{"operation":{"paths":["/admin","/admin/*"]}}]},{"to":[{"operation":{"hosts":["admin.example.com"]}}]}]},
  {"name":"deny-blocked-client","action":"DENY","rules":[{"from":[{"source":{"remoteIpBlocks":["203.0.113.0/24"]}}]}]},
  {"name":"allow-mesh","rules":[{"from":[{"source":{"notNamespaces":["untrusted"]}}],"to":[{"operation":{"paths":["/api/*","/public"]}}]}]}]}`
	e := New(mustParse(t, cfg), Options{Clock: clk.Now})
	good := goodClaims(now)
	rsaDER := mustPKIX(t, k)
	b64 := base64.RawURLEncoding.EncodeToString

	tests := []struct {
		name    string
		mutate  func(r *Request)
		verdict Verdict
		status  int
	}{
		{name: "baseline allowed", verdict: Allow},
		{name: "path: dot-dot to a denied prefix", mutate: path("/api/../admin/users"), verdict: Deny, status: 403},
		{name: "path: encoded dot-dot", mutate: path("/api/%2e%2e/admin"), verdict: Deny, status: 403},
		{name: "path: mixed-case encoded dots", mutate: path("/api/%2E%2e/admin"), verdict: Deny, status: 403},
		{name: "path: backslash traversal", mutate: path("/api\\..\\admin"), verdict: Deny, status: 403},
		{name: "path: double slash", mutate: path("//admin"), verdict: Deny, status: 403},
		{name: "path: dot segment", mutate: path("/./admin/./x"), verdict: Deny, status: 403},
		{name: "path: encoded letters", mutate: path("/%61dmin"), verdict: Deny, status: 403},
		{name: "path: encoded slash", mutate: path("/api%2F..%2Fadmin"), verdict: BadRequest, status: 400},
		{name: "path: lowercase encoded backslash", mutate: path("/api%5c..%5cadmin"), verdict: BadRequest, status: 400},
		{name: "path: encoded nul", mutate: path("/api/x%00.json"), verdict: BadRequest, status: 400},
		{name: "path: truncated escape", mutate: path("/api/%2"), verdict: BadRequest, status: 400},
		{name: "path: double-encoded dots stay data", mutate: path("/api/%252e%252e/admin"), verdict: Allow},
		{name: "path: query cannot smuggle a path", mutate: path("/admin?/api/x"), verdict: Deny, status: 403},
		{name: "path: query does not hide an allowed path", mutate: path("/api/x?/admin"), verdict: Allow},
		{name: "path: fragment stripped", mutate: path("/admin#/api/x"), verdict: Deny, status: 403},
		{name: "path: dot-dot above root", mutate: path("/../../../admin"), verdict: Deny, status: 403},
		{name: "host: case and port", mutate: func(r *Request) { r.Authority = "ADMIN.Example.COM:443" }, verdict: Deny, status: 403},
		{name: "host: trailing dot is another host", mutate: func(r *Request) { r.Authority = "admin.example.com." }, verdict: Allow},
		{name: "xff: client-supplied entries ignored", mutate: header("x-forwarded-for", "203.0.113.9, 198.51.100.1"), verdict: Allow},
		{name: "xff: trusted hop entry used", mutate: header("x-forwarded-for", "198.51.100.1, 203.0.113.9"), verdict: Deny, status: 403},
		{name: "mtls: plain text cannot satisfy notNamespaces", mutate: func(r *Request) { r.MTLS = false }, verdict: Deny, status: 403},
		{name: "mtls: SAN without mTLS flag ignored", mutate: func(r *Request) { r.MTLS = false; r.PeerURISAN = "spiffe://cluster.local/ns/production/sa/x" }, verdict: Deny, status: 403},
		{name: "mtls: non-SPIFFE SAN has no namespace", mutate: func(r *Request) { r.PeerURISAN = "https://cluster.local/ns/production/sa/x" }, verdict: Deny, status: 403},
		{name: "mtls: namespace look-alike", mutate: func(r *Request) { r.PeerURISAN = "spiffe://cluster.local/ns/untrusted/sa/x" }, verdict: Deny, status: 403},
		{name: "jwt: alg none", mutate: token(b64([]byte(`{"alg":"none"}`)) + "." + b64(mustJSON(t, good)) + "."), verdict: Unauthenticated, status: 401},
		{name: "jwt: HS256 signed with the RSA public key", mutate: token(sign(t, jose.HS256, rsaDER, "rsa", good)), verdict: Unauthenticated, status: 401},
		{name: "jwt: embedded jwk header is not trusted", mutate: token(signWithJWK(t, k, good)), verdict: Unauthenticated, status: 401},
		{name: "jwt: tampered claims", mutate: token(tamper(sign(t, jose.RS256, k.rsa, "rsa", good))), verdict: Unauthenticated, status: 401},
		{name: "jwt: expired", mutate: token(sign(t, jose.RS256, k.rsa, "rsa", with(goodClaims(now), "exp", now.Add(-2*60e9).Unix()))), verdict: Unauthenticated, status: 401},
		{name: "jwt: unknown issuer", mutate: token(sign(t, jose.RS256, k.rsa, "rsa", with(goodClaims(now), "iss", "https://evil"))), verdict: Unauthenticated, status: 401},
		{name: "jwt: JSON serialization", mutate: token(`{"protected":"e30","payload":"e30","signature":""}`), verdict: Unauthenticated, status: 401},
		{name: "jwt: oversized token", mutate: token(strings.Repeat("a", maxTokenBytes+1)), verdict: Unauthenticated, status: 401},
		{name: "jwt: spoofed claim header without token", mutate: header("x-jwt-sub", "admin"), verdict: Allow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mtlsReq()
			r.Path = "/api/x"
			r.Headers = hdrs{}
			if tc.mutate != nil {
				tc.mutate(r)
			}
			d := check(e, r)
			require.Equal(t, tc.verdict, d.Verdict, d.Reason)
			require.Equal(t, tc.status, d.Status)
			// Spoofed claim headers never reach upstream.
			require.Contains(t, d.RemoveRequestHeaders, "x-jwt-sub")
		})
	}
}

func path(p string) func(*Request) { return func(r *Request) { r.Path = p } }

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

// signWithJWK signs with the attacker's key and embeds its public JWK.
func signWithJWK(t testing.TB, k testKeys, claims map[string]any) string {
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithHeader("kid", "rsa")
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k.other}, opts)
	require.NoError(t, err)
	obj, err := s.Sign(mustJSON(t, claims))
	require.NoError(t, err)
	tok, err := obj.CompactSerialize()
	require.NoError(t, err)
	return tok
}
