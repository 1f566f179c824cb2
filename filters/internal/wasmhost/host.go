// Package wasmhost is a proxy-wasm host on wazero for testing compiled
// meshwasm modules the way Envoy runs them.
//
// A Host is one Envoy process: it owns what Envoy shares between workers
// (shared data with CAS, shared queues, metrics) and a manual clock that every
// VM reads through WASI. A VM is one worker's instance of the module; a
// Plugin is one root context in it (several plugins may share a VM, as with
// the suite module and a common vm_id); a Stream is one HTTP request.
//
// Semantics follow Envoy 1.40's Wasm host where tests depend on them: header
// names are case-insensitive and a header read answers the first value of a
// repeated header (the pairs call returns them all, as in Envoy 1.40),
// set_buffer_bytes prepends, replaces or appends as Envoy decides from start
// and length, callouts need :method, :path and :authority and a known
// cluster, and a failed callout is reported with zero headers.
// See ../../../../shared/docs/ENVOY-NOTES.md.
package wasmhost

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Status codes of the proxy-wasm ABI.
const (
	statusOK          = 0
	statusNotFound    = 1
	statusBadArgument = 2
	statusEmpty       = 7
	statusCasMismatch = 8
)

// The engine is process-wide: compiling a Go module takes seconds, so each
// .wasm file is compiled once per test binary and instantiated per test.
var engine struct {
	once     sync.Once
	runtime  wazero.Runtime
	err      error
	mu       sync.Mutex
	compiled map[string]wazero.CompiledModule
}

type vmKey struct{}

func runtime() (wazero.Runtime, error) {
	engine.once.Do(func() {
		ctx := context.Background()
		r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
			WithCompilationCache(wazero.NewCompilationCache()).
			WithCloseOnContextDone(false))
		// The listener counts WASI calls (clocks, random, poll_oneoff) for
		// RecordCalls; with recording off it returns at once.
		wasi_snapshot_preview1.MustInstantiate(experimental.WithFunctionListenerFactory(ctx, wasiListener{}), r)
		if err := instantiateEnv(ctx, r); err != nil {
			engine.err = err
			return
		}
		engine.runtime = r
		engine.compiled = map[string]wazero.CompiledModule{}
	})
	return engine.runtime, engine.err
}

func compile(path string) (wazero.CompiledModule, error) {
	r, err := runtime()
	if err != nil {
		return nil, err
	}
	engine.mu.Lock()
	defer engine.mu.Unlock()
	if c, ok := engine.compiled[path]; ok {
		return c, nil
	}
	code, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read module (run `make build` first): %w", err)
	}
	c, err := r.CompileModule(context.Background(), code)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", path, err)
	}
	engine.compiled[path] = c
	return c, nil
}

// Host is one emulated Envoy process running one module.
type Host struct {
	t        testing.TB
	compiled wazero.CompiledModule
	Clock    *Clock
	// BeforeSetSharedData, when set, runs before each proxy_set_shared_data
	// is applied: a test can write the key there to stand in for another
	// worker winning the race.
	BeforeSetSharedData func(vmID, key string)

	mu        sync.Mutex
	shared    map[string]*sharedEntry
	nextCas   uint32
	queues    []*queue
	metrics   []*Metric
	metricIDs map[string]uint32
	vmSeq     int
}

// Clusters a host knows when Options do not say: callouts to others fail
// with BadArgument, as in Envoy.
var defaultClusters = []string{"callout"}

// New compiles (once per test binary) the module at path and returns a host
// with empty shared state. A missing module fails the test: CI must never
// pass by skipping the compiled-module tests.
func New(t testing.TB, path string) *Host {
	t.Helper()
	c, err := compile(path)
	if err != nil {
		t.Fatalf("wasmhost: %v", err)
	}
	return &Host{
		t:         t,
		compiled:  c,
		Clock:     NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		shared:    map[string]*sharedEntry{},
		metricIDs: map[string]uint32{},
	}
}

// Metric is a metric defined by the module.
type Metric struct {
	Name   string
	Type   uint32 // 0 counter, 1 gauge, 2 histogram
	Value  uint64
	Values []uint64 // histogram records
}

// Metric returns the named metric's value and whether it was defined.
func (h *Host) Metric(name string) (uint64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id, ok := h.metricIDs[name]
	if !ok {
		return 0, false
	}
	return h.metrics[id].Value, true
}

// Histogram returns the values recorded into the named histogram.
func (h *Host) Histogram(name string) []uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	id, ok := h.metricIDs[name]
	if !ok {
		return nil
	}
	return append([]uint64(nil), h.metrics[id].Values...)
}

// MetricNames lists the metrics the module defined.
func (h *Host) MetricNames() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	names := make([]string, 0, len(h.metricIDs))
	for n := range h.metricIDs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// SharedData returns a shared-data value and its CAS as the module sees it.
func (h *Host) SharedData(vmID, key string) ([]byte, uint32, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.shared[vmID+"\x00"+key]
	if !ok {
		return nil, 0, false
	}
	return append([]byte(nil), e.value...), e.cas, true
}

// SetSharedData writes a shared-data value as another worker would, bumping
// its CAS.
func (h *Host) SetSharedData(vmID, key string, value []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextCas++
	h.shared[vmID+"\x00"+key] = &sharedEntry{value: append([]byte(nil), value...), cas: h.nextCas}
}

// SharedDataKeys counts the shared-data keys of a vm_id, for bounds checks.
func (h *Host) SharedDataKeys(vmID string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for k := range h.shared {
		if strings.HasPrefix(k, vmID+"\x00") {
			n++
		}
	}
	return n
}

type sharedEntry struct {
	value []byte
	cas   uint32
}

type queue struct {
	vmID, name string
	owner      *VM
	rootID     uint32
	items      [][]byte
}

// Clock is a manual clock read by the module through WASI. It starts at a
// fixed date and moves only when a test advances it.
type Clock struct {
	mu    sync.Mutex
	start time.Time
	now   time.Duration
}

// NewClock returns a clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{start: start} }

// Now is the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.start.Add(c.now)
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now += d
}

func (c *Clock) walltime() (int64, int32) {
	t := c.Now()
	return t.Unix(), int32(t.Nanosecond())
}

func (c *Clock) nanotime() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Monotonic time starts well above zero, like a real boot clock.
	return int64(time.Hour) + int64(c.now)
}
