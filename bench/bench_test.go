//go:build bench

package bench

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshwasm/meshwasm/e2e/harness"
)

// memoryGauge is the modules' linear-memory gauge (filters/internal/registry),
// the sum over the VMs that served a stream.
const memoryGauge = "wasmcustom.meshwasm.vm_memory_bytes"

type runner struct {
	t                     *testing.T
	root, build, tmp, out string
	envoyBin, fortioBin   string
	upstream              string
	s                     Settings
	res                   *Results
}

func settingsFromEnv() Settings {
	s := Settings{Rounds: 3, ThroughputSeconds: 2, Concurrency: 16, LatencySeconds: 2, LatencyQPS: 1000, LatencyConns: 8,
		MemoryRequests: 100_000, Workers: []int{1, 2}}
	if os.Getenv("BENCH_FULL") == "1" {
		s.Full = true
		s.Rounds, s.ThroughputSeconds, s.LatencySeconds, s.MemoryRequests = 5, 10, 10, 1_000_000
	}
	if v, err := strconv.Atoi(os.Getenv("BENCH_ROUNDS")); err == nil && v > 0 {
		s.Rounds = v
	}
	if v := os.Getenv("BENCH_WORKERS"); v != "" {
		s.Workers = nil
		for _, w := range strings.Split(v, ",") {
			if n, err := strconv.Atoi(w); err == nil && n > 0 {
				s.Workers = append(s.Workers, n)
			}
		}
	}
	return s
}

// TestBench is `make bench`. Sections are subtests so that one can be rerun
// alone (go test -tags bench -run 'TestBench/startup' ./bench); the report is
// written with whatever ran.
func TestBench(t *testing.T) {
	r := &runner{t: t, root: harness.RepoRoot(t), s: settingsFromEnv()}
	r.build = os.Getenv("MESHWASM_BUILD")
	if r.build == "" {
		r.build = filepath.Join(r.root, "build")
	}
	r.out = filepath.Join(r.root, "bench", "results")
	r.tmp = filepath.Join(r.out, "tmp")
	must(t, os.MkdirAll(r.tmp, 0o755))
	// Keep the last run's bootstraps and logs only; the wasm-opt cache stays.
	old, _ := filepath.Glob(filepath.Join(r.tmp, "run-*"))
	for _, d := range old {
		must(t, os.RemoveAll(d))
	}
	run, err := os.MkdirTemp(r.tmp, "run-")
	must(t, err)
	r.tmp = run
	// Snapshot the modules: a `make build` elsewhere during a long run must
	// not swap a module under a starting Envoy.
	r.build = snapshotModules(t, r.build, filepath.Join(r.tmp, "build"))
	r.envoyBin = harness.EnvoyBinary(t)
	r.fortioBin = tool(t, r.root, "ensure-fortio.sh")
	r.res = &Results{Generated: time.Now(), Machine: machine(), Settings: r.s, Versions: Versions{
		Envoy: envoyVersion(r.envoyBin), Go: runtime.Version(), Fortio: strings.TrimSpace(output(r.fortioBin, "version")),
	}}
	r.res.Commands = append(r.res.Commands, map[bool]string{true: "BENCH_FULL=1 make bench", false: "make bench"}[r.s.Full])
	if note := assembleFloor(r.root, r.build); note != "" {
		r.res.Notes = append(r.res.Notes, note)
	}
	up, addr, err := startUpstream(r.fortioBin, r.tmp)
	must(t, err)
	t.Cleanup(up.Stop)
	r.upstream = addr

	t.Run("load", r.load)
	t.Run("startup", r.startup)
	t.Run("size", r.sizes)
	t.Run("micro", r.micro)
	t.Run("profile", r.profile)

	r.res.Targets = EvaluateTargets(r.res)
	r.write()
}

func snapshotModules(t testing.TB, from, to string) string {
	files, err := filepath.Glob(filepath.Join(from, "*.wasm"))
	must(t, err)
	if len(files) == 0 {
		t.Fatalf("no modules in %s: run make build", from)
	}
	must(t, os.MkdirAll(to, 0o755))
	for _, f := range files {
		b, err := os.ReadFile(f)
		must(t, err)
		must(t, os.WriteFile(filepath.Join(to, filepath.Base(f)), b, 0o644))
	}
	return to
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func tool(t testing.TB, root, script string) string {
	cmd := exec.Command(filepath.Join(root, "scripts", script))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	must(t, err)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

func output(bin string, args ...string) string {
	b, _ := exec.Command(bin, args...).CombinedOutput()
	return string(b)
}

func envoyVersion(bin string) string {
	if m := regexp.MustCompile(`/(\d+\.\d+\.\d+)/`).FindStringSubmatch(output(bin, "--version")); m != nil {
		return m[1]
	}
	return "unknown"
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if x := regexp.MustCompile(`model name\s*:\s*(.*)`).FindSubmatch(b); x != nil {
			m.CPU = strings.TrimSpace(string(x[1]))
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if x := regexp.MustCompile(`MemTotal:\s*(\d+) kB`).FindSubmatch(b); x != nil {
			kb, _ := strconv.ParseUint(string(x[1]), 10, 64)
			m.MemoryBytes = kb << 10
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAverage, _ = strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	}
	return m
}

func (r *runner) envoy(name string, workers int, filters []string, tracing bool) (*envoy, error) {
	cfg, err := renderBootstrap(bootstrapParams{Upstream: r.upstream, Filters: filters, Tracing: tracing})
	if err != nil {
		return nil, err
	}
	return startEnvoy(r.envoyBin, r.tmp, name, workers, cfg)
}

// shell renders a command line for the report: arguments quoted where the
// shell needs it, this run's temporary paths and Envoy's port as placeholders.
func (r *runner) shell(bin string, args []string, listener string) string {
	out := []string{bin}
	for _, a := range args {
		a = strings.ReplaceAll(a, r.tmp, "<tmp>")
		if listener != "" {
			a = strings.ReplaceAll(a, listener, "<envoy listener>")
		}
		if strings.ContainsAny(a, " <>$()|^*") {
			a = "'" + a + "'"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

func (r *runner) command(c string) {
	for _, have := range r.res.Commands {
		if have == c {
			return
		}
	}
	r.res.Commands = append(r.res.Commands, c)
}

// load runs every scenario side by side: all Envoys of one worker count are
// up at once and the rounds interleave them.
func (r *runner) load(t *testing.T) {
	defs := scenarios(r.build)
	if re := os.Getenv("BENCH_SCENARIOS"); re != "" {
		var keep []scenarioDef
		for _, d := range defs {
			if d.Kind == KindBaseline || regexp.MustCompile(re).MatchString(d.Name) {
				keep = append(keep, d)
			}
		}
		defs = keep
	}
	var list []Scenario
	for _, d := range defs {
		list = append(list, d.Scenario)
	}
	for _, workers := range r.s.Workers {
		// V8 compiles each module at start, for seconds: start two Envoys at
		// a time (the cores), then warm each up alone.
		envoys := make([]*envoy, len(defs))
		errs := make([]error, len(defs))
		sem := make(chan struct{}, 2)
		var wg sync.WaitGroup
		for i, d := range defs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				envoys[i], errs[i] = r.envoy(fmt.Sprintf("load-%s-w%d", d.Name, workers), workers, d.filters, d.tracing)
			}()
		}
		wg.Wait()
		for i, e := range envoys {
			if e != nil {
				defer e.Stop()
			}
			must(t, errs[i])
		}
		for i, d := range defs {
			e := envoys[i]
			// Warm-up: V8 tiers hot functions up from its baseline compiler,
			// and the Go runtime sizes its heap.
			_, _, err := fortioRun(r.fortioBin, r.tmp, "warm", "-qps", "0", "-c", strconv.Itoa(r.s.Concurrency), "-t", "2s",
				"-H", requestHeader, "http://"+e.listener+requestPath)
			must(t, err)
			t.Logf("%s, %d worker(s): ready in %v (%s)", d.Name, workers, e.ready.Round(time.Millisecond), describe(d))
		}
		rounds := make([][]Round, len(defs))
		for round := 0; round < r.s.Rounds; round++ {
			for _, i := range roundOrder(len(defs), round) {
				url := "http://" + envoys[i].listener + requestPath
				label := fmt.Sprintf("%s-w%d-r%d", defs[i].Name, workers, round)
				cpu0 := envoys[i].cpuNanos()
				tp, tpCmd, err := fortioRun(r.fortioBin, r.tmp, label+"-tp", throughputArgs(r.s, url)...)
				must(t, err)
				cpu := float64(envoys[i].cpuNanos()-cpu0) / 1e3 / float64(max(tp.DurationHistogram.Count, 1))
				lat, latCmd, err := fortioRun(r.fortioBin, r.tmp, label+"-lat", latencyArgs(r.s, url)...)
				must(t, err)
				m := Round{Throughput: tp.ActualQPS, P50: lat.percentileMs(50), P90: lat.percentileMs(90), P99: lat.percentileMs(99),
					CPU: cpu, Errors: tp.errors() + lat.errors()}
				rounds[i] = append(rounds[i], m)
				t.Logf("round %d %-16s w%d: %7.0f rps  %6.1f µs CPU/req  p50 %.3f  p90 %.3f  p99 %.3f ms  errors %d",
					round, defs[i].Name, workers, m.Throughput, m.CPU, m.P50, m.P90, m.P99, m.Errors)
				if round == 0 && i == 0 {
					r.command(r.shell("fortio", tpCmd, envoys[i].listener))
					r.command(r.shell("fortio", latCmd, envoys[i].listener))
				}
			}
		}
		r.res.Load = append(r.res.Load, Analyze(workers, list, rounds)...)
		if workers == memoryWorkers {
			r.memory(t, defs, envoys)
		}
		for _, e := range envoys {
			e.Stop()
		}
	}
	r.command(fmt.Sprintf("envoy --config-path <scenario>/envoy.yaml --concurrency <workers> --log-level warn --disable-hot-restart  # bootstraps in %s", rel(r.root, r.tmp)))
}

// memoryWorkers is the worker count of the memory measurement.
const memoryWorkers = 2

// memory continues the load test's Envoys without filters, with the four
// modules and with the suite module: RSS and the modules' linear memory once
// warm (after the load rounds), then after a long run.
func (r *runner) memory(t *testing.T, defs []scenarioDef, envoys []*envoy) {
	for _, v := range []struct {
		name, scenario string
		vms            int
	}{
		{memoryNothing, "baseline", 0},
		{memoryFour, chainScenario, 4 * memoryWorkers},
		{memorySuite, suiteScenario, memoryWorkers},
		{memoryPipeline, pipelineScenario, memoryWorkers},
	} {
		var e *envoy
		for i, d := range defs {
			if d.Name == v.scenario {
				e = envoys[i]
			}
		}
		if e == nil {
			continue
		}
		url := "http://" + e.listener + requestPath
		res := MemoryResult{Variant: v.name, Workers: memoryWorkers, VMs: v.vms, Requests: r.s.MemoryRequests}
		res.RSSWarm = e.rss()
		gWarm, ok := e.stat(memoryGauge)
		_, cmd, err := fortioRun(r.fortioBin, r.tmp, "memory-run", "-qps", "0", "-c", strconv.Itoa(r.s.Concurrency), "-n", strconv.Itoa(r.s.MemoryRequests), "-H", requestHeader, url)
		must(t, err)
		res.RSSAfter = e.rss()
		gAfter, ok2 := e.stat(memoryGauge)
		if v.vms > 0 && ok && ok2 {
			res.LinearSampled = true
			res.LinearWarm, res.LinearAfter = gWarm/uint64(v.vms), gAfter/uint64(v.vms)
		}
		r.res.Memory = append(r.res.Memory, res)
		r.command(r.shell("fortio", cmd, e.listener))
		t.Logf("%s: RSS %s → %s, linear memory per VM %s → %s", v.name, mib(res.RSSWarm), mib(res.RSSAfter), mib(res.LinearWarm), mib(res.LinearAfter))
	}
}

// startup times Envoy from exec to /ready (V8 compiles each module once per
// VM: the main thread's and each worker's).
func (r *runner) startup(t *testing.T) {
	const workers = 2
	reps := 2
	if r.s.Full {
		reps = 5
	}
	type variant struct {
		name    string
		filters []string
	}
	variants := []variant{{"no filters", nil}}
	for _, m := range chainOrder {
		variants = append(variants, variant{m, oneModule(m, filepath.Join(r.build, m+".wasm"))})
	}
	variants = append(variants, variant{startupSuite, suiteChain(filepath.Join(r.build, "suite.wasm"))},
		variant{startupPipeline, pipelinePlugin(filepath.Join(r.build, "suite.wasm"))},
		variant{"four modules", fourModules(r.build)})
	runs := make([][]float64, len(variants))
	for rep := 0; rep < reps; rep++ {
		for i, v := range variants {
			e, err := r.envoy(fmt.Sprintf("startup-%d-%d", i, rep), workers, v.filters, false)
			must(t, err)
			runs[i] = append(runs[i], e.ready.Seconds())
			e.Stop()
		}
	}
	for i, v := range variants {
		s := StartupResult{Variant: v.name, Workers: workers, Seconds: NewStat(runs[i])}
		r.res.Startup = append(r.res.Startup, s)
		t.Logf("%s: ready in %.2f s [%.2f–%.2f]", v.name, s.Seconds.Median, s.Seconds.Min, s.Seconds.Max)
	}
}

// sizes reports each module's size and what wasm-opt -Oz (Debian's binaryen)
// makes of it, and whether Envoy still loads and runs the result.
func (r *runner) sizes(t *testing.T) {
	wasmOpt, optErr := exec.LookPath("wasm-opt")
	if optErr != nil {
		r.res.Notes = append(r.res.Notes, "wasm-opt not installed (apt-get install -y binaryen): sizes without it only.")
	}
	cache := filepath.Join(r.out, "tmp", "wasm-opt")
	must(t, os.MkdirAll(cache, 0o755))
	files, err := filepath.Glob(filepath.Join(r.build, "*.wasm"))
	must(t, err)
	sort.Strings(files)
	optArgs := []string{"-Oz", "--enable-bulk-memory", "--enable-sign-ext", "--enable-nontrapping-float-to-int", "--enable-mutable-globals"}
	r.command("wasm-opt " + strings.Join(optArgs, " ") + " build/<module>.wasm -o <module>.opt.wasm")
	type job struct {
		name, in, out string
		raw           []byte
		err           string
	}
	var jobs []*job
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".wasm")
		if name == "conformance" || name == floorModule {
			continue
		}
		raw, err := os.ReadFile(f)
		must(t, err)
		sum := sha256.Sum256(raw)
		jobs = append(jobs, &job{name: name, in: f, raw: raw, out: filepath.Join(cache, name+"-"+hex.EncodeToString(sum[:8])+".wasm")})
	}
	if optErr == nil {
		// wasm-opt takes tens of seconds per module: two at a time (the
		// cores), and cached by content in bench/results/tmp/wasm-opt.
		sem := make(chan struct{}, 2)
		var wg sync.WaitGroup
		for _, j := range jobs {
			if _, err := os.Stat(j.out); err == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				began := time.Now()
				tmp := j.out + ".tmp"
				if out, err := exec.Command(wasmOpt, append(optArgs, j.in, "-o", tmp)...).CombinedOutput(); err != nil {
					j.err = "wasm-opt failed: " + firstLine(strings.TrimSpace(string(out)))
					return
				}
				if err := os.Rename(tmp, j.out); err != nil {
					j.err = err.Error()
				}
				t.Logf("wasm-opt %s: %v", j.name, time.Since(began).Round(time.Second))
			}()
		}
		wg.Wait()
	}
	// Drop cached results of modules that no longer exist.
	keep := map[string]bool{}
	for _, j := range jobs {
		keep[j.out] = true
	}
	if cached, err := filepath.Glob(filepath.Join(cache, "*.wasm")); err == nil {
		for _, c := range cached {
			if !keep[c] {
				_ = os.Remove(c)
			}
		}
	}
	for _, j := range jobs {
		s := SizeResult{Module: j.name, Bytes: int64(len(j.raw)), GzipBytes: gzipSize(j.raw), OptLoadDetail: j.err}
		if optErr == nil && j.err == "" {
			optRaw, err := os.ReadFile(j.out)
			must(t, err)
			s.OptBytes, s.OptGzipBytes = int64(len(optRaw)), gzipSize(optRaw)
			if j.name == "noop" {
				s.OptLoadDetail = "test module, not loaded"
			} else {
				s.OptLoads, s.OptLoadDetail = r.loads(j.name, j.out)
			}
		}
		r.res.Sizes = append(r.res.Sizes, s)
		t.Logf("%s: %d bytes, gzip %d; wasm-opt %d, loads %v %s", j.name, s.Bytes, s.GzipBytes, s.OptBytes, s.OptLoads, s.OptLoadDetail)
	}
}

// loads starts Envoy on an optimized module and sends the load test's request:
// the module must start and do its job (200, and the canary's header).
func (r *runner) loads(name, path string) (bool, string) {
	filters := oneModule(name, path)
	if name == "suite" {
		filters = suiteChain(path)
	}
	e, err := r.envoy("wasm-opt-"+name, 1, filters, false)
	if err != nil {
		return false, firstLine(err.Error())
	}
	defer e.Stop()
	req, _ := http.NewRequest("GET", "http://"+e.listener+requestPath, nil)
	req.Header.Set("x-user-id", "12345")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err.Error()
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return false, fmt.Sprintf("status %d", resp.StatusCode)
	}
	if (name == "canary" || name == "suite") && resp.Header.Get("x-served-by-version") == "" {
		return false, "canary response header missing"
	}
	return true, ""
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

func gzipSize(b []byte) int64 {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	w.Write(b)
	w.Close()
	return int64(buf.Len())
}

// micro runs the native core benchmarks and the module benchmarks on the
// wazero host, and parses their output.
func (r *runner) micro(t *testing.T) {
	count := "3"
	if r.s.Full {
		count = "6"
	}
	cores := []string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-count", count, "-benchtime", "500ms", "./authz", "./ratelimit", "./canary", "./tracing"}
	modules := []string{"test", "-run", "^$", "-bench", "Module_(Request|AllowedRequest)$", "-benchmem", "-count", count, "-benchtime", "3000x",
		"./filters/authz", "./filters/canary", "./filters/ratelimit", "./filters/tracing"}
	m := &MicroResults{}
	lines := r.goBench(t, cores)
	m.Cores = summarizeBench(lines)
	m.Modules = moduleRatios(r.goBench(t, modules))
	r.res.Micro = m
	r.command(r.shell("go", cores, ""))
	r.command(r.shell("go", modules, ""))
}

type benchSample struct {
	pkg, name        string
	ns, bytes, alloc float64
}

func (r *runner) goBench(t *testing.T, args []string) []benchSample {
	cmd := exec.Command("go", args...)
	cmd.Dir = r.root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return parseBench(out.String())
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(?:.*?\s([\d.]+) B/op)?(?:.*?\s([\d.]+) allocs/op)?`)

func parseBench(out string) []benchSample {
	var samples []benchSample
	pkg := ""
	s := bufio.NewScanner(strings.NewReader(out))
	for s.Scan() {
		line := s.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(p, "github.com/meshwasm/meshwasm/")
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		f := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
		samples = append(samples, benchSample{pkg: pkg, name: strings.TrimPrefix(m[1], "Benchmark"), ns: f(m[2]), bytes: f(m[3]), alloc: f(m[4])})
	}
	return samples
}

func summarizeBench(samples []benchSample) []BenchLine {
	type key struct{ pkg, name string }
	var order []key
	group := map[key][]benchSample{}
	for _, s := range samples {
		k := key{s.pkg, s.name}
		if _, ok := group[k]; !ok {
			order = append(order, k)
		}
		group[k] = append(group[k], s)
	}
	var out []BenchLine
	for _, k := range order {
		var ns []float64
		maxAlloc, maxBytes := 0.0, 0.0
		for _, s := range group[k] {
			ns = append(ns, s.ns)
			maxAlloc, maxBytes = math.Max(maxAlloc, s.alloc), math.Max(maxBytes, s.bytes)
		}
		out = append(out, BenchLine{Package: k.pkg, Name: k.name, NsPerOp: NewStat(ns), AllocsPerOp: maxAlloc, BytesPerOp: maxBytes})
	}
	return out
}

// moduleRatios pairs each module sub-benchmark with the noop sub-benchmark of
// the same benchmark and repetition.
func moduleRatios(samples []benchSample) []ModuleRatio {
	type key struct{ pkg, bench string }
	noop := map[key][]float64{}
	mods := map[key]map[string][]float64{}
	var order []key
	for _, s := range samples {
		bench, sub, ok := strings.Cut(s.name, "/")
		if !ok {
			continue
		}
		k := key{s.pkg, bench}
		if _, seen := mods[k]; !seen {
			mods[k] = map[string][]float64{}
			order = append(order, k)
		}
		if sub == "noop" {
			noop[k] = append(noop[k], s.ns)
		} else {
			mods[k][sub] = append(mods[k][sub], s.ns)
		}
	}
	var out []ModuleRatio
	for _, k := range order {
		for _, sub := range sortedKeys(mods[k]) {
			ns := mods[k][sub]
			var ratios []float64
			for i := range ns {
				if i < len(noop[k]) && noop[k][i] > 0 {
					ratios = append(ratios, ns[i]/noop[k][i])
				}
			}
			out = append(out, ModuleRatio{Module: sub, Bench: k.bench, NoopNs: NewStat(noop[k]), NsPerOp: NewStat(ns), Ratio: NewStat(ratios)})
		}
	}
	return out
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return r
	}
	return p
}

// write saves latest.json, latest.md and latency.png.
func (r *runner) write() {
	t := r.t
	raw, err := json.MarshalIndent(r.res, "", "  ")
	must(t, err)
	must(t, os.WriteFile(filepath.Join(r.out, "latest.json"), append(raw, '\n'), 0o644))
	chart := ""
	if panels := r.res.ChartPanels(); len(panels) > 0 {
		chart = "latency.png"
		f, err := os.Create(filepath.Join(r.out, chart))
		must(t, err)
		must(t, WritePNG(f, RenderChart("meshwasm vs native Envoy filters", panels)))
		must(t, f.Close())
	}
	must(t, os.WriteFile(filepath.Join(r.out, "latest.md"), []byte(r.res.Markdown(chart)), 0o644))
	t.Logf("wrote %s", rel(r.root, filepath.Join(r.out, "latest.md")))
}

// sortedKeys is for deterministic output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestReport renders latest.md and latency.png again from latest.json, for
// changes to the report's text or chart without measuring again:
// go test -tags bench -run TestReport ./bench
func TestReport(t *testing.T) {
	out := filepath.Join(harness.RepoRoot(t), "bench", "results")
	raw, err := os.ReadFile(filepath.Join(out, "latest.json"))
	must(t, err)
	res := &Results{}
	must(t, json.Unmarshal(raw, res))
	res.Targets = EvaluateTargets(res)
	r := &runner{t: t, root: harness.RepoRoot(t), out: out, res: res}
	r.write()
}
