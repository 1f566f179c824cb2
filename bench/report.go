package bench

import (
	"fmt"
	"math"
	"strings"
)

// Target thresholds from the issue (measured as ratios in one run).
const (
	targetSuiteThroughput = 0.90           // suite / baseline throughput
	targetAddedVsTwin     = 1.5            // added p50 / twin's added p50
	targetLinearPerVM     = 8 << 20        // bytes per VM after the long run
	targetRSSRatio        = 3.0            // (four modules − nothing) / (suite − nothing)
	targetReadySeconds    = 1.0            // Envoy to /ready with the suite module
	targetModuleBytes     = 3 << 20        // per production module
	flatTolerance         = 64 << 10       // linear memory growth still called flat (one page is 64 KiB)
	suiteScenario         = "suite"        // four plugins, one suite.wasm, one vm_id
	pipelineScenario      = "pipeline"     // one plugin running the four filters, suite.wasm
	chainScenario         = "chain4"       // four plugins, four modules
	memoryNothing         = "no filters"   // Envoy without wasm
	memoryFour            = "four modules" // chain of four modules
	memorySuite           = "suite module" // chain on suite.wasm
	memoryPipeline        = "pipeline"     // one pipeline plugin on suite.wasm
	startupSuite          = "suite (4 plugins)"
	startupPipeline       = "pipeline (1 plugin)"
)

// EvaluateTargets checks what was measured against the targets.
func EvaluateTargets(r *Results) []Target {
	var out []Target
	for _, l := range r.Load {
		if l.Scenario != suiteScenario && l.Scenario != pipelineScenario {
			continue
		}
		v := l.ThroughputVsBaseline
		what := "suite module, four plugins"
		if l.Scenario == pipelineScenario {
			what = "suite module, one pipeline plugin"
		}
		out = append(out, Target{
			Name:     fmt.Sprintf("four filters (%s) throughput, %d worker(s)", what, l.Workers),
			Want:     fmt.Sprintf(">= %.0f%% of no-filter baseline", targetSuiteThroughput*100),
			Measured: fmt.Sprintf("%.1f%% (rounds %.1f–%.1f%%)", v.Median*100, v.Min*100, v.Max*100),
			Met:      v.Median >= targetSuiteThroughput,
		})
	}
	for _, l := range r.Load {
		if l.Kind != KindOurs || l.Twin == "" {
			continue
		}
		ratio := float64(l.AddedP50VsTwin)
		measured := fmt.Sprintf("%.2fx (ours +%.3f ms, twin +%.3f ms)", ratio, l.AddedP50.Median, twinAdded(r, l))
		if math.IsNaN(ratio) {
			measured = fmt.Sprintf("n/a: twin adds %.3f ms, below the %.3f ms noise floor (ours +%.3f ms)", twinAdded(r, l), noiseFloorMs, l.AddedP50.Median)
		}
		out = append(out, Target{
			Name:     fmt.Sprintf("%s added p50 vs %s, %d worker(s)", l.Scenario, l.Twin, l.Workers),
			Want:     fmt.Sprintf("<= %.1fx the twin's added p50", targetAddedVsTwin),
			Measured: measured,
			Met:      !math.IsNaN(ratio) && ratio <= targetAddedVsTwin,
		})
	}
	var nothing, four, suite, pipeline *MemoryResult
	for i := range r.Memory {
		m := &r.Memory[i]
		switch m.Variant {
		case memoryNothing:
			nothing = m
		case memoryFour:
			four = m
		case memorySuite:
			suite = m
		case memoryPipeline:
			pipeline = m
		}
		if m.VMs == 0 || !m.LinearSampled {
			continue
		}
		out = append(out, Target{
			Name:     fmt.Sprintf("linear memory per VM, %s, after %d requests", m.Variant, m.Requests),
			Want:     fmt.Sprintf("<= %s and flat after warm-up", mib(targetLinearPerVM)),
			Measured: fmt.Sprintf("%s (warm %s)", mib(m.LinearAfter), mib(m.LinearWarm)),
			Met:      m.LinearAfter <= targetLinearPerVM && m.LinearAfter <= m.LinearWarm+flatTolerance,
		})
	}
	for _, one := range []*MemoryResult{suite, pipeline} {
		if nothing == nil || four == nil || one == nil {
			continue
		}
		addFour := float64(four.RSSAfter) - float64(nothing.RSSAfter)
		addOne := float64(one.RSSAfter) - float64(nothing.RSSAfter)
		ratio := addFour / addOne
		out = append(out, Target{
			Name:     one.Variant + " RSS vs four modules (added over no filters)",
			Want:     fmt.Sprintf(">= %.0fx smaller", targetRSSRatio),
			Measured: fmt.Sprintf("%.2fx (four +%s, %s +%s)", ratio, mib(uint64(math.Max(addFour, 0))), one.Variant, mib(uint64(math.Max(addOne, 0)))),
			Met:      addOne > 0 && ratio >= targetRSSRatio,
		})
	}
	for _, s := range r.Startup {
		if s.Variant != startupSuite && s.Variant != startupPipeline {
			continue
		}
		out = append(out, Target{
			Name:     fmt.Sprintf("Envoy ready with the suite module, %s, %d worker(s)", s.Variant, s.Workers),
			Want:     fmt.Sprintf("<= %.1f s", targetReadySeconds),
			Measured: fmt.Sprintf("%.2f s (%.2f–%.2f)", s.Seconds.Median, s.Seconds.Min, s.Seconds.Max),
			Met:      s.Seconds.Median <= targetReadySeconds,
		})
	}
	for _, s := range r.Sizes {
		if s.Module == "noop" || s.Module == "conformance" {
			continue
		}
		best := s.Bytes
		if s.OptLoads && s.OptBytes > 0 && s.OptBytes < best {
			best = s.OptBytes
		}
		out = append(out, Target{
			Name:     "module size: " + s.Module,
			Want:     "<= " + mib(targetModuleBytes),
			Measured: fmt.Sprintf("%s (wasm-opt %s)", mib(uint64(s.Bytes)), optSize(s)),
			Met:      best <= targetModuleBytes,
		})
	}
	if r.Micro != nil {
		var allocating []string
		n := 0
		for _, c := range r.Micro.Cores {
			if !decisionBench(c) {
				continue
			}
			n++
			if c.AllocsPerOp > 0 {
				allocating = append(allocating, fmt.Sprintf("%s.%s (%.0f)", c.Package, c.Name, c.AllocsPerOp))
			}
		}
		if n > 0 {
			measured := fmt.Sprintf("%d decision benchmarks, all 0 allocs/op", n)
			if len(allocating) > 0 {
				measured = "allocating: " + strings.Join(allocating, ", ")
			}
			out = append(out, Target{
				Name:     "native core decisions (header/path/identity rules)",
				Want:     "0 allocs/op",
				Measured: measured,
				Met:      len(allocating) == 0,
			})
		}
	}
	return out
}

// decisionBench selects the core benchmarks that decide on header, path or
// identity rules: not JWT signature verification, exporters or stores.
func decisionBench(b BenchLine) bool {
	switch {
	case strings.Contains(b.Name, "JWTVerify"), strings.Contains(b.Name, "Exporter"),
		strings.Contains(b.Name, "Record"), strings.Contains(b.Name, "Guarded"),
		strings.Contains(b.Name, "Tracer_Request"):
		return false
	}
	return true
}

func twinAdded(r *Results, l LoadResult) float64 {
	for _, t := range r.Load {
		if t.Workers == l.Workers && t.Scenario == l.Twin {
			return t.AddedP50.Median
		}
	}
	return math.NaN()
}

func mib(b uint64) string { return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20)) }

func optSize(s SizeResult) string {
	if s.OptBytes == 0 {
		return "not run"
	}
	loads := "loads in Envoy"
	if !s.OptLoads {
		loads = "Envoy refused it"
	}
	return fmt.Sprintf("%s, %s", mib(uint64(s.OptBytes)), loads)
}

// Markdown renders latest.md.
func (r *Results) Markdown(chartFile string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# meshwasm benchmark results\n\n")
	w("Generated %s by `make bench`%s. Every figure below is also in `latest.json`.\n\n",
		r.Generated.UTC().Format("2006-01-02 15:04 MST"), map[bool]string{true: " with BENCH_FULL=1", false: ""}[r.Settings.Full])
	w("- Machine: %s, %d cores, %s RAM, Linux %s; load average %.2f at the start (other work on the machine shares the cores: compare ratios within this run, not absolute numbers across runs).\n",
		r.Machine.CPU, r.Machine.Cores, mib(r.Machine.MemoryBytes), r.Machine.Kernel, r.Machine.LoadAverage)
	w("- Envoy %s (V8), %s, fortio %s.\n", r.Versions.Envoy, r.Versions.Go, r.Versions.Fortio)
	s := r.Settings
	w("- Load: for each worker count, every scenario runs once per round, in a rotated order, %d rounds: max throughput with %d connections for %.0f s, then latency at %d rps over %d connections for %.0f s. The upstream is a fortio echo server on loopback; the request is `GET /orders/1` with `x-user-id: 12345`.\n",
		s.Rounds, s.Concurrency, s.ThroughputSeconds, s.LatencyQPS, s.LatencyConns, s.LatencySeconds)
	w("- Spread: medians with the [min–max] over rounds; ratios are computed per round, then summarized.\n\n")
	w("Commands:\n\n```sh\n%s\n```\n\n", strings.Join(r.Commands, "\n"))

	if len(r.Targets) > 0 {
		w("## Targets\n\n| target | want | measured | met |\n|---|---|---|---|\n")
		for _, t := range r.Targets {
			w("| %s | %s | %s | %s |\n", t.Name, t.Want, t.Measured, map[bool]string{true: "yes", false: "**no**"}[t.Met])
		}
		w("\n")
	}

	if len(r.Load) > 0 {
		w("## Envoy, side by side\n\n")
		if chartFile != "" {
			w("![latency percentiles per scenario](%s)\n\n", chartFile)
		}
		for _, workers := range r.Settings.Workers {
			w("### %d worker(s)\n\n", workers)
			w("| scenario | kind | throughput rps | vs baseline | Envoy CPU µs/req | added CPU µs | added CPU vs twin | p50 ms | p90 ms | p99 ms | added p50 ms | added p50 vs twin | errors |\n")
			w("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
			for _, l := range r.Load {
				if l.Workers != workers {
					continue
				}
				twin, twinCPU := "", ""
				if l.Twin != "" {
					twin = fmt.Sprintf("%s (%s)", fmtRatio(float64(l.AddedP50VsTwin)), l.Twin)
					twinCPU = fmtRatio(float64(l.AddedCPUVsTwin))
				}
				w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", l.Scenario, l.Kind,
					fmtStat(l.Throughput, 0), fmtStatPct(l.ThroughputVsBaseline), fmtStat(l.CPU, 1), fmtStat(l.AddedCPU, 1), twinCPU,
					fmtStat(l.P50, 3), fmtStat(l.P90, 3), fmtStat(l.P99, 3), fmtStat(l.AddedP50, 3), twin, l.Errors)
			}
			w("\n")
		}
	}

	if len(r.Memory) > 0 {
		w("## Memory\n\n| Envoy with | workers | wasm VMs | requests | RSS warm | RSS after | linear memory per VM, warm | after |\n|---|---|---|---|---|---|---|---|\n")
		for _, m := range r.Memory {
			lw, la := "–", "–"
			if m.LinearSampled {
				lw, la = mib(m.LinearWarm), mib(m.LinearAfter)
			}
			w("| %s | %d | %d | %d | %s | %s | %s | %s |\n", m.Variant, m.Workers, m.VMs, m.Requests, mib(m.RSSWarm), mib(m.RSSAfter), lw, la)
		}
		w("\nThe load test's Envoys (2 workers), read once warm (after its rounds) and again after the extra requests. Linear memory is the modules' own gauge (`wasmcustom.meshwasm.vm_memory_bytes`, the sum over the VMs that served streams) divided by the number of worker VMs; RSS is Envoy's VmRSS.\n\n")
	}

	if len(r.Profile) > 0 {
		w("## Where the CPU goes\n\n")
		w("Envoy under `perf record -g` at a fixed rate, each scenario alone; the process's CPU per request (scheduler accounting) divided by where its samples fell. The Envoy binary is stripped and V8 writes no perf map, so code is told apart by where it runs, not by name: **module** is the code V8 compiled from the module (our Go), **host** is Envoy and V8 running under a module frame (host calls, allocation re-entries, V8's helpers), **Envoy** is the workers outside the module (HTTP, routing, stats, and the wasm filter's calls into V8 up to the module's first frame), **kernel** the workers' kernel time outside module calls, **other** every other thread.\n\n")
		w("| Envoy with | workers | rps | samples | CPU µs/req | module | host | Envoy | kernel | other | added over baseline |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
		var base *ProfileResult
		for i := range r.Profile {
			if r.Profile[i].Scenario == "baseline" {
				base = &r.Profile[i]
			}
		}
		for _, p := range r.Profile {
			m, h, e, k, o := p.Micros()
			added := "–"
			if base != nil && p.Scenario != base.Scenario {
				_, _, be, bk, bo := base.Micros()
				added = fmt.Sprintf("%.1f: module %.1f, host %.1f, Envoy %+.1f, kernel %+.1f, other %+.1f", p.CPU-base.CPU, m, h, e-be, k-bk, o-bo)
			}
			w("| %s | %d | %d | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %s |\n", p.Scenario, p.Workers, p.QPS, p.Split.Samples, p.CPU, m, h, e, k, o, added)
		}
		w("\n")
	}

	if len(r.Startup) > 0 {
		w("## Startup\n\n| Envoy with | workers | seconds to /ready |\n|---|---|---|\n")
		for _, st := range r.Startup {
			w("| %s | %d | %s |\n", st.Variant, st.Workers, fmtStat(st.Seconds, 2))
		}
		w("\n")
	}

	if len(r.Sizes) > 0 {
		w("## Module size\n\n| module | bytes | gzip | wasm-opt -Oz | gzip | Envoy loads the wasm-opt result |\n|---|---|---|---|---|---|\n")
		for _, sz := range r.Sizes {
			opt, optGz := "–", "–"
			if sz.OptBytes > 0 {
				opt = fmt.Sprintf("%d (%.1f%%)", sz.OptBytes, 100*(float64(sz.OptBytes)/float64(sz.Bytes)-1))
				optGz = fmt.Sprint(sz.OptGzipBytes)
			}
			loads := map[bool]string{true: "yes", false: "no"}[sz.OptLoads]
			if sz.OptLoadDetail != "" {
				loads += ": " + sz.OptLoadDetail
			}
			w("| %s | %d | %d | %s | %s | %s |\n", sz.Module, sz.Bytes, sz.GzipBytes, opt, optGz, loads)
		}
		w("\n")
	}

	if r.Micro != nil {
		w("## Microbenchmarks\n\nNative core decisions (`go test -bench`):\n\n| package | benchmark | ns/op | allocs/op | B/op |\n|---|---|---|---|---|\n")
		for _, c := range r.Micro.Cores {
			w("| %s | %s | %s | %.0f | %.0f |\n", c.Package, c.Name, fmtStat(c.NsPerOp, 0), c.AllocsPerOp, c.BytesPerOp)
		}
		w("\nOne request through each module on the wazero host, against the no-op module in the same benchmark:\n\n| module | benchmark | no-op ns/op | module ns/op | ratio |\n|---|---|---|---|---|\n")
		for _, m := range r.Micro.Modules {
			w("| %s | %s | %s | %s | %s |\n", m.Module, m.Bench, fmtStat(m.NoopNs, 0), fmtStat(m.NsPerOp, 0), fmtStat(m.Ratio, 2))
		}
		w("\n")
	}
	if len(r.Notes) > 0 {
		w("## Notes\n\n")
		for _, n := range r.Notes {
			w("- %s\n", n)
		}
	}
	return b.String()
}

// ChartPanels turns the load results into one panel per worker count.
func (r *Results) ChartPanels() []ChartPanel {
	var panels []ChartPanel
	for _, workers := range r.Settings.Workers {
		p := ChartPanel{Title: fmt.Sprintf("%d worker(s): latency in ms at %d rps", workers, r.Settings.LatencyQPS)}
		for _, l := range r.Load {
			if l.Workers == workers && !math.IsNaN(l.P99.Median) {
				p.Rows = append(p.Rows, ChartRow{Label: chartLabel(l.Scenario), P50: l.P50.Median, P90: l.P90.Median, P99: l.P99.Median})
			}
		}
		if len(p.Rows) > 0 {
			panels = append(panels, p)
		}
	}
	return panels
}

func fmtStat(s Stat, decimals int) string {
	if math.IsNaN(s.Median) {
		return "–"
	}
	f := func(v float64) string { return fmt.Sprintf("%.*f", decimals, v) }
	if len(s.Runs) <= 1 {
		return f(s.Median)
	}
	return fmt.Sprintf("%s [%s–%s]", f(s.Median), f(s.Min), f(s.Max))
}

func fmtStatPct(s Stat) string {
	if math.IsNaN(s.Median) {
		return "–"
	}
	return fmt.Sprintf("%.1f%% [%.1f–%.1f]", s.Median*100, s.Min*100, s.Max*100)
}

func fmtRatio(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", v)
}
