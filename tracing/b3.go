package tracing

import "strings"

// B3 header names, lowercase as Envoy hands them to filters.
const (
	HeaderB3             = "b3"
	HeaderB3TraceID      = "x-b3-traceid"
	HeaderB3SpanID       = "x-b3-spanid"
	HeaderB3ParentSpanID = "x-b3-parentspanid"
	HeaderB3Sampled      = "x-b3-sampled"
	HeaderB3Flags        = "x-b3-flags"
)

// ParseB3 reads the single b3 header: "{TraceId}-{SpanId}",
// "{TraceId}-{SpanId}-{SamplingState}", the same followed by
// "-{ParentSpanId}", or a lone sampling state ("0", "1" or "d"). The second
// result is false when the header is malformed; a lone state gives an invalid
// context that only carries Sampling.
func ParseB3(s string) (SpanContext, bool) {
	if len(s) == 1 {
		st, ok := b3State(s)
		return SpanContext{Sampling: st}, ok
	}
	var c SpanContext
	dash := strings.IndexByte(s, '-')
	if dash < 0 {
		return SpanContext{}, false
	}
	tid, ok := parseTraceID(s[:dash], true)
	if !ok {
		return SpanContext{}, false
	}
	c.TraceID = tid
	rest := s[dash+1:]
	if len(rest) < 16 {
		return SpanContext{}, false
	}
	if c.SpanID, ok = parseSpanID(rest[:16]); !ok {
		return SpanContext{}, false
	}
	rest = rest[16:]
	if rest == "" {
		return c, true
	}
	if len(rest) < 2 || rest[0] != '-' {
		return SpanContext{}, false
	}
	if c.Sampling, ok = b3State(rest[1:2]); !ok {
		return SpanContext{}, false
	}
	rest = rest[2:]
	if rest == "" {
		return c, true
	}
	if rest[0] != '-' {
		return SpanContext{}, false
	}
	if c.ParentSpanID, ok = parseSpanID(rest[1:]); !ok {
		return SpanContext{}, false
	}
	return c, true
}

func b3State(s string) (Sampling, bool) {
	switch s {
	case "0":
		return SamplingDeny, true
	case "1":
		return SamplingAccept, true
	case "d":
		return SamplingDebug, true
	}
	return SamplingUnset, false
}

// ParseB3Multi reads the X-B3-* headers from h. Trace and span id must
// come together; X-B3-Sampled and X-B3-Flags may come alone. X-B3-Sampled
// also accepts "true" and "false", as the B3 specification asks of readers.
// X-B3-Flags: 1 means debug, which implies accept. The second result is false
// when nothing usable was present or a present header is malformed.
func ParseB3Multi(h Headers) (SpanContext, bool) {
	var c SpanContext
	tidS, hasT := h.Header(HeaderB3TraceID)
	sidS, hasS := h.Header(HeaderB3SpanID)
	switch {
	case hasT && hasS:
		var ok bool
		if c.TraceID, ok = parseTraceID(tidS, true); !ok {
			return SpanContext{}, false
		}
		if c.SpanID, ok = parseSpanID(sidS); !ok {
			return SpanContext{}, false
		}
		if p, has := h.Header(HeaderB3ParentSpanID); has {
			if c.ParentSpanID, ok = parseSpanID(p); !ok {
				return SpanContext{}, false
			}
		}
	case hasT || hasS:
		return SpanContext{}, false
	}
	if f, has := h.Header(HeaderB3Flags); has {
		switch f {
		case "1":
			c.Sampling = SamplingDebug
		case "0":
		default:
			return SpanContext{}, false
		}
	}
	if st, has := h.Header(HeaderB3Sampled); has && c.Sampling != SamplingDebug {
		switch st {
		case "1", "true":
			c.Sampling = SamplingAccept
		case "0", "false":
			c.Sampling = SamplingDeny
		default:
			return SpanContext{}, false
		}
	}
	if !c.IsValid() && c.Sampling == SamplingUnset {
		return SpanContext{}, false
	}
	return c, true
}

// appendB3TraceID keeps a 64-bit id 64 bits wide so B3 systems that only
// know 64-bit ids read back what they sent.
func appendB3TraceID(dst []byte, tid TraceID) []byte {
	if tid.Is64() {
		return appendHex(dst, tid[8:])
	}
	return appendHex(dst, tid[:])
}

// AppendB3 writes a single b3 header value with ids, a sampling state (debug
// as "d"), and the parent span id when valid.
func AppendB3(dst []byte, c SpanContext) []byte {
	dst = appendB3TraceID(dst, c.TraceID)
	dst = append(dst, '-')
	dst = appendHex(dst, c.SpanID[:])
	switch c.Sampling {
	case SamplingAccept:
		dst = append(dst, "-1"...)
	case SamplingDebug:
		dst = append(dst, "-d"...)
	case SamplingDeny:
		dst = append(dst, "-0"...)
	default:
		return dst
	}
	if c.ParentSpanID.IsValid() {
		dst = append(dst, '-')
		dst = appendHex(dst, c.ParentSpanID[:])
	}
	return dst
}
