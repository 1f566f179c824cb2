//go:build wasip1

package abi

import "runtime"

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
