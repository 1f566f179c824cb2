package authz

import "strings"

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
)

// NormalizePath returns the path policies are matched against, following
// Istio: strip query and fragment, decode percent-escaped unreserved
// characters once, turn `\` into `/`, merge `//`, resolve dot segments. A
// non-empty reason means the request must be answered 400. Already-normal
// paths are returned without allocating.
func NormalizePath(raw string, slashes SlashAction) (path, reason string) {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
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
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case 0:
			return "", reasonNul
		case '\\':
			buf = append(buf, '/')
			continue
		case '%':
		default:
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
			buf = append(buf, '%', upperHex[v>>4], upperHex[v&15])
		}
	}
	return resolveSegments(buf), ""
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
		switch p[i] {
		case '%', '\\', 0:
			return false
		case '/':
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
