package wasmhost

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// CallStat is what one function crossing the host/module boundary cost: how
// often it was called and the time spent in it, excluding the calls it made
// across the boundary in turn (a callback's host calls, a host call's
// proxy_on_memory_allocate). Self times therefore add up to the whole run
// and split it into module time (exports) and host time (imports).
type CallStat struct {
	// Name is the export ("proxy_on_request_headers") or the host call
	// ("env.proxy_get_header_map_value").
	Name  string
	Calls int
	Self  time.Duration
}

// callStats records crossings for one VM. Recording is off unless a test
// asks for it; when off, a crossing costs one nil check.
type callStats struct {
	byName map[string]*CallStat
	// frames is the stack of crossings in progress: each accumulates the
	// time of its nested crossings, to be subtracted from its own.
	frames []statFrame
	now    func() time.Time
}

type statFrame struct {
	start  time.Time
	nested time.Duration
}

// RecordCalls starts (or restarts, from zero) counting and timing every
// crossing of the boundary in this VM: exports the host calls and host calls
// the module makes. Benchmarks use it to attribute a request's cost.
func (vm *VM) RecordCalls() {
	vm.stats = &callStats{byName: map[string]*CallStat{}, now: time.Now}
}

// StopRecordingCalls ends recording; CallStats keeps returning what was
// recorded.
func (vm *VM) StopRecordingCalls() {
	if vm.stats != nil {
		vm.stats.frames = nil
		stopped := *vm.stats
		vm.stopped = &stopped
	}
	vm.stats = nil
}

// CallStats returns what was recorded since RecordCalls, most expensive
// (self time) first.
func (vm *VM) CallStats() []CallStat {
	s := vm.stats
	if s == nil {
		s = vm.stopped
	}
	if s == nil {
		return nil
	}
	out := make([]CallStat, 0, len(s.byName))
	for _, c := range s.byName {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Self != out[j].Self {
			return out[i].Self > out[j].Self
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func (s *callStats) enter() {
	s.frames = append(s.frames, statFrame{start: s.now()})
}

func (s *callStats) exit(name string) {
	n := len(s.frames) - 1
	if n < 0 {
		return // recording started inside this crossing
	}
	f := s.frames[n]
	s.frames = s.frames[:n]
	total := s.now().Sub(f.start)
	if n > 0 {
		s.frames[n-1].nested += total
	}
	c := s.byName[name]
	if c == nil {
		c = &CallStat{Name: name}
		s.byName[name] = c
	}
	c.Calls++
	c.Self += total - f.nested
}

// wasiListener feeds WASI calls into the calling VM's recording, named
// "wasi.<function>". The Go runtime reads clocks and may poll on its own, so
// these calls are part of a request's cost without appearing in filter code.
type wasiListener struct{}

func (wasiListener) NewFunctionListener(api.FunctionDefinition) experimental.FunctionListener {
	return wasiListener{}
}

func recordingVM(ctx context.Context) *callStats {
	vm, _ := ctx.Value(vmKey{}).(*VM)
	if vm == nil {
		return nil
	}
	return vm.stats
}

func (wasiListener) Before(ctx context.Context, _ api.Module, _ api.FunctionDefinition, _ []uint64, _ experimental.StackIterator) {
	if s := recordingVM(ctx); s != nil {
		s.enter()
	}
}

func (wasiListener) After(ctx context.Context, _ api.Module, def api.FunctionDefinition, _ []uint64) {
	if s := recordingVM(ctx); s != nil {
		s.exit("wasi." + def.Name())
	}
}

func (wasiListener) Abort(ctx context.Context, _ api.Module, def api.FunctionDefinition, _ error) {
	if s := recordingVM(ctx); s != nil {
		s.exit("wasi." + def.Name())
	}
}

// ReportCrossings runs one more request (fn) with recording on and reports
// how many times it crossed the host/module boundary, as the benchmark
// metric crossings/op: exports, host calls and WASI calls. Unlike ns/op it
// does not depend on the machine, so a filter that starts making a host
// call per header shows up in any benchmark run.
func ReportCrossings(b *testing.B, vm *VM, fn func()) {
	b.Helper()
	b.StopTimer()
	vm.RecordCalls()
	fn()
	vm.StopRecordingCalls()
	n := 0
	for _, c := range vm.CallStats() {
		n += c.Calls
	}
	b.ReportMetric(float64(n), "crossings/op")
}
