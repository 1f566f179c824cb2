//go:build e2e

package e2e

import (
	"bufio"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/e2e/harness"
)

// TestSecurity_Envoy sends a representative part of the adversarial corpus
// (authz/SECURITY.md) as raw HTTP/1.1 bytes through stock Envoy running the authz
// filter, twice: behind the HttpConnectionManager settings SECURITY.md recommends
// (normalize_path, merge_slashes, path_with_escaped_slashes_action: REJECT_REQUEST,
// the harness default), and behind an Envoy with all three off, which shows that the
// filter refuses every case on its own. For each case the test asserts the status and
// who answered: Envoy itself (the filter never saw the request: its counters did not
// move), the filter, or the upstream (controls only). SECURITY_DISCOVER=1 prints what
// happens instead of asserting, to re-measure after an Envoy upgrade.
func TestSecurity_Envoy(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Use: "sig"}}})
	require.NoError(t, err)
	config := securityE2EConfig(string(jwks))
	module := harness.WasmModule(t, "authz.wasm")
	start := func(raw bool) *harness.Topology {
		return harness.Start(t, harness.Options{
			Workers:  2,
			TLS:      harness.TLSOptionalClientCert,
			RawPaths: raw,
			Filters: []harness.WasmFilter{{
				Name: "authz", RootID: "authz", VMID: "meshwasm-authz", Path: module,
				Config: config, FailurePolicy: harness.FailClosed,
			}},
		})
	}
	envoys := []struct {
		name string
		topo *harness.Topology
	}{{"recommended", start(false)}, {"raw", start(true)}}

	now := time.Now()
	claims := func(kv ...any) map[string]any {
		c := map[string]any{"iss": authzIssuer, "sub": "alice", "aud": "payments", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
		for i := 0; i+1 < len(kv); i += 2 {
			c[kv[i].(string)] = kv[i+1]
		}
		return c
	}
	signed := func(alg jose.SignatureAlgorithm, k any, kid string, c map[string]any) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: k}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
		require.NoError(t, err)
		payload, err := json.Marshal(c)
		require.NoError(t, err)
		obj, err := s.Sign(payload)
		require.NoError(t, err)
		tok, err := obj.CompactSerialize()
		require.NoError(t, err)
		return tok
	}
	enc := base64.RawURLEncoding.EncodeToString
	payload, err := json.Marshal(claims())
	require.NoError(t, err)
	pub := x509PublicDER(t, &key.PublicKey)
	valid := signed(jose.RS256, key, "k1", claims())
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	const (
		order     = "spiffe://cluster.local/ns/production/sa/order-service"
		untrusted = "spiffe://cluster.local/ns/untrusted/sa/x"
	)
	// by: who answered. envoy = Envoy refused before the filter ran; filter = the
	// filter decided; upstream = the echo service answered (controls).
	type outcome struct {
		status int
		by     string
	}
	tests := []struct {
		name    string // the authz/SECURITY.md corpus case it mirrors, or what it checks
		method  string // GET when empty
		target  string
		headers []string // name, value pairs, sent in order; duplicates allowed
		host    string   // Host header; "payment-service" when empty
		as      string   // client certificate SPIFFE id; order-service when empty, "-" for none
		want    outcome  // behind the recommended settings
		raw     outcome  // behind an Envoy without path normalization; zero: same as want
	}{
		{name: "control: baseline", target: "/api/x", want: outcome{200, "upstream"}},
		{name: "control: valid token", target: "/jwt/x", headers: bearer(valid), want: outcome{200, "upstream"}},
		{name: "control: role that is not guest", target: "/role/x", headers: []string{"x-user-role", "admin"}, want: outcome{200, "upstream"}},
		{name: "control: valid SPIFFE identity", target: "/orders/x", want: outcome{200, "upstream"}},

		{name: "path: dot-dot to a denied prefix", target: "/api/../admin/users", want: outcome{403, "filter"}},
		{name: "path: dot-dot above root", target: "/../../../admin", want: outcome{403, "filter"}},
		{name: "path: encoded dot-dot", target: "/api/%2e%2e/admin", want: outcome{403, "filter"}},
		{name: "path: backslash traversal", target: `/api\..\admin`, want: outcome{403, "filter"}},
		{name: "path: double slash", target: "//admin", want: outcome{403, "filter"}},
		{name: "path: encoded slash", target: "/api%2F..%2Fadmin", want: outcome{400, "envoy"}, raw: outcome{400, "filter"}},
		{name: "path: lowercase encoded slash", target: "/api%2f..%2fadmin", want: outcome{400, "envoy"}, raw: outcome{400, "filter"}},
		{name: "path: encoded backslash", target: "/api%5C..%5Cadmin", want: outcome{400, "envoy"}, raw: outcome{400, "filter"}},
		{name: "path: encoded nul", target: "/api/x%00.json", want: outcome{400, "envoy"}, raw: outcome{400, "filter"}},
		{name: "path: double-encoded dots", target: "/api/%252e%252e/admin", want: outcome{400, "filter"}},
		{name: "path: parameter on dot-dot", target: "/api/..;a=b/admin", want: outcome{403, "filter"}},
		{name: "path: parameter on dot-dot at the root", target: "/user/..;/admin", want: outcome{403, "filter"}},
		{name: "path: parameter hides a denied segment", target: "/admin;x=y/action", want: outcome{403, "filter"}},
		{name: "path: fragment", target: "/admin#/api/x", want: outcome{400, "envoy"}},
		{name: "path: fragment hides a traversal", target: "/api/x#/../../admin", want: outcome{400, "envoy"}},
		{name: "path: query cannot smuggle a path", target: "/admin?/api/x", want: outcome{403, "filter"}},
		{name: "path: uppercase denied prefix", target: "/api/INTERNAL/x", want: outcome{403, "filter"}},
		{name: "path: trailing slash on a denied exact path", target: "/api/secret/", want: outcome{403, "filter"}},
		{name: "path: overlong dot", target: "/api/%c0%ae%c0%ae/admin", want: outcome{400, "filter"}},
		{name: "path: raw non-UTF-8 byte", target: "/api/\xff/../admin", want: outcome{400, "envoy"}},
		{name: "path: fullwidth dots", target: "/api/%ef%bc%8e%ef%bc%8e/admin", want: outcome{400, "filter"}},
		{name: "path: IIS %u escape", target: "/api/%u002e%u002e/admin", want: outcome{400, "filter"}},

		{name: "host: case", target: "/api/x", host: "Httpbin.Foo", want: outcome{403, "filter"}},
		{name: "host: with port", target: "/api/x", host: "httpbin.foo:8080", want: outcome{403, "filter"}},
		{name: "host: trailing dot", target: "/api/x", host: "httpbin.foo.", want: outcome{403, "filter"}},
		{name: "host: user info", target: "/api/x", host: "evil@httpbin.foo", want: outcome{400, "filter"}},

		{name: "header: duplicate role, restricted value last", target: "/role/x", headers: []string{"X-User-Role", "admin", "x-user-role", "guest"}, want: outcome{403, "filter"}},
		{name: "header: mixed-case name in the policy", target: "/role/x", headers: []string{"X-USER-ROLE", "guest"}, want: outcome{403, "filter"}},
		{name: "header: restricted value with whitespace", target: "/role/x", headers: []string{"x-user-role", "\t guest \t"}, want: outcome{403, "filter"}},
		{name: "header: very long key", target: "/key/x", headers: []string{"x-api-key", "k1" + strings.Repeat("x", 100<<10)}, want: outcome{431, "envoy"}},
		{name: "header: forged x-envoy-original-path", target: "/admin", headers: []string{"x-envoy-original-path", "/api/x"}, want: outcome{403, "filter"}},
		{name: "header: forged x-forwarded-client-cert over plain text", target: "/orders/x", as: "-",
			headers: []string{"x-forwarded-client-cert", "URI=" + order}, want: outcome{403, "filter"}},
		{name: "header: forged claim header without a token", target: "/jwt/x", headers: []string{"x-jwt-sub", "alice"}, want: outcome{403, "filter"}},
		{name: "xff: client-supplied allowed address on the left", target: "/net/x", headers: []string{"x-forwarded-for", "198.51.100.7"}, want: outcome{403, "filter"}},

		{name: "mtls: plain text cannot satisfy notNamespaces", target: "/api/x", as: "-", want: outcome{403, "filter"}},
		{name: "mtls: excluded namespace", target: "/api/x", as: untrusted, want: outcome{403, "filter"}},
		{name: "spiffe: extra segment after the service account", target: "/orders/x", as: order + "/x", want: outcome{403, "filter"}},
		{name: "spiffe: uppercase trust domain", target: "/orders/x", as: "spiffe://CLUSTER.LOCAL/ns/production/sa/order-service", want: outcome{403, "filter"}},

		{name: "jwt: alg none", target: "/jwt/x", headers: bearer(enc([]byte(`{"alg":"none","kid":"k1"}`)) + "." + enc(payload) + "."), want: outcome{401, "filter"}},
		{name: "jwt: HS256 signed with the RSA public key", target: "/jwt/x", headers: bearer(signed(jose.HS256, pub, "k1", claims())), want: outcome{401, "filter"}},
		{name: "jwt: kid path traversal", target: "/jwt/x", headers: bearer(signed(jose.RS256, other, "../../../../dev/null", claims())), want: outcome{401, "filter"}},
		{name: "jwt: expired", target: "/jwt/x", headers: bearer(signed(jose.RS256, key, "k1", claims("exp", now.Add(-time.Hour).Unix()))), want: outcome{401, "filter"}},
		{name: "jwt: nbf in the future", target: "/jwt/x", headers: bearer(signed(jose.RS256, key, "k1", claims("nbf", now.Add(time.Hour).Unix()))), want: outcome{401, "filter"}},
		{name: "jwt: wrong issuer", target: "/jwt/x", headers: bearer(signed(jose.RS256, key, "k1", claims("iss", "https://evil"))), want: outcome{401, "filter"}},
		{name: "jwt: audience array without ours", target: "/jwt/x", headers: bearer(signed(jose.RS256, key, "k1", claims("aud", []string{"orders", "shipping"}))), want: outcome{401, "filter"}},
		{name: "jwt: garbage base64", target: "/jwt/x", headers: bearer("!!!.@@@.###"), want: outcome{401, "filter"}},
		{name: "jwt: two authorization headers", target: "/jwt/x", headers: append(bearer(valid), bearer(signed(jose.RS256, other, "k1", claims()))...), want: outcome{401, "filter"}},
		{name: "jwt: megabyte token", target: "/jwt/x", headers: bearer(strings.Repeat("a", 1<<20)), want: outcome{431, "envoy"}},
	}

	discover := os.Getenv("SECURITY_DISCOVER") != ""
	for _, env := range envoys {
		t.Run(env.name, func(t *testing.T) {
			topo := env.topo
			addr := strings.TrimPrefix(topo.URL(""), "https://")
			certs := map[string]*tls.Certificate{}
			refused := 0
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					want := tc.want
					if env.name == "raw" && tc.raw.status != 0 {
						want = tc.raw
					}
					as := tc.as
					if as == "" {
						as = order
					}
					var cert *tls.Certificate
					if as != "-" {
						if certs[as] == nil {
							c := topo.PKI().ClientCert(t, as)
							certs[as] = &c
						}
						cert = certs[as]
					}
					before := authzDecisions(t, topo)
					status, served := rawRequest(t, addr, topo.PKI(), cert, tc.method, tc.target, tc.host, tc.headers)
					// Counters are updated by the worker that served the request before the
					// response leaves Envoy, so they can be read at once.
					after := authzDecisions(t, topo)
					by := "envoy"
					switch {
					case served != "":
						by = "upstream"
					case after > before:
						by = "filter"
					}
					if discover {
						t.Logf("DISCOVER %s | %s | %d %s", env.name, tc.name, status, by)
						return
					}
					require.Equal(t, want, outcome{status, by})
					if want.by != "upstream" {
						refused++
					}
				})
			}
			t.Logf("%s: %d of %d cases refused", env.name, refused, len(tests))
		})
	}
	for _, env := range envoys {
		v, _ := env.topo.Stat("wasmcustom.meshwasm.authz.panics")
		require.Zero(t, v, "%s: no panics", env.name)
	}
}

// securityE2EConfig is the corpus configuration of authz/security_test.go, with an
// inline key set and without trusted hops (the client talks to Envoy directly).
func securityE2EConfig(jwks string) string {
	return `{
  "jwt": {"providers": [{"issuer": "` + authzIssuer + `", "audiences": ["payments"], "jwks": ` + strconv.Quote(jwks) + `,
    "outputClaimToHeaders": [{"header": "x-jwt-sub", "claim": "sub"}]}]},
  "policies": [
    {"name": "deny-admin", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin", "/admin/*"]}}]},
      {"to": [{"operation": {"hosts": ["admin.example.com"]}}]}]},
    {"name": "deny-internal", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/api/internal/*", "/api/secret"]}}]}]},
    {"name": "deny-httpbin", "action": "DENY", "rules": [{"to": [{"operation": {"hosts": ["httpbin.foo"]}}]}]},
    {"name": "allow-mesh", "rules": [{"from": [{"source": {"notNamespaces": ["untrusted"]}}], "to": [{"operation": {"paths": ["/api/*", "/public"]}}]}]},
    {"name": "allow-orders", "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/production/sa/order-service"]}}], "to": [{"operation": {"paths": ["/orders/*"]}}]}]},
    {"name": "allow-role", "rules": [{"to": [{"operation": {"paths": ["/role/*"]}}], "when": [{"key": "request.headers[X-User-Role]", "notValues": ["guest"]}]}]},
    {"name": "allow-key", "rules": [{"to": [{"operation": {"paths": ["/key/*"]}}], "when": [{"key": "request.headers[x-api-key]", "values": ["k1"]}]}]},
    {"name": "allow-net", "rules": [{"from": [{"source": {"remoteIpBlocks": ["198.51.100.0/24"]}}], "to": [{"operation": {"paths": ["/net/*"]}}]}]},
    {"name": "allow-jwt", "rules": [{"from": [{"source": {"requestPrincipals": ["` + authzIssuer + `/alice"]}}], "to": [{"operation": {"paths": ["/jwt/*"]}}]}]}
  ]
}`
}

// authzDecisions sums the authz filter's decision counters (every decision moves at
// least one: <policy>.allowed/denied, default.denied, bad_request, jwt.<reason>).
func authzDecisions(t *testing.T, topo *harness.Topology) uint64 {
	t.Helper()
	q := url.Values{"filter": {`^wasmcustom\.meshwasm\.authz\.`}}
	resp, err := http.Get(topo.AdminURL("/stats?" + q.Encode()))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var sum uint64
	for _, line := range strings.Split(string(body), "\n") {
		name, v, ok := strings.Cut(line, ": ")
		if !ok || strings.Contains(name, ".jwks.") || strings.HasSuffix(name, ".panics") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		require.NoError(t, err, line)
		sum += n
	}
	return sum
}

// rawRequest writes one HTTP/1.1 request byte for byte (no client library cleans
// the target or merges headers) over TLS and returns the status and the upstream's
// X-Served-By ("" when Envoy or the filter answered).
func rawRequest(t *testing.T, addr string, pki *harness.PKI, cert *tls.Certificate, method, target, host string, headers []string) (int, string) {
	t.Helper()
	if method == "" {
		method = "GET"
	}
	if host == "" {
		host = "payment-service"
	}
	cfg := &tls.Config{RootCAs: pki.CertPool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(15*time.Second)))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, host)
	for i := 0; i+1 < len(headers); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", headers[i], headers[i+1])
	}
	b.WriteString("\r\n")
	_, err = io.WriteString(conn, b.String())
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Served-By")
}

func x509PublicDER(t *testing.T, pub *rsa.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	return der
}
