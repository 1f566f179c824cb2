package hostview

// replace mirrors a proxy_replace_header_map_value the filter made: Envoy
// removes every value of the header and appends the new one. A view not
// loaded yet needs nothing: its first read sees the host's headers.
func (h *Headers) replace(name, value string) {
	if !h.loaded {
		return
	}
	h.remove(name)
	h.pairs = append(h.pairs, [2]string{name, value})
	h.names.add(name)
}

// remove mirrors a proxy_remove_header_map_value the filter made. The
// name stays in the name filter: a stale bit only costs a lookup its scan.
func (h *Headers) remove(name string) {
	if !h.loaded {
		return
	}
	kept := h.pairs[:0]
	for _, p := range h.pairs {
		if !sameName(p[0], name) {
			kept = append(kept, p)
		}
	}
	h.pairs = kept
}
