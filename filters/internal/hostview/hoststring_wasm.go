//go:build wasip1

package hostview

import "unsafe"

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
