package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshwasm/meshwasm/filters/internal/wasmhost"
)

// These tests run the pipeline plugin of build/suite.wasm: the four filters as
// ONE plugin. It must answer every request exactly as the four plugins chained
// in Envoy's order do (the chain below plays Envoy's part between them), with
// fewer crossings of the module boundary.

// pipelineConfig chains configs in rootIDs order.
func pipelineConfig(t testing.TB) string {
	t.Helper()
	var stages []string
	for _, id := range rootIDs {
		stages = append(stages, `{"filter": "`+id+`", "config": `+configs[id]+`}`)
	}
	cfg := `{"stages": [` + strings.Join(stages, ",") + `]}`
	require.True(t, json.Valid([]byte(cfg)))
	return cfg
}

// orderService is the seeds' order-service calling over mTLS: the one peer
// the authz configuration lets pay.
var orderService = map[string][]byte{
	"source.address":                      []byte("10.1.2.3:40000"),
	"destination.address":                 []byte("10.9.9.9:8080"),
	"connection.mtls":                     {1},
	"connection.uri_san_peer_certificate": []byte("spiffe://cluster.local/ns/production/sa/order-service"),
}

func startPipeline(t testing.TB, props map[string][]byte) *wasmhost.Plugin {
	t.Helper()
	p := wasmhost.Load(t, "suite").NewPlugin(wasmhost.VMOptions{VMID: "meshwasm"},
		wasmhost.PluginOptions{RootID: "pipeline", Config: []byte(pipelineConfig(t)), Properties: props})
	require.True(t, p.Started(), "pipeline did not start: %v", p.VM().Logs())
	return p
}

// startChain starts the four plugins in one VM, as envoy/chain/envoy-suite.yaml.
func startChain(t testing.TB, props map[string][]byte) map[string]*wasmhost.Plugin {
	t.Helper()
	vm := wasmhost.Load(t, "suite").NewVM(wasmhost.VMOptions{VMID: "meshwasm"})
	plugins := map[string]*wasmhost.Plugin{}
	for _, id := range rootIDs {
		p := vm.StartPlugin(wasmhost.PluginOptions{RootID: id, Config: []byte(configs[id]), Properties: props})
		require.True(t, p.Started(), "plugin %s did not start: %v", id, vm.Logs())
		plugins[id] = p
	}
	return plugins
}

func post(path string, kv ...string) [][2]string {
	hs := get(path, kv...)
	hs[0][1] = "POST"
	return hs
}

// sendChain passes one request through the plugins in order as Envoy's filter
// chain does: each sees the request headers the one before left, the first
// local reply ends the request, and the response passes back in reverse.
func sendChain(plugins map[string]*wasmhost.Plugin, headers [][2]string) outcome {
	var streams []*wasmhost.Stream
	o := outcome{Action: types.ActionContinue}
	for _, id := range rootIDs {
		s := plugins[id].NewStream()
		streams = append(streams, s)
		o.Action = s.SendRequestHeaders(headers, true)
		headers = s.RequestHeaders
		if s.Local != nil {
			o.LocalStatus, o.LocalHeaders, o.LocalBody = s.Local.Status, s.Local.Headers, string(s.Local.Body)
			break
		}
	}
	o.RequestHeaders = headers
	if o.Action == types.ActionContinue {
		resp := [][2]string{{":status", "200"}}
		for i := len(streams) - 1; i >= 0; i-- {
			streams[i].SendResponseHeaders(resp, true)
			resp = streams[i].ResponseHeaders
		}
		o.ResponseHeaders = resp
	}
	for _, s := range streams {
		s.Finish()
	}
	return o
}

// ids masks the random trace and span ids so that outcomes compare.
var ids = regexp.MustCompile(`[0-9a-f]{32}|[0-9a-f]{16}`)

func masked(o outcome) outcome {
	mask := func(hs [][2]string) [][2]string {
		out := make([][2]string, len(hs))
		for i, h := range hs {
			out[i] = [2]string{h[0], ids.ReplaceAllString(h[1], "<id>")}
		}
		return out
	}
	o.RequestHeaders, o.ResponseHeaders, o.LocalHeaders = mask(o.RequestHeaders), mask(o.ResponseHeaders), mask(o.LocalHeaders)
	return o
}

func TestPipeline_BehavesLikeChain(t *testing.T) {
	one := startPipeline(t, orderService)
	plugins := startChain(t, orderService)
	requests := []struct {
		name    string
		headers [][2]string
		check   func(t *testing.T, o outcome)
	}{
		{name: "even user to v2, traced on demand", headers: post("/api/payments/1", "x-user-id", "42", "x-debug", "1", "x-route-version", "v1"),
			check: func(t *testing.T, o outcome) {
				require.Equal(t, types.ActionContinue, o.Action)
				require.Equal(t, "v2", header(o.RequestHeaders, "x-route-version"), "the client's value replaced")
				require.Regexp(t, `^00-<id>-<id>-01$`, header(o.RequestHeaders, "traceparent"))
				require.Equal(t, "v2", header(o.ResponseHeaders, "x-served-by-version"))
				require.Equal(t, "<id>", header(o.ResponseHeaders, "x-trace-id"))
				require.Equal(t, `"per-ip";r=2;t=60`, header(o.ResponseHeaders, "ratelimit"))
			}},
		{name: "authz denies what no ALLOW policy matches", headers: get("/orders"),
			check: func(t *testing.T, o outcome) {
				require.Equal(t, uint32(403), o.LocalStatus)
				require.Equal(t, "RBAC: access denied", o.LocalBody)
				require.Empty(t, header(o.RequestHeaders, "x-route-version"), "canary never saw the request")
			}},
		{name: "second payment", headers: post("/api/payments/2", "x-user-id", "7"),
			check: func(t *testing.T, o outcome) { require.NotEmpty(t, header(o.RequestHeaders, "x-route-version")) }},
		{name: "third payment, header canary", headers: post("/api/payments/3", "x-canary", "true"),
			check: func(t *testing.T, o outcome) { require.Equal(t, "v2", header(o.RequestHeaders, "x-route-version")) }},
		{name: "fourth payment is limited before canary runs", headers: post("/api/payments/4", "x-user-id", "42"),
			check: func(t *testing.T, o outcome) {
				require.Equal(t, uint32(429), o.LocalStatus)
				require.Equal(t, "60", header(o.LocalHeaders, "retry-after"))
				require.Empty(t, header(o.RequestHeaders, "x-route-version"), "canary never saw the request")
			}},
	}
	for _, r := range requests {
		got := masked(send(one, r.headers))
		want := masked(sendChain(plugins, r.headers))
		r.check(t, got)
		require.Equal(t, want, got, "%s: the pipeline differs from the chain", r.name)
	}
	require.Empty(t, one.VM().LogsContaining(logCritical, ""))
}

// TestPipeline_ConfigRefused: a bad pipeline configuration fails the plugin
// with a message naming the field, a stage's own error included.
func TestPipeline_ConfigRefused(t *testing.T) {
	tests := []struct {
		name, config, want string
	}{
		{name: "no stages", config: `{}`, want: "stages: required: at least one stage"},
		{name: "unknown key", config: `{"stages": [], "order": 1}`, want: "order: unknown key"},
		{name: "unknown filter", config: `{"stages": [{"filter": "cors"}]}`,
			want: `stages[0].filter: unknown filter "cors" (want one of authz, canary, ratelimit, tracing)`},
		{name: "twice", config: `{"stages": [{"filter": "tracing", "config": {}}, {"filter": "tracing", "config": {}}]}`,
			want: `stages[1].filter: filter "tracing" appears twice`},
		{name: "config not an object", config: `{"stages": [{"filter": "tracing", "config": "{}"}]}`,
			want: "stages[0].config: must be an object"},
		{name: "stage refuses its configuration", config: `{"stages": [{"filter": "tracing", "config": {}},
			{"filter": "authz", "config": {"policies": [{"name": "a", "rules": [{"to": [{"operation": {"paths": [""]}}]}]}]}}]}`,
			want: "stages[1].config (authz): configuration refused: policies[0].rules[0].to[0].operation.paths[0]: empty string"},
		{name: "not JSON", config: `{"stages": [`, want: "configuration: invalid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := wasmhost.Load(t, "suite").NewPlugin(wasmhost.VMOptions{},
				wasmhost.PluginOptions{RootID: "pipeline", Config: []byte(tc.config), Properties: peer})
			require.False(t, p.Started())
			require.Equal(t, []string{"pipeline: configuration refused: " + tc.want}, p.VM().LogsContaining(logCritical, ""))
		})
	}
}

// TestPipeline_FewerCrossings: one request through the pipeline crosses the
// module boundary far fewer times than through the four plugins: one set of
// stream callbacks instead of four, and one read of the request headers.
func TestPipeline_FewerCrossings(t *testing.T) {
	one := startPipeline(t, orderService)
	plugins := startChain(t, orderService)
	req := post("/api/payments/1", "x-user-id", "42")
	count := func(vm *wasmhost.VM, fn func()) (total int, byName map[string]int) {
		fn() // warm: first-use work (metric ids) out of the way
		vm.RecordCalls()
		fn()
		vm.StopRecordingCalls()
		byName = map[string]int{}
		for _, c := range vm.CallStats() {
			total += c.Calls
			byName[c.Name] = c.Calls
		}
		return total, byName
	}
	inPipeline, pipelineCalls := count(one.VM(), func() { send(one, req) })
	inChain, chainCalls := count(plugins["authz"].VM(), func() { sendChain(plugins, req) })
	t.Logf("crossings per request: pipeline %d %v; chain of four plugins %d %v", inPipeline, pipelineCalls, inChain, chainCalls)
	for _, cb := range []string{"proxy_on_context_create", "proxy_on_request_headers", "proxy_on_response_headers", "proxy_on_log", "proxy_on_done", "proxy_on_delete"} {
		require.Equal(t, 1, pipelineCalls[cb], cb)
		require.Equal(t, 4, chainCalls[cb], cb)
	}
	require.Equal(t, 1, pipelineCalls["env.proxy_get_header_map_pairs"])
	require.Equal(t, 4, chainCalls["env.proxy_get_header_map_pairs"])
	require.Less(t, inPipeline, inChain-20)
}

// BenchmarkModule_PipelineRequest is one allowed payment through the four
// filters, as four plugins chained in one VM and as the pipeline plugin, in
// the same run.
func BenchmarkModule_PipelineRequest(b *testing.B) {
	req := post("/api/payments/1", "x-user-id", "42")
	limitless := strings.Replace(configs["ratelimit"], `"limit": 3`, `"limit": 1000000000`, 1)
	defer func(old string) { configs["ratelimit"] = old }(configs["ratelimit"])
	configs["ratelimit"] = limitless
	for _, bc := range []struct {
		name string
		send func(b *testing.B) func() outcome
	}{
		{name: "chain", send: func(b *testing.B) func() outcome {
			plugins := startChain(b, orderService)
			return func() outcome { return sendChain(plugins, req) }
		}},
		{name: "pipeline", send: func(b *testing.B) func() outcome {
			p := startPipeline(b, orderService)
			return func() outcome { return send(p, req) }
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			send := bc.send(b)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if o := send(); o.LocalStatus != 0 {
					b.Fatalf("request answered locally: %d %s", o.LocalStatus, o.LocalBody)
				}
			}
		})
	}
}
