package tracing

import (
	"strconv"
	"unicode/utf8"
)

// appendJSONString writes s as a JSON string. Control characters are
// escaped, and invalid UTF-8 (header values are arbitrary bytes) becomes
// U+FFFD so the line always parses.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendJSONChars(dst, s)
	return append(dst, '"')
}

// appendJSONChars writes the escaped characters of s without the quotes.
func appendJSONChars(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == 0x7f:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but they end lines in JavaScript log viewers.
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}

func appendJSONKey(dst []byte, first bool, k string) []byte {
	if !first {
		dst = append(dst, ',')
	}
	dst = appendJSONString(dst, k)
	return append(dst, ':')
}

// appendMillis writes d in milliseconds with microsecond precision.
func appendMillis(dst []byte, ns int64) []byte {
	dst = strconv.AppendInt(dst, ns/1e6, 10)
	frac := (ns % 1e6) / 1e3
	if frac == 0 {
		return dst
	}
	dst = append(dst, '.')
	if frac < 100 {
		dst = append(dst, '0')
	}
	if frac < 10 {
		dst = append(dst, '0')
	}
	dst = strconv.AppendInt(dst, frac, 10)
	for dst[len(dst)-1] == '0' {
		dst = dst[:len(dst)-1]
	}
	return dst
}
