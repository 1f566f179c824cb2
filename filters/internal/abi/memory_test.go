package abi_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/filters/internal/registry"
	"github.com/meshwasm/meshwasm/filters/internal/wasmhost"
)

// TestConformance_MemoryGauge: every VM adds its own linear memory to one gauge when
// a stream starts, so with two VMs (two Envoy workers) the gauge is their sum; the
// soak test reads it from Envoy to prove memory stays flat.
func TestConformance_MemoryGauge(t *testing.T) {
	h := wasmhost.Load(t, "conformance")
	plugins := []*wasmhost.Plugin{startConformance(t, h, ""), startConformance(t, h, "")}
	_, ok := h.Metric(registry.MemoryMetric)
	require.False(t, ok, "defined when the first stream starts")
	for round := 0; round < 3; round++ {
		for _, p := range plugins {
			s := p.NewStream()
			s.SendRequestHeaders(request("alloc"), true)
			s.SendResponseHeaders([][2]string{{":status", "200"}}, true)
			s.Finish()
		}
	}
	// The sample is taken when a stream starts: memory grown while the last
	// stream ran shows at the next one. A plain stream on each VM catches up.
	for _, p := range plugins {
		s := p.NewStream()
		s.SendRequestHeaders(request(""), true)
		s.Finish()
	}
	got, ok := h.Metric(registry.MemoryMetric)
	require.True(t, ok)
	want := uint64(plugins[0].VM().MemorySize()) + uint64(plugins[1].VM().MemorySize())
	require.Equal(t, want, got, "the sum of both VMs' linear memory")
}
