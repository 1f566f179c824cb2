package bench

import (
	"math"
)

// noiseFloorMs is the smallest added latency a twin must show for the
// (ours − baseline) / (twin − baseline) ratio to mean anything: below it the
// ratio divides by noise.
const noiseFloorMs = 0.005

// noiseFloorCPU is the same for Envoy CPU per request, in µs.
const noiseFloorCPU = 0.5

// Round is one scenario's measurements in one round.
type Round struct {
	Throughput    float64 // rps
	P50, P90, P99 float64 // ms
	// CPU is Envoy's CPU time per request in the throughput run, in µs:
	// unlike throughput, it does not depend on how the machine's cores are
	// shared with the load generator, the upstream and other work.
	CPU    float64
	Errors int
}

// Scenario names a configuration and what it is compared with.
type Scenario struct {
	Name string
	Kind string
	Twin string // for meshwasm scenarios: the native scenario doing the same job
}

// Analyze turns interleaved rounds into LoadResults: rounds[s][r] is scenario
// s (in the order of scenarios) in round r. The first baseline scenario is
// the reference.
func Analyze(workers int, scenarios []Scenario, rounds [][]Round) []LoadResult {
	index := map[string]int{}
	base := -1
	for i, s := range scenarios {
		index[s.Name] = i
		if s.Kind == KindBaseline && base < 0 {
			base = i
		}
	}
	field := func(s int, f func(Round) float64) []float64 {
		out := make([]float64, len(rounds[s]))
		for r, m := range rounds[s] {
			out[r] = f(m)
		}
		return out
	}
	per := func(s, ref int, f func(a, b float64) float64, g func(Round) float64) Stat {
		if ref < 0 {
			return NewStat(nil)
		}
		out := make([]float64, len(rounds[s]))
		for r := range rounds[s] {
			if r >= len(rounds[ref]) {
				out[r] = math.NaN()
				continue
			}
			out[r] = f(g(rounds[s][r]), g(rounds[ref][r]))
		}
		return NewStat(out)
	}
	ratio := func(a, b float64) float64 {
		if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
			return math.NaN()
		}
		return a / b
	}
	diff := func(a, b float64) float64 { return a - b }
	tp := func(m Round) float64 { return m.Throughput }
	p50 := func(m Round) float64 { return m.P50 }
	p90 := func(m Round) float64 { return m.P90 }
	p99 := func(m Round) float64 { return m.P99 }
	cpu := func(m Round) float64 { return m.CPU }

	out := make([]LoadResult, len(scenarios))
	for i, s := range scenarios {
		lr := LoadResult{
			Workers:    workers,
			Scenario:   s.Name,
			Kind:       s.Kind,
			Twin:       s.Twin,
			Throughput: NewStat(field(i, tp)),
			P50:        NewStat(field(i, p50)),
			P90:        NewStat(field(i, p90)),
			P99:        NewStat(field(i, p99)),
			CPU:        NewStat(field(i, cpu)),
		}
		for _, m := range rounds[i] {
			lr.Errors += m.Errors
		}
		lr.ThroughputVsBaseline = per(i, base, ratio, tp)
		lr.AddedP50 = per(i, base, diff, p50)
		lr.AddedP90 = per(i, base, diff, p90)
		lr.AddedP99 = per(i, base, diff, p99)
		lr.AddedCPU = per(i, base, diff, cpu)
		lr.AddedP50VsTwin = Float(math.NaN())
		lr.AddedCPUVsTwin = Float(math.NaN())
		if twin, ok := index[s.Twin]; ok && s.Twin != "" {
			lr.ThroughputVsTwin = per(i, twin, ratio, tp)
		}
		out[i] = lr
	}
	// The twin's added latency is known once every scenario is summarized.
	for i := range out {
		twin, ok := index[out[i].Twin]
		if !ok || out[i].Twin == "" {
			continue
		}
		if t := out[twin].AddedP50.Median; t >= noiseFloorMs {
			out[i].AddedP50VsTwin = Float(out[i].AddedP50.Median / t)
		}
		if t := out[twin].AddedCPU.Median; t >= noiseFloorCPU {
			out[i].AddedCPUVsTwin = Float(out[i].AddedCPU.Median / t)
		}
	}
	return out
}
