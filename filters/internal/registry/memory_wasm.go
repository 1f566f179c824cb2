package registry

// currentMemoryPages is the wasm memory.size instruction: the size of the
// module's linear memory in 64 KiB pages (memory_wasm.s).
func currentMemoryPages() int32

func linearMemoryBytes() int64 { return int64(currentMemoryPages()) << 16 }
