//go:build !wasip1

package hostview

import "github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"

// hostString copies: outside Wasm the host is the SDK's emulator, whose
// buffers a test may change later.
func hostString(b []byte) string { return string(b) }

// LogDebug copies the line: the SDK's emulator keeps the strings it is
// given, and the caller reuses its buffer.
func LogDebug(line []byte) { proxywasm.LogDebug(string(line)) }

// LogInfo is LogDebug at info.
func LogInfo(line []byte) { proxywasm.LogInfo(string(line)) }
