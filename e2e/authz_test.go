//go:build e2e

package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/e2e/harness"
)

// The authz filter (build/authz.wasm) in stock Envoy behind a TLS listener with
// optional client certificates carrying SPIFFE SANs: identity from the peer
// certificate, JWT with a remote JWKS served by the test, ext-authz through a
// test service, and path normalization, all in one topology.

const (
	authzIssuer   = "https://issuer.e2e"
	paymentClient = "spiffe://cluster.local/ns/production/sa/order-service"
)

// authzE2EConfig covers one feature per path prefix. Because ALLOW policies
// exist, anything no ALLOW policy matches is denied by default.
func authzE2EConfig() string {
	return `{
  "jwt": {"providers": [{
    "issuer": "` + authzIssuer + `", "audiences": ["payments"],
    "jwksUri": "http://jwks.e2e` + harness.JWKSPath + `", "cluster": "jwks", "timeout": "2s",
    "outputClaimToHeaders": [{"header": "x-jwt-sub", "claim": "sub"}]}]},
  "extensionProviders": [{"name": "ext", "envoyExtAuthzHttp": {
    "cluster": "ext-authz", "pathPrefix": "/check", "timeout": "1s",
    "includeRequestHeadersInCheck": ["x-ext-authz", "x-user"],
    "headersToUpstreamOnAllow": ["x-authz-user"], "headersToDownstreamOnAllow": ["x-authz-trace"],
    "headersToDownstreamOnDeny": ["x-authz-reason"]}}],
  "policies": [
    {"name": "ext-check", "action": "CUSTOM", "provider": {"name": "ext"}, "rules": [{"to": [{"operation": {"paths": ["/ext/*"]}}]}]},
    {"name": "deny-admin", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin", "/admin/*"]}}]}]},
    {"name": "require-jwt", "action": "DENY", "rules": [{"from": [{"source": {"notRequestPrincipals": ["*"]}}], "to": [{"operation": {"paths": ["/jwt/*"]}}]}]},
    {"name": "payment-service-policy", "rules": [{
      "from": [{"source": {"principals": ["cluster.local/ns/production/sa/order-service"], "namespaces": ["production"]}}],
      "to": [{"operation": {"methods": ["POST"], "paths": ["/api/payments/*"]}}],
      "when": [{"key": "request.headers[x-user-role]", "notValues": ["guest"]}]}]},
    {"name": "monitoring-reads", "rules": [{"from": [{"source": {"namespaces": ["monitoring"]}}], "to": [{"operation": {"methods": ["GET"], "paths": ["/metrics"]}}]}]},
    {"name": "api-key", "rules": [{"to": [{"operation": {"paths": ["/hdr/*"]}}], "when": [{"key": "request.headers[x-api-key]", "values": ["k1"]}]}]},
    {"name": "alice-jwt", "rules": [{"from": [{"source": {"requestPrincipals": ["` + authzIssuer + `/alice"]}}], "to": [{"operation": {"paths": ["/jwt/*"]}}]}]},
    {"name": "public", "rules": [{"to": [{"operation": {"paths": ["/public/*", "/ext/*"]}}]}]}
  ]
}`
}

type authzEnv struct {
	topo *harness.Topology
	ext  *harness.ExtAuthzServer
	key  *rsa.PrivateKey
}

func startAuthz(t *testing.T) *authzEnv {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Use: "sig"}}})
	require.NoError(t, err)
	jwks := harness.StartJWKS(t, string(set))
	ext := harness.StartExtAuthz(t)
	topo := harness.Start(t, harness.Options{
		Workers:  2,
		TLS:      harness.TLSOptionalClientCert,
		Clusters: []harness.Cluster{jwks.Cluster("jwks"), ext.Cluster("ext-authz")},
		Filters: []harness.WasmFilter{{
			Name:          "authz",
			RootID:        "authz",
			VMID:          "meshwasm-authz",
			Path:          harness.WasmModule(t, "authz.wasm"),
			Config:        authzE2EConfig(),
			FailurePolicy: harness.FailClosed,
		}},
	})
	return &authzEnv{topo: topo, ext: ext, key: key}
}

type authzResult struct {
	status int
	body   string
	header http.Header
	echo   *harness.EchoReply
}

// do sends one request; an upstream answer (200 from echo) is decoded.
func (e *authzEnv) do(t *testing.T, c *http.Client, method, path string, headers ...string) authzResult {
	t.Helper()
	req, err := http.NewRequest(method, e.topo.URL(path), nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	if resp.StatusCode == http.StatusOK {
		echo := harness.ReadEcho(t, resp)
		return authzResult{status: resp.StatusCode, header: resp.Header, echo: &echo}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return authzResult{status: resp.StatusCode, body: string(body), header: resp.Header}
}

func (e *authzEnv) token(t *testing.T, kv ...any) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{"iss": authzIssuer, "sub": "alice", "aud": "payments", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	for i := 0; i+1 < len(kv); i += 2 {
		claims[kv[i].(string)] = kv[i+1]
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: e.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	require.NoError(t, err)
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	obj, err := s.Sign(payload)
	require.NoError(t, err)
	tok, err := obj.CompactSerialize()
	require.NoError(t, err)
	return tok
}

func TestAuthz_Envoy(t *testing.T) {
	e := startAuthz(t)
	topo := e.topo
	order := topo.ClientAs(paymentClient)
	inventory := topo.ClientAs("spiffe://cluster.local/ns/production/sa/inventory")
	evil := topo.ClientAs("spiffe://cluster.local/ns/evil/sa/order-service")
	monitor := topo.ClientAs("spiffe://cluster.local/ns/monitoring/sa/prometheus")
	anonymous := topo.Client() // TLS without a client certificate: no identity

	t.Run("identity", func(t *testing.T) {
		tests := []struct {
			name         string
			client       *http.Client
			method, path string
			headers      []string
			want         int
		}{
			{name: "order-service posts a payment", client: order, method: "POST", path: "/api/payments/1", want: 200},
			{name: "guest role", client: order, method: "POST", path: "/api/payments/1", headers: []string{"x-user-role", "guest"}, want: 403},
			{name: "method not allowed", client: order, method: "GET", path: "/api/payments/1", want: 403},
			{name: "path not allowed", client: order, method: "POST", path: "/api/refunds/1", want: 403},
			{name: "other account in the namespace", client: inventory, method: "POST", path: "/api/payments/1", want: 403},
			{name: "same account name in another namespace", client: evil, method: "POST", path: "/api/payments/1", want: 403},
			{name: "no client certificate", client: anonymous, method: "POST", path: "/api/payments/1", want: 403},
			{name: "spoofed client cert header", client: anonymous, method: "POST", path: "/api/payments/1",
				headers: []string{"x-forwarded-client-cert", "URI=" + paymentClient}, want: 403},
			{name: "namespace may read metrics", client: monitor, method: "GET", path: "/metrics", want: 200},
			{name: "namespace may not write metrics", client: monitor, method: "POST", path: "/metrics", want: 403},
			{name: "other namespace may not read metrics", client: order, method: "GET", path: "/metrics", want: 403},
			{name: "header allows", client: anonymous, method: "GET", path: "/hdr/x", headers: []string{"x-api-key", "k1"}, want: 200},
			{name: "wrong header value", client: anonymous, method: "GET", path: "/hdr/x", headers: []string{"x-api-key", "k2"}, want: 403},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := e.do(t, tc.client, tc.method, tc.path, tc.headers...)
				require.Equal(t, tc.want, r.status, "body %q", r.body)
				if tc.want == 200 {
					require.Equal(t, "v1", r.echo.Version, "the upstream answered")
				} else {
					require.Equal(t, "RBAC: access denied", r.body, "the denial never names the rule")
				}
			})
		}
	})

	t.Run("path normalization", func(t *testing.T) {
		tests := []struct {
			name, path string
			want       int
		}{
			{name: "dot-dot into a denied prefix", path: "/public/../admin", want: 403},
			{name: "encoded dots", path: "/public/%2e%2e/admin/x", want: 403},
			{name: "double slash", path: "//admin", want: 403},
			{name: "dot-dot out of a denied prefix", path: "/admin/../public/x", want: 200},
			{name: "encoded slash refused", path: "/public%2F..%2Fadmin", want: 400},
			{name: "encoded nul refused", path: "/public/x%00", want: 400},
			// Envoy itself refuses the two above (path normalization, see
			// authz/SECURITY.md); this one only the filter does.
			{name: "double-encoded dots refused", path: "/public/%252e%252e/admin", want: 400},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := e.do(t, anonymous, "GET", tc.path)
				require.Equal(t, tc.want, r.status, "body %q", r.body)
				if tc.want == 200 {
					require.Equal(t, "v1", r.echo.Version, "the upstream answered")
				}
			})
		}
	})

	t.Run("jwt", func(t *testing.T) {
		good := e.token(t)
		// The key set arrives by a callout after start: wait until every
		// worker serves it (fresh connections spread over the workers).
		require.Eventually(t, func() bool {
			for i := 0; i < 4; i++ {
				resp, err := topo.Client().Do(bearerReq(t, topo.URL("/jwt/x"), good))
				if err != nil {
					return false
				}
				_ = resp.Body.Close()
				if resp.StatusCode != 200 {
					return false
				}
			}
			return true
		}, 30*time.Second, 100*time.Millisecond, "JWKS fetched and shared")

		enc := base64.RawURLEncoding
		none := enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"k1"}`)) + "." +
			enc.EncodeToString([]byte(`{"iss":"`+authzIssuer+`","sub":"alice","aud":"payments","exp":`+
				jsonNumber(time.Now().Add(time.Hour).Unix())+`}`)) + "."
		tests := []struct {
			name    string
			headers []string
			want    int
			stat    string
		}{
			{name: "valid", headers: []string{"authorization", "Bearer " + good, "x-jwt-sub", "spoofed"}, want: 200},
			{name: "other subject", headers: []string{"authorization", "Bearer " + e.token(t, "sub", "bob")}, want: 403},
			{name: "no token", want: 403},
			{name: "expired", headers: []string{"authorization", "Bearer " + e.token(t, "exp", time.Now().Add(-2*time.Hour).Unix())}, want: 401, stat: "expired"},
			{name: "wrong audience", headers: []string{"authorization", "Bearer " + e.token(t, "aud", "orders")}, want: 401, stat: "audience"},
			{name: "alg none", headers: []string{"authorization", "Bearer " + none}, want: 401, stat: "algorithm"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				var before uint64
				if tc.stat != "" {
					before, _ = topo.Stat("wasmcustom.meshwasm.authz.jwt." + tc.stat)
				}
				r := e.do(t, anonymous, "GET", "/jwt/x", tc.headers...)
				require.Equal(t, tc.want, r.status, "body %q", r.body)
				switch tc.want {
				case 200:
					require.Equal(t, "alice", r.echo.Header("x-jwt-sub"), "claim from the verified token, not the client's copy")
					require.Empty(t, r.echo.Header("authorization"), "token not forwarded")
				case 401:
					require.Contains(t, r.header.Get("www-authenticate"), `error="invalid_token"`)
					after, ok := topo.Stat("wasmcustom.meshwasm.authz.jwt." + tc.stat)
					require.True(t, ok)
					require.Greater(t, after, before)
				}
			})
		}
	})

	t.Run("ext-authz", func(t *testing.T) {
		r := e.do(t, anonymous, "GET", "/ext/orders?id=7", "x-ext-authz", "allow", "x-user", "alice", "x-authz-user", "spoofed")
		require.Equal(t, 200, r.status, "body %q", r.body)
		require.Equal(t, "ext-alice", r.echo.Header("x-authz-user"), "the service's header replaces the client's")
		require.Equal(t, "checked", r.header.Get("x-authz-trace"), "copied to the client on allow")
		require.Contains(t, e.ext.Paths(), "/check/ext/orders?id=7")

		r = e.do(t, anonymous, "GET", "/ext/orders", "x-ext-authz", "deny")
		require.Equal(t, 403, r.status)
		require.Equal(t, harness.ExtAuthzDenyBody, r.body, "the service's denial reaches the client")
		require.Equal(t, "not allowed", r.header.Get("x-authz-reason"))

		checks := e.ext.Checks()
		r = e.do(t, anonymous, "GET", "/public/x", "x-ext-authz", "deny")
		require.Equal(t, 200, r.status, "CUSTOM policy does not match /public")
		require.Equal(t, checks, e.ext.Checks())

		before, _ := topo.Stat("wasmcustom.meshwasm.authz.ext_authz.errors")
		e.ext.Stop()
		r = e.do(t, anonymous, "GET", "/ext/orders", "x-ext-authz", "allow")
		require.Equal(t, 403, r.status, "service down: fail closed")
		require.Equal(t, "RBAC: access denied", r.body)
		after, ok := topo.Stat("wasmcustom.meshwasm.authz.ext_authz.errors")
		require.True(t, ok)
		require.Greater(t, after, before)
	})

	t.Run("metrics", func(t *testing.T) {
		for _, name := range []string{
			"wasmcustom.meshwasm.authz.payment-service-policy.allowed",
			"wasmcustom.meshwasm.authz.deny-admin.denied",
			"wasmcustom.meshwasm.authz.default.denied",
			"wasmcustom.meshwasm.authz.bad_request",
			"wasmcustom.meshwasm.authz.jwks.fetched",
		} {
			v, ok := topo.Stat(name)
			require.True(t, ok, "stat %s", name)
			require.Positive(t, v, "stat %s", name)
		}
		v, _ := topo.Stat("wasmcustom.meshwasm.authz.panics")
		require.Zero(t, v)
	})
}

func bearerReq(t *testing.T, url, token string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("authorization", "Bearer "+token)
	return req
}

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return strings.TrimSpace(string(b))
}

// TestAuthz_EnvoyConfigValidates runs Envoy's validate mode on envoy/authz/envoy.yaml
// with the module path pointed at this build and the certificate paths at a fresh PKI.
func TestAuthz_EnvoyConfigValidates(t *testing.T) {
	dir := t.TempDir()
	pki := harness.NewPKI(t)
	cert, key := pki.ServerCert(t)
	files := map[string][]byte{"server.pem": cert, "server-key.pem": key, "ca.pem": pki.CAPEM()}
	replace := map[string]string{`"build/authz.wasm"`: `"` + harness.WasmModule(t, "authz.wasm") + `"`}
	for name, content := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, content, 0o600))
		replace[`"envoy/authz/certs/`+name+`"`] = `"` + p + `"`
	}
	raw, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), "envoy/authz/envoy.yaml"))
	require.NoError(t, err)
	config := string(raw)
	for old, repl := range replace {
		require.Contains(t, config, old)
		config = strings.ReplaceAll(config, old, repl)
	}
	path := filepath.Join(dir, "envoy.yaml")
	require.NoError(t, os.WriteFile(path, []byte(config), 0o600))
	out, err := exec.Command(harness.EnvoyBinary(t), "--mode", "validate", "--disable-hot-restart", "--config-path", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "OK")
}
