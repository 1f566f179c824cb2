package hostview

// replace mirrors a proxy_replace_header_map_value the filter made: Envoy
// removes every value of the header and appends the new one. A view not
// loaded yet needs nothing: its first read sees the host's headers.
func (h *Headers) replace(name, value string) {
	if !h.loaded {
		return
	}
	kept := h.pairs[:0]
	for _, p := range h.pairs {
		if !sameName(p[0], name) {
			kept = append(kept, p)
		}
	}
	h.pairs = append(kept, [2]string{name, value})
}
