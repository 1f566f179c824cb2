package tracing

// Header names, lowercase as Envoy hands them to filters.
const (
	HeaderTraceparent   = "traceparent"
	HeaderTracestate    = "tracestate"
	HeaderTraceresponse = "traceresponse"
	HeaderBaggage       = "baggage"
)

const (
	traceparentLen = 55 // "00-" + 32 + "-" + 16 + "-" + 2
	flagSampled    = 0x01
)

// ParseTraceparent reads a traceparent header. Per the W3C rules: lowercase
// hex only, version ff is invalid, all-zero ids are invalid, version 00 has
// exactly 55 characters, and a higher version is read by its 00 prefix
// provided the next character (if any) is a dash. Unknown flag bits are
// ignored; only the sampled bit is kept.
func ParseTraceparent(s string) (SpanContext, bool) {
	if len(s) < traceparentLen {
		return SpanContext{}, false
	}
	var version [1]byte
	if !decodeHex(version[:], s[0:2]) || version[0] == 0xff {
		return SpanContext{}, false
	}
	if version[0] == 0 && len(s) != traceparentLen {
		return SpanContext{}, false
	}
	if len(s) > traceparentLen && s[traceparentLen] != '-' {
		return SpanContext{}, false
	}
	if s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return SpanContext{}, false
	}
	tid, ok := parseTraceID(s[3:35], false)
	if !ok {
		return SpanContext{}, false
	}
	sid, ok := parseSpanID(s[36:52])
	if !ok {
		return SpanContext{}, false
	}
	var flags [1]byte
	if !decodeHex(flags[:], s[53:55]) {
		return SpanContext{}, false
	}
	c := SpanContext{TraceID: tid, SpanID: sid, Sampling: SamplingDeny}
	if flags[0]&flagSampled != 0 {
		c.Sampling = SamplingAccept
	}
	return c, true
}

// AppendTraceparent writes a version 00 traceparent. Only the sampled flag is
// written: version 00 requires unknown bits to be zero.
func AppendTraceparent(dst []byte, tid TraceID, sid SpanID, sampled bool) []byte {
	dst = append(dst, "00-"...)
	dst = appendHex(dst, tid[:])
	dst = append(dst, '-')
	dst = appendHex(dst, sid[:])
	if sampled {
		return append(dst, "-01"...)
	}
	return append(dst, "-00"...)
}

// Tracestate limits from the W3C specification.
const (
	TracestateMaxMembers = 32
	// TracestateMinLength is what vendors should propagate at least; it is
	// the default and the smallest allowed configured limit.
	TracestateMinLength = 512
	// tracestateLongMember is the size past which members are dropped first
	// when the header must be shortened.
	tracestateLongMember = 128
)

type span struct{ start, end int }

// ParseTracestate validates a tracestate header and returns the value to
// propagate: "" when it is invalid (bad key or value grammar, duplicate keys)
// or empty. A valid value within limits is returned as is, without
// allocating. Past 32 members, or past maxLen characters, whole members are
// removed: first those longer than 128 characters, then from the end.
func ParseTracestate(s string, maxLen int) string {
	var members [TracestateMaxMembers]span
	n, extra := 0, false
	for i := 0; i <= len(s); {
		j := i
		for j < len(s) && s[j] != ',' {
			j++
		}
		m := trimOWS(s, i, j)
		if m.start < m.end {
			if !validTracestateMember(s[m.start:m.end]) {
				return ""
			}
			key := tracestateKey(s[m.start:m.end])
			for _, p := range members[:n] {
				if tracestateKey(s[p.start:p.end]) == key {
					return ""
				}
			}
			if n == TracestateMaxMembers {
				extra = true
			} else {
				members[n] = m
				n++
			}
		}
		i = j + 1
	}
	if n == 0 {
		return ""
	}
	if !extra && len(s) <= maxLen && members[0].start == 0 && members[n-1].end == len(s) && compact(members[:n]) {
		return s
	}
	return joinTracestate(s, members[:n], maxLen)
}

// compact reports whether the members are separated by single commas, so the
// original string can be propagated unchanged.
func compact(ms []span) bool {
	for k := 1; k < len(ms); k++ {
		if ms[k].start != ms[k-1].end+1 {
			return false
		}
	}
	return true
}

func trimOWS(s string, i, j int) span {
	for i < j && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	for j > i && (s[j-1] == ' ' || s[j-1] == '\t') {
		j--
	}
	return span{i, j}
}

func joinTracestate(s string, ms []span, maxLen int) string {
	keep := make([]bool, len(ms))
	total := -1
	for k, m := range ms {
		keep[k] = true
		total += m.end - m.start + 1
	}
	for k := len(ms) - 1; k >= 0 && total > maxLen; k-- {
		if l := ms[k].end - ms[k].start; l > tracestateLongMember {
			keep[k] = false
			total -= l + 1
		}
	}
	for k := len(ms) - 1; k >= 0 && total > maxLen; k-- {
		if keep[k] {
			keep[k] = false
			total -= ms[k].end - ms[k].start + 1
		}
	}
	out := make([]byte, 0, max(total, 0))
	for k, m := range ms {
		if !keep[k] {
			continue
		}
		if len(out) > 0 {
			out = append(out, ',')
		}
		out = append(out, s[m.start:m.end]...)
	}
	return string(out)
}

func tracestateKey(m string) string {
	for i := 0; i < len(m); i++ {
		if m[i] == '=' {
			return m[:i]
		}
	}
	return m
}

// validTracestateMember checks key "=" value against the level 1 grammar:
//
//	simple-key       = lcalpha 0*255( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
//	multi-tenant-key = tenant-id "@" system-id
//	tenant-id        = ( lcalpha / DIGIT ) 0*240( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
//	system-id        = lcalpha 0*13( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
//	value            = 0*255(chr) nblk-chr
func validTracestateMember(m string) bool {
	eq := -1
	for i := 0; i < len(m); i++ {
		if m[i] == '=' {
			eq = i
			break
		}
	}
	if eq <= 0 {
		return false
	}
	return validTracestateKey(m[:eq]) && validTracestateValue(m[eq+1:])
}

func keyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '*' || c == '/'
}

func validTracestateKey(k string) bool {
	at := -1
	for i := 0; i < len(k); i++ {
		if k[i] == '@' {
			if at >= 0 {
				return false
			}
			at = i
		} else if !keyChar(k[i]) {
			return false
		}
	}
	if at < 0 {
		return len(k) <= 256 && k[0] >= 'a' && k[0] <= 'z'
	}
	tenant, system := k[:at], k[at+1:]
	if len(tenant) == 0 || len(tenant) > 241 || len(system) == 0 || len(system) > 14 {
		return false
	}
	t0 := tenant[0]
	return (t0 >= 'a' && t0 <= 'z' || t0 >= '0' && t0 <= '9') && system[0] >= 'a' && system[0] <= 'z'
}

func validTracestateValue(v string) bool {
	if len(v) == 0 || len(v) > 256 || v[len(v)-1] == ' ' {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c > 0x7e || c == ',' || c == '=' {
			return false
		}
	}
	return true
}
