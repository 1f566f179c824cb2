//go:build !wasm

package registry

// linearMemoryBytes is zero outside Wasm (native tests): the gauge is never
// defined there.
func linearMemoryBytes() int64 { return 0 }
