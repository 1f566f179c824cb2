//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	core "github.com/meshwasm/meshwasm/canary"
	"github.com/meshwasm/meshwasm/e2e/harness"
)

// canaryE2EConfig is canary/README.md's translation of the seeds' VirtualService
// (x-canary: true → v2, even user ids → v2, otherwise 90/10), plus a shadow mirror.
const canaryE2EConfig = `{
  "routeHeader": "x-route-version",
  "responseHeader": "x-served-by-version",
  "versions": ["v1", "v2"],
  "default": "v1",
  "trust": {"principals": ["spiffe://cluster.local/ns/qa/sa/release-tester"]},
  "rules": [
    {"name": "header-canary", "match": {"headers": [{"name": "x-canary", "exact": "true"}]}, "route": "v2"},
    {"name": "even-users", "match": {"headers": [{"name": "x-user-id", "modulo": {"divisor": 2, "remainder": 0}}]}, "route": "v2"},
    {"name": "weighted", "split": {"weights": {"v1": 90, "v2": 10}, "hashOn": {"header": "x-user-id"}}}
  ],
  "sticky": {"cookie": "order-version", "ttl": "24h"},
  "mirror": {"cluster": "shadow", "headers": ["x-user-id", "x-mirror-probe"]},
  "guard": {"consecutive5xx": 3, "maxErrorRatio": 0.2, "window": 100, "cooldown": "60s"}
}`

// shadow is the mirror's target: it records the copies it receives.
type shadow struct {
	mu     sync.Mutex
	probes map[string]string // x-mirror-probe → Host
}

func (s *shadow) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.Header.Get("x-mirror-probe"); p != "" {
		s.mu.Lock()
		s.probes[p] = r.Host
		s.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *shadow) host(probe string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.probes[probe]
	return h, ok
}

type canaryReq map[string]string

func (r canaryReq) Header(name string) (string, bool) { v, ok := r[name]; return v, ok }
func (canaryReq) SourceAddress() string               { return "" }
func (canaryReq) Principal() string                   { return "" }

// TestCanary_Envoy runs build/canary.wasm in Envoy with two workers and proves the
// seeds' canary release end to end. Subtests share one topology and run in order;
// the guard trip is last because it diverts v2's traffic for a minute.
func TestCanary_Envoy(t *testing.T) {
	module := harness.WasmModule(t, "canary.wasm")
	sh := &shadow{probes: map[string]string{}}
	srv := httptest.NewServer(sh)
	t.Cleanup(srv.Close)
	topo := harness.Start(t, harness.Options{
		Workers: 2,
		TLS:     harness.TLSOptionalClientCert,
		Filters: []harness.WasmFilter{{
			Name: "canary", RootID: "canary", VMID: "meshwasm", Path: module,
			Config: canaryE2EConfig,
			// Routing, not security: a broken VM must not take the service down.
			FailurePolicy: harness.FailOpen,
		}},
		Clusters: []harness.Cluster{{Name: "shadow", Addr: srv.Listener.Addr().(*net.TCPAddr).String()}},
	})
	client := topo.Client()
	router, err := core.Parse([]byte(canaryE2EConfig))
	require.NoError(t, err)

	do := func(t *testing.T, c *http.Client, headers ...string) (harness.EchoReply, *http.Response) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, topo.URL("/orders"), nil)
		require.NoError(t, err)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Add(headers[i], headers[i+1])
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		return harness.ReadEcho(t, resp), resp
	}
	stat := func(name string) uint64 {
		v, _ := topo.Stat("wasmcustom." + name)
		return v
	}
	// nativeVersion is the core's decision for an untrusted request with these
	// headers (no cookie, so never random when a user id is set).
	nativeVersion := func(headers ...string) string {
		req := canaryReq{}
		for i := 0; i+1 < len(headers); i += 2 {
			req[headers[i]] = headers[i+1]
		}
		return router.Decide(req, core.Env{}).Version
	}
	v1User := ""
	for id := 1; v1User == ""; id += 2 {
		if nativeVersion("x-user-id", strconv.Itoa(id)) == "v1" {
			v1User = strconv.Itoa(id)
		}
	}

	t.Run("header and even user ids route to v2", func(t *testing.T) {
		tests := []struct {
			name    string
			headers []string
			want    string
		}{
			{name: "x-canary true", headers: []string{"x-canary", "true"}, want: "v2"},
			{name: "x-canary false falls through to the split", headers: []string{"x-canary", "false", "x-user-id", v1User}, want: "v1"},
			{name: "even user id", headers: []string{"x-user-id", "42"}, want: "v2"},
			{name: "long even user id", headers: []string{"x-user-id", "184467440737095516160"}, want: "v2"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				echo, resp := do(t, client, tc.headers...)
				// Only the route table picks the cluster, and it matched the header the
				// filter set: Envoy cleared the route cache after the filter's change.
				require.Equal(t, tc.want, echo.Version, "upstream that answered")
				require.Equal(t, tc.want, echo.Header("x-route-version"))
				require.Equal(t, tc.want, resp.Header.Get("x-served-by-version"))
			})
		}
	})

	t.Run("90/10 split over 2000 user ids", func(t *testing.T) {
		const n = 2000
		served := make([]string, n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		ids := make(chan int)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range ids {
					req, _ := http.NewRequest(http.MethodGet, topo.URL("/orders"), nil)
					req.Header.Set("x-user-id", strconv.Itoa(2*i+1)) // odd: the split rule decides
					resp, err := client.Do(req)
					if err != nil {
						errs <- err
						continue
					}
					resp.Body.Close()
					served[i] = resp.Header.Get("X-Served-By")
				}
			}()
		}
		for i := range n {
			ids <- i
		}
		close(ids)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		v2 := 0
		for i, v := range served {
			require.Equal(t, nativeVersion("x-user-id", strconv.Itoa(2*i+1)), v, "user %d: Envoy agrees with the core's hash", 2*i+1)
			if v == "v2" {
				v2++
			}
		}
		share := float64(v2) / n
		t.Logf("v2 share: %d/%d = %.2f%%", v2, n, 100*share)
		// 2000 keys: binomial sd sqrt(0.1*0.9/2000) = 0.67%, so ±2.5% is ~3.7 sd; the
		// core's own test holds ±1% over 100k keys.
		require.InDelta(t, 0.10, share, 0.025)
	})

	t.Run("sticky cookie pins the version", func(t *testing.T) {
		// Without a user id the split is random; the cookie from the first response
		// that lands on v2 must keep the client there.
		var cookie *http.Cookie
		for i := 0; i < 400 && cookie == nil; i++ {
			echo, resp := do(t, client)
			for _, c := range resp.Cookies() {
				if c.Name == "order-version" && c.Value == "v2" {
					require.Equal(t, "v2", echo.Version, "the cookie names the version that served")
					require.Equal(t, 86400, c.MaxAge)
					require.True(t, c.HttpOnly)
					cookie = c
				}
			}
		}
		require.NotNil(t, cookie, "no v2 cookie in 400 random requests")
		for range 30 {
			echo, resp := do(t, client, "cookie", cookie.Name+"="+cookie.Value)
			require.Equal(t, "v2", echo.Version)
			require.Empty(t, resp.Header.Values("Set-Cookie"), "a honoured cookie is not rewritten")
		}
	})

	t.Run("spoofed routing header does not reach v2", func(t *testing.T) {
		before := stat("meshwasm.canary.spoofed_header")
		tests := []struct {
			name   string
			client *http.Client
			want   string
		}{
			{name: "no client certificate", client: client, want: "v1"},
			{name: "untrusted identity", client: topo.ClientAs("spiffe://cluster.local/ns/qa/sa/intruder"), want: "v1"},
			{name: "trusted identity may choose", client: topo.ClientAs("spiffe://cluster.local/ns/qa/sa/release-tester"), want: "v2"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				echo, _ := do(t, tc.client, "x-user-id", v1User, "x-route-version", "v2")
				require.Equal(t, tc.want, echo.Version)
				require.Equal(t, []string{tc.want}, echo.Headers["X-Route-Version"], "one routing header, the filter's")
			})
		}
		require.Equal(t, before+2, stat("meshwasm.canary.spoofed_header"))
	})

	t.Run("mirror reaches the shadow without delaying the client", func(t *testing.T) {
		probe := fmt.Sprintf("probe-%d", time.Now().UnixNano())
		echo, _ := do(t, client, "x-user-id", v1User, "x-mirror-probe", probe)
		require.Equal(t, "v1", echo.Version)
		require.Eventually(t, func() bool { _, ok := sh.host(probe); return ok }, 10*time.Second, 20*time.Millisecond,
			"the shadow never saw the copy")
		host, _ := sh.host(probe)
		require.Contains(t, host, "-shadow", "copy marked as shadow traffic (Envoy's own mirroring does the same)")
		require.NotZero(t, stat("meshwasm.canary.mirrored"))
		require.Zero(t, stat("meshwasm.canary.mirror_errors"))
	})

	t.Run("guard trips when v2 returns 5xx", func(t *testing.T) {
		require.Zero(t, stat("meshwasm.canary.v2.guard_trips"))
		// x-echo-status reaches only the upstream the filter chose: v2 here.
		for i := range 3 {
			echo, resp := do(t, client, "x-canary", "true", "x-echo-status", "503")
			require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "request %d", i)
			require.Equal(t, "v2", echo.Version)
		}
		require.Equal(t, uint64(1), stat("meshwasm.canary.v2.guard_trips"))
		// Both workers read the shared state: every canary request now goes to v1.
		for range 10 {
			echo, _ := do(t, client, "x-canary", "true")
			require.Equal(t, "v1", echo.Version)
		}
		require.Equal(t, uint64(10), stat("meshwasm.canary.v2.guard_diverted"))
	})

	require.Zero(t, stat("meshwasm.canary.panics"))
	require.NotZero(t, stat("meshwasm.canary.v1.routed"))
	require.NotZero(t, stat("meshwasm.canary.weighted.matched"))
}

// TestCanary_EnvoyConfigValidates runs Envoy's validate mode on envoy/canary/envoy.yaml
// with the module path pointed at this build.
func TestCanary_EnvoyConfigValidates(t *testing.T) {
	module := harness.WasmModule(t, "canary.wasm")
	raw, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), "envoy/canary/envoy.yaml"))
	require.NoError(t, err)
	const relative = `"build/canary.wasm"`
	require.Contains(t, string(raw), relative)
	path := filepath.Join(t.TempDir(), "envoy.yaml")
	require.NoError(t, os.WriteFile(path, []byte(strings.ReplaceAll(string(raw), relative, `"`+module+`"`)), 0o600))
	out, err := exec.Command(harness.EnvoyBinary(t), "--mode", "validate", "--disable-hot-restart", "--config-path", path).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "OK")
}
