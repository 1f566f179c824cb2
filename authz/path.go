package authz

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// SlashAction is what normalization does with %2F and %5C in a path.
type SlashAction uint8

const (
	// SlashReject answers 400: an encoded slash is the classic way to make
	// `/admin/x` look like one segment to the proxy and two to the app.
	SlashReject SlashAction = iota
	// SlashKeep leaves them encoded (uppercase hex) for matching and upstream.
	SlashKeep
	// SlashDecode turns them into "/" before slashes are merged.
	SlashDecode
)

// Path rejection reasons, stable for logs and tests.
const (
	reasonBadPath      = "path must start with '/'"
	reasonNul          = "nul byte in path"
	reasonBadEscape    = "invalid percent-encoding in path"
	reasonEscapedSlash = "escaped slash in path"
	reasonFragment     = "fragment in path"
	reasonBadChar      = "invalid character in path"
	reasonBadUTF8      = "invalid UTF-8 in path"
	reasonDoubleEscape = "double-encoded character in path"
	reasonLookalike    = "look-alike of '.', '/' or '\\' in path"
)

// NormalizePath returns the path policies are matched against, following
// Istio: strip the query, decode percent-escaped unreserved characters once,
// turn `\` into `/`, merge `//`, resolve dot segments. It also strips path
// parameters (`;x=y`, which Java servers drop before resolving `..`), so
// `/api/..;x=y/admin` is `/admin`. A non-empty reason means the request must
// be answered 400: a fragment (never sent by a client, stripped differently by
// servers), NUL, raw control or non-ASCII bytes, bad escapes, escapes that
// are not valid UTF-8 (overlong forms such as `%c0%ae`), look-alikes of `.`,
// `/` and `\` (fullwidth forms, which NFKC folds), and double-encoded `.`,
// `/`, `\` or NUL (`%252e`). Already-normal paths are returned without
// allocating.
func NormalizePath(raw string, slashes SlashAction) (path, reason string) {
	if strings.IndexByte(raw, '#') >= 0 {
		return "", reasonFragment
	}
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		if i == 0 {
			return "", reasonBadPath
		}
		raw = raw[:i]
	}
	if raw == "" || raw == "*" {
		return raw, ""
	}
	if raw[0] != '/' {
		return "", reasonBadPath
	}
	if isNormal(raw) {
		return raw, ""
	}
	buf := make([]byte, 0, len(raw))
	high := false // an escape of a non-ASCII byte was kept
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == 0:
			return "", reasonNul
		case c <= 0x20 || c >= 0x7f:
			return "", reasonBadChar
		case c == '\\':
			buf = append(buf, '/')
			continue
		case c != '%':
			buf = append(buf, c)
			continue
		}
		if i+2 >= len(raw) {
			return "", reasonBadEscape
		}
		hi, ok1 := unhex(raw[i+1])
		lo, ok2 := unhex(raw[i+2])
		if !ok1 || !ok2 {
			return "", reasonBadEscape
		}
		i += 2
		v := hi<<4 | lo
		switch {
		case v == 0:
			return "", reasonNul
		case v == '/' || v == '\\':
			switch slashes {
			case SlashReject:
				return "", reasonEscapedSlash
			case SlashDecode:
				buf = append(buf, '/')
			default:
				buf = append(buf, '%', upperHex[v>>4], upperHex[v&15])
			}
		case unreserved(v):
			buf = append(buf, v)
		default:
			high = high || v >= 0x80
			buf = append(buf, '%', upperHex[v>>4], upperHex[v&15])
		}
	}
	if reason := checkEscapes(buf, high); reason != "" {
		return "", reason
	}
	return resolveSegments(buf), ""
}

// checkEscapes looks at the escapes left after decoding: `%25` followed by
// the escape of `.`, `/`, `\` or NUL is a second encoding layer (a server
// that decodes twice would see a traversal), and escaped non-ASCII bytes must
// form valid UTF-8 that does not fold to `.`, `/` or `\`.
func checkEscapes(b []byte, high bool) string {
	var run [64]byte
	n := 0
	for i := 0; i < len(b); i++ {
		if b[i] != '%' {
			if n > 0 {
				if r := checkUTF8(run[:n]); r != "" {
					return r
				}
				n = 0
			}
			continue
		}
		hi, _ := unhex(b[i+1])
		lo, _ := unhex(b[i+2])
		v := hi<<4 | lo
		if v == '%' && i+5 <= len(b) {
			h2, ok1 := unhex(b[i+3])
			l2, ok2 := unhex(b[i+4])
			if w := h2<<4 | l2; ok1 && ok2 && (w == '.' || w == '/' || w == '\\' || w == 0) {
				return reasonDoubleEscape
			}
		}
		i += 2
		if !high {
			continue
		}
		if v < 0x80 {
			if n > 0 {
				if r := checkUTF8(run[:n]); r != "" {
					return r
				}
				n = 0
			}
			continue
		}
		if n == len(run) {
			// Longer than any sane segment of non-ASCII text: validate what
			// we have and go on (a rune split here fails validation, so
			// such paths are refused, never passed unchecked).
			if r := checkUTF8(run[:n]); r != "" {
				return r
			}
			n = 0
		}
		run[n] = v
		n++
	}
	if n > 0 {
		return checkUTF8(run[:n])
	}
	return ""
}

func checkUTF8(b []byte) string {
	if !utf8.Valid(b) {
		return reasonBadUTF8
	}
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if lookalike(r) {
			return reasonLookalike
		}
		b = b[size:]
	}
	return ""
}

// lookalike reports runes that Unicode compatibility normalization (NFKC,
// which some frameworks apply to paths) turns into `.`, `..`, `/` or `\`.
func lookalike(r rune) bool {
	switch r {
	case '\uff0e', '\uff0f', '\uff3c', // fullwidth . / \
		'\u2024', '\u2025', '\ufe52', // one and two dot leaders, small full stop
		'\ufe68', '\u2215', '\u2216', '\u2044', '\u29f5', '\u29f8', '\u29f9': // small reverse solidus, division slash, set minus, fraction slash, reverse solidus operator, big solidi
		return true
	}
	return false
}

const upperHex = "0123456789ABCDEF"

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// unreserved is RFC 3986's unreserved set: decoding it never changes meaning.
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// isNormal reports whether p needs no rewriting at all.
func isNormal(p string) bool {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '%' || c == '\\' || c == ';' || c <= 0x20 || c >= 0x7f:
			return false
		case c == '/':
			if i+1 < len(p) && p[i+1] == '/' {
				return false
			}
			if dotSegmentAt(p, i+1) {
				return false
			}
		}
	}
	return true
}

// dotSegmentAt reports whether p[i:] starts with a "." or ".." segment.
func dotSegmentAt(p string, i int) bool {
	if i >= len(p) || p[i] != '.' {
		return false
	}
	i++
	if i < len(p) && p[i] == '.' {
		i++
	}
	return i == len(p) || p[i] == '/'
}

// resolveSegments merges slashes and removes dot segments (RFC 3986 5.2.4),
// never climbing above the root. b starts with '/'.
func resolveSegments(b []byte) string {
	out := make([]byte, 0, len(b))
	trailing := false
	for i := 0; i < len(b); {
		for i < len(b) && b[i] == '/' {
			i++
		}
		j := i
		for j < len(b) && b[j] != '/' {
			j++
		}
		seg := b[i:j]
		if k := bytes.IndexByte(seg, ';'); k >= 0 {
			seg = seg[:k] // path parameters
		}
		trailing = j == len(b) && (len(seg) == 0 || isDots(seg))
		switch {
		case len(seg) == 0:
		case string(seg) == ".":
		case string(seg) == "..":
			if k := lastSlash(out); k >= 0 {
				out = out[:k]
			}
		default:
			out = append(out, '/')
			out = append(out, seg...)
		}
		i = j
	}
	if len(out) == 0 || trailing {
		out = append(out, '/')
	}
	return string(out)
}

func isDots(s []byte) bool { return string(s) == "." || string(s) == ".." }

func lastSlash(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '/' {
			return i
		}
	}
	return -1
}
