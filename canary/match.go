package canary

import (
	"regexp"
	"strings"
)

type valueKind uint8

const (
	kindExact valueKind = iota
	kindPrefix
	kindSuffix
	kindRegex
	kindPresent
	kindAbsent
	kindModulo
)

// valueMatcher tests one named value (header, query parameter or cookie).
type valueMatcher struct {
	name      string
	kind      valueKind
	text      string
	re        *regexp.Regexp
	divisor   uint64
	remainder uint64
	invert    bool
}

func (m *valueMatcher) match(v string, ok bool) bool {
	var r bool
	switch m.kind {
	case kindPresent:
		r = ok
	case kindAbsent:
		r = !ok
	default:
		r = ok && m.matchValue(v)
	}
	return r != m.invert
}

func (m *valueMatcher) matchValue(v string) bool {
	switch m.kind {
	case kindExact:
		return v == m.text
	case kindPrefix:
		return strings.HasPrefix(v, m.text)
	case kindSuffix:
		return strings.HasSuffix(v, m.text)
	case kindRegex:
		return m.re.MatchString(v)
	case kindModulo:
		rem, ok := decimalMod(v, m.divisor)
		return ok && rem == m.remainder
	}
	return false
}

// decimalMod returns v mod d for a string of ASCII digits of any length, so
// that user ids longer than 64 bits still split evenly. Surrounding spaces are
// ignored; a sign, a fraction or any other character makes it no number.
// d must be below 2^32 so that rem*10+9 cannot overflow.
func decimalMod(v string, d uint64) (uint64, bool) {
	v = trimOWS(v)
	if v == "" {
		return 0, false
	}
	var rem uint64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		rem = (rem*10 + uint64(c-'0')) % d
	}
	return rem, true
}

type pathKind uint8

const (
	pathExact pathKind = iota
	pathPrefix
	pathRegex
)

type pathMatcher struct {
	kind pathKind
	text string
	re   *regexp.Regexp
}

func (m *pathMatcher) match(path string) bool {
	switch m.kind {
	case pathExact:
		return path == m.text
	case pathPrefix:
		return strings.HasPrefix(path, m.text)
	}
	return m.re.MatchString(path)
}

// match is one rule's condition; every part present must hold.
type match struct {
	methods []string
	path    *pathMatcher
	headers []valueMatcher
	query   []valueMatcher
	cookies []valueMatcher
}

func (m *match) matches(req Request) bool {
	if len(m.methods) > 0 {
		method, _ := req.Header(":method")
		found := false
		for _, want := range m.methods {
			if method == want {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	for i := range m.headers {
		h := &m.headers[i]
		v, ok := req.Header(h.name)
		if !h.match(v, ok) {
			return false
		}
	}
	if m.path != nil || len(m.query) > 0 {
		target, _ := req.Header(":path")
		path, query := splitPath(target)
		if m.path != nil && !m.path.match(path) {
			return false
		}
		for i := range m.query {
			q := &m.query[i]
			v, ok := QueryParam(query, q.name)
			if !q.match(v, ok) {
				return false
			}
		}
	}
	if len(m.cookies) > 0 {
		header, _ := req.Header("cookie")
		for i := range m.cookies {
			c := &m.cookies[i]
			v, ok := Cookie(header, c.name)
			if !c.match(v, ok) {
				return false
			}
		}
	}
	return true
}
