package ratelimit_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshwasm/meshwasm/filters/internal/wasmhost"
)

// benchConfig admits every request (the limit is never reached) but still
// runs the whole read-modify-write on shared data per request.
const benchConfig = `{"rules": [{"name": "per-ip", "key": ["remote_address"], "algorithm": "token_bucket", "rate": "1000000000/s"}]}`

// BenchmarkModule_AllowedRequest is one admitted request (context creation,
// request and response headers, end of stream) through build/noop.wasm and
// build/ratelimit.wasm in the same run, so the filter's cost can be reported
// as a ratio to the bare ABI round trips.
func BenchmarkModule_AllowedRequest(b *testing.B) {
	req := request("/orders")
	resp := [][2]string{{":status", "200"}}
	for _, bc := range []struct {
		name, module, config string
	}{
		{name: "noop", module: "noop"},
		{name: "ratelimit", module: module, config: benchConfig},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := wasmhost.Load(b, bc.module)
			p := h.NewPlugin(wasmhost.VMOptions{}, wasmhost.PluginOptions{
				RootID:     bc.name,
				Config:     []byte(bc.config),
				Properties: map[string][]byte{"source.address": []byte(clientAddr)},
			})
			require.True(b, p.Started())
			b.ReportAllocs()
			b.ResetTimer()
			request := func() {
				s := p.NewStream()
				if s.SendRequestHeaders(req, true) != types.ActionContinue {
					b.Fatal("request not admitted")
				}
				s.SendResponseHeaders(resp, true)
				s.Finish()
			}
			for i := 0; i < b.N; i++ {
				request()
			}
			wasmhost.ReportCrossings(b, p.VM(), request)
		})
	}
}

// BenchmarkModule_TwoVMContention runs two VMs (two workers) in parallel on
// one counter and reports the shared-data CAS retries per request.
func BenchmarkModule_TwoVMContention(b *testing.B) {
	h := wasmhost.Load(b, module)
	workers := []*wasmhost.Plugin{start(b, h, benchConfig), start(b, h, benchConfig)}
	req := request("/orders")
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	ready := make(chan struct{})
	for w, p := range workers {
		n := b.N / 2
		if w == 0 {
			n = b.N - n
		}
		wg.Add(1)
		go func(p *wasmhost.Plugin, n int) {
			defer wg.Done()
			<-ready
			for i := 0; i < n; i++ {
				s := p.NewStream()
				s.SendRequestHeaders(req, true)
				s.Finish()
			}
		}(p, n)
	}
	close(ready)
	wg.Wait()
	b.StopTimer()
	retries, _ := h.Metric("meshwasm.ratelimit.per-ip.cas_retries")
	allowed, _ := h.Metric("meshwasm.ratelimit.per-ip.allowed")
	if allowed != uint64(b.N) {
		b.Fatalf("allowed %d of %d", allowed, b.N)
	}
	b.ReportMetric(float64(retries)/float64(b.N), "cas-retries/op")
}
