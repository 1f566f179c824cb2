package harness

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// JWKSServer serves a JSON Web Key Set over plain HTTP on loopback, in the test
// process, for the authz filter's remote JWKS fetches. The key set can be
// replaced while Envoy runs (key rotation); Fetches counts the requests.
type JWKSServer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	jwks    []byte
	fetches atomic.Int64
}

// JWKSPath is where the server answers; any other path is a 404.
const JWKSPath = "/.well-known/jwks.json"

// StartJWKS starts a JWKS server answering jwks (JSON text). It stops when the
// test ends.
func StartJWKS(t testing.TB, jwks string) *JWKSServer {
	t.Helper()
	s := &JWKSServer{jwks: []byte(jwks)}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != JWKSPath || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		s.fetches.Add(1)
		s.mu.Lock()
		body := s.jwks
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// SetJWKS replaces the key set served from now on.
func (s *JWKSServer) SetJWKS(jwks string) {
	s.mu.Lock()
	s.jwks = []byte(jwks)
	s.mu.Unlock()
}

// Fetches is how many key sets were served.
func (s *JWKSServer) Fetches() int64 { return s.fetches.Load() }

// Addr is the server's loopback host:port.
func (s *JWKSServer) Addr() string { return strings.TrimPrefix(s.srv.URL, "http://") }

// Cluster is the Envoy cluster for the server, named name.
func (s *JWKSServer) Cluster(name string) Cluster { return Cluster{Name: name, Addr: s.Addr()} }

// ExtAuthzServer is a small HTTP external authorization service with Envoy's
// ext_authz HTTP semantics, in the test process: a check whose `x-ext-authz`
// header is "allow" gets 200 with `x-authz-user` (for upstream) and
// `x-authz-trace` (for the client); anything else gets 403 with the body
// ExtAuthzDenyBody and `x-authz-reason`. Stop makes it unreachable.
type ExtAuthzServer struct {
	srv    *httptest.Server
	checks atomic.Int64
	mu     sync.Mutex
	paths  []string
}

// ExtAuthzDenyBody is the body of the service's denials.
const ExtAuthzDenyBody = "denied by ext-authz\n"

// StartExtAuthz starts the service; it stops when the test ends.
func StartExtAuthz(t testing.TB) *ExtAuthzServer {
	t.Helper()
	s := &ExtAuthzServer{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.checks.Add(1)
		s.mu.Lock()
		s.paths = append(s.paths, r.URL.RequestURI())
		s.mu.Unlock()
		if r.Header.Get("x-ext-authz") == "allow" {
			w.Header().Set("x-authz-user", "ext-"+r.Header.Get("x-user"))
			w.Header().Set("x-authz-trace", "checked")
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("x-authz-reason", "not allowed")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(ExtAuthzDenyBody))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// Checks is how many checks the service answered.
func (s *ExtAuthzServer) Checks() int64 { return s.checks.Load() }

// Paths are the request URIs of the checks, in order.
func (s *ExtAuthzServer) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...)
}

// Addr is the service's loopback host:port.
func (s *ExtAuthzServer) Addr() string { return strings.TrimPrefix(s.srv.URL, "http://") }

// Cluster is the Envoy cluster for the service, named name.
func (s *ExtAuthzServer) Cluster(name string) Cluster { return Cluster{Name: name, Addr: s.Addr()} }

// Stop closes the service: its port refuses connections from now on.
func (s *ExtAuthzServer) Stop() { s.srv.Close() }
