//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/e2e/harness"
)

// The ratelimit filter (build/ratelimit.wasm) in stock Envoy: local limits exact
// across two workers, shaping resumed from ticks, and global limits through the real
// envoyproxy/ratelimit service backed by Redis.

func rateLimitFilter(t *testing.T, config string) harness.WasmFilter {
	return harness.WasmFilter{
		Name:          "ratelimit",
		RootID:        "ratelimit",
		VMID:          "meshwasm-ratelimit",
		Path:          harness.WasmModule(t, "ratelimit.wasm"),
		Config:        config,
		FailurePolicy: harness.FailClosed,
	}
}

type rlResult struct {
	status                            int
	retryAfter, policy, limit, served string
}

func rlGet(t *testing.T, c *http.Client, url string, headers ...string) rlResult {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return rlResult{
		status:     resp.StatusCode,
		retryAfter: resp.Header.Get("Retry-After"),
		policy:     resp.Header.Get("RateLimit-Policy"),
		limit:      resp.Header.Get("RateLimit"),
		served:     resp.Header.Get("X-Served-By"),
	}
}

func stat(t *testing.T, topo *harness.Topology, name string) uint64 {
	t.Helper()
	v, ok := topo.Stat(name)
	require.True(t, ok, "stat %s missing", name)
	return v
}

// TestRateLimit_LocalExactAcrossWorkers: 16 concurrent clients (16 connections spread
// over 2 workers, each with its own VM) share one per-IP limit of 20: exactly 20 get
// through, every other request gets 429 with Retry-After and the RateLimit headers.
func TestRateLimit_LocalExactAcrossWorkers(t *testing.T) {
	const limit, clients, perClient = 20, 16, 4
	topo := harness.Start(t, harness.Options{
		Workers: 2,
		Filters: []harness.WasmFilter{rateLimitFilter(t, `{
			"response": {"headersOnAllowed": true},
			"rules": [{"name": "edge", "key": ["remote_address"], "algorithm": "token_bucket", "rate": "20/h"}]}`)},
	})

	var (
		mu      sync.Mutex
		results []rlResult
		wg      sync.WaitGroup
	)
	ready := make(chan struct{})
	for i := 0; i < clients; i++ {
		c := topo.Client() // its own connection
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ready
			for j := 0; j < perClient; j++ {
				r := rlGet(t, c, topo.URL("/limited"))
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		}()
	}
	close(ready)
	wg.Wait()

	allowed := 0
	for _, r := range results {
		switch r.status {
		case http.StatusOK:
			allowed++
			require.Equal(t, `"edge";q=20;w=3600`, r.policy)
			require.Regexp(t, `^"edge";r=\d+;t=\d+$`, r.limit)
		case http.StatusTooManyRequests:
			require.Empty(t, r.served, "no upstream answered a 429")
			secs, err := strconv.Atoi(r.retryAfter)
			require.NoError(t, err, "Retry-After %q", r.retryAfter)
			require.Positive(t, secs)
			require.LessOrEqual(t, secs, 180, "one token every 180 s")
			require.Equal(t, `"edge";q=20;w=3600`, r.policy)
			require.Regexp(t, `^"edge";r=0;t=\d+$`, r.limit)
		default:
			t.Fatalf("unexpected status %d", r.status)
		}
	}
	require.Equal(t, limit, allowed, "admitted across both workers: not one more")
	require.Equal(t, uint64(limit), stat(t, topo, "wasmcustom.meshwasm.ratelimit.edge.allowed"))
	require.Equal(t, uint64(clients*perClient-limit), stat(t, topo, "wasmcustom.meshwasm.ratelimit.edge.limited"))
	require.Zero(t, stat(t, topo, "wasmcustom.meshwasm.ratelimit.edge.store_errors"))
	// Both workers took connections, so both VMs really competed for the counter.
	for w := 0; w < 2; w++ {
		require.Positive(t, stat(t, topo, fmt.Sprintf("listener.ingress.worker_%d.downstream_cx_total", w)), "worker %d", w)
	}
	t.Logf("cas_retries: %d", stat(t, topo, "wasmcustom.meshwasm.ratelimit.edge.cas_retries"))
}

// TestRateLimit_ShapingDelaysInEnvoy: a leaky bucket in shape mode at 5/s with a queue
// of 4 answers 5 simultaneous requests all with 200, spaced by the tick-driven
// resumption, and refuses the 6th.
func TestRateLimit_ShapingDelaysInEnvoy(t *testing.T) {
	topo := harness.Start(t, harness.Options{
		Workers: 1, // one worker: a simultaneous burst is queued in one VM
		Filters: []harness.WasmFilter{rateLimitFilter(t, `{
			"rules": [{"name": "shape", "algorithm": "leaky_bucket", "mode": "shape", "rate": "5/s", "queue": 4, "maxDelay": "5s"}]}`)},
	})
	const n = 5
	var wg sync.WaitGroup
	statuses := make([]int, n)
	elapsed := make([]time.Duration, n)
	began := time.Now()
	for i := 0; i < n; i++ {
		c := topo.Client()
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			statuses[i] = rlGet(t, c, topo.URL("/shaped")).status
			elapsed[i] = time.Since(began)
		}(i)
	}
	// The queue holds 4 behind the one in service: a 6th request while they wait
	// overflows. Poll the delayed counter instead of sleeping.
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, _ := topo.Stat("wasmcustom.meshwasm.ratelimit.shape.delayed")
		if v == n-1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "delayed counter stuck at %d", v)
		time.Sleep(5 * time.Millisecond) // polling interval, not a synchronisation sleep
	}
	over := rlGet(t, topo.Client(), topo.URL("/shaped"))
	wg.Wait()

	slowest := time.Duration(0)
	for i := 0; i < n; i++ {
		require.Equal(t, http.StatusOK, statuses[i], "request %d", i)
		slowest = max(slowest, elapsed[i])
	}
	// Four waited behind the first, 200 ms apart: the last one left at least ~800 ms
	// after the burst (ticks may add up to one period, never subtract).
	require.GreaterOrEqual(t, slowest, 700*time.Millisecond)
	require.Equal(t, http.StatusTooManyRequests, over.status)
	require.Equal(t, uint64(n), stat(t, topo, "wasmcustom.meshwasm.ratelimit.shape.allowed"))
	require.Equal(t, uint64(1), stat(t, topo, "wasmcustom.meshwasm.ratelimit.shape.limited"))
}

// TestRateLimit_GlobalThroughRedis: a global rule asks the real envoyproxy/ratelimit
// service (Redis-backed, 5 per day per user; a day, so that a window boundary inside the test is unlikely) over its HTTP JSON API.
func TestRateLimit_GlobalThroughRedis(t *testing.T) {
	svc := harness.StartRateLimit(t, `
domain: meshwasm
descriptors:
  - key: user
    rate_limit:
      unit: day
      requests_per_unit: 5
`)
	topo := harness.Start(t, harness.Options{
		Workers:  2,
		Clusters: []harness.Cluster{svc.Cluster("ratelimit")},
		Filters: []harness.WasmFilter{rateLimitFilter(t, `{
			"response": {"headersOnAllowed": true},
			"global": {"cluster": "ratelimit", "domain": "meshwasm", "timeout": "2s", "failureMode": "deny"},
			"rules": [{"name": "per-user", "mode": "global", "key": ["header:x-user"], "descriptorKeys": ["user"]}]}`)},
	})
	c := topo.Client()
	for i := 0; i < 5; i++ {
		r := rlGet(t, c, topo.URL("/global"), "x-user", "alice")
		require.Equal(t, http.StatusOK, r.status, "request %d", i)
		require.Equal(t, "v1", r.served)
		require.Equal(t, `"per-user";q=5;w=86400`, r.policy)
		require.Regexp(t, fmt.Sprintf(`^"per-user";r=%d;t=\d+$`, 4-i), r.limit)
	}
	r := rlGet(t, c, topo.URL("/global"), "x-user", "alice")
	require.Equal(t, http.StatusTooManyRequests, r.status)
	require.Empty(t, r.served)
	secs, err := strconv.Atoi(r.retryAfter)
	require.NoError(t, err, "Retry-After %q", r.retryAfter)
	require.Positive(t, secs)
	require.LessOrEqual(t, secs, 86400)
	require.Equal(t, `"per-user";q=5;w=86400`, r.policy)

	require.Equal(t, http.StatusOK, rlGet(t, c, topo.URL("/global"), "x-user", "bob").status, "another user, another counter")
	require.Equal(t, uint64(6), stat(t, topo, "wasmcustom.meshwasm.ratelimit.per-user.allowed"))
	require.Equal(t, uint64(1), stat(t, topo, "wasmcustom.meshwasm.ratelimit.per-user.limited"))
	require.Zero(t, stat(t, topo, "wasmcustom.meshwasm.ratelimit.per-user.global_errors"))
}

// TestRateLimit_GlobalServiceDown: the ratelimit cluster points at a closed port;
// failureMode deny answers 429 and counts the error.
func TestRateLimit_GlobalServiceDown(t *testing.T) {
	topo := harness.Start(t, harness.Options{
		Workers:  1,
		Clusters: []harness.Cluster{{Name: "ratelimit", Addr: "127.0.0.1:1"}},
		Filters: []harness.WasmFilter{rateLimitFilter(t, `{
			"global": {"cluster": "ratelimit", "domain": "meshwasm", "timeout": "500ms", "failureMode": "deny"},
			"rules": [{"name": "per-user", "mode": "global", "key": ["header:x-user"]}]}`)},
	})
	r := rlGet(t, topo.Client(), topo.URL("/global"), "x-user", "alice")
	require.Equal(t, http.StatusTooManyRequests, r.status)
	require.Equal(t, "1", r.retryAfter)
	require.Empty(t, r.served)
	require.Equal(t, uint64(1), stat(t, topo, "wasmcustom.meshwasm.ratelimit.per-user.global_errors"))
}

// TestRateLimit_BootstrapsValidate runs Envoy in --mode validate on the shipped
// ratelimit bootstraps with the module path made absolute (they name
// build/ratelimit.wasm relative to the repository root).
func TestRateLimit_BootstrapsValidate(t *testing.T) {
	envoy := harness.EnvoyBinary(t)
	module := harness.WasmModule(t, "ratelimit.wasm")
	root := harness.RepoRoot(t)
	for _, name := range []string{"envoy.yaml", "envoy-global.yaml"} {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(root, "envoy", "ratelimit", name))
			require.NoError(t, err)
			const rel = `"build/ratelimit.wasm"`
			require.Contains(t, string(raw), rel)
			path := filepath.Join(t.TempDir(), name)
			require.NoError(t, os.WriteFile(path, []byte(strings.ReplaceAll(string(raw), rel, `"`+module+`"`)), 0o600))
			out, err := exec.Command(envoy, "--mode", "validate", "--disable-hot-restart", "--config-path", path).CombinedOutput()
			require.NoError(t, err, "%s", out)
			require.Contains(t, string(out), "OK")
		})
	}
}
