//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/e2e/harness"
)

// memoryMetric is the gauge every meshwasm VM adds its linear memory to
// (registry.MemoryMetric in filters/internal/registry).
const memoryMetric = "wasmcustom.meshwasm.vm_memory_bytes"

// soakDuration is SOAK_DURATION (`make soak` sets 10m); `make test` runs 20 s.
func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	s := os.Getenv("SOAK_DURATION")
	if s == "" {
		return 20 * time.Second
	}
	d, err := time.ParseDuration(s)
	require.NoError(t, err, "SOAK_DURATION")
	require.GreaterOrEqual(t, d, 10*time.Second, "SOAK_DURATION")
	return d
}

// TestSoak_Chain runs mixed traffic through the four filters (suite module, one VM per
// worker, two workers) for SOAK_DURATION with fortio, plus a Go client cycling through
// many users and tokens, and then checks: no 5xx at all (nothing here asks an upstream
// for one, so any 5xx is ours), every stream got exactly the statuses its requests
// deserve, the VMs' linear memory stayed flat after warm-up, the rate limiter's key
// table stayed within maxKeys (slots were reused), no panics and no VM reloads.
func TestSoak_Chain(t *testing.T) {
	duration := soakDuration(t)
	fortio := harness.FortioBinary(t)
	module := harness.WasmModule(t, "suite.wasm")
	otlp := harness.StartOTLP(t)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Use: "sig"}}})
	require.NoError(t, err)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	require.NoError(t, err)
	token := func(sub string) string {
		payload, err := json.Marshal(map[string]any{"iss": "https://soak", "sub": sub, "exp": time.Now().Add(24 * time.Hour).Unix()})
		require.NoError(t, err)
		obj, err := signer.Sign(payload)
		require.NoError(t, err)
		tok, err := obj.CompactSerialize()
		require.NoError(t, err)
		return tok
	}

	const (
		limitedPerSecond = 50 // /limited/: one client key, fixed window of 1 s
		maxKeys          = 64 // /keys/: per-user buckets, more users than slots
		users            = 400
		tokenCache       = 64 // authz verified-token cache, fewer than the tokens in use
	)
	plugin := func(root, config string) harness.WasmFilter {
		return harness.WasmFilter{Name: root, RootID: root, VMID: "meshwasm", Path: module, Config: config, FailurePolicy: harness.FailClosed}
	}
	topo := harness.Start(t, harness.Options{
		Workers:  2,
		LogLevel: "warning", // one access-log line per request would dominate a long soak
		Clusters: []harness.Cluster{otlp.Cluster("otel")},
		Filters: []harness.WasmFilter{
			plugin("tracing", `{"sampling": {"ratio": 0.1}, "export": {"cluster": "otel", "flushPeriod": "500ms"}}`),
			plugin("authz", `{"jwt": {"cacheSize": `+strconv.Itoa(tokenCache)+`, "providers": [{"issuer": "https://soak", "jwks": `+strconv.Quote(string(jwks))+`,
				"outputClaimToHeaders": [{"header": "x-user", "claim": "sub"}]}]},
				"policies": [
					{"name": "deny-admin", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin", "/admin/*"]}}]}]},
					{"name": "require-jwt", "action": "DENY", "rules": [{"from": [{"source": {"notRequestPrincipals": ["*"]}}], "to": [{"operation": {"paths": ["/api/*", "/keys/*"]}}]}]}]}`),
			plugin("ratelimit", `{"maxKeys": `+strconv.Itoa(maxKeys)+`, "rules": [
				{"name": "limited", "match": {"paths": [{"prefix": "/limited/"}]}, "key": ["header:x-api-key"], "algorithm": "fixed_window", "limit": `+strconv.Itoa(limitedPerSecond)+`, "window": "1s"},
				{"name": "per-user", "match": {"paths": [{"prefix": "/keys/"}]}, "key": ["header:x-user"], "algorithm": "token_bucket", "rate": "100/s"}]}`),
			plugin("canary", `{"versions": ["v1", "v2"], "default": "v1",
				"rules": [{"name": "canary", "match": {"headers": [{"name": "x-canary", "exact": "true"}]}, "route": "v2"},
					{"name": "weighted", "split": {"weights": {"v1": 90, "v2": 10}}}],
				"guard": {"consecutive5xx": 5, "maxErrorRatio": 0.5, "window": 100, "cooldown": "30s"}}`),
		},
	})
	stat := func(name string) uint64 {
		v, _ := topo.Stat(name)
		return v
	}
	alice := token("alice")

	// Warm the VMs once so the memory gauge exists before sampling starts.
	warm, err := http.NewRequest(http.MethodGet, topo.URL("/api/warm"), nil)
	require.NoError(t, err)
	warm.Header.Set("authorization", "Bearer "+alice)
	resp, err := topo.Client().Do(warm)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)

	type stream struct {
		name    string
		qps     int
		path    string
		headers []string
		allowed map[int]bool // statuses the stream may see
	}
	streams := []stream{
		{name: "allowed", qps: 100, path: "/api/items", headers: []string{"authorization: Bearer " + alice}, allowed: map[int]bool{200: true}},
		{name: "denied", qps: 20, path: "/admin/users", allowed: map[int]bool{403: true}},
		{name: "unauthenticated", qps: 20, path: "/api/items", allowed: map[int]bool{403: true}},
		{name: "limited", qps: 100, path: "/limited/x", headers: []string{"x-api-key: k1"}, allowed: map[int]bool{200: true, 429: true}},
		{name: "canary", qps: 30, path: "/api/items", headers: []string{"authorization: Bearer " + alice, "x-canary: true"}, allowed: map[int]bool{200: true}},
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), duration+2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	fortioErrs := make([]error, len(streams))
	for i, s := range streams {
		args := []string{"load", "-quiet", "-allow-initial-errors", "-qps", strconv.Itoa(s.qps), "-c", "4", "-uniform",
			"-t", duration.String(), "-json", filepath.Join(dir, s.name+".json")}
		for _, h := range s.headers {
			args = append(args, "-H", h)
		}
		args = append(args, topo.URL(s.path))
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := exec.CommandContext(ctx, fortio, args...).CombinedOutput()
			if err != nil {
				fortioErrs[i] = fmt.Errorf("fortio %s: %v\n%s", s.name, err, out)
			}
		}()
	}

	// Many users, each with its own token: per-user rate-limit buckets (more users
	// than slots) and the verified-token cache (more tokens than entries) churn.
	tokens := make([]string, users)
	for i := range tokens {
		tokens[i] = token("user-" + strconv.Itoa(i))
	}
	var churnSent, churnBad atomic.Int64
	churnStatuses := sync.Map{}
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := topo.Client()
		tick := time.NewTicker(20 * time.Millisecond) // 50 requests per second
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			req, _ := http.NewRequest(http.MethodGet, topo.URL("/keys/"+strconv.Itoa(i%users)), nil)
			req.Header.Set("authorization", "Bearer "+tokens[i%users])
			resp, err := c.Do(req)
			churnSent.Add(1)
			if err != nil {
				churnBad.Add(1)
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			n, _ := churnStatuses.LoadOrStore(resp.StatusCode, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
		}
	}()

	// Sample the VMs' linear memory once a second while the load runs.
	type sample struct {
		at    time.Duration
		bytes uint64
	}
	var samples []sample
	began := time.Now()
	sampler := time.NewTicker(time.Second)
	for time.Since(began) < duration {
		<-sampler.C
		samples = append(samples, sample{time.Since(began), stat(memoryMetric)})
	}
	sampler.Stop()
	close(stop)
	wg.Wait()
	for _, err := range fortioErrs {
		require.NoError(t, err)
	}

	// Every stream got only the statuses it deserves.
	total := int64(0)
	for _, s := range streams {
		raw, err := os.ReadFile(filepath.Join(dir, s.name+".json"))
		require.NoError(t, err)
		var res struct {
			RetCodes          map[string]int64
			ActualQPS         float64
			DurationHistogram struct {
				Count       int64
				Percentiles []struct {
					Percentile float64
					Value      float64
				}
			}
		}
		require.NoError(t, json.Unmarshal(raw, &res))
		require.Positive(t, res.DurationHistogram.Count, s.name)
		for code, n := range res.RetCodes {
			c, err := strconv.Atoi(code)
			require.NoError(t, err)
			require.True(t, s.allowed[c], "%s: %d responses with status %d", s.name, n, c)
		}
		p := map[float64]float64{}
		for _, q := range res.DurationHistogram.Percentiles {
			p[q.Percentile] = q.Value
		}
		t.Logf("soak %-15s %6d requests, %6.1f qps, p50 %.2f ms, p99 %.2f ms, statuses %v",
			s.name, res.DurationHistogram.Count, res.ActualQPS, 1000*p[50], 1000*p[99], res.RetCodes)
		total += res.DurationHistogram.Count
		if s.name == "limited" {
			// A fixed window of 50 per second: never more than 50 per window.
			windows := int64(duration/time.Second) + 2
			require.LessOrEqual(t, res.RetCodes["200"], windows*limitedPerSecond)
			require.Positive(t, res.RetCodes["429"])
		}
	}
	statuses := map[int]int64{}
	churnStatuses.Range(func(k, v any) bool { statuses[k.(int)] = v.(*atomic.Int64).Load(); return true })
	t.Logf("soak %-15s %6d requests, statuses %v", "many-users", churnSent.Load(), statuses)
	total += churnSent.Load()
	require.Zero(t, churnBad.Load())
	for code := range statuses {
		require.Equal(t, 200, code, "many-users: status %d", code)
	}

	// No 5xx at all, from Envoy or the filters.
	require.Zero(t, stat("http.ingress.downstream_rq_5xx"), "5xx answered")
	for _, f := range []string{"authz", "ratelimit", "canary", "tracing", "bridge"} {
		require.Zero(t, stat("wasmcustom.meshwasm."+f+".panics"), f)
	}
	require.Zero(t, stat("wasm.authz.vm_reload_success")+stat("wasm.authz.vm_reload_failure"), "no VM was replaced")
	require.Positive(t, stat("cluster.v2.upstream_rq_200"), "canary traffic reached v2")

	// The key table stayed within maxKeys: 400 users over 64 slots reused idle slots
	// (evictions) or shared the overflow bucket, and nothing failed.
	evictions := stat("wasmcustom.meshwasm.ratelimit.per-user.evictions")
	overflows := stat("wasmcustom.meshwasm.ratelimit.per-user.overflows")
	require.Positive(t, evictions+overflows, "more users than slots must reuse slots")
	require.Zero(t, stat("wasmcustom.meshwasm.ratelimit.per-user.store_errors"))
	require.Zero(t, stat("wasmcustom.meshwasm.ratelimit.limited.store_errors"))
	require.Positive(t, stat("wasmcustom.meshwasm.tracing.spans_exported"))
	require.Zero(t, stat("wasmcustom.meshwasm.tracing.export_failures"))

	// Linear memory flat after warm-up (the first quarter, at least 5 s): Wasm memory
	// never shrinks, so a leak shows as growth. The tolerance is one 4 MiB heap arena
	// per worker VM: the Go runtime may take one more while the heap settles.
	require.GreaterOrEqual(t, len(samples), 8)
	warmup := max(duration/4, 5*time.Second)
	var atWarm, last uint64
	for _, s := range samples {
		if s.at <= warmup {
			atWarm = s.bytes
		}
		last = s.bytes
	}
	var peak uint64
	for _, s := range samples {
		peak = max(peak, s.bytes)
	}
	t.Logf("soak memory: %d bytes after warm-up (%v), %d at the end, peak %d; %d requests in %v; evictions %d, overflows %d",
		atWarm, warmup, last, peak, total, duration, evictions, overflows)
	require.Positive(t, atWarm, "memory gauge reported")
	require.LessOrEqual(t, peak, atWarm+8<<20, "linear memory grew after warm-up: %v", samples)
}
