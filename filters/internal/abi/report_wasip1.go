//go:build wasip1

package abi

//lint:file-ignore U1000 these functions are called by the host through //go:wasmexport, which staticcheck does not see

import (
	"fmt"
	"runtime/debug"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
)

// PanicMetric counts panics the bridge recovered from outside any filter.
const PanicMetric = "meshwasm.bridge.panics"

var panicCounter *proxywasm.MetricCounter

// reportPanic logs at critical level with the stack and counts the panic. It
// must itself never panic, since it runs inside a deferred recover.
func reportPanic(callback string, r any) {
	defer func() { _ = recover() }()
	proxywasm.LogCritical(fmt.Sprintf("meshwasm: recovered panic in %s: %v\n%s", callback, r, debug.Stack()))
	if panicCounter == nil {
		c := proxywasm.DefineCounterMetric(PanicMetric)
		panicCounter = &c
	}
	panicCounter.Increment(1)
}
