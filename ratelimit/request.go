package ratelimit

import (
	"encoding/binary"
	"regexp"
	"strings"

	"github.com/meshwasm/meshwasm/internal/confjson"
)

// Request is the filter's view of one request. Implementations should fetch
// from the host lazily: a request that matches no rule asks for nothing but
// its method, path and the headers its rules match on.
type Request interface {
	// Method is the :method pseudo-header.
	Method() string
	// Path is the :path pseudo-header; the query string is ignored here.
	Path() string
	// Header looks up a request header by its lowercase name. Envoy joins
	// repeated headers with ",".
	Header(name string) (string, bool)
	// RemoteAddress is the downstream address, "ip:port" or a bare IP (the
	// source.address property); the port is ignored here.
	RemoteAddress() string
	// Property reads a host property by its dotted path, for example
	// "connection.uri_san_peer_certificate" for the SPIFFE principal.
	Property(path string) (string, bool)
}

type sourceKind uint8

const (
	srcNone sourceKind = iota
	srcRemoteAddress
	srcPath
	srcMethod
	srcHeader
	srcProperty
	srcConstant
)

// source is where one key part (or a tier selector) takes its value.
type source struct {
	kind sourceKind
	arg  string
}

// parseSource reads "remote_address", "path", "method", "header:<name>",
// "property:<dotted.path>" or "constant:<value>".
func parseSource(n confjson.Node) (source, error) {
	s, err := n.String()
	if err != nil {
		return source{}, err
	}
	switch s {
	case "remote_address":
		return source{kind: srcRemoteAddress}, nil
	case "path":
		return source{kind: srcPath}, nil
	case "method":
		return source{kind: srcMethod}, nil
	}
	kind, arg, _ := strings.Cut(s, ":")
	if arg != "" {
		switch kind {
		case "header":
			return source{kind: srcHeader, arg: strings.ToLower(arg)}, nil
		case "property":
			return source{kind: srcProperty, arg: arg}, nil
		case "constant":
			return source{kind: srcConstant, arg: arg}, nil
		}
	}
	return source{}, n.Errorf(`unknown key source %q (want remote_address, path, method, header:<name>, property:<path> or constant:<value>)`, s)
}

// descriptorKey is the descriptor entry key a global rule sends for this
// part unless descriptorKeys overrides it; constants follow Envoy's
// generic_key convention.
func (s source) descriptorKey() string {
	switch s.kind {
	case srcRemoteAddress:
		return "remote_address"
	case srcPath:
		return "path"
	case srcMethod:
		return "method"
	case srcConstant:
		return "generic_key"
	}
	return s.arg
}

func (s source) value(req Request, path string) (string, bool) {
	switch s.kind {
	case srcRemoteAddress:
		a := hostOnly(req.RemoteAddress())
		return a, a != ""
	case srcPath:
		return path, true
	case srcMethod:
		return req.Method(), true
	case srcHeader:
		return req.Header(s.arg)
	case srcProperty:
		return req.Property(s.arg)
	case srcConstant:
		return s.arg, true
	}
	return "", false
}

// hostOnly strips the port from "ip:port" or "[ipv6]:port" without
// allocating; a bare IPv6 address is returned as is.
func hostOnly(addr string) string {
	if strings.HasPrefix(addr, "[") {
		if end := strings.IndexByte(addr, ']'); end > 0 {
			return addr[1:end]
		}
		return addr
	}
	if i := strings.LastIndexByte(addr, ':'); i >= 0 && strings.IndexByte(addr, ':') == i {
		return addr[:i]
	}
	return addr
}

func stripQuery(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return p[:i]
	}
	return p
}

const (
	partMissing = 0
	partPresent = 1
	// ownerHashed marks an owner stored as the SHA-256 of its key parts.
	ownerHashed = 0xfe
	// maxRawOwner is the longest key stored verbatim in a bucket entry.
	maxRawOwner = 64
)

// appendKey appends the rule's key parts to dst, each tagged and length
// prefixed so distinct part lists never encode alike. ok is false when a
// part is missing and the rule skips such requests.
func (r *rule) appendKey(dst []byte, req Request, path string) (out []byte, ok bool) {
	for _, s := range r.key {
		v, found := s.value(req, path)
		if !found {
			if !r.fallback {
				return dst, false
			}
			dst = append(dst, partMissing)
			continue
		}
		dst = append(dst, partPresent)
		dst = binary.AppendUvarint(dst, uint64(len(v)))
		dst = append(dst, v...)
	}
	return dst, true
}

// tier picks the tier index for a request: the value of tiers.from names the
// tier; a missing or unknown value selects the default tier.
func (r *rule) tier(req Request, path string) int {
	if r.tierFrom.kind == srcNone {
		return 0
	}
	v, ok := r.tierFrom.value(req, path)
	if !ok {
		return r.tierDefault
	}
	for i, name := range r.tierNames {
		if name == v {
			return i
		}
	}
	return r.tierDefault
}

type strMatchKind uint8

const (
	matchExact strMatchKind = iota
	matchPrefix
	matchSuffix
	matchRegex
	matchPresent
	matchAbsent
)

type strMatch struct {
	kind strMatchKind
	s    string
	re   *regexp.Regexp
}

func (m *strMatch) match(v string) bool {
	switch m.kind {
	case matchExact:
		return v == m.s
	case matchPrefix:
		return strings.HasPrefix(v, m.s)
	case matchSuffix:
		return strings.HasSuffix(v, m.s)
	case matchRegex:
		return m.re.MatchString(v)
	}
	return false
}

type headerMatch struct {
	name string
	strMatch
}

// matcher selects the requests a rule applies to: any listed method, any
// listed path, and every listed header condition. Empty lists match all.
type matcher struct {
	methods []string
	paths   []strMatch
	headers []headerMatch
}

func (m *matcher) matches(req Request, path string) bool {
	if len(m.methods) > 0 {
		method := req.Method()
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
	if len(m.paths) > 0 {
		found := false
		for i := range m.paths {
			if m.paths[i].match(path) {
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
		switch h.kind {
		case matchPresent:
			if !ok {
				return false
			}
		case matchAbsent:
			if ok {
				return false
			}
		default:
			if !ok || !h.match(v) {
				return false
			}
		}
	}
	return true
}

func parseMatch(n confjson.Node) (matcher, error) {
	var m matcher
	if err := n.Object("methods", "paths", "headers"); err != nil {
		return m, err
	}
	var err error
	if m.methods, err = n.Get("methods").Strings(); err != nil {
		return m, err
	}
	paths, err := n.Get("paths").Array()
	if err != nil {
		return m, err
	}
	for _, p := range paths {
		sm, err := parseStrMatch(p, "exact", "prefix", "suffix", "regex")
		if err != nil {
			return m, err
		}
		m.paths = append(m.paths, sm)
	}
	headers, err := n.Get("headers").Array()
	if err != nil {
		return m, err
	}
	for _, h := range headers {
		sm, err := parseStrMatch(h, "name", "exact", "prefix", "regex", "present", "absent")
		if err != nil {
			return m, err
		}
		name, err := h.Get("name").String()
		if err != nil {
			return m, err
		}
		m.headers = append(m.headers, headerMatch{name: strings.ToLower(name), strMatch: sm})
	}
	return m, nil
}

// parseStrMatch reads an object holding exactly one of the given operators
// ("name" is allowed alongside and otherwise ignored).
func parseStrMatch(n confjson.Node, known ...string) (strMatch, error) {
	if !n.Exists() {
		return strMatch{}, n.Errorf("must be an object")
	}
	if err := n.Object(known...); err != nil {
		return strMatch{}, err
	}
	var (
		sm    strMatch
		found []string
	)
	for _, k := range known {
		if k == "name" || !n.Get(k).Exists() {
			continue
		}
		found = append(found, k)
		v := n.Get(k)
		var err error
		switch k {
		case "exact":
			sm.kind = matchExact
			sm.s, err = v.String()
		case "prefix":
			sm.kind = matchPrefix
			sm.s, err = v.String()
		case "suffix":
			sm.kind = matchSuffix
			sm.s, err = v.String()
		case "regex":
			sm.kind = matchRegex
			if sm.s, err = v.String(); err == nil {
				if sm.re, err = regexp.Compile(sm.s); err != nil {
					err = v.Errorf("invalid regex: %v", err)
				}
			}
		case "present", "absent":
			sm.kind = matchPresent
			if k == "absent" {
				sm.kind = matchAbsent
			}
			var b bool
			if b, err = v.Bool(false); err == nil && !b {
				err = v.Errorf("must be true (omit the condition instead)")
			}
		}
		if err != nil {
			return strMatch{}, err
		}
	}
	ops := known[indexOf(known, "exact"):]
	if len(found) != 1 {
		return strMatch{}, n.Errorf("needs exactly one of %v", ops)
	}
	return sm, nil
}
