package abi_test

import (
	"testing"

	"github.com/meshwasm/meshwasm/filters/internal/wasmhost"
)

// BenchmarkNoopRequest is one request through a filter that does nothing:
// context creation, request and response headers, and the end of the
// stream. Every filter's module benchmark is reported as a ratio to it.
func BenchmarkNoopRequest(b *testing.B) {
	p := wasmhost.Load(b, "noop").NewPlugin(wasmhost.VMOptions{}, wasmhost.PluginOptions{RootID: "noop"})
	if !p.Started() {
		b.Fatal("noop plugin did not start")
	}
	req := [][2]string{{":method", "GET"}, {":path", "/"}, {":authority", "example"}}
	resp := [][2]string{{":status", "200"}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := p.NewStream()
		s.SendRequestHeaders(req, true)
		s.SendResponseHeaders(resp, true)
		s.Finish()
	}
}
