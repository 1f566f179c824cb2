package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshwasm/meshwasm/bench/benchconf"
	"github.com/meshwasm/meshwasm/filters/internal/wasmhost"
)

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
	var stages []string
	for _, id := range rootIDs {
		cfg := map[string]string{"authz": benchconf.Authz, "ratelimit": benchconf.Ratelimit, "canary": benchconf.Canary,
			"tracing": strings.Replace(benchconf.Tracing, `"cluster": "otlp"`, `"cluster": "collector-down"`, 1)}[id]
		stages = append(stages, `{"filter": "`+id+`", "config": `+cfg+`}`)
	}
	p := wasmhost.Load(t, "suite").NewPlugin(wasmhost.VMOptions{VMID: "meshwasm"}, wasmhost.PluginOptions{
		RootID: "pipeline", Config: []byte(`{"stages": [` + strings.Join(stages, ",") + `]}`),
		Properties: map[string][]byte{"source.address": []byte("127.0.0.1:40000"), "destination.address": []byte("127.0.0.1:10000")},
	})
	require.True(t, p.Started(), "%v", p.VM().Logs())
	req := [][2]string{{":method", "GET"}, {":path", "/orders/1"}, {":authority", "127.0.0.1:10000"}, {":scheme", "http"},
		{"x-user-id", "12345"}, {"user-agent", "fortio.org/fortio-1.68.2"}}
	round := func() {
		streams := make([]*wasmhost.Stream, 16)
		for i := range streams {
			streams[i] = p.NewStream()
			require.Equal(t, types.ActionContinue, streams[i].SendRequestHeaders(req, true))
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
