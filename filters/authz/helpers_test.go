package authz_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	core "github.com/meshwasm/meshwasm/authz"
	"github.com/meshwasm/meshwasm/filters/authz"
	"github.com/meshwasm/meshwasm/filters/internal/wasmhost"
)

// These helpers drive build/authz.wasm (built by `make build`) on the wazero
// host, which emulates Envoy's properties, shared data, ticks, callouts and
// clock. A missing module fails the tests.

const (
	module      = "authz"
	logCritical = 5
	issuer      = "https://issuer.example"
	orderSAN    = "spiffe://cluster.local/ns/production/sa/order-service"
)

// conn is what Envoy reports about the downstream connection.
type conn struct {
	san  string // connection.uri_san_peer_certificate
	mtls bool   // connection.mtls
}

var (
	plainText = conn{}
	orderMTLS = conn{san: orderSAN, mtls: true}
)

func (c conn) properties() map[string][]byte {
	m := map[string][]byte{
		"source.address":                   []byte("10.1.2.3:51000"),
		"destination.address":              []byte("10.9.9.9:8080"),
		"connection.requested_server_name": []byte("payment-service.production.svc.cluster.local"),
		"connection.mtls":                  {0},
	}
	if c.mtls {
		m["connection.mtls"] = []byte{1}
	}
	if c.san != "" {
		m["connection.uri_san_peer_certificate"] = []byte(c.san)
	}
	return m
}

func start(t testing.TB, h *wasmhost.Host, config string, clusters ...string) *wasmhost.Plugin {
	t.Helper()
	p := h.NewPlugin(wasmhost.VMOptions{Clusters: clusters}, wasmhost.PluginOptions{RootID: module, Config: []byte(config)})
	require.True(t, p.Started(), "plugin start failed: %v", p.VM().Logs())
	return p
}

func req(method, path string, kv ...string) [][2]string {
	hs := [][2]string{{":method", method}, {":path", path}, {":authority", "payment-service:8080"}}
	for i := 0; i+1 < len(kv); i += 2 {
		hs = append(hs, [2]string{kv[i], kv[i+1]})
	}
	return hs
}

// send runs one request; an admitted request also gets response headers, so
// that headers the filter adds to the response are visible.
func send(t testing.TB, p *wasmhost.Plugin, c conn, headers [][2]string) (types.Action, *wasmhost.Stream) {
	t.Helper()
	s := p.NewStream()
	for k, v := range c.properties() {
		s.Properties[k] = v
	}
	action := s.SendRequestHeaders(headers, true)
	if action == types.ActionContinue {
		s.SendResponseHeaders([][2]string{{":status", "200"}}, true)
	}
	return action, s
}

// status is the local response status, or 0 when the request went upstream.
func status(t testing.TB, action types.Action, s *wasmhost.Stream) uint32 {
	t.Helper()
	if s.Local == nil {
		require.Equal(t, types.ActionContinue, action, "no local response but the request is paused")
		return 0
	}
	require.Equal(t, types.ActionPause, action)
	return s.Local.Status
}

func metric(t testing.TB, h *wasmhost.Host, name string) uint64 {
	t.Helper()
	v, ok := h.Metric(name)
	require.True(t, ok, "metric %s not defined; have %v", name, h.MetricNames())
	return v
}

func policyMetric(t testing.TB, h *wasmhost.Host, policy string, o core.Outcome) uint64 {
	t.Helper()
	return metric(t, h, authz.PolicyMetric(policy, o))
}

// Keys are generated once per test binary: RSA key generation is slow.
type testKeys struct {
	rsa, rotated *rsa.PrivateKey
	ec           *ecdsa.PrivateKey
}

var (
	keysOnce sync.Once
	keys     testKeys
)

func getKeys(t testing.TB) testKeys {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		keys.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
		if err == nil {
			keys.rotated, err = rsa.GenerateKey(rand.Reader, 2048)
		}
		if err == nil {
			keys.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		}
		if err != nil {
			panic(err)
		}
	})
	return keys
}

// jwks is the public key set of the given keys, as JSON text.
func jwks(t testing.TB, ks ...jose.JSONWebKey) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: ks})
	require.NoError(t, err)
	return string(b)
}

func rsaJWK(k *rsa.PrivateKey, kid string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Use: "sig"}
}

func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	require.NoError(t, err)
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	obj, err := s.Sign(payload)
	require.NoError(t, err)
	tok, err := obj.CompactSerialize()
	require.NoError(t, err)
	return tok
}

// unsigned is an `alg: none` token.
func unsigned(t testing.TB, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString(payload) + "."
}

func claims(now time.Time, kv ...any) map[string]any {
	c := map[string]any{"iss": issuer, "sub": "alice", "aud": "payments",
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}

func bearer(tok string) []string { return []string{"authorization", "Bearer " + tok} }

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func lines(ss []string) string { return strings.Join(ss, "\n") }
