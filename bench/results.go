// Package bench is `make bench`: meshwasm's filters in stock Envoy side by side
// with Envoy's native filters doing the same jobs, plus memory, startup,
// module sizes and microbenchmarks, written to bench/results/latest.md,
// latest.json and latency.png.
//
// The runner (bench_test.go and its helpers) is behind the `bench` build tag so
// that `go test ./...` never starts Envoy; `make bench` runs it. The results
// model, the statistics, the report and the chart are plain files, tested in
// every `go test ./...`.
package bench

import (
	"encoding/json"
	"math"
	"sort"
	"time"
)

// Results is everything one `make bench` measured; latest.json is this value.
type Results struct {
	Generated time.Time `json:"generated"`
	Machine   Machine   `json:"machine"`
	Versions  Versions  `json:"versions"`
	Settings  Settings  `json:"settings"`
	Commands  []string  `json:"commands"`

	Load    []LoadResult    `json:"load,omitempty"`
	Memory  []MemoryResult  `json:"memory,omitempty"`
	Startup []StartupResult `json:"startup,omitempty"`
	Sizes   []SizeResult    `json:"sizes,omitempty"`
	Micro   *MicroResults   `json:"micro,omitempty"`
	Profile []ProfileResult `json:"profile,omitempty"`
	Targets []Target        `json:"targets,omitempty"`
	Notes   []string        `json:"notes,omitempty"`
}

// Machine describes where the numbers were taken.
type Machine struct {
	CPU         string  `json:"cpu"`
	Cores       int     `json:"cores"`
	MemoryBytes uint64  `json:"memoryBytes"`
	Kernel      string  `json:"kernel"`
	LoadAverage float64 `json:"loadAverage1m"` // at the start: other work on the machine
}

// Versions of what was measured and what measured it.
type Versions struct {
	Envoy  string `json:"envoy"`
	Go     string `json:"go"`
	Fortio string `json:"fortio"`
}

// Settings are the run's knobs (BENCH_FULL=1 selects the long ones).
type Settings struct {
	Full              bool    `json:"full"`
	Rounds            int     `json:"rounds"`
	ThroughputSeconds float64 `json:"throughputSeconds"`
	Concurrency       int     `json:"concurrency"`
	LatencySeconds    float64 `json:"latencySeconds"`
	LatencyQPS        int     `json:"latencyQPS"`
	LatencyConns      int     `json:"latencyConnections"`
	MemoryRequests    int     `json:"memoryRequests"`
	Workers           []int   `json:"workers"`
}

// Scenario kinds.
const (
	KindBaseline = "baseline"
	KindNative   = "native"
	KindOurs     = "meshwasm"
	// KindFloor is the no-op module: what any Go module pays per request
	// for the ABI and the Go runtime, doing nothing.
	KindFloor = "no-op module"
	// KindEnvoyFloor is a hand-written module whose callbacks return at
	// once: what Envoy's wasm filter and V8 cost per request before any
	// module code runs.
	KindEnvoyFloor = "envoy wasm floor"
)

// Stat summarizes repeated measurements of one quantity.
type Stat struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Runs   []float64 `json:"runs"`
}

// NewStat summarizes runs; NaN runs (failed measurements) are left out.
func NewStat(runs []float64) Stat {
	var ok []float64
	for _, r := range runs {
		if !math.IsNaN(r) {
			ok = append(ok, r)
		}
	}
	s := Stat{Runs: append([]float64(nil), runs...), Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	if len(ok) == 0 {
		return s
	}
	sort.Float64s(ok)
	s.Min, s.Max = ok[0], ok[len(ok)-1]
	if n := len(ok); n%2 == 1 {
		s.Median = ok[n/2]
	} else {
		s.Median = (ok[n/2-1] + ok[n/2]) / 2
	}
	return s
}

// Spread is (max-min)/median: how much the rounds disagree.
func (s Stat) Spread() float64 { return (s.Max - s.Min) / s.Median }

// LoadResult is one scenario at one worker count, over all rounds.
type LoadResult struct {
	Workers  int    `json:"workers"`
	Scenario string `json:"scenario"`
	Kind     string `json:"kind"`
	// Twin is the native scenario doing the same job, for meshwasm scenarios.
	Twin string `json:"twin,omitempty"`
	// Throughput is requests per second at fixed concurrency, no rate limit.
	Throughput Stat `json:"throughputRPS"`
	// P50, P90, P99 are latencies in milliseconds at the fixed rate.
	P50 Stat `json:"p50ms"`
	P90 Stat `json:"p90ms"`
	P99 Stat `json:"p99ms"`
	// CPU is Envoy's CPU time per request at full load, in µs.
	CPU Stat `json:"envoyCPUMicrosPerRequest"`
	// Errors counts non-200 answers over all runs (should be 0).
	Errors int `json:"errors"`

	// ThroughputVsBaseline is throughput / baseline's, per round (the rounds
	// are interleaved, so each round's ratio compares neighbours in time).
	ThroughputVsBaseline Stat `json:"throughputVsBaseline"`
	// AddedP50 is p50 − baseline's p50 (ms), per round; likewise p90, p99.
	AddedP50 Stat `json:"addedP50ms"`
	AddedP90 Stat `json:"addedP90ms"`
	AddedP99 Stat `json:"addedP99ms"`
	// AddedCPU is CPU − baseline's CPU (µs per request), per round.
	AddedCPU Stat `json:"addedCPUMicros"`
	// AddedP50VsTwin is (ours − baseline) / (twin − baseline) of the median
	// p50s; NaN when the twin adds less than the noise floor.
	AddedP50VsTwin Float `json:"addedP50VsTwin"`
	// AddedCPUVsTwin is the same ratio for Envoy CPU per request.
	AddedCPUVsTwin Float `json:"addedCPUVsTwin"`
	// ThroughputVsTwin is throughput / the twin's, per round.
	ThroughputVsTwin Stat `json:"throughputVsTwin,omitempty"`
}

// MemoryResult is one Envoy configuration's memory after warm-up and after
// the long run.
type MemoryResult struct {
	Variant string `json:"variant"`
	Workers int    `json:"workers"`
	// VMs is the number of worker VMs running meshwasm modules.
	VMs           int    `json:"vms"`
	Requests      int    `json:"requests"`
	RSSWarm       uint64 `json:"rssWarmBytes"`
	RSSAfter      uint64 `json:"rssAfterBytes"`
	LinearWarm    uint64 `json:"linearMemoryWarmBytesPerVM"`
	LinearAfter   uint64 `json:"linearMemoryAfterBytesPerVM"`
	LinearSampled bool   `json:"linearMemorySampled"`
}

// StartupResult is the time from Envoy's start to /ready.
type StartupResult struct {
	Variant string `json:"variant"`
	Workers int    `json:"workers"`
	Seconds Stat   `json:"seconds"`
}

// SizeResult is one module's size, raw and after wasm-opt.
type SizeResult struct {
	Module        string `json:"module"`
	Bytes         int64  `json:"bytes"`
	GzipBytes     int64  `json:"gzipBytes"`
	OptBytes      int64  `json:"wasmOptBytes,omitempty"`
	OptGzipBytes  int64  `json:"wasmOptGzipBytes,omitempty"`
	OptLoads      bool   `json:"wasmOptLoadsInEnvoy"`
	OptLoadDetail string `json:"wasmOptLoadDetail,omitempty"`
}

// MicroResults are the `go test -bench` figures.
type MicroResults struct {
	Cores   []BenchLine   `json:"cores"`
	Modules []ModuleRatio `json:"modules"`
}

// BenchLine is one parsed benchmark result.
type BenchLine struct {
	Package     string  `json:"package"`
	Name        string  `json:"name"`
	NsPerOp     Stat    `json:"nsPerOp"`
	AllocsPerOp float64 `json:"allocsPerOp"`
	BytesPerOp  float64 `json:"bytesPerOp"`
}

// ModuleRatio is one request through a module on wazero against the no-op
// module in the same benchmark run.
type ModuleRatio struct {
	Module  string `json:"module"`
	Bench   string `json:"benchmark"`
	NoopNs  Stat   `json:"noopNsPerOp"`
	NsPerOp Stat   `json:"nsPerOp"`
	// Ratio is module / noop per repetition.
	Ratio Stat `json:"ratioVsNoop"`
}

// Target is one of the targets, checked.
type Target struct {
	Name     string `json:"name"`
	Want     string `json:"want"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// Float is a float64 that encodes NaN and infinities as JSON null: a ratio
// whose denominator is noise, a run that failed.
type Float float64

// MarshalJSON implements json.Marshaler.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(v)
}

// MarshalJSON encodes failed runs and empty summaries as null.
func (s Stat) MarshalJSON() ([]byte, error) {
	runs := make([]Float, len(s.Runs))
	for i, r := range s.Runs {
		runs[i] = Float(r)
	}
	return json.Marshal(struct {
		Median Float   `json:"median"`
		Min    Float   `json:"min"`
		Max    Float   `json:"max"`
		Runs   []Float `json:"runs"`
	}{Float(s.Median), Float(s.Min), Float(s.Max), runs})
}

// UnmarshalJSON reads null as NaN.
func (f *Float) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = Float(math.NaN())
		return nil
	}
	var v float64
	err := json.Unmarshal(b, &v)
	*f = Float(v)
	return err
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (s *Stat) UnmarshalJSON(b []byte) error {
	var aux struct {
		Median, Min, Max Float
		Runs             []Float
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	s.Median, s.Min, s.Max = float64(aux.Median), float64(aux.Min), float64(aux.Max)
	s.Runs = make([]float64, len(aux.Runs))
	for i, r := range aux.Runs {
		s.Runs[i] = float64(r)
	}
	return nil
}

// ProfileResult is where one scenario's Envoy spent its CPU at a fixed
// request rate: the process's CPU per request split by a perf profile.
type ProfileResult struct {
	Scenario string `json:"scenario"`
	Workers  int    `json:"workers"`
	QPS      int    `json:"qps"`
	Requests int    `json:"requests"`
	// CPU is the whole process's CPU time per request (µs), from the
	// scheduler's accounting over the run; Split divides it.
	CPU   float64  `json:"cpuMicrosPerRequest"`
	Split CPUSplit `json:"split"`
}

// Micros is the split in µs per request.
func (p ProfileResult) Micros() (module, host, envoy, kernel, other float64) {
	s := p.Split
	return s.Module * p.CPU, s.Host * p.CPU, s.Envoy * p.CPU, s.Kernel * p.CPU, s.Other * p.CPU
}
