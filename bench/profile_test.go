//go:build bench

package bench

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// profileSeconds is how long perf samples each scenario; fortio runs a
// second longer on each side so that the samples see steady load only.
// profileQPS is twice the latency test's rate: enough samples, and a worker
// that is busy but not saturated (an idle-heavy worker's wake-ups would
// inflate every figure per request).
const (
	profileSeconds = 10
	profileQPS     = 2000
)

// profileScenarios are the ones the CPU split compares: nothing, Envoy's
// wasm floor (a module whose callbacks return at once) and the pipeline.
var profileScenarios = []string{"baseline", "floor", pipelineScenario}

// profile records each scenario's Envoy with perf at a fixed rate, one
// worker, and splits its CPU per request (CPUSplit).
func (r *runner) profile(t *testing.T) {
	perf, err := exec.LookPath("perf")
	if err != nil {
		r.res.Notes = append(r.res.Notes, "perf not installed (apt-get install -y linux-perf): no CPU split.")
		return
	}
	const workers = 1
	defs := map[string]scenarioDef{}
	for _, d := range scenarios(r.build) {
		defs[d.Name] = d
	}
	qps := profileQPS
	for _, name := range profileScenarios {
		d, ok := defs[name]
		if !ok {
			continue // no floor module without wasm-as; the report notes it
		}
		e, err := r.envoy("profile-"+name, workers, d.filters, d.tracing)
		must(t, err)
		url := "http://" + e.listener + requestPath
		_, _, err = fortioRun(r.fortioBin, r.tmp, "profile-warm", "-qps", "0", "-c", strconv.Itoa(r.s.Concurrency), "-t", "2s", "-H", requestHeader, url)
		must(t, err)

		type loadRun struct {
			res fortioJSON
			err error
		}
		done := make(chan loadRun, 1)
		cpu0 := e.cpuNanos()
		go func() {
			res, _, err := fortioRun(r.fortioBin, r.tmp, "profile-"+name, "-qps", strconv.Itoa(qps), "-c", strconv.Itoa(r.s.LatencyConns),
				"-t", fmt.Sprintf("%ds", profileSeconds+2), "-H", requestHeader, url)
			done <- loadRun{res, err}
		}()
		time.Sleep(time.Second)
		data := filepath.Join(r.tmp, "profile-"+name+".perf")
		rec := exec.Command(perf, "record", "-F", "999", "-g", "-p", strconv.Itoa(e.Pid()), "-o", data, "--", "sleep", strconv.Itoa(profileSeconds))
		recOut, recErr := rec.CombinedOutput()
		load := <-done
		cpu := e.cpuNanos() - cpu0
		e.Stop()
		must(t, load.err)
		if recErr != nil {
			r.res.Notes = append(r.res.Notes, fmt.Sprintf("perf record failed, no CPU split: %v: %s", recErr, firstLine(string(bytes.TrimSpace(recOut)))))
			return
		}
		script, err := exec.Command(perf, "script", "-i", data, "-F", "comm,ip,dso").Output()
		must(t, err)
		split, err := SplitPerfScript(bytes.NewReader(script))
		must(t, err)
		n := load.res.DurationHistogram.Count
		p := ProfileResult{Scenario: name, Workers: workers, QPS: qps, Requests: n, CPU: float64(cpu) / 1e3 / float64(max(n, 1)), Split: split}
		r.res.Profile = append(r.res.Profile, p)
		m, h, en, k, o := p.Micros()
		t.Logf("%s: %.1f µs CPU/req over %d requests: module %.1f, host %.1f, Envoy %.1f, kernel %.1f, other %.1f (%d samples)",
			name, p.CPU, n, m, h, en, k, o, split.Samples)
	}
	r.command(fmt.Sprintf("perf record -F 999 -g -p <envoy pid> -- sleep %d  # during fortio load -qps %d -c %d; then perf script -F comm,ip,dso", profileSeconds, qps, r.s.LatencyConns))
}
