package registry

import "github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"

// MemoryMetric is the gauge of the linear memory, in bytes, of the VMs running
// meshwasm modules. Every VM (one per Envoy worker and module, plus the main
// thread's) adds its own share when it grows, so the gauge is the sum over all
// of them. Wasm memory never shrinks: a gauge that keeps rising under steady
// traffic is a leak. The soak test reads it.
const MemoryMetric = "meshwasm.vm_memory_bytes"

// vmMemory is this VM's share of MemoryMetric, sampled when a stream starts.
var vmMemory memoryGauge

// memoryGauge reports the VM's linear memory. Reading it is one instruction
// (memory.size); the host is called only when it grew.
type memoryGauge struct {
	reported int64
	gauge    *proxywasm.MetricGauge
}

func (m *memoryGauge) sample() {
	now := linearMemoryBytes()
	if now == m.reported {
		return
	}
	defer func() { _ = recover() }() // reporting must never fail a request
	if m.gauge == nil {
		g := proxywasm.DefineGaugeMetric(MemoryMetric)
		m.gauge = &g
	}
	m.gauge.Add(now - m.reported)
	m.reported = now
}
