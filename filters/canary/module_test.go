package canary_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	core "github.com/meshwasm/meshwasm/canary"
	"github.com/meshwasm/meshwasm/filters/canary"
	"github.com/meshwasm/meshwasm/filters/internal/wasmhost"
)

// These tests run build/canary.wasm (built by `make build`) on the wazero
// host: what they observe is what Envoy would, headers after the callbacks,
// callouts, shared data, metrics and logs. A missing module fails them.

const (
	logWarn     = 3
	logCritical = 5
)

// seedsConfig is canary/README.md's translation of the seeds' VirtualService
// (header canary, even user ids, 90/10), with a trust header, a tight guard
// and everything probed so that recovery is deterministic.
const seedsConfig = `{
  "routeHeader": "x-route-version",
  "responseHeader": "x-served-by-version",
  "versions": ["v1", "v2"],
  "default": "v1",
  "trust": {"headers": [{"name": "x-qa-token", "value": "s3cret"}],
            "principals": ["spiffe://cluster.local/ns/qa/sa/release-tester"]},
  "rules": [
    {"name": "header-canary", "match": {"headers": [{"name": "x-canary", "exact": "true"}]}, "route": "v2"},
    {"name": "even-users", "match": {"headers": [{"name": "x-user-id", "modulo": {"divisor": 2, "remainder": 0}}]}, "route": "v2"},
    {"name": "weighted", "split": {"weights": {"v1": 90, "v2": 10}, "hashOn": {"header": "x-user-id"}}}
  ],
  "sticky": {"cookie": "order-version", "ttl": "24h"},
  "mirror": {"cluster": "shadow", "headers": ["x-user-id"]},
  "guard": {"consecutive5xx": 3, "maxErrorRatio": 0, "cooldown": "60s", "probePercent": 100, "probeSuccesses": 2}
}`

func start(t testing.TB, h *wasmhost.Host, config string) *wasmhost.Plugin {
	t.Helper()
	p := h.NewPlugin(wasmhost.VMOptions{Clusters: []string{"shadow"}},
		wasmhost.PluginOptions{RootID: "canary", Config: []byte(config)})
	require.True(t, p.Started(), "plugin start failed: %v", p.VM().Logs())
	return p
}

func get(extra ...string) [][2]string {
	hs := [][2]string{{":method", "GET"}, {":path", "/orders"}, {":authority", "orders.example"}}
	for i := 0; i+1 < len(extra); i += 2 {
		hs = append(hs, [2]string{extra[i], extra[i+1]})
	}
	return hs
}

// oddUser returns an odd user id the weighted rule sends to version want,
// asking the core itself (same hash on every worker and in the module).
func oddUser(t testing.TB, want string) string {
	t.Helper()
	r, err := core.Parse([]byte(seedsConfig))
	require.NoError(t, err)
	for id := 1; id < 10_000; id += 2 {
		req := nativeRequest{"x-user-id": strconv.Itoa(id)}
		if d := r.Decide(req, core.Env{}); d.Version == want && d.Rule == 2 {
			return strconv.Itoa(id)
		}
	}
	t.Fatalf("no odd user id routed to %s", want)
	return ""
}

type nativeRequest map[string]string

func (r nativeRequest) Header(name string) (string, bool) { v, ok := r[name]; return v, ok }
func (nativeRequest) SourceAddress() string               { return "" }
func (nativeRequest) Principal() string                   { return "" }

func metric(t testing.TB, h *wasmhost.Host, name string) uint64 {
	t.Helper()
	v, ok := h.Metric(name)
	require.True(t, ok, "metric %s not defined; have %v", name, h.MetricNames())
	return v
}

func TestModule_RoutingHeader(t *testing.T) {
	v1User, v2User := oddUser(t, "v1"), oddUser(t, "v2")
	tests := []struct {
		name       string
		headers    [][2]string
		principal  string
		want       string
		wantSpoof  uint64
		wantMetric string // rule counter that must have moved
	}{
		{name: "header canary", headers: get("x-canary", "true"), want: "v2", wantMetric: canary.RuleMetric("header-canary")},
		{name: "even user id", headers: get("x-user-id", "42"), want: "v2", wantMetric: canary.RuleMetric("even-users")},
		{name: "odd user in the 90", headers: get("x-user-id", v1User), want: "v1", wantMetric: canary.RuleMetric("weighted")},
		{name: "odd user in the 10", headers: get("x-user-id", v2User), want: "v2", wantMetric: canary.RuleMetric("weighted")},
		{name: "spoofed header replaced", headers: get("x-user-id", v1User, "x-route-version", "v2"), want: "v1", wantSpoof: 1, wantMetric: canary.RuleMetric("weighted")},
		{name: "unknown version replaced", headers: get("x-user-id", v1User, "x-route-version", "v9"), want: "v1", wantSpoof: 1},
		{name: "duplicate spoofed headers collapse to one", headers: get("x-user-id", v1User, "x-route-version", "v2", "x-route-version", "v2"), want: "v1", wantSpoof: 1},
		{name: "trusted header honoured", headers: get("x-user-id", v1User, "x-route-version", "v2", "x-qa-token", "s3cret"), want: "v2"},
		{name: "wrong trust token", headers: get("x-user-id", v1User, "x-route-version", "v2", "x-qa-token", "guess"), want: "v1", wantSpoof: 1},
		{name: "trusted principal honoured", headers: get("x-user-id", v1User, "x-route-version", "v2"), principal: "spiffe://cluster.local/ns/qa/sa/release-tester", want: "v2"},
		{name: "other principal replaced", headers: get("x-user-id", v1User, "x-route-version", "v2"), principal: "spiffe://cluster.local/ns/qa/sa/intruder", want: "v1", wantSpoof: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := wasmhost.Load(t, "canary")
			p := start(t, h, seedsConfig)
			s := p.NewStream()
			if tc.principal != "" {
				s.Properties["connection.uri_san_peer_certificate"] = []byte(tc.principal)
			}
			require.Equal(t, types.ActionContinue, s.SendRequestHeaders(tc.headers, true))
			require.Equal(t, tc.want, s.RequestHeader("x-route-version"))
			n := 0
			for _, hd := range s.RequestHeaders {
				if hd[0] == "x-route-version" {
					n++
				}
			}
			require.Equal(t, 1, n, "exactly one routing header")
			require.Equal(t, uint64(1), metric(t, h, canary.VersionMetric(tc.want, "routed")))
			require.Equal(t, tc.wantSpoof, metric(t, h, canary.MetricSpoofed))
			if tc.wantMetric != "" {
				require.Equal(t, uint64(1), metric(t, h, tc.wantMetric))
			}

			require.Equal(t, types.ActionContinue, s.SendResponseHeaders([][2]string{{":status", "200"}, {"x-served-by-version", "forged"}}, false))
			require.Equal(t, tc.want, s.ResponseHeader("x-served-by-version"), "the filter names the version, replacing an upstream value")
			s.Finish()
		})
	}
}

func TestModule_StickyCookie(t *testing.T) {
	v1User := oddUser(t, "v1")
	tests := []struct {
		name       string
		headers    [][2]string
		want       string
		wantCookie string // "" when no Set-Cookie is expected
	}{
		{name: "first visit pins the version", headers: get("x-user-id", v1User), want: "v1",
			wantCookie: "order-version=v1; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax"},
		{name: "cookie honoured over the hash", headers: get("x-user-id", v1User, "cookie", "a=b; order-version=v2"), want: "v2"},
		{name: "cookie naming the hashed version is not rewritten", headers: get("x-user-id", v1User, "cookie", "order-version=v1"), want: "v1"},
		{name: "unknown version in cookie replaced", headers: get("x-user-id", v1User, "cookie", "order-version=v7"), want: "v1",
			wantCookie: "order-version=v1; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := start(t, wasmhost.Load(t, "canary"), seedsConfig)
			s := p.NewStream()
			s.SendRequestHeaders(tc.headers, true)
			require.Equal(t, tc.want, s.RequestHeader("x-route-version"))
			s.SendResponseHeaders([][2]string{{":status", "200"}, {"set-cookie", "session=1"}}, false)
			var cookies []string
			for _, hd := range s.ResponseHeaders {
				if hd[0] == "set-cookie" {
					cookies = append(cookies, hd[1])
				}
			}
			want := []string{"session=1"}
			if tc.wantCookie != "" {
				want = append(want, tc.wantCookie)
			}
			require.Equal(t, want, cookies, "the upstream's cookies are kept")
			s.Finish()
		})
	}
}

func TestModule_MirrorDoesNotPause(t *testing.T) {
	h := wasmhost.Load(t, "canary")
	p := start(t, h, seedsConfig)
	s := p.NewStream()
	require.Equal(t, types.ActionContinue, s.SendRequestHeaders(get("x-user-id", "7", "x-secret", "no"), true), "the stream never waits for the shadow")
	callouts := p.VM().Callouts()
	require.Len(t, callouts, 1)
	c := callouts[0]
	require.Equal(t, "shadow", c.Cluster)
	require.Equal(t, "GET", c.Header(":method"))
	require.Equal(t, "/orders", c.Header(":path"))
	require.Equal(t, "orders.example-shadow", c.Header(":authority"))
	require.Equal(t, "7", c.Header("x-user-id"))
	require.Empty(t, c.Header("x-secret"), "only configured headers are copied")
	require.Equal(t, uint32(1000), c.Timeout)
	require.Equal(t, uint64(1), metric(t, h, canary.MetricMirrored))

	// The response flows before the shadow answers; the late reply changes nothing.
	require.Equal(t, types.ActionContinue, s.SendResponseHeaders([][2]string{{":status", "200"}}, true))
	c.Respond(500, nil, []byte("shadow failed"), nil)
	require.Zero(t, s.RequestResumed+s.ResponseResumed, "nothing resumed: nothing was paused")
	require.Nil(t, s.Local)
	s.Finish()
}

func TestModule_MirrorFailureCounted(t *testing.T) {
	h := wasmhost.Load(t, "canary")
	p := h.NewPlugin(wasmhost.VMOptions{Clusters: []string{"other"}}, // no "shadow" cluster
		wasmhost.PluginOptions{RootID: "canary", Config: []byte(seedsConfig)})
	require.True(t, p.Started())
	s := p.NewStream()
	require.Equal(t, types.ActionContinue, s.SendRequestHeaders(get("x-canary", "true"), true))
	require.Equal(t, "v2", s.RequestHeader("x-route-version"), "routing does not depend on the shadow")
	require.Equal(t, uint64(1), metric(t, h, canary.MetricMirrorErrors))
	require.Zero(t, metric(t, h, canary.MetricMirrored))
	require.NotEmpty(t, p.VM().LogsContaining(logWarn, "canary: mirror to shadow"))
}

// canaryRequest sends one x-canary request through p and answers it with
// status (0: the stream ends without a response, a reset).
func canaryRequest(t *testing.T, p *wasmhost.Plugin, status int) string {
	t.Helper()
	s := p.NewStream()
	require.Equal(t, types.ActionContinue, s.SendRequestHeaders(get("x-canary", "true"), true))
	version := s.RequestHeader("x-route-version")
	if status != 0 {
		s.SendResponseHeaders([][2]string{{":status", strconv.Itoa(status)}}, true)
	}
	s.Finish()
	return version
}

func TestModule_GuardSharedBetweenVMs(t *testing.T) {
	h := wasmhost.Load(t, "canary")
	a, b := start(t, h, seedsConfig), start(t, h, seedsConfig) // two workers, one vm_id
	trips := canary.VersionMetric("v2", "guard_trips")

	require.Equal(t, "v2", canaryRequest(t, a, 503))
	require.Equal(t, "v2", canaryRequest(t, b, 503))
	require.Zero(t, metric(t, h, trips))
	require.Equal(t, "v2", canaryRequest(t, a, 503), "the third consecutive 5xx, counted across VMs")
	require.Equal(t, uint64(1), metric(t, h, trips))
	logs := a.VM().LogsContaining(logWarn, "canary guard: version v2 tripped (consecutive 5xx, 3 errors in 3 responses, trip 1)")
	require.Len(t, logs, 1)

	// The other worker sees the trip: canary traffic goes to the default.
	require.Equal(t, "v1", canaryRequest(t, b, 200))
	require.Equal(t, uint64(1), metric(t, h, canary.VersionMetric("v2", "guard_diverted")))

	// After the cooldown both workers probe (probePercent 100); two healthy
	// probes recover the version.
	h.Clock.Advance(61 * time.Second)
	require.Equal(t, "v2", canaryRequest(t, b, 200))
	require.Equal(t, "v2", canaryRequest(t, a, 200))
	require.Equal(t, uint64(1), metric(t, h, canary.VersionMetric("v2", "guard_recoveries")))
	require.Len(t, a.VM().LogsContaining(2, "canary guard: version v2 recovered after 2 healthy probes"), 1)
	require.Equal(t, "v2", canaryRequest(t, b, 200))
	require.Zero(t, metric(t, h, canary.MetricStoreErrors))
}

func TestModule_GuardCountsResets(t *testing.T) {
	h := wasmhost.Load(t, "canary")
	p := start(t, h, strings.Replace(seedsConfig, `"consecutive5xx": 3`, `"consecutive5xx": 2`, 1))
	require.Equal(t, "v2", canaryRequest(t, p, 0), "reset before any response")
	require.Equal(t, "v2", canaryRequest(t, p, 0))
	require.Equal(t, uint64(1), metric(t, h, canary.VersionMetric("v2", "guard_trips")))
	require.Equal(t, "v1", canaryRequest(t, p, 200))
}

func TestModule_GuardIgnoresSuccessAndDefault(t *testing.T) {
	h := wasmhost.Load(t, "canary")
	p := start(t, h, seedsConfig)
	for range 5 {
		require.Equal(t, "v2", canaryRequest(t, p, 404), "4xx is the client's fault, not the canary's")
	}
	v1User := oddUser(t, "v1")
	for range 5 {
		s := p.NewStream()
		s.SendRequestHeaders(get("x-user-id", v1User), true)
		s.SendResponseHeaders([][2]string{{":status", "503"}}, true)
		s.Finish()
	}
	require.Zero(t, metric(t, h, canary.VersionMetric("v2", "guard_trips")))
	require.Zero(t, metric(t, h, canary.VersionMetric("v1", "guard_trips")), "the default version is never guarded")
	require.Equal(t, 0, h.SharedDataKeys("meshwasm")-1, "one key: v2's state")
}

func TestModule_BadConfigRefused(t *testing.T) {
	tests := []struct {
		name   string
		config string
		want   string
	}{
		{name: "empty", config: ``, want: "configuration refused: versions: required"},
		{name: "invalid JSON", config: `{`, want: "configuration refused: configuration: invalid JSON"},
		{name: "unknown key", config: `{"versions":["v1"],"weigths":{}}`, want: "configuration refused: "},
		{name: "unknown version in a rule", config: `{"versions":["v1","v2"],"rules":[{"route":"v3"}]}`, want: `rules[0].route: unknown version "v3"`},
		{name: "bad modulo", config: `{"versions":["v1","v2"],"rules":[{"match":{"headers":[{"name":"x-user-id","modulo":{"divisor":2,"remainder":2}}]},"route":"v2"}]}`,
			want: "rules[0].match.headers[0].modulo.remainder: must be less than divisor 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := core.Parse([]byte(tc.config))
			require.Error(t, err)
			require.Contains(t, "configuration refused: "+err.Error(), tc.want, "the test's expectation matches the core")
			p := wasmhost.Load(t, "canary").NewPlugin(wasmhost.VMOptions{},
				wasmhost.PluginOptions{RootID: "canary", Config: []byte(tc.config)})
			require.False(t, p.Started())
			require.Equal(t, []string{"canary: configuration refused: " + err.Error()}, p.VM().LogsContaining(logCritical, ""))
		})
	}
}

// Linear memory must not grow once warm: Wasm memory never shrinks.
func TestModule_MemoryStable(t *testing.T) {
	p := start(t, wasmhost.Load(t, "canary"), seedsConfig)
	run := func(n int) {
		for i := range n {
			s := p.NewStream()
			s.SendRequestHeaders(get("x-user-id", strconv.Itoa(i), "cookie", "order-version=v1"), true)
			s.SendResponseHeaders([][2]string{{":status", "200"}}, true)
			s.Finish()
			for _, c := range p.VM().Callouts() {
				c.Fail()
			}
		}
	}
	run(20_000) // the heap settles after ~20k requests
	warm := p.VM().MemorySize()
	run(10_000)
	require.Equal(t, warm, p.VM().MemorySize(), "linear memory grew after warm-up")
}
