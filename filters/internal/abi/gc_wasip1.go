//go:build wasip1

package abi

import (
	"os"
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
