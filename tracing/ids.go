package tracing

// TraceID is a 128-bit trace identifier. A 64-bit B3 trace id occupies the
// low 8 bytes with the high 8 bytes zero, which is exactly the left-padding
// the B3 and W3C specifications ask for when widening it.
type TraceID [16]byte

// SpanID is a 64-bit span identifier.
type SpanID [8]byte

// IsValid reports whether the id is not all zeros (the W3C and B3 invalid id).
func (t TraceID) IsValid() bool { return t != TraceID{} }

// Is64 reports whether the id fits in 64 bits, as a legacy B3 id does.
func (t TraceID) Is64() bool { return [8]byte(t[:8]) == [8]byte{} }

// String is the 32-character lowercase hex form.
func (t TraceID) String() string { return string(appendHex(nil, t[:])) }

// IsValid reports whether the id is not all zeros.
func (s SpanID) IsValid() bool { return s != SpanID{} }

// String is the 16-character lowercase hex form.
func (s SpanID) String() string { return string(appendHex(nil, s[:])) }

const hexDigits = "0123456789abcdef"

func appendHex(dst, src []byte) []byte {
	for _, b := range src {
		dst = append(dst, hexDigits[b>>4], hexDigits[b&0x0f])
	}
	return dst
}

// lowerHex decodes one lowercase hex digit; the specifications refuse upper
// case, so 'A'-'F' are invalid here.
func lowerHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// decodeHex fills dst from exactly 2*len(dst) lowercase hex characters.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := lowerHex(s[2*i])
		lo, ok2 := lowerHex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

// parseTraceID reads a 32-character id, or a 16-character one when allow64
// (B3), and refuses the all-zero id.
func parseTraceID(s string, allow64 bool) (TraceID, bool) {
	var id TraceID
	switch {
	case len(s) == 32:
		if !decodeHex(id[:], s) {
			return TraceID{}, false
		}
	case len(s) == 16 && allow64:
		if !decodeHex(id[8:], s) {
			return TraceID{}, false
		}
	default:
		return TraceID{}, false
	}
	return id, id.IsValid()
}

func parseSpanID(s string) (SpanID, bool) {
	var id SpanID
	if !decodeHex(id[:], s) {
		return SpanID{}, false
	}
	return id, id.IsValid()
}
