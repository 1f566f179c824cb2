package ratelimit_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshwasm/meshwasm/filters/internal/wasmhost"
)

// These tests run build/ratelimit.wasm (built by `make build`) on the wazero
// host, which emulates Envoy's shared data, ticks, callouts and clock. A
// missing module fails them.

const (
	logCritical = 5
	module      = "ratelimit"
	clientAddr  = "10.1.2.3:40000"
)

func start(t testing.TB, h *wasmhost.Host, config string, clusters ...string) *wasmhost.Plugin {
	t.Helper()
	p := h.NewPlugin(wasmhost.VMOptions{Clusters: clusters}, wasmhost.PluginOptions{
		RootID:     module,
		Config:     []byte(config),
		Properties: map[string][]byte{"source.address": []byte(clientAddr)},
	})
	require.True(t, p.Started(), "plugin start failed: %v", p.VM().Logs())
	return p
}

func request(path string, extra ...[2]string) [][2]string {
	return append([][2]string{{":method", "GET"}, {":path", path}, {":authority", "example"}}, extra...)
}

func metric(t testing.TB, h *wasmhost.Host, rule, what string) uint64 {
	t.Helper()
	v, ok := h.Metric("meshwasm.ratelimit." + rule + "." + what)
	require.True(t, ok, "metric %s.%s not defined; have %v", rule, what, h.MetricNames())
	return v
}

// send runs one request to completion when it is admitted and returns the
// stream (Local is set when the filter answered itself).
func send(t testing.TB, p *wasmhost.Plugin, headers [][2]string) (types.Action, *wasmhost.Stream) {
	t.Helper()
	s := p.NewStream()
	action := s.SendRequestHeaders(headers, true)
	if action == types.ActionContinue {
		s.SendResponseHeaders([][2]string{{":status", "200"}}, true)
	}
	return action, s
}

func TestModule_BadConfigRefused(t *testing.T) {
	tests := []struct {
		name, config, wantLog string
	}{
		{name: "empty", config: ``, wantLog: "ratelimit: configuration refused: "},
		{name: "no rules", config: `{}`, wantLog: "rules"},
		{name: "unknown rule key", config: `{"rules": [{"name": "a", "algorithm": "token_bucket", "rate": "5/s", "bogus": 1}]}`, wantLog: "rules[0].bogus"},
		{name: "parameter of another algorithm", config: `{"rules": [{"name": "a", "algorithm": "fixed_window", "limit": 5, "window": "1m", "burst": 3}]}`, wantLog: "rules[0].burst: not used by fixed_window"},
		{name: "bad rate", config: `{"rules": [{"name": "a", "algorithm": "token_bucket", "rate": "fast"}]}`, wantLog: "rules[0].rate"},
		{name: "global without failureMode", config: `{"global": {"cluster": "ratelimit", "domain": "d"}, "rules": [{"name": "g", "mode": "global", "key": ["remote_address"]}]}`, wantLog: "global.failureMode: required"},
		{name: "bad regex", config: `{"rules": [{"name": "a", "match": {"paths": [{"regex": "("}]}, "algorithm": "token_bucket", "rate": "5/s"}]}`, wantLog: "rules[0].match.paths[0].regex"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := wasmhost.Load(t, module)
			p := h.NewPlugin(wasmhost.VMOptions{}, wasmhost.PluginOptions{RootID: module, Config: []byte(tc.config)})
			require.False(t, p.Started())
			require.NotEmpty(t, p.VM().LogsContaining(logCritical, tc.wantLog), "logs: %v", p.VM().Logs())
		})
	}
}

func TestModule_MetricsDefinedAtStart(t *testing.T) {
	h := wasmhost.Load(t, module)
	start(t, h, `{"rules": [{"name": "per-ip", "key": ["remote_address"], "algorithm": "token_bucket", "rate": "5/s"}]}`)
	for _, what := range []string{"allowed", "limited", "shadow_limited", "delayed", "global_errors", "cas_retries", "evictions", "overflows", "store_errors"} {
		require.Contains(t, h.MetricNames(), "meshwasm.ratelimit.per-ip."+what)
	}
	require.NotContains(t, h.MetricNames(), "meshwasm.ratelimit.shaping_abandoned", "defined only when a rule shapes")
}

func TestModule_DenyWith429AndHeaders(t *testing.T) {
	h := wasmhost.Load(t, module)
	p := start(t, h, `{"response": {"headersOnAllowed": true, "legacyHeaders": true},
		"rules": [{"name": "per-ip", "key": ["remote_address"], "algorithm": "fixed_window", "limit": 3, "window": "1m"}]}`)

	for i := 0; i < 3; i++ {
		action, s := send(t, p, request("/orders"))
		require.Equal(t, types.ActionContinue, action, "request %d", i)
		require.Nil(t, s.Local)
		require.Equal(t, `"per-ip";q=3;w=60`, s.ResponseHeader("ratelimit-policy"))
		require.Equal(t, fmt.Sprintf(`"per-ip";r=%d;t=60`, 2-i), s.ResponseHeader("ratelimit"))
		require.Equal(t, fmt.Sprint(2-i), s.ResponseHeader("x-ratelimit-remaining"))
		require.Empty(t, s.ResponseHeader("retry-after"), "no Retry-After on admissions")
	}

	h.Clock.Advance(15 * time.Second)
	action, s := send(t, p, request("/orders"))
	require.Equal(t, types.ActionPause, action)
	require.NotNil(t, s.Local)
	require.Equal(t, uint32(429), s.Local.Status)
	require.Equal(t, "45", s.Local.Header("retry-after"), "seconds until the window ends")
	require.Equal(t, `"per-ip";q=3;w=60`, s.Local.Header("ratelimit-policy"))
	require.Equal(t, `"per-ip";r=0;t=45`, s.Local.Header("ratelimit"))
	require.Equal(t, "3", s.Local.Header("x-ratelimit-limit"))
	require.Equal(t, "application/problem+json", s.Local.Header("content-type"))
	require.JSONEq(t, `{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"request rate limit exceeded"}`, string(s.Local.Body))

	// Another client has its own counter.
	other := p.NewStream()
	other.Properties["source.address"] = []byte("10.9.9.9:1234")
	require.Equal(t, types.ActionContinue, other.SendRequestHeaders(request("/orders"), true))

	// The next window admits again.
	h.Clock.Advance(45 * time.Second)
	action, _ = send(t, p, request("/orders"))
	require.Equal(t, types.ActionContinue, action)

	require.Equal(t, uint64(5), metric(t, h, "per-ip", "allowed"))
	require.Equal(t, uint64(1), metric(t, h, "per-ip", "limited"))
}

func TestModule_ShadowNeverEnforced(t *testing.T) {
	h := wasmhost.Load(t, module)
	p := start(t, h, `{"rules": [{"name": "trial", "shadow": true, "algorithm": "fixed_window", "limit": 1, "window": "1m"}]}`)
	for i := 0; i < 3; i++ {
		action, s := send(t, p, request("/"))
		require.Equal(t, types.ActionContinue, action)
		require.Nil(t, s.Local)
	}
	require.Equal(t, uint64(1), metric(t, h, "trial", "allowed"))
	require.Equal(t, uint64(2), metric(t, h, "trial", "shadow_limited"))
	require.Zero(t, metric(t, h, "trial", "limited"))
}

// TestModule_TwoVMsNeverOverAdmit runs two VMs (two Envoy workers) on one
// host, from two goroutines, against the same counters: the number admitted
// is exactly the limit, for every algorithm.
func TestModule_TwoVMsNeverOverAdmit(t *testing.T) {
	const limit, perVM = 100, 150
	tests := []struct {
		name, rule string
	}{
		{name: "token bucket", rule: `"algorithm": "token_bucket", "rate": "100/h"`},
		{name: "leaky bucket", rule: `"algorithm": "leaky_bucket", "rate": "100/h", "queue": 99`},
		{name: "fixed window", rule: `"algorithm": "fixed_window", "limit": 100, "window": "1h"`},
		{name: "sliding window", rule: `"algorithm": "sliding_window", "limit": 100, "window": "1h"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := wasmhost.Load(t, module)
			config := `{"rules": [{"name": "all", "key": ["header:x-user"], ` + tc.rule + `}]}`
			workers := []*wasmhost.Plugin{start(t, h, config), start(t, h, config)}
			var admitted, denied atomic.Int64
			var wg sync.WaitGroup
			ready := make(chan struct{})
			for _, p := range workers {
				wg.Add(1)
				go func(p *wasmhost.Plugin) {
					defer wg.Done()
					<-ready // both workers start together
					for i := 0; i < perVM; i++ {
						s := p.NewStream()
						switch s.SendRequestHeaders(request("/", [2]string{"x-user", "alice"}), true) {
						case types.ActionContinue:
							admitted.Add(1)
						default:
							if s.Local != nil && s.Local.Status == 429 {
								denied.Add(1)
							}
						}
						s.Finish()
					}
				}(p)
			}
			close(ready)
			wg.Wait()
			require.Equal(t, int64(limit), admitted.Load(), "admitted across both VMs")
			require.Equal(t, int64(2*perVM-limit), denied.Load())
			require.Equal(t, uint64(limit), metric(t, h, "all", "allowed"))
			require.Equal(t, uint64(2*perVM-limit), metric(t, h, "all", "limited"))
			require.Zero(t, metric(t, h, "all", "store_errors"))
			t.Logf("cas_retries under two-VM contention: %d for %d requests", metric(t, h, "all", "cas_retries"), 2*perVM)
		})
	}
}

// TestModule_LostRaceRetried makes the race deterministic: between worker
// A's read and its write, worker B admits a request for the same key. A's
// write must fail its CAS, re-read B's count and admit on top of it, so the
// limit of 2 holds exactly.
func TestModule_LostRaceRetried(t *testing.T) {
	tests := []struct {
		name, rule string
	}{
		{name: "create race", rule: `"algorithm": "fixed_window", "limit": 2, "window": "1h"`},
		{name: "token bucket", rule: `"algorithm": "token_bucket", "rate": "2/h"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := wasmhost.Load(t, module)
			config := `{"rules": [{"name": "all", ` + tc.rule + `}]}`
			a, b := start(t, h, config), start(t, h, config)
			raced := false
			h.BeforeSetSharedData = func(_, key string) {
				if raced || !strings.HasPrefix(key, "meshwasm.ratelimit/all/") {
					return
				}
				raced = true
				action, _ := send(t, b, request("/"))
				require.Equal(t, types.ActionContinue, action, "worker B wins the race")
			}
			action, _ := send(t, a, request("/"))
			require.True(t, raced)
			require.Equal(t, types.ActionContinue, action, "worker A retries and admits the second request")
			require.Equal(t, uint64(1), metric(t, h, "all", "cas_retries"))

			action, s := send(t, a, request("/"))
			require.Equal(t, types.ActionPause, action, "the third request is over the limit of 2")
			require.Equal(t, uint32(429), s.Local.Status)
			action, _ = send(t, b, request("/"))
			require.Equal(t, types.ActionPause, action)
			require.Equal(t, uint64(2), metric(t, h, "all", "allowed"))
		})
	}
}

func TestModule_ShapingResumesFromTicks(t *testing.T) {
	h := wasmhost.Load(t, module)
	p := start(t, h, `{"response": {"headersOnAllowed": true},
		"rules": [{"name": "shape", "algorithm": "leaky_bucket", "mode": "shape", "rate": "10/s", "queue": 2}]}`)
	require.Equal(t, uint32(100), p.TickPeriod(), "tick at the emission interval")

	first := p.NewStream()
	require.Equal(t, types.ActionContinue, first.SendRequestHeaders(request("/"), true), "an empty bucket admits at once")
	second, third := p.NewStream(), p.NewStream()
	require.Equal(t, types.ActionPause, second.SendRequestHeaders(request("/"), true))
	require.Equal(t, types.ActionPause, third.SendRequestHeaders(request("/"), true))
	require.Nil(t, second.Local)
	require.Nil(t, third.Local)

	overflow := p.NewStream()
	require.Equal(t, types.ActionPause, overflow.SendRequestHeaders(request("/"), true))
	require.NotNil(t, overflow.Local, "beyond the queue: 429")
	require.Equal(t, uint32(429), overflow.Local.Status)

	p.Tick() // nothing is due yet
	require.Zero(t, second.RequestResumed)

	h.Clock.Advance(100 * time.Millisecond)
	p.Tick()
	require.Equal(t, 1, second.RequestResumed)
	require.Zero(t, third.RequestResumed)

	h.Clock.Advance(100 * time.Millisecond)
	p.Tick()
	require.Equal(t, 1, third.RequestResumed)
	require.Equal(t, 1, second.RequestResumed, "resumed once")

	third.SendResponseHeaders([][2]string{{":status", "200"}}, true)
	require.Equal(t, `"shape";q=3;w=1`, third.ResponseHeader("ratelimit-policy"), "shaped requests carry the headers too")

	require.Equal(t, uint64(2), metric(t, h, "shape", "delayed"))
	require.Equal(t, uint64(1), metric(t, h, "shape", "limited"))
	require.Equal(t, uint64(3), metric(t, h, "shape", "allowed"))
}

func TestModule_ShapingDropsAbandonedStreams(t *testing.T) {
	h := wasmhost.Load(t, module)
	p := start(t, h, `{"rules": [{"name": "shape", "algorithm": "leaky_bucket", "mode": "shape", "rate": "10/s", "queue": 5}]}`)
	_, _ = send(t, p, request("/"))
	gone, kept := p.NewStream(), p.NewStream()
	require.Equal(t, types.ActionPause, gone.SendRequestHeaders(request("/"), true))
	require.Equal(t, types.ActionPause, kept.SendRequestHeaders(request("/"), true))

	gone.Finish() // the client hung up while waiting
	abandoned, ok := h.Metric("meshwasm.ratelimit.shaping_abandoned")
	require.True(t, ok)
	require.Equal(t, uint64(1), abandoned)

	h.Clock.Advance(time.Second)
	p.Tick() // would trap if it resumed the deleted stream's context
	require.Zero(t, gone.RequestResumed)
	require.Equal(t, 1, kept.RequestResumed)
	require.Empty(t, p.VM().LogsContaining(3, "resume stream"), "no resume attempt for the abandoned stream")
}

const globalConfig = `{"response": {"headersOnAllowed": true},
	"global": {"cluster": "ratelimit", "domain": "edge", "timeout": "50ms", "failureMode": %q},
	"rules": [{"name": "per-user", "mode": "global", "key": ["header:x-user"], "descriptorKeys": ["user"]}]}`

const (
	replyOK   = `{"overallCode":"OK","statuses":[{"code":"OK","currentLimit":{"requestsPerUnit":5,"unit":"MINUTE"},"limitRemaining":4,"durationUntilReset":"30s"}]}`
	replyOver = `{"overallCode":"OVER_LIMIT","statuses":[{"code":"OVER_LIMIT","currentLimit":{"requestsPerUnit":5,"unit":"MINUTE"},"durationUntilReset":"12s"}]}`
)

func TestModule_GlobalCallout(t *testing.T) {
	tests := []struct {
		name        string
		failureMode string
		reply       func(c *wasmhost.Callout)
		wantStatus  uint32 // 0: resumed upstream
		wantHeaders map[string]string
		wantErrors  uint64
	}{
		{name: "allow", failureMode: "deny", reply: respond(200, replyOK), wantHeaders: map[string]string{"ratelimit": `"per-user";r=4;t=30`, "ratelimit-policy": `"per-user";q=5;w=60`}},
		{name: "deny", failureMode: "allow", reply: respond(429, replyOver), wantStatus: 429, wantHeaders: map[string]string{"retry-after": "12", "ratelimit": `"per-user";r=0;t=12`}},
		{name: "timeout, fail closed", failureMode: "deny", reply: (*wasmhost.Callout).Fail, wantStatus: 429, wantHeaders: map[string]string{"retry-after": "1"}, wantErrors: 1},
		{name: "timeout, fail open", failureMode: "allow", reply: (*wasmhost.Callout).Fail, wantErrors: 1},
		{name: "garbage body, fail closed", failureMode: "deny", reply: respond(200, "<html>oops"), wantStatus: 429, wantErrors: 1},
		{name: "garbage body, fail open", failureMode: "allow", reply: respond(200, "<html>oops"), wantErrors: 1},
		{name: "status and body disagree", failureMode: "deny", reply: respond(200, replyOver), wantStatus: 429, wantErrors: 1},
		{name: "server error", failureMode: "deny", reply: respond(503, "upstream connect error"), wantStatus: 429, wantErrors: 1},
		{name: "wrong number of statuses", failureMode: "deny", reply: respond(200, `{"overallCode":"OK","statuses":[]}`), wantStatus: 429, wantErrors: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := wasmhost.Load(t, module)
			p := start(t, h, fmt.Sprintf(globalConfig, tc.failureMode), "ratelimit")
			s := p.NewStream()
			require.Equal(t, types.ActionPause, s.SendRequestHeaders(request("/", [2]string{"x-user", "alice"}), true))

			calls := p.VM().Callouts()
			require.Len(t, calls, 1)
			c := calls[0]
			require.Equal(t, "ratelimit", c.Cluster)
			require.Equal(t, "POST", c.Header(":method"))
			require.Equal(t, "/json", c.Header(":path"))
			require.Equal(t, "application/json", c.Header("content-type"))
			require.Equal(t, uint32(50), c.Timeout)
			require.JSONEq(t, `{"domain":"edge","descriptors":[{"entries":[{"key":"user","value":"alice"}]}]}`, string(c.Body))

			tc.reply(c)
			if tc.wantStatus == 0 {
				require.Nil(t, s.Local)
				require.Equal(t, 1, s.RequestResumed)
				s.SendResponseHeaders([][2]string{{":status", "200"}}, true)
				for k, v := range tc.wantHeaders {
					require.Equal(t, v, s.ResponseHeader(k), k)
				}
			} else {
				require.NotNil(t, s.Local)
				require.Zero(t, s.RequestResumed, "a denied request is answered, not resumed")
				require.Equal(t, tc.wantStatus, s.Local.Status)
				for k, v := range tc.wantHeaders {
					require.Equal(t, v, s.Local.Header(k), k)
				}
			}
			require.Equal(t, tc.wantErrors, metric(t, h, "per-user", "global_errors"))
		})
	}
}

func respond(status int, body string) func(c *wasmhost.Callout) {
	return func(c *wasmhost.Callout) {
		c.Respond(status, [][2]string{{"content-type", "application/json"}}, []byte(body), nil)
	}
}

// TestModule_GlobalUnknownCluster: the host refuses the callout (no such
// cluster); the request follows failureMode at once instead of hanging.
func TestModule_GlobalUnknownCluster(t *testing.T) {
	tests := []struct {
		name, failureMode string
		want              types.Action
	}{
		{name: "fail closed", failureMode: "deny", want: types.ActionPause},
		{name: "fail open", failureMode: "allow", want: types.ActionContinue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := wasmhost.Load(t, module)
			p := start(t, h, fmt.Sprintf(globalConfig, tc.failureMode), "some-other-cluster")
			s := p.NewStream()
			require.Equal(t, tc.want, s.SendRequestHeaders(request("/", [2]string{"x-user", "alice"}), true))
			require.Empty(t, p.VM().Callouts())
			if tc.want == types.ActionPause {
				require.NotNil(t, s.Local)
				require.Equal(t, uint32(429), s.Local.Status)
			} else {
				require.Nil(t, s.Local)
			}
			require.Equal(t, uint64(1), metric(t, h, "per-user", "global_errors"))
		})
	}
}

// TestModule_LocalShedsBeforeGlobal: a local rule in front of a global one
// refuses excess requests without a callout.
func TestModule_LocalShedsBeforeGlobal(t *testing.T) {
	h := wasmhost.Load(t, module)
	p := start(t, h, `{"global": {"cluster": "ratelimit", "domain": "edge", "failureMode": "deny"},
		"rules": [{"name": "shed", "algorithm": "token_bucket", "rate": "1/m"},
		          {"name": "per-user", "mode": "global", "key": ["header:x-user"]}]}`, "ratelimit")

	s := p.NewStream()
	require.Equal(t, types.ActionPause, s.SendRequestHeaders(request("/", [2]string{"x-user", "bob"}), true))
	require.Len(t, p.VM().Callouts(), 1)
	var body struct {
		Descriptors []struct {
			Entries []struct{ Key, Value string }
		}
	}
	require.NoError(t, json.Unmarshal(p.VM().Callouts()[0].Body, &body))
	require.Equal(t, "x-user", body.Descriptors[0].Entries[0].Key, "default descriptor key is the header name")
	p.VM().Callouts()[0].Respond(200, nil, []byte(replyOK), nil)
	require.Equal(t, 1, s.RequestResumed)

	shed := p.NewStream()
	require.Equal(t, types.ActionPause, shed.SendRequestHeaders(request("/", [2]string{"x-user", "bob"}), true))
	require.NotNil(t, shed.Local)
	require.Equal(t, uint32(429), shed.Local.Status)
	require.Empty(t, p.VM().Callouts(), "shed locally: no callout")
	require.Equal(t, uint64(1), metric(t, h, "shed", "limited"))
}

// TestModule_TiersAndMissingKeys: the tier comes from a header, unknown
// values fall back to the default tier, and a request without the key header
// skips a rule with onMissingKey skip.
func TestModule_TiersAndMissingKeys(t *testing.T) {
	h := wasmhost.Load(t, module)
	p := start(t, h, `{"rules": [{"name": "plans", "key": ["header:x-api-key"], "algorithm": "fixed_window", "window": "1m",
		"tiers": {"from": "header:x-plan", "default": "free", "values": {"free": {"limit": 1}, "premium": {"limit": 3}}}}]}`)
	admitted := func(headers ...[2]string) int {
		n := 0
		for i := 0; i < 5; i++ {
			if action, _ := send(t, p, request("/", headers...)); action == types.ActionContinue {
				n++
			}
		}
		return n
	}
	require.Equal(t, 3, admitted([2]string{"x-api-key", "k1"}, [2]string{"x-plan", "premium"}))
	require.Equal(t, 1, admitted([2]string{"x-api-key", "k2"}, [2]string{"x-plan", "gold"}), "unknown plan: default tier")
	require.Equal(t, 1, admitted([2]string{"x-api-key", "k3"}))
	require.Equal(t, 5, admitted(), "no key: rule skipped")
}
