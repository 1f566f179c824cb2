package abi

// pinned keeps host-requested buffers alive. A callback may nest (the host
// calls proxy_on_memory_allocate in the middle of a host call), so buffers are
// released only when the outermost callback returns.
type pinner struct {
	bufs  [][]byte
	depth int
}

func (p *pinner) alloc(size uint32) []byte {
	if size == 0 {
		size = 1 // &buf[0] must exist; the host may ask for zero bytes.
	}
	buf := make([]byte, size)
	p.bufs = append(p.bufs, buf)
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
