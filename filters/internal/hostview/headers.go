package hostview

import (
	"strings"
)

// Headers is a view of the request headers that answers every value of a
// repeated header, joined with "," (RFC 9110 5.3), the way Envoy's own
// matchers see them. Envoy 1.40's proxy_get_header_map_value answers only
// the first value, so `x-user-role: admin` followed by `x-user-role: guest`
// would hide "guest" from a policy (the class of CVE-2020-25017); the
// security e2e test proves the difference. The headers are read once, with
// one host call, on the first lookup; lookups then scan them without
// allocating unless a header repeats. The zero value is ready to use and must
// not outlive its stream.
type Headers struct {
	pairs [][2]string
	// names has nameBit set for every name in pairs. Most lookups miss (the
	// tracing filter alone asks for a dozen propagation headers a request
	// rarely carries), and on Wasm a scan of every pair costs a call per
	// pair: a clear bit answers "absent" at once.
	names  nameSet
	loaded bool
}

// Header returns every value of a request header (lowercase name), joined
// with ",".
func (h *Headers) Header(name string) (string, bool) {
	if !h.loaded {
		pairs, _ := requestHeaderPairs()
		h.load(pairs)
	}
	if !h.names.has(name) {
		return "", false
	}
	return joinHeader(h.pairs, name)
}

func (h *Headers) load(pairs [][2]string) {
	h.pairs, h.loaded, h.names = pairs, true, nameSet{}
	for _, p := range pairs {
		h.names.add(p[0])
	}
}

// nameSet is a 256-bit filter of header names, regardless of ASCII case:
// a name maps to one bit by its length and its first, middle and last bytes.
// With the dozen headers of a typical request, an absent name finds its bit
// clear about 19 times in 20.
type nameSet [4]uint64

func nameSlot(name string) uint {
	n := uint(len(name))
	if n == 0 {
		return 0
	}
	// |0x20 folds ASCII case; it also folds a few punctuation pairs, which
	// only costs those names a scan.
	return (n*31 + uint(name[0]|0x20)*7 + uint(name[n/2]|0x20)*5 + uint(name[n-1]|0x20)) & 255
}

func (s *nameSet) add(name string) {
	i := nameSlot(name)
	s[i>>6] |= 1 << (i & 63)
}

func (s *nameSet) has(name string) bool {
	i := nameSlot(name)
	return s[i>>6]&(1<<(i&63)) != 0
}

func joinHeader(pairs [][2]string, name string) (string, bool) {
	first, n := -1, 0
	size := 0
	for i, p := range pairs {
		if !sameName(p[0], name) {
			continue
		}
		if first < 0 {
			first = i
		}
		n++
		size += len(p[1]) + 1
	}
	switch n {
	case 0:
		return "", false
	case 1:
		return pairs[first][1], true
	}
	var b strings.Builder
	b.Grow(size)
	for i, p := range pairs[first:] {
		if sameName(p[0], name) {
			if i > 0 { // first is the first match: every later one needs a comma
				b.WriteByte(',')
			}
			b.WriteString(p[1])
		}
	}
	return b.String(), true
}

// sameName compares header names without regard to ASCII case; names are
// ASCII tokens (RFC 9110 5.1), so Unicode folding never applies. Unlike
// strings.EqualFold it rejects a length mismatch before looking at a byte,
// which is most comparisons when a lookup scans every header.
func sameName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		c, d := a[i], b[i]
		if c == d {
			continue
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}
