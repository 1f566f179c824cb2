package tracing

import "strings"

// Limits a baggage header is kept within when this filter rewrites it. The W3C
// Baggage specification asks platforms to propagate at least this much.
const (
	BaggageMaxMembers = 64
	BaggageMaxBytes   = 8192
)

// BaggageEntry is one key and raw (not yet percent-encoded) value to add.
type BaggageEntry struct{ Key, Value string }

// tchar per RFC 9110, the baggage key grammar.
func tokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChar(s[i]) {
			return false
		}
	}
	return true
}

// baggageOctet is the value grammar: printable ASCII except space, DQUOTE,
// comma, semicolon and backslash.
func baggageOctet(c byte) bool {
	return c == 0x21 || c >= 0x23 && c <= 0x2b || c >= 0x2d && c <= 0x3a || c >= 0x3c && c <= 0x5b || c >= 0x5d && c <= 0x7e
}

// parseBaggageMember returns the key and the raw value of one list member
// ("key = value ; props"), or ok false when it breaks the grammar.
func parseBaggageMember(m string) (key, value string, ok bool) {
	eq := strings.IndexByte(m, '=')
	if eq < 0 {
		return "", "", false
	}
	key = strings.TrimRight(m[:eq], " \t")
	if !validToken(key) {
		return "", "", false
	}
	rest := m[eq+1:]
	semi := strings.IndexByte(rest, ';')
	value = rest
	if semi >= 0 {
		value = rest[:semi]
	}
	value = strings.Trim(value, " \t")
	for i := 0; i < len(value); i++ {
		if !baggageOctet(value[i]) {
			return "", "", false
		}
	}
	if semi >= 0 {
		for _, p := range strings.Split(rest[semi+1:], ";") {
			pk, pv, hasV := strings.Cut(strings.Trim(p, " \t"), "=")
			if !validToken(strings.TrimRight(pk, " \t")) {
				return "", "", false
			}
			if hasV {
				pv = strings.TrimLeft(pv, " \t")
				for i := 0; i < len(pv); i++ {
					if !baggageOctet(pv[i]) {
						return "", "", false
					}
				}
			}
		}
	}
	return key, value, true
}

// BaggageValue returns the percent-decoded value of key in a baggage header.
// It allocates only when the value holds percent escapes.
func BaggageValue(header, key string) (string, bool) {
	for header != "" {
		var m string
		m, header, _ = strings.Cut(header, ",")
		k, v, ok := parseBaggageMember(strings.Trim(m, " \t"))
		if ok && k == key {
			return percentDecode(v), true
		}
	}
	return "", false
}

func percentDecode(v string) string {
	if strings.IndexByte(v, '%') < 0 {
		return v
	}
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '%' && i+2 < len(v) {
			hi, ok1 := hexVal(v[i+1])
			lo, ok2 := hexVal(v[i+2])
			if ok1 && ok2 {
				out = append(out, hi<<4|lo)
				i += 2
				continue
			}
		}
		out = append(out, v[i])
	}
	return string(out)
}

func hexVal(c byte) (byte, bool) {
	if c >= 'A' && c <= 'F' {
		return c - 'A' + 10, true
	}
	return lowerHex(c)
}

// appendBaggageValue percent-encodes everything outside the value grammar,
// and "%" itself so that decoding gives back the original.
func appendBaggageValue(dst []byte, v string) []byte {
	const upperHex = "0123456789ABCDEF"
	for i := 0; i < len(v); i++ {
		c := v[i]
		if baggageOctet(c) && c != '%' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&0x0f])
	}
	return dst
}

// AppendBaggage writes a baggage header: the valid members of existing whose
// keys are not being set, then entries. Invalid existing members are dropped
// rather than forwarded. Entries that would take the header past 64 members
// or 8192 bytes are left out; the returned count says how many were.
func AppendBaggage(dst []byte, existing string, entries []BaggageEntry) ([]byte, int) {
	start, members := len(dst), 0
	for rest := existing; rest != ""; {
		var m string
		m, rest, _ = strings.Cut(rest, ",")
		m = strings.Trim(m, " \t")
		k, _, ok := parseBaggageMember(m)
		if !ok || members == BaggageMaxMembers || len(dst)-start+len(m)+1 > BaggageMaxBytes || setsKey(entries, k) {
			continue
		}
		if members > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, m...)
		members++
	}
	skipped := 0
	for _, e := range entries {
		mark := len(dst)
		if members > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, e.Key...)
		dst = append(dst, '=')
		dst = appendBaggageValue(dst, e.Value)
		if members == BaggageMaxMembers || len(dst)-start > BaggageMaxBytes {
			dst = dst[:mark]
			skipped++
			continue
		}
		members++
	}
	return dst, skipped
}

func setsKey(entries []BaggageEntry, k string) bool {
	for _, e := range entries {
		if e.Key == k {
			return true
		}
	}
	return false
}
