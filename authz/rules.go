package authz

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/meshwasm/meshwasm/internal/confjson"
)

// attr is a request attribute a condition reads.
type attr uint8

const (
	attrPrincipal attr = iota
	attrNamespace
	attrRequestPrincipal
	attrAudiences
	attrPresenter
	attrClaim
	attrSourceIP
	attrRemoteIP
	attrDestinationIP
	attrDestinationPort
	attrHost
	attrMethod
	attrPath
	attrHeader
	attrSNI
)

// mtlsOnly reports whether an attribute exists only on mTLS connections. See
// https://istio.io/latest/news/security/istio-security-2021-004/.
func (a attr) mtlsOnly() bool { return a == attrPrincipal || a == attrNamespace }

// cond is one field of a source or operation, or one `when` entry: the
// attribute must match one of pos (when set) and none of neg (when set).
type cond struct {
	attr  attr
	key   string   // header name for attrHeader
	claim []string // claim path for attrClaim
	cid   int      // index of claim in Config.claims
	pos   values
	neg   values
	// hasPos and hasNeg are precomputed: the hot loop reads two bools.
	hasPos, hasNeg bool
}

// rule is one entry of a policy's rules: every present part must match.
type rule struct {
	from [][]cond // ORed sources, each an ANDed list of fields
	to   [][]cond // ORed operations
	when []cond
}

func (r *rule) match(rc *reqCtx, allow bool) bool {
	if len(r.from) > 0 && !anyMatch(r.from, rc, allow) {
		return false
	}
	if len(r.to) > 0 && !anyMatch(r.to, rc, allow) {
		return false
	}
	return allMatch(r.when, rc, allow)
}

func anyMatch(alts [][]cond, rc *reqCtx, allow bool) bool {
	for _, conds := range alts {
		if allMatch(conds, rc, allow) {
			return true
		}
	}
	return false
}

func allMatch(conds []cond, rc *reqCtx, allow bool) bool {
	for i := range conds {
		if !conds[i].match(rc, allow) {
			return false
		}
	}
	return true
}

// match evaluates the condition. An absent attribute never satisfies a
// positive list. It satisfies a negative list, as in Istio, except for
// mTLS-only attributes inside ALLOW policies: there a plain-text request
// would otherwise be allowed by `notNamespaces` (ISTIO-SECURITY-2021-004).
func (c *cond) match(rc *reqCtx, allow bool) bool {
	hasPos, hasNeg := c.hasPos, c.hasNeg
	if c.attr.clientText() {
		return c.matchText(rc, allow)
	}
	present, inPos, inNeg := c.eval(rc, hasPos, hasNeg)
	if !present {
		if hasPos {
			return false
		}
		return !(allow && c.attr.mtlsOnly())
	}
	return (!hasPos || inPos) && (!hasNeg || !inNeg)
}

// clientText reports attributes whose text the client writes freely: path,
// method and header values. Their matching never gives an ambiguity to the
// client; see matchText.
func (a attr) clientText() bool { return a == attrPath || a == attrMethod || a == attrHeader }

// matchText evaluates a condition on client-written text so that no spelling
// helps the client. The side of the condition that could let the request
// through (positive values in ALLOW, negative values elsewhere) compares
// exactly; the side that could stop it (negative values in ALLOW, positive
// values in DENY, CUSTOM and AUDIT) ignores ASCII case and, for paths, a
// trailing slash, because many servers do. A header Envoy joined from repeated
// fields ("admin,guest") is judged element by element: in ALLOW every
// element must satisfy the condition, elsewhere one is enough.
func (c *cond) matchText(rc *reqCtx, allow bool) bool {
	var v string
	ok := false
	switch c.attr {
	case attrPath:
		v, ok = rc.path, rc.path != ""
	case attrMethod:
		v, ok = rc.req.Method, rc.req.Method != ""
	case attrHeader:
		if rc.req.Headers != nil {
			v, ok = rc.req.Headers.Header(c.key)
		}
	}
	if !ok {
		return !c.hasPos
	}
	if c.attr != attrHeader {
		return c.matchElem(v, allow)
	}
	for {
		elem, rest, more := strings.Cut(v, ",")
		if c.matchElem(trimOWS(elem), allow) != allow {
			return !allow
		}
		if !more {
			return allow
		}
		v = rest
	}
}

func (c *cond) matchElem(v string, allow bool) bool {
	path := c.attr == attrPath
	if c.hasPos && !c.pos.matchText(v, !allow, path) {
		return false
	}
	return !c.hasNeg || !c.neg.matchText(v, allow, path)
}

// trimOWS removes HTTP optional whitespace (SP, HTAB) around a value.
func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// eval reads the attribute and reports whether it is present and whether it
// matches pos and neg.
func (c *cond) eval(rc *reqCtx, hasPos, hasNeg bool) (present, inPos, inNeg bool) {
	switch c.attr {
	case attrPrincipal:
		return c.str(rc.principal, rc.principal != "", hasPos, hasNeg)
	case attrNamespace:
		return c.str(rc.namespace, rc.namespace != "", hasPos, hasNeg)
	case attrRequestPrincipal:
		if rc.auth == nil {
			return false, false, false
		}
		return c.str(rc.auth.principal, true, hasPos, hasNeg)
	case attrPresenter:
		if rc.auth == nil || rc.auth.presenter == "" {
			return false, false, false
		}
		return c.str(rc.auth.presenter, true, hasPos, hasNeg)
	case attrAudiences:
		if rc.auth == nil || len(rc.auth.audiences) == 0 {
			return false, false, false
		}
		return c.multi(rc.auth.audiences, hasPos, hasNeg)
	case attrClaim:
		if rc.auth == nil {
			return false, false, false
		}
		vals := rc.auth.claims[c.cid]
		if len(vals) == 0 {
			return false, false, false
		}
		return c.multi(vals, hasPos, hasNeg)
	case attrSourceIP:
		return c.ip(rc.sourceIP)
	case attrRemoteIP:
		return c.ip(rc.remoteIP)
	case attrDestinationIP:
		return c.ip(rc.destinationIP)
	case attrDestinationPort:
		if rc.destinationPort == 0 {
			return false, false, false
		}
		return true, hasPos && c.pos.matchPort(rc.destinationPort), hasNeg && c.neg.matchPort(rc.destinationPort)
	case attrHost:
		a := rc.req.Authority
		if a == "" {
			return false, false, false
		}
		return true, hasPos && c.pos.matchHost(a), hasNeg && c.neg.matchHost(a)
	case attrSNI:
		return c.str(rc.req.SNI, rc.req.SNI != "", hasPos, hasNeg)
	}
	return false, false, false
}

func (c *cond) str(v string, ok, hasPos, hasNeg bool) (bool, bool, bool) {
	if !ok {
		return false, false, false
	}
	return true, hasPos && c.pos.matchString(v), hasNeg && c.neg.matchString(v)
}

func (c *cond) multi(vs []string, hasPos, hasNeg bool) (bool, bool, bool) {
	var inPos, inNeg bool
	for _, v := range vs {
		inPos = inPos || (hasPos && c.pos.matchString(v))
		inNeg = inNeg || (hasNeg && c.neg.matchString(v))
	}
	return true, inPos, inNeg
}

func (c *cond) ip(a netip.Addr) (bool, bool, bool) {
	if !a.IsValid() {
		return false, false, false
	}
	return true, c.pos.matchIP(a), c.neg.matchIP(a)
}

// field is one positive/negative pair of a source or an operation.
type field struct {
	pos, neg string
	attr     attr
	kind     valueKind
}

var sourceFields = []field{
	{"principals", "notPrincipals", attrPrincipal, kindString},
	{"requestPrincipals", "notRequestPrincipals", attrRequestPrincipal, kindString},
	{"namespaces", "notNamespaces", attrNamespace, kindString},
	{"ipBlocks", "notIpBlocks", attrSourceIP, kindIP},
	{"remoteIpBlocks", "notRemoteIpBlocks", attrRemoteIP, kindIP},
}

var operationFields = []field{
	{"hosts", "notHosts", attrHost, kindHost},
	{"ports", "notPorts", attrDestinationPort, kindPort},
	{"methods", "notMethods", attrMethod, kindString},
	{"paths", "notPaths", attrPath, kindString},
}

func fieldKeys(fs []field) []string {
	keys := make([]string, 0, 2*len(fs))
	for _, f := range fs {
		keys = append(keys, f.pos, f.neg)
	}
	return keys
}

// compileFields reads one `source` or `operation` object.
func compileFields(n confjson.Node, fs []field) ([]cond, error) {
	if !n.Exists() {
		return nil, n.Errorf("required")
	}
	if err := n.Object(fieldKeys(fs)...); err != nil {
		return nil, err
	}
	var conds []cond
	for _, f := range fs {
		pos, err := compileValues(n.Get(f.pos), f.kind)
		if err != nil {
			return nil, err
		}
		neg, err := compileValues(n.Get(f.neg), f.kind)
		if err != nil {
			return nil, err
		}
		if f.attr == attrPath {
			if err := checkPaths(n.Get(f.pos)); err != nil {
				return nil, err
			}
			if err := checkPaths(n.Get(f.neg)); err != nil {
				return nil, err
			}
		}
		if pos.empty() && neg.empty() {
			continue
		}
		conds = append(conds, cond{attr: f.attr, pos: pos, neg: neg, hasPos: !pos.empty(), hasNeg: !neg.empty()})
	}
	if len(conds) == 0 {
		return nil, n.Errorf("must set at least one field")
	}
	return conds, nil
}

// checkPaths refuses Istio path templates ({*}, {**}), which this filter
// does not implement: matching them literally would silently never match.
func checkPaths(n confjson.Node) error {
	elems, _ := n.Array()
	for _, e := range elems {
		s, _ := e.String()
		if strings.ContainsAny(s, "{}") {
			return e.Errorf("path templates are not supported")
		}
		if s != "*" && !strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "*") {
			return e.Errorf("path must start with '/' or '*'")
		}
	}
	return nil
}

// compileWhen reads one `when` entry.
func compileWhen(n confjson.Node) (cond, error) {
	if err := n.Object("key", "values", "notValues"); err != nil {
		return cond{}, err
	}
	if !n.Exists() {
		return cond{}, n.Errorf("must be an object")
	}
	key, err := n.Get("key").String()
	if err != nil {
		return cond{}, err
	}
	c, kind, err := parseWhenKey(key)
	if err != nil {
		return cond{}, n.Get("key").Errorf("%v", err)
	}
	if c.pos, err = compileValues(n.Get("values"), kind); err != nil {
		return cond{}, err
	}
	if c.neg, err = compileValues(n.Get("notValues"), kind); err != nil {
		return cond{}, err
	}
	c.hasPos, c.hasNeg = !c.pos.empty(), !c.neg.empty()
	if !c.hasPos && !c.hasNeg {
		return cond{}, n.Errorf("must set values or notValues")
	}
	if c.attr == attrHeader {
		for _, k := range []string{"values", "notValues"} {
			elems, _ := n.Get(k).Array()
			for _, e := range elems {
				if s, _ := e.String(); strings.IndexByte(s, ',') >= 0 {
					return cond{}, e.Errorf("contains ',': Envoy joins repeated headers with ',', so values are matched one element at a time")
				}
			}
		}
	}
	return c, nil
}

type whenErr string

func (e whenErr) Error() string { return string(e) }

func parseWhenKey(key string) (cond, valueKind, error) {
	simple := map[string]struct {
		a attr
		k valueKind
	}{
		"source.ip":              {attrSourceIP, kindIP},
		"remote.ip":              {attrRemoteIP, kindIP},
		"source.namespace":       {attrNamespace, kindString},
		"source.principal":       {attrPrincipal, kindString},
		"request.auth.principal": {attrRequestPrincipal, kindString},
		"request.auth.audiences": {attrAudiences, kindString},
		"request.auth.presenter": {attrPresenter, kindString},
		"destination.ip":         {attrDestinationIP, kindIP},
		"destination.port":       {attrDestinationPort, kindPort},
		"connection.sni":         {attrSNI, kindString},
	}
	if s, ok := simple[key]; ok {
		return cond{attr: s.a}, s.k, nil
	}
	if rest, ok := strings.CutPrefix(key, "request.headers"); ok {
		parts, err := brackets(rest)
		if err != nil || len(parts) != 1 {
			return cond{}, 0, whenErr("invalid header key " + strconv.Quote(key) + " (want request.headers[<name>])")
		}
		return cond{attr: attrHeader, key: strings.ToLower(parts[0])}, kindString, nil
	}
	if rest, ok := strings.CutPrefix(key, "request.auth.claims"); ok {
		parts, err := brackets(rest)
		if err != nil || len(parts) == 0 {
			return cond{}, 0, whenErr("invalid claim key " + strconv.Quote(key) + " (want request.auth.claims[<name>] or [<a>][<b>])")
		}
		return cond{attr: attrClaim, claim: parts}, kindString, nil
	}
	return cond{}, 0, whenErr("unknown key " + strconv.Quote(key))
}

// brackets splits `[a][b]` into a, b; every part must be non-empty.
func brackets(s string) ([]string, error) {
	var parts []string
	for s != "" {
		if s[0] != '[' {
			return nil, whenErr("bad brackets")
		}
		end := strings.IndexByte(s, ']')
		if end <= 1 || strings.IndexByte(s[1:end], '[') >= 0 {
			return nil, whenErr("bad brackets")
		}
		parts = append(parts, s[1:end])
		s = s[end+1:]
	}
	return parts, nil
}
