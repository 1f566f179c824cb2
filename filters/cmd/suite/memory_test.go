package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshwasm/meshwasm/bench/benchconf"
	"github.com/meshwasm/meshwasm/filters/internal/wasmhost"
)

// startLoadTestPipeline starts the pipeline as `make bench` loads it into
// Envoy (bench/benchconf), with tracing's configuration given.
func startLoadTestPipeline(t *testing.T, tracing string) *wasmhost.Plugin {
	t.Helper()
	var stages []string
	for _, id := range rootIDs {
		cfg := map[string]string{"authz": benchconf.Authz, "ratelimit": benchconf.Ratelimit, "canary": benchconf.Canary, "tracing": tracing}[id]
		stages = append(stages, `{"filter": "`+id+`", "config": `+cfg+`}`)
	}
	p := wasmhost.Load(t, "suite").NewPlugin(wasmhost.VMOptions{VMID: "meshwasm"}, wasmhost.PluginOptions{
		RootID: "pipeline", Config: []byte(`{"stages": [` + strings.Join(stages, ",") + `]}`),
		Properties: map[string][]byte{"source.address": []byte("127.0.0.1:40000"), "destination.address": []byte("127.0.0.1:10000")},
	})
	require.True(t, p.Started(), "%v", p.VM().Logs())
	return p
}

// loadTestRequest is fortio's request in the load test.
var loadTestRequest = [][2]string{{":method", "GET"}, {":path", "/orders/1"}, {":authority", "127.0.0.1:10000"}, {":scheme", "http"},
	{"x-user-id", "12345"}, {"user-agent", "fortio.org/fortio-1.68.2"}}

// TestPipeline_MemoryStaysBounded runs the pipeline as `make bench` loads it
// into Envoy, with the span collector unreachable so that the exporter's
// queue stays full, and 16 streams in flight at a time as in the load test.
// The VM's linear memory must settle close to its warm size and stay there.
//
// Two bugs made it grow to 22 MiB here (26 MiB per VM in Envoy) with a live
// heap under 2 MiB: queued spans kept views of the host-written request
// memory, each pinning a 4 KiB block, and the collector's mark worker, a
// goroutine, hardly ran because nothing yielded to the scheduler (see
// filters/internal/abi/gc_wasip1.go).
func TestPipeline_MemoryStaysBounded(t *testing.T) {
	p := startLoadTestPipeline(t, strings.Replace(benchconf.Tracing, `"cluster": "otlp"`, `"cluster": "collector-down"`, 1))
	round := func() {
		streams := make([]*wasmhost.Stream, 16)
		for i := range streams {
			streams[i] = p.NewStream()
			require.Equal(t, types.ActionContinue, streams[i].SendRequestHeaders(loadTestRequest, true))
		}
		for _, s := range streams {
			s.SendResponseHeaders([][2]string{{":status", "200"}}, true)
			s.Finish()
		}
	}
	const rounds = 600 // 9,600 requests; the 2,048-span queue is full from round 128
	var warm uint32
	for i := 0; i < rounds; i++ {
		round()
		if i%20 == 0 {
			p.VM().Host().Clock.Advance(1e9)
			p.Tick()
		}
		if i == 200 {
			warm = p.VM().MemorySize()
		}
	}
	after := p.VM().MemorySize()
	dropped, _ := p.VM().Host().Metric("meshwasm.tracing.spans_dropped")
	require.Greater(t, dropped, uint64(5000), "the queue must have been full for most of the run")
	t.Logf("linear memory: %d KiB at round 200, %d KiB after %d requests", warm>>10, after>>10, rounds*16)
	require.LessOrEqual(t, after, uint32(10<<20), "linear memory")
	require.LessOrEqual(t, after-warm, uint32(128<<10), "growth after warm-up")
}

// TestPipeline_CrossingBudget counts what one request of the load test
// (`make bench`: bench/benchconf's four configurations, GET /orders/1 with
// x-user-id from loopback) costs in crossings, call by call. In Envoy each
// crossing is a V8 API call, and Envoy's side of them is about half of what
// the pipeline adds per request; a new one should be a decision, not an
// accident.
func TestPipeline_CrossingBudget(t *testing.T) {
	p := startLoadTestPipeline(t, benchconf.Tracing)
	send := func() {
		s := p.NewStream()
		require.Equal(t, types.ActionContinue, s.SendRequestHeaders(loadTestRequest, true))
		s.SendResponseHeaders([][2]string{{":status", "200"}}, true)
		s.Finish()
	}
	for range 64 {
		send() // warm: metric ids, the span queue, first-use allocations
	}
	const n = 256
	vm := p.VM()
	vm.RecordCalls()
	for range n {
		send()
	}
	vm.StopRecordingCalls()
	got := map[string]int{}
	for _, c := range vm.CallStats() {
		got[c.Name] = c.Calls
	}
	t.Logf("calls in %d requests: %v", n, got)
	want := map[string]int{
		// Envoy's callbacks, once each per stream.
		"proxy_on_context_create": 1, "proxy_on_request_headers": 1, "proxy_on_response_headers": 1,
		"proxy_on_log": 1, "proxy_on_done": 1, "proxy_on_delete": 1,
		// One re-entry for each read that returns data.
		"proxy_on_memory_allocate":       4,
		"env.proxy_get_header_map_pairs": 1, // request headers, once for all four filters
		"env.proxy_get_property":         1, // source.address (authz ipBlocks, ratelimit key)
		"env.proxy_get_header_map_value": 1, // response :status (tracing, canary guard)
		"env.proxy_get_shared_data":      1, // ratelimit: the bucket, exact across workers
		"env.proxy_set_shared_data":      1,
		// traceparent and x-route-version on the request; x-served-by-version
		// and canary's sticky set-cookie on the response.
		"env.proxy_replace_header_map_value": 3, "env.proxy_add_header_map_value": 1,
		// tracing's latency histogram (the counters below).
		"env.proxy_record_metric": 1,
		"env.proxy_log":           1, // authz's decision at debug: Envoy cannot tell the plugin its level
	}
	for name, per := range want {
		require.Equal(t, per*n, got[name], "%s per request", name)
	}
	// Five counters (authz's policy outcome, ratelimit's allowed, canary's
	// version and rule, tracing's requests), and the VM's memory gauge
	// when linear memory grows.
	incr := got["env.proxy_increment_metric"]
	require.GreaterOrEqual(t, incr, 5*n)
	require.LessOrEqual(t, incr, 5*n+4, "metric increments")
	// The clock: the request's time, read once for every filter (wall and
	// monotonic: two reads), and the span's end (monotonic: one). The
	// runtime adds a few of its own, for the collector and the scheduler.
	clock := got["wasi.clock_time_get"]
	require.GreaterOrEqual(t, clock, 3*n)
	require.Less(t, clock, 3*n+n/4, "clock reads")
	for name := range got {
		if _, ok := want[name]; !ok && name != "wasi.clock_time_get" && name != "env.proxy_increment_metric" {
			require.Failf(t, "unexpected crossing", "%s: %d in %d requests", name, got[name], n)
		}
	}
}
