package canary

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/meshwasm/meshwasm/internal/confjson"
)

// Defaults for optional configuration.
const (
	defaultRouteHeader  = "x-route-version"
	defaultGuardKey     = "meshwasm.canary.guard"
	defaultStickyTTL    = 24 * time.Hour
	defaultMirrorWait   = time.Second
	defaultWindow       = 100
	defaultMinRequests  = 20
	defaultErrorRatio   = 0.5
	defaultConsecutive  = 5
	defaultCooldown     = 30 * time.Second
	defaultProbePercent = 5
	defaultProbeOK      = 10
	maxWeight           = 1_000_000
	maxModulo           = math.MaxUint32
	maxCookieTTL        = 400 * 24 * time.Hour // browsers cap Max-Age here
)

// Parse reads a JSON configuration (see README.md) into a Router. Unknown
// keys and bad values are refused with their JSON path.
func Parse(data []byte) (*Router, error) {
	root, err := confjson.Parse(data)
	if err != nil {
		return nil, err
	}
	if err := root.Object("routeHeader", "responseHeader", "versions", "default", "trust", "rules", "sticky", "mirror", "guard"); err != nil {
		return nil, err
	}
	r := &Router{}
	if r.routeHeader, err = headerName(root.Get("routeHeader"), defaultRouteHeader); err != nil {
		return nil, err
	}
	if r.responseHeader, err = headerName(root.Get("responseHeader"), ""); err != nil {
		return nil, err
	}
	if err := r.parseVersions(root); err != nil {
		return nil, err
	}
	if err := r.parseTrust(root.Get("trust")); err != nil {
		return nil, err
	}
	if err := r.parseRules(root.Get("rules")); err != nil {
		return nil, err
	}
	if r.sticky, err = r.parseSticky(root.Get("sticky")); err != nil {
		return nil, err
	}
	if r.mirror, err = parseMirror(root.Get("mirror")); err != nil {
		return nil, err
	}
	if r.guard, err = r.parseGuard(root.Get("guard")); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Router) parseVersions(root confjson.Node) error {
	n := root.Get("versions")
	if !n.Exists() {
		return n.Errorf("required")
	}
	elems, err := n.Array()
	if err != nil {
		return err
	}
	if len(elems) == 0 {
		return n.Errorf("at least one version is required")
	}
	for _, e := range elems {
		v, err := versionName(e)
		if err != nil {
			return err
		}
		if r.versionIndex(v) >= 0 {
			return e.Errorf("duplicate version %q", v)
		}
		r.versions = append(r.versions, v)
	}
	r.def, err = r.version(root.Get("default"), r.versions[0])
	return err
}

// version reads a reference to a configured version; def applies when the
// value is missing and def is not "".
func (r *Router) version(n confjson.Node, def string) (int, error) {
	var (
		s   string
		err error
	)
	if def == "" {
		s, err = n.String()
	} else {
		s, err = n.OptString(def)
	}
	if err != nil {
		return 0, err
	}
	i := r.versionIndex(s)
	if i < 0 {
		return 0, n.Errorf("unknown version %q", s)
	}
	return i, nil
}

func (r *Router) parseTrust(n confjson.Node) error {
	if err := n.Object("headers", "principals"); err != nil {
		return err
	}
	headers, err := n.Get("headers").Array()
	if err != nil {
		return err
	}
	for _, h := range headers {
		if err := h.Object("name", "value"); err != nil {
			return err
		}
		if !h.Exists() {
			return h.Errorf("must be an object")
		}
		name, err := headerName(h.Get("name"), "")
		if err != nil {
			return err
		}
		if name == "" {
			return h.Get("name").Errorf("required")
		}
		if name == r.routeHeader {
			return h.Get("name").Errorf("cannot be the routing header")
		}
		value, err := h.Get("value").String()
		if err != nil {
			return err
		}
		r.trustHeaders = append(r.trustHeaders, trustHeader{name: name, value: value})
	}
	r.trustPrincipals, err = n.Get("principals").Strings()
	return err
}

func (r *Router) parseRules(n confjson.Node) error {
	elems, err := n.Array()
	if err != nil {
		return err
	}
	for i, e := range elems {
		if !e.Exists() {
			return e.Errorf("must be an object")
		}
		if err := e.Object("name", "match", "route", "split"); err != nil {
			return err
		}
		ru := rule{name: strconv.Itoa(i)}
		if e.Get("name").Exists() {
			if ru.name, err = token(e.Get("name"), "rule name"); err != nil {
				return err
			}
			for _, prev := range r.rules {
				if prev.name == ru.name {
					return e.Get("name").Errorf("duplicate rule name %q", ru.name)
				}
			}
		}
		if ru.match, err = parseMatch(e.Get("match")); err != nil {
			return err
		}
		kind, err := exactlyOne(e, "route", "split")
		if err != nil {
			return err
		}
		if kind == "route" {
			if ru.target, err = r.version(e.Get("route"), ""); err != nil {
				return err
			}
		} else if ru.split, err = r.parseSplit(e.Get("split")); err != nil {
			return err
		}
		r.rules = append(r.rules, ru)
	}
	return nil
}

func parseMatch(n confjson.Node) (match, error) {
	var m match
	if err := n.Object("methods", "path", "headers", "query", "cookies"); err != nil {
		return m, err
	}
	methods, err := n.Get("methods").Array()
	if err != nil {
		return m, err
	}
	for _, e := range methods {
		s, err := e.String()
		if err != nil {
			return m, err
		}
		if !isToken(s) || strings.ToUpper(s) != s {
			return m, e.Errorf("invalid method %q (want an upper-case token such as \"GET\")", s)
		}
		m.methods = append(m.methods, s)
	}
	if m.path, err = parsePath(n.Get("path")); err != nil {
		return m, err
	}
	if m.headers, err = parseValues(n.Get("headers"), true); err != nil {
		return m, err
	}
	if m.query, err = parseValues(n.Get("query"), false); err != nil {
		return m, err
	}
	if m.cookies, err = parseValues(n.Get("cookies"), false); err != nil {
		return m, err
	}
	return m, nil
}

func parsePath(n confjson.Node) (*pathMatcher, error) {
	if !n.Exists() {
		return nil, nil
	}
	if err := n.Object("exact", "prefix", "regex"); err != nil {
		return nil, err
	}
	kind, err := exactlyOne(n, "exact", "prefix", "regex")
	if err != nil {
		return nil, err
	}
	v := n.Get(kind)
	s, err := v.String()
	if err != nil {
		return nil, err
	}
	switch kind {
	case "regex":
		re, err := compile(v, s)
		return &pathMatcher{kind: pathRegex, re: re}, err
	case "exact":
		if !strings.HasPrefix(s, "/") {
			return nil, v.Errorf(`must start with "/"`)
		}
		return &pathMatcher{kind: pathExact, text: s}, nil
	}
	if !strings.HasPrefix(s, "/") {
		return nil, v.Errorf(`must start with "/"`)
	}
	return &pathMatcher{kind: pathPrefix, text: s}, nil
}

var valueKinds = []string{"exact", "prefix", "suffix", "regex", "present", "absent", "modulo"}

// parseValues reads header, query parameter or cookie matchers; header names
// must be lowercase, as the host delivers them.
func parseValues(n confjson.Node, header bool) ([]valueMatcher, error) {
	elems, err := n.Array()
	if err != nil {
		return nil, err
	}
	var out []valueMatcher
	for _, e := range elems {
		if !e.Exists() {
			return nil, e.Errorf("must be an object")
		}
		if err := e.Object(append([]string{"name", "invert"}, valueKinds...)...); err != nil {
			return nil, err
		}
		var m valueMatcher
		if header {
			m.name, err = headerName(e.Get("name"), "")
			if err == nil && m.name == "" {
				err = e.Get("name").Errorf("required")
			}
		} else {
			m.name, err = e.Get("name").String()
		}
		if err != nil {
			return nil, err
		}
		if m.invert, err = e.Get("invert").Bool(false); err != nil {
			return nil, err
		}
		kind, err := exactlyOne(e, valueKinds...)
		if err != nil {
			return nil, err
		}
		v := e.Get(kind)
		switch kind {
		case "present", "absent":
			b, err := v.Bool(false)
			if err != nil {
				return nil, err
			}
			if !b {
				return nil, v.Errorf("must be true (use invert to negate)")
			}
			m.kind = kindPresent
			if kind == "absent" {
				m.kind = kindAbsent
			}
		case "modulo":
			if err := parseModulo(v, &m); err != nil {
				return nil, err
			}
		default:
			s, err := v.String()
			if err != nil {
				return nil, err
			}
			m.text = s
			switch kind {
			case "exact":
				m.kind = kindExact
			case "prefix":
				m.kind = kindPrefix
			case "suffix":
				m.kind = kindSuffix
			case "regex":
				m.kind = kindRegex
				if m.re, err = compile(v, s); err != nil {
					return nil, err
				}
			}
		}
		out = append(out, m)
	}
	return out, nil
}

func parseModulo(n confjson.Node, m *valueMatcher) error {
	if !n.Exists() {
		return n.Errorf("must be an object")
	}
	if err := n.Object("divisor", "remainder"); err != nil {
		return err
	}
	if !n.Get("divisor").Exists() {
		return n.Get("divisor").Errorf("required")
	}
	d, err := n.Get("divisor").Int(0, 2, maxModulo)
	if err != nil {
		return err
	}
	rem, err := n.Get("remainder").Int(0, 0, maxModulo)
	if err != nil {
		return err
	}
	if rem >= d {
		return n.Get("remainder").Errorf("must be less than divisor %d", d)
	}
	m.kind, m.divisor, m.remainder = kindModulo, uint64(d), uint64(rem)
	return nil
}

// compile compiles an RE2 expression that must match the whole value, as
// Envoy's safe_regex does.
func compile(n confjson.Node, expr string) (*regexp.Regexp, error) {
	// Compiled alone first so that an error quotes the user's text, not
	// the anchors around it.
	if _, err := regexp.Compile(expr); err != nil {
		return nil, n.Errorf("invalid regex: %v", err)
	}
	return regexp.Compile("^(?:" + expr + ")$")
}

func (r *Router) parseSplit(n confjson.Node) (*split, error) {
	if err := n.Object("weights", "hashOn"); err != nil {
		return nil, err
	}
	if !n.Exists() {
		return nil, n.Errorf("must be an object")
	}
	wn := n.Get("weights")
	if !wn.Exists() {
		return nil, wn.Errorf("required")
	}
	members, err := wn.Members()
	if err != nil {
		return nil, err
	}
	s := &split{}
	for _, mem := range members {
		v := r.versionIndex(mem.Key)
		if v < 0 {
			return nil, mem.Value.Errorf("unknown version")
		}
		w, err := mem.Value.Int(0, 0, maxWeight)
		if err != nil {
			return nil, err
		}
		if !mem.Value.Exists() {
			return nil, mem.Value.Errorf("must be a number")
		}
		if w == 0 {
			continue
		}
		s.versions = append(s.versions, v)
		s.weights = append(s.weights, float64(w))
		s.seeds = append(s.seeds, hashString(mem.Key))
	}
	if len(s.versions) == 0 {
		return nil, wn.Errorf("at least one weight must be positive")
	}
	if err := parseHashOn(n.Get("hashOn"), s); err != nil {
		return nil, err
	}
	return s, nil
}

func parseHashOn(n confjson.Node, s *split) error {
	if !n.Exists() {
		s.source = hashRandom
		return nil
	}
	if err := n.Object("header", "cookie", "sourceAddress", "random"); err != nil {
		return err
	}
	kind, err := exactlyOne(n, "header", "cookie", "sourceAddress", "random")
	if err != nil {
		return err
	}
	v := n.Get(kind)
	switch kind {
	case "header":
		s.source = hashHeader
		s.name, err = headerName(v, "")
	case "cookie":
		s.source = hashCookie
		s.name, err = cookieName(v)
	default:
		var b bool
		if b, err = v.Bool(false); err == nil && !b {
			err = v.Errorf("must be true")
		}
		s.source = hashRandom
		if kind == "sourceAddress" {
			s.source = hashSourceAddress
		}
	}
	return err
}

func (r *Router) parseSticky(n confjson.Node) (*sticky, error) {
	if !n.Exists() {
		return nil, nil
	}
	if err := n.Object("cookie", "ttl", "path", "domain", "httpOnly", "secure", "sameSite"); err != nil {
		return nil, err
	}
	name, err := cookieName(n.Get("cookie"))
	if err != nil {
		return nil, err
	}
	ttl, err := n.Get("ttl").Duration(defaultStickyTTL, time.Second, maxCookieTTL)
	if err != nil {
		return nil, err
	}
	path, err := n.Get("path").OptString("/")
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, ";\x00\r\n") {
		return nil, n.Get("path").Errorf(`must start with "/" and not contain ";" or control characters`)
	}
	domain, err := n.Get("domain").OptString("")
	if err != nil {
		return nil, err
	}
	if domain != "" && !isDomain(domain) {
		return nil, n.Get("domain").Errorf("invalid domain %q", domain)
	}
	httpOnly, err := n.Get("httpOnly").Bool(true)
	if err != nil {
		return nil, err
	}
	secure, err := n.Get("secure").Bool(false)
	if err != nil {
		return nil, err
	}
	sameSite, err := n.Get("sameSite").OneOf("Lax", "Strict", "Lax", "None")
	if err != nil {
		return nil, err
	}
	if sameSite == "None" && !secure {
		return nil, n.Get("sameSite").Errorf(`"None" requires secure: true`)
	}
	st := &sticky{cookie: name}
	attrs := "; Path=" + path
	if domain != "" {
		attrs += "; Domain=" + domain
	}
	attrs += "; Max-Age=" + strconv.FormatInt(int64(ttl/time.Second), 10)
	if httpOnly {
		attrs += "; HttpOnly"
	}
	if secure {
		attrs += "; Secure"
	}
	attrs += "; SameSite=" + sameSite
	for _, v := range r.versions {
		st.setCookie = append(st.setCookie, name+"="+v+attrs)
	}
	return st, nil
}

func parseMirror(n confjson.Node) (*Mirror, error) {
	if !n.Exists() {
		return nil, nil
	}
	if err := n.Object("cluster", "timeout", "headers", "authority", "percent"); err != nil {
		return nil, err
	}
	m := &Mirror{}
	var err error
	if m.Cluster, err = n.Get("cluster").String(); err != nil {
		return nil, err
	}
	if m.Timeout, err = n.Get("timeout").Duration(defaultMirrorWait, time.Millisecond, time.Minute); err != nil {
		return nil, err
	}
	headers, err := n.Get("headers").Array()
	if err != nil {
		return nil, err
	}
	for _, h := range headers {
		name, err := headerName(h, "")
		if err != nil {
			return nil, err
		}
		if name == "" {
			return nil, h.Errorf("required")
		}
		m.headers = append(m.headers, name)
	}
	if m.authority, err = n.Get("authority").OptString(""); err != nil {
		return nil, err
	}
	pct, err := n.Get("percent").Float(100, 0, 100)
	if err != nil {
		return nil, err
	}
	m.share = uint64(math.Round(pct * 100))
	return m, nil
}

func (r *Router) parseGuard(n confjson.Node) (*Guard, error) {
	if !n.Exists() {
		return nil, nil
	}
	if err := n.Object("versions", "window", "minRequests", "maxErrorRatio", "consecutive5xx",
		"cooldown", "probePercent", "probeSuccesses", "key", "onStoreError"); err != nil {
		return nil, err
	}
	g := &Guard{keys: make([]string, len(r.versions))}
	prefix, err := n.Get("key").OptString(defaultGuardKey)
	if err != nil {
		return nil, err
	}
	vn := n.Get("versions")
	if vn.Exists() {
		elems, err := vn.Array()
		if err != nil {
			return nil, err
		}
		for _, e := range elems {
			v, err := r.version(e, "")
			if err != nil {
				return nil, err
			}
			if v == r.def {
				return nil, e.Errorf("the default version cannot be guarded: diverted traffic goes to it")
			}
			g.keys[v] = prefix + "." + r.versions[v]
		}
	} else {
		for v, name := range r.versions {
			if v != r.def {
				g.keys[v] = prefix + "." + name
			}
		}
	}
	guarded := false
	for _, k := range g.keys {
		guarded = guarded || k != ""
	}
	if !guarded {
		return nil, vn.Errorf("no version to guard besides the default")
	}
	window, err := n.Get("window").Int(defaultWindow, 1, maxWindow)
	if err != nil {
		return nil, err
	}
	g.window = uint16(window)
	minReq, err := n.Get("minRequests").Int(min(defaultMinRequests, window), 1, maxWindow)
	if err != nil {
		return nil, err
	}
	if minReq > window {
		return nil, n.Get("minRequests").Errorf("must not exceed window %d", window)
	}
	g.minRequests = int(minReq)
	if g.maxErrorRatio, err = n.Get("maxErrorRatio").Float(defaultErrorRatio, 0, 1); err != nil {
		return nil, err
	}
	consecutive, err := n.Get("consecutive5xx").Int(defaultConsecutive, 0, math.MaxUint16)
	if err != nil {
		return nil, err
	}
	g.consecutive = uint32(consecutive)
	if g.maxErrorRatio == 0 && g.consecutive == 0 {
		return nil, n.Errorf("maxErrorRatio and consecutive5xx are both 0: the guard could never trip")
	}
	if g.cooldown, err = n.Get("cooldown").Duration(defaultCooldown, time.Second, 24*time.Hour); err != nil {
		return nil, err
	}
	pct, err := n.Get("probePercent").Float(defaultProbePercent, 0.01, 100)
	if err != nil {
		return nil, err
	}
	g.probeShare = uint64(math.Round(pct * 100))
	probeOK, err := n.Get("probeSuccesses").Int(defaultProbeOK, 1, 10_000)
	if err != nil {
		return nil, err
	}
	g.probeSuccesses = uint32(probeOK)
	mode, err := n.Get("onStoreError").OneOf("admit", "admit", "divert")
	if err != nil {
		return nil, err
	}
	g.admitOnError = mode == "admit"
	return g, nil
}

// exactlyOne returns which of keys n holds, refusing none or several.
func exactlyOne(n confjson.Node, keys ...string) (string, error) {
	found := ""
	for _, k := range keys {
		if !n.Get(k).Exists() {
			continue
		}
		if found != "" {
			return "", n.Errorf("%s and %s are exclusive", found, k)
		}
		found = k
	}
	if found == "" {
		return "", n.Errorf("one of %s is required", strings.Join(keys, ", "))
	}
	return found, nil
}

// headerName reads a lowercase HTTP header name (Envoy delivers names
// lowercased, so an upper-case name in a config would never match).
// Pseudo-headers are refused: the router sets them, not this filter.
func headerName(n confjson.Node, def string) (string, error) {
	s, err := n.OptString(def)
	if err != nil || s == "" {
		return s, err
	}
	if !isToken(s) || strings.ToLower(s) != s {
		return "", n.Errorf("invalid header name %q (want a lowercase token)", s)
	}
	return s, nil
}

func cookieName(n confjson.Node) (string, error) {
	s, err := n.String()
	if err != nil {
		return "", err
	}
	if !isToken(s) {
		return "", n.Errorf("invalid cookie name %q", s)
	}
	return s, nil
}

// versionName reads a version name. Names travel in a header, a cookie value
// and metric names, so they are limited to characters safe in all three.
func versionName(n confjson.Node) (string, error) {
	return token(n, "version name")
}

func token(n confjson.Node, what string) (string, error) {
	s, err := n.String()
	if err != nil {
		return "", err
	}
	if len(s) > 64 {
		return "", n.Errorf("%s longer than 64 characters", what)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return "", n.Errorf("invalid %s %q (letters, digits, \".\", \"_\", \"-\")", what, s)
		}
	}
	return s, nil
}

// isToken reports whether s is an RFC 9110 token (header and cookie names).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

func isDomain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}
