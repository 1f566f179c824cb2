//go:build wasip1

package abi

import (
	"os"
	"runtime"
	"runtime/debug"
)

// gcPercent is the collector's target unless the operator sets GOGC
// (vm_config.environment_variables in Envoy). Go's default (100, with a 4 MiB
// minimum heap goal) let a VM's linear memory settle at 9-11 MiB; at 25 it
// settles at 6-7.5 MiB. A request leaves a few hundred bytes of garbage and
// the live heap is small, so collecting four times as often costs no
// measurable CPU per request (wazero benchmarks, bench/results/latest.md).
// Linear memory never shrinks, so the peak is what every worker pays.
const gcPercent = 25

func init() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}

// A module built with -buildmode=c-shared runs Go code only inside the
// host's calls into it, on the one goroutine that serves them: the runtime
// never schedules anything else on its own. The garbage collector's
// background mark worker is a goroutine too, so without a yield a cycle
// advances only through the assists of allocating code, which lets the heap
// run several times past its goal before the cycle ends. Linear memory never
// shrinks, so that overshoot stayed: a pipeline VM in Envoy grew to 26 MiB
// where its live heap was under 2 MiB.
//
// Yielding once every few finished streams, and on every tick, lets the
// worker take its share of time while a cycle runs. A yield costs a pass
// through the scheduler (about 2.5 µs on wazero), so it is not paid on every
// callback; between yields a VM allocates a few tens of KiB at most.

// yieldEvery is how many context deletions pass between yields.
const yieldEvery = 16

var deletions uint32

func yieldAfterDelete() {
	deletions++
	if deletions%yieldEvery == 0 {
		runtime.Gosched()
	}
}

func yieldAfterTick() { runtime.Gosched() }
