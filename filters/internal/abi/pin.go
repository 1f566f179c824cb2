package abi

// pinner hands memory to the host (proxy_on_memory_allocate) and keeps it
// alive. A callback may nest (the host calls proxy_on_memory_allocate in the
// middle of a host call), so buffers are pinned until the outermost callback
// returns; by then the SDK holds what it kept through ordinary Go pointers.
//
// Small requests, which are nearly all of them (a header value, a property,
// a header map), are carved from a shared chunk instead of costing one Go
// allocation each: on Wasm an allocation is a few hundred nanoseconds, and a
// request used to make one per host call that returns data. Carved memory is
// never reused: the SDK turns it into strings without copying, so a chunk
// lives for as long as any of those strings does, and the collector frees it
// like any other allocation.
type pinner struct {
	bufs  [][]byte
	chunk []byte // the current chunk's unused tail
	depth int
}

const (
	// chunkSize bounds what one long-lived string can keep alive.
	chunkSize = 4 << 10
	// maxCarved is the largest request served from a chunk; larger ones
	// (bodies, configurations) get their own allocation.
	maxCarved = 512
)

func (p *pinner) alloc(size uint32) []byte {
	if size == 0 {
		size = 1 // &buf[0] must exist; the host may ask for zero bytes.
	}
	if size > maxCarved {
		buf := make([]byte, size)
		p.bufs = append(p.bufs, buf)
		return buf
	}
	if uint32(len(p.chunk)) < size {
		p.chunk = make([]byte, chunkSize)
		// Pinned as a whole: the next chunk replaces p.chunk while the host
		// may still hold the only copy of an address carved from this one.
		p.bufs = append(p.bufs, p.chunk)
	}
	buf := p.chunk[:size:size]
	p.chunk = p.chunk[size:]
	return buf
}

func (p *pinner) enter() { p.depth++ }

func (p *pinner) exit() {
	p.depth--
	if p.depth > 0 {
		return
	}
	p.depth = 0
	clear(p.bufs)
	p.bufs = p.bufs[:0]
}
