//go:build !wasip1

package hostview

// hostString copies: outside Wasm the host is the SDK's emulator, whose
// buffers a test may change later.
func hostString(b []byte) string { return string(b) }
