package bench

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewStat(t *testing.T) {
	tests := []struct {
		name             string
		runs             []float64
		median, min, max float64
	}{
		{name: "odd", runs: []float64{3, 1, 2}, median: 2, min: 1, max: 3},
		{name: "even", runs: []float64{4, 1, 2, 3}, median: 2.5, min: 1, max: 4},
		{name: "failed run left out", runs: []float64{1, math.NaN(), 3}, median: 2, min: 1, max: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewStat(tc.runs)
			require.Equal(t, tc.median, s.Median)
			require.Equal(t, tc.min, s.Min)
			require.Equal(t, tc.max, s.Max)
			require.Len(t, s.Runs, len(tc.runs), "runs are kept as measured")
		})
	}
	require.True(t, math.IsNaN(NewStat(nil).Median))
}

func TestStat_MarshalJSON_NaNIsNull(t *testing.T) {
	b, err := json.Marshal(struct {
		S Stat
		F Float
	}{NewStat([]float64{math.NaN()}), Float(math.Inf(1))})
	require.NoError(t, err)
	require.JSONEq(t, `{"S": {"median": null, "min": null, "max": null, "runs": [null]}, "F": null}`, string(b))
}

func TestAnalyze(t *testing.T) {
	scenarios := []Scenario{
		{Name: "baseline", Kind: KindBaseline},
		{Name: "native-authz", Kind: KindNative},
		{Name: "authz", Kind: KindOurs, Twin: "native-authz"},
		{Name: "tracing", Kind: KindOurs, Twin: "native-tracing"},
		{Name: "native-tracing", Kind: KindNative},
	}
	rounds := [][]Round{
		{{Throughput: 1000, P50: 1.0}, {Throughput: 800, P50: 1.2}},
		{{Throughput: 900, P50: 1.1}, {Throughput: 720, P50: 1.3}},
		{{Throughput: 800, P50: 1.2}, {Throughput: 640, P50: 1.4, Errors: 2}},
		{{Throughput: 500, P50: 2.0}, {Throughput: 400, P50: 2.2}},
		{{Throughput: 1000, P50: 1.001}, {Throughput: 800, P50: 1.201}},
	}
	got := Analyze(2, scenarios, rounds)
	require.Len(t, got, len(scenarios))

	authz := got[2]
	require.Equal(t, 2, authz.Workers)
	require.Equal(t, 2, authz.Errors)
	require.InDelta(t, 0.8, authz.ThroughputVsBaseline.Median, 1e-9, "per-round ratios: both rounds 0.8 although throughput drifted")
	require.InDelta(t, 0, authz.ThroughputVsBaseline.Spread(), 1e-9, "no spread between rounds")
	require.InDelta(t, 0.2, authz.AddedP50.Median, 1e-9)
	require.InDelta(t, 2.0, float64(authz.AddedP50VsTwin), 1e-9, "(ours − baseline) / (twin − baseline)")
	require.InDelta(t, 800.0/900, authz.ThroughputVsTwin.Median, 1e-9)

	tracing := got[3]
	require.True(t, math.IsNaN(float64(tracing.AddedP50VsTwin)), "a twin adding less than the noise floor gives no ratio")
	require.True(t, math.IsNaN(float64(got[0].AddedP50VsTwin)))
}

func TestEvaluateTargets(t *testing.T) {
	r := &Results{
		Settings: Settings{Workers: []int{1}, LatencyQPS: 1000},
		Load: Analyze(1, []Scenario{
			{Name: "baseline", Kind: KindBaseline},
			{Name: "native-chain", Kind: KindNative},
			{Name: suiteScenario, Kind: KindOurs, Twin: "native-chain"},
		}, [][]Round{{{Throughput: 1000, P50: 1}}, {{Throughput: 950, P50: 1.1}}, {{Throughput: 920, P50: 1.2}}}),
		Memory: []MemoryResult{
			{Variant: memoryNothing, RSSAfter: 40 << 20},
			{Variant: memoryFour, VMs: 8, RSSAfter: 340 << 20, LinearSampled: true, LinearWarm: 7 << 20, LinearAfter: 7 << 20},
			{Variant: memorySuite, VMs: 2, RSSAfter: 120 << 20, LinearSampled: true, LinearWarm: 7 << 20, LinearAfter: 9 << 20},
		},
		Startup: []StartupResult{{Variant: startupSuite, Workers: 2, Seconds: NewStat([]float64{3.5, 4})}},
		Sizes:   []SizeResult{{Module: "noop", Bytes: 1}, {Module: "canary", Bytes: 4 << 20, OptBytes: 3 << 20, OptLoads: true}},
		Micro:   &MicroResults{Cores: []BenchLine{{Package: "authz", Name: "Engine_Check"}, {Package: "authz", Name: "Engine_Check_JWTVerify", AllocsPerOp: 168}}},
	}
	met := map[string]bool{}
	for _, tg := range EvaluateTargets(r) {
		met[tg.Name] = tg.Met
	}
	require.Equal(t, map[string]bool{
		"four filters (suite module, four plugins) throughput, 1 worker(s)": true,
		"suite added p50 vs native-chain, 1 worker(s)":                      false, // 0.2 ms vs 0.1 ms: 2x
		"linear memory per VM, four modules, after 0 requests":              true,
		"linear memory per VM, suite module, after 0 requests":              false, // grew, and over 8 MiB
		"suite module RSS vs four modules (added over no filters)":          true,  // +300 vs +80 MiB
		"Envoy ready with the suite module, suite (4 plugins), 2 worker(s)": false,
		"module size: canary":                                true, // wasm-opt result counts when Envoy loads it
		"native core decisions (header/path/identity rules)": true, // JWT verification is not a decision benchmark
	}, met)
}

func TestMarkdown_HasEverySection(t *testing.T) {
	r := &Results{
		Settings: Settings{Workers: []int{1}, LatencyQPS: 1000, Rounds: 1},
		Load:     Analyze(1, []Scenario{{Name: "baseline", Kind: KindBaseline}}, [][]Round{{{Throughput: 1000, P50: 1, P90: 2, P99: 3}}}),
		Memory:   []MemoryResult{{Variant: memoryNothing}},
		Startup:  []StartupResult{{Variant: "no filters", Seconds: NewStat([]float64{0.1})}},
		Sizes:    []SizeResult{{Module: "suite", Bytes: 10}},
		Micro:    &MicroResults{},
		Commands: []string{"make bench"},
	}
	r.Targets = EvaluateTargets(r)
	md := r.Markdown("latency.png")
	for _, want := range []string{"## Envoy, side by side", "![latency percentiles per scenario](latency.png)", "## Memory", "## Startup", "## Module size", "## Microbenchmarks", "make bench"} {
		require.True(t, strings.Contains(md, want), want)
	}
	require.Len(t, r.ChartPanels(), 1)
}

func TestResults_JSONRoundTrip(t *testing.T) {
	r := Results{Load: Analyze(1, []Scenario{{Name: "baseline", Kind: KindBaseline}, {Name: "x", Kind: KindOurs, Twin: "baseline"}},
		[][]Round{{{Throughput: 10, P50: 1}}, {{Throughput: 5, P50: math.NaN()}}})}
	b, err := json.Marshal(r)
	require.NoError(t, err)
	var back Results
	require.NoError(t, json.Unmarshal(b, &back))
	require.True(t, math.IsNaN(back.Load[1].P50.Median), "null comes back as NaN")
	require.True(t, math.IsNaN(float64(back.Load[1].AddedP50VsTwin)))
	require.Equal(t, 0.5, back.Load[1].ThroughputVsBaseline.Median)
	require.Equal(t, r.Markdown(""), back.Markdown(""), "the report renders the same from latest.json")
}
