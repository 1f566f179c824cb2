package bench

import (
	"bufio"
	"errors"
	"io"
	"strings"
)

// CPUSplit is where an Envoy's CPU time went, from a `perf record -g` of
// the whole process, as shares of all samples. The Envoy binary is stripped
// and V8 writes no perf map for the code it compiles, so no function is
// named; a sample is placed by the code it was in and by whether a frame of
// the module's compiled code is below it on the stack.
type CPUSplit struct {
	// Module is the module's own code: samples whose leaf frame is in
	// memory V8 compiled (Go compiled to wasm, then by V8 to x86).
	Module float64 `json:"module"`
	// Host is Envoy and V8 code running under a module frame: the host
	// functions the module calls, the re-entries they make to allocate, and
	// V8's helpers for the module (memory growth, stack checks).
	Host float64 `json:"host"`
	// Envoy is the workers' user-space time with no module frame on the
	// stack: HTTP, routing, stats, and the wasm filter's own work around
	// each callback, including the call into V8 up to the module's first
	// frame.
	Envoy float64 `json:"envoy"`
	// Kernel is the workers' time in the kernel outside module calls
	// (sockets, scheduling).
	Kernel float64 `json:"kernel"`
	// Other is every thread but the workers: the main thread, V8's
	// compiler and GC threads, stats flushing.
	Other float64 `json:"other"`
	// Samples is how many samples the shares are of.
	Samples int `json:"samples"`
}

// SplitPerfScript reads `perf script -F comm,ip,dso` output (with call
// chains) and splits its samples. Envoy names its worker threads
// "wrk:worker_N"; perf marks frames in code V8 compiled with the perf map
// file it would read (/tmp/perf-<pid>.map) or "[JIT]".
func SplitPerfScript(r io.Reader) (CPUSplit, error) {
	var counts struct{ module, host, envoy, kernel, other, all int }
	var cur *sampleStack
	flush := func() {
		if cur == nil {
			return
		}
		counts.all++
		switch {
		case !cur.worker:
			counts.other++
		case cur.leafJIT:
			counts.module++
		case cur.anyJIT:
			counts.host++
		case cur.leafKernel:
			counts.kernel++
		default:
			counts.envoy++
		}
		cur = nil
	}
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		line := s.Text()
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] != ' ' && line[0] != '\t':
			// A sample's first line: the thread's name, then (without a
			// call chain) its one frame.
			flush()
			cur = &sampleStack{worker: strings.HasPrefix(line, "wrk:")}
			if i := strings.IndexByte(line, '('); i >= 0 {
				cur.frame(line[i:])
			}
		case cur != nil:
			cur.frame(line)
		}
	}
	flush()
	if err := s.Err(); err != nil {
		return CPUSplit{}, err
	}
	if counts.all == 0 {
		return CPUSplit{}, errors.New("perf script: no samples")
	}
	n := float64(counts.all)
	return CPUSplit{Module: float64(counts.module) / n, Host: float64(counts.host) / n, Envoy: float64(counts.envoy) / n,
		Kernel: float64(counts.kernel) / n, Other: float64(counts.other) / n, Samples: counts.all}, nil
}

// sampleStack is what the split needs of one sample: its thread, what its
// leaf frame ran, and whether module code is anywhere on its stack.
type sampleStack struct {
	worker, frames              bool
	leafJIT, leafKernel, anyJIT bool
}

// frame takes one frame line ("  55a81c3 (/path/envoy)"); the first one of
// a sample is its leaf.
func (p *sampleStack) frame(line string) {
	i := strings.LastIndexByte(line, '(')
	if i < 0 {
		return
	}
	dso := strings.TrimSuffix(strings.TrimSpace(line[i+1:]), ")")
	jit := strings.HasPrefix(dso, "/tmp/perf-") || strings.HasPrefix(dso, "[JIT]")
	if !p.frames {
		p.frames, p.leafJIT, p.leafKernel = true, jit, dso == "[kernel.kallsyms]"
	}
	p.anyJIT = p.anyJIT || jit
}
