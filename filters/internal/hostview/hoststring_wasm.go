//go:build wasip1

package hostview

import (
	"unsafe"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
)

// hostString turns a value the host returned into a string without copying
// it. The bytes live in memory the module allocated for the host
// (proxy_on_memory_allocate), which is never written again or reused, so the
// string stays valid and immutable for as long as it is referenced.
func hostString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// LogDebug sends a debug line built in a buffer the caller reuses, without
// copying it into a string first: the host copies the bytes during the call
// and keeps nothing.
func LogDebug(line []byte) { proxywasm.LogDebug(bytesView(line)) }

// LogInfo is LogDebug at info.
func LogInfo(line []byte) { proxywasm.LogInfo(bytesView(line)) }

func bytesView(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
