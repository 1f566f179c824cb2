// Package canary owns the canary filter's decision: which version of a service
// a request goes to. Rules are tried in order (header, query, cookie, path and
// method matchers, and a numeric modulo of a header for even/odd user splits);
// the first match routes to a fixed version or to a consistent weighted split.
// A sticky cookie pins a client to its version, a client-supplied routing
// header is honoured only from trusted callers, and a guard per canary version
// (a circuit breaker over response outcomes, its state kept in Envoy shared
// data) stops new traffic to a failing canary.
//
// The package is pure Go: the proxy-wasm filter (filters/canary) parses the
// configuration once with Parse, calls Router.Decide per request and sets the
// routing header it returns, then reports each guarded response with
// Router.Record. Envoy's route table matches the routing header to a cluster
// per version. See https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/route/v3/route_components.proto#config-route-v3-headermatcher
// for the route side, and README.md for the configuration reference.
package canary

import (
	"crypto/subtle"
	"strings"
	"time"
)

// Router is a parsed, immutable canary configuration. It is safe to share:
// nothing in it changes after Parse.
type Router struct {
	routeHeader     string
	responseHeader  string
	versions        []string
	def             int
	trustHeaders    []trustHeader
	trustPrincipals []string // exact, or a prefix when ending in "*"
	rules           []rule
	sticky          *sticky
	mirror          *Mirror
	guard           *Guard
}

type trustHeader struct{ name, value string }

type rule struct {
	name   string
	match  match
	target int    // fixed version index, when split is nil
	split  *split // weighted split, or nil
}

// allows reports whether version v is a possible outcome of the rule, which is
// when a sticky cookie naming it is honoured.
func (ru *rule) allows(v int) bool {
	if ru.split == nil {
		return v == ru.target
	}
	return ru.split.has(v)
}

type sticky struct {
	cookie    string
	setCookie []string // Set-Cookie value per version, built at Parse
}

// Reason says how a decision was reached; the filter may count it.
type Reason uint8

const (
	// ReasonDefault: no rule matched; the default version.
	ReasonDefault Reason = iota
	// ReasonRule: the matching rule routes to a fixed version.
	ReasonRule
	// ReasonSplit: the matching rule's weighted split picked the version.
	ReasonSplit
	// ReasonSticky: the sticky cookie's version was honoured.
	ReasonSticky
	// ReasonTrusted: a trusted caller chose the version with the routing
	// header.
	ReasonTrusted
)

func (r Reason) String() string {
	switch r {
	case ReasonRule:
		return "rule"
	case ReasonSplit:
		return "split"
	case ReasonSticky:
		return "sticky"
	case ReasonTrusted:
		return "trusted"
	}
	return "default"
}

// ClientHeader says what happened to a routing header the client sent.
type ClientHeader uint8

const (
	// ClientHeaderAbsent: the client sent no routing header.
	ClientHeaderAbsent ClientHeader = iota
	// ClientHeaderHonoured: a trusted client named a known version.
	ClientHeaderHonoured
	// ClientHeaderReplaced: the header was untrusted or named an unknown
	// version; the filter's replacement overwrites it. Count it: it is
	// either a misconfigured caller or a spoofing attempt.
	ClientHeaderReplaced
)

// Env is what a decision needs besides the request: the time and a random
// number (injected so that tests are deterministic) and the guard's store.
type Env struct {
	// Now is the current time, for the guard's cooldown.
	Now time.Time
	// Random is a fresh uniform random number per request. It drives
	// "random" splits, splits whose key is missing, the guard's probe share
	// and mirror sampling (each from an independently mixed copy).
	Random uint64
	// Store holds the guard's shared state; needed only when a guard is
	// configured.
	Store Store
}

// Decision is the outcome for one request. The filter:
//   - replaces (never adds) the RouteHeader with Version, which also strips
//     a spoofed client value;
//   - adds SetCookie, when not empty, as a Set-Cookie response header;
//   - adds the ResponseHeader with Version, when configured;
//   - fires the mirror callout when Mirror is true;
//   - after the response, calls Router.Record with VersionIndex.
type Decision struct {
	Version      string
	VersionIndex int
	// Rule is the index of the matching rule (see Router.RuleNames), -1 when
	// none matched or a trusted caller chose the version.
	Rule         int
	Reason       Reason
	ClientHeader ClientHeader
	SetCookie    string
	Mirror       bool
	// DivertedFrom is the version index the guard refused (the request went
	// to the default version instead), -1 when the guard did not intervene.
	DivertedFrom int
	// GuardErr is a failure to read the guard's state; the request was then
	// admitted or diverted as guard.onStoreError says.
	GuardErr error
}

// Salts that derive independent random numbers from Env.Random.
const (
	saltProbe  = 0x9e3779b97f4a7c15
	saltMirror = 0xd1b54a32d192ed03
)

// Decide returns the version for req. It never fails: every path ends in a
// version, the default one when nothing else applies.
func (r *Router) Decide(req Request, env Env) Decision {
	d := Decision{Rule: -1, DivertedFrom: -1}
	if r.mirror != nil {
		d.Mirror = mix64(env.Random^saltMirror)%10000 < r.mirror.share
	}
	if v, ok := req.Header(r.routeHeader); ok {
		if i := r.versionIndex(v); i >= 0 && r.trusted(req) {
			d.setVersion(r, i)
			d.Reason = ReasonTrusted
			d.ClientHeader = ClientHeaderHonoured
			return d
		}
		d.ClientHeader = ClientHeaderReplaced
	}
	for i := range r.rules {
		ru := &r.rules[i]
		if ru.match.matches(req) {
			d.Rule = i
			r.route(ru, req, env, &d)
			return d
		}
	}
	d.setVersion(r, r.def)
	return d
}

func (d *Decision) setVersion(r *Router, i int) {
	d.VersionIndex = i
	d.Version = r.versions[i]
}

func (r *Router) route(ru *rule, req Request, env Env, d *Decision) {
	cookieVersion := -1
	if r.sticky != nil {
		if h, ok := req.Header("cookie"); ok {
			if v, ok := Cookie(h, r.sticky.cookie); ok {
				cookieVersion = r.versionIndex(v)
			}
		}
	}
	var v int
	switch {
	case cookieVersion >= 0 && ru.allows(cookieVersion):
		v, d.Reason = cookieVersion, ReasonSticky
	case ru.split == nil:
		v, d.Reason = ru.target, ReasonRule
	default:
		key, ok := ru.split.key(req)
		if !ok {
			key = mix64(env.Random)
		}
		v, d.Reason = ru.split.pick(key), ReasonSplit
	}
	if !r.admit(v, env, d) {
		d.DivertedFrom = v
		d.setVersion(r, r.def)
		return
	}
	d.setVersion(r, v)
	if r.sticky != nil && v != cookieVersion {
		d.SetCookie = r.sticky.setCookie[v]
	}
}

func (r *Router) admit(v int, env Env, d *Decision) bool {
	g := r.guard
	if g == nil || !g.Guarded(v) {
		return true
	}
	if env.Store == nil {
		d.GuardErr = errNoStore
		return g.admitOnError
	}
	s, _, err := g.loadState(env.Store, v)
	if err != nil {
		d.GuardErr = err
		return g.admitOnError
	}
	return g.Admit(&s, env.Now, mix64(env.Random^saltProbe))
}

func (r *Router) versionIndex(name string) int {
	for i, v := range r.versions {
		if v == name {
			return i
		}
	}
	return -1
}

func (r *Router) trusted(req Request) bool {
	for _, h := range r.trustHeaders {
		if v, ok := req.Header(h.name); ok && subtle.ConstantTimeCompare([]byte(v), []byte(h.value)) == 1 {
			return true
		}
	}
	if len(r.trustPrincipals) == 0 {
		return false
	}
	p := req.Principal()
	if p == "" {
		return false
	}
	for _, want := range r.trustPrincipals {
		if prefix, ok := strings.CutSuffix(want, "*"); ok {
			if strings.HasPrefix(p, prefix) {
				return true
			}
		} else if p == want {
			return true
		}
	}
	return false
}

// RouteHeader is the request header the filter sets to Decision.Version.
func (r *Router) RouteHeader() string { return r.routeHeader }

// ResponseHeader is the response header naming the version that served the
// request, "" when not configured.
func (r *Router) ResponseHeader() string { return r.responseHeader }

// Versions lists the configured versions; Decision.VersionIndex indexes it.
// The caller must not modify it.
func (r *Router) Versions() []string { return r.versions }

// Default is the index of the default version.
func (r *Router) Default() int { return r.def }

// RuleNames lists the rules' names (their index when unnamed), for metrics;
// Decision.Rule indexes it.
func (r *Router) RuleNames() []string {
	out := make([]string, len(r.rules))
	for i := range r.rules {
		out[i] = r.rules[i].name
	}
	return out
}

// Mirror is the shadow-traffic configuration, nil when not configured.
func (r *Router) Mirror() *Mirror { return r.mirror }

// Guard is the canary guard, nil when not configured.
func (r *Router) Guard() *Guard { return r.guard }

// Mirror describes the fire-and-forget copy of a request's headers sent to a
// shadow cluster. The filter dispatches it with the proxy-wasm HTTP callout
// and discards the reply; the request never waits for it.
type Mirror struct {
	// Cluster is the Envoy cluster to call.
	Cluster string
	// Timeout bounds the callout.
	Timeout   time.Duration
	headers   []string
	authority string
	share     uint64 // out of 10000
}

// Headers builds the callout's headers from req: the pseudo-headers the
// callout needs (":method", ":path", ":authority") and the configured headers
// the request carries. Unless an authority is configured, the original one
// gets a "-shadow" suffix, as Envoy's own request mirroring does, so that the
// shadow can tell copies from real traffic.
func (m *Mirror) Headers(req Request) [][2]string {
	out := make([][2]string, 0, 3+len(m.headers))
	method, _ := req.Header(":method")
	path, _ := req.Header(":path")
	authority := m.authority
	if authority == "" {
		a, _ := req.Header(":authority")
		authority = mirrorAuthority(a)
	}
	out = append(out, [2]string{":method", method}, [2]string{":path", path}, [2]string{":authority", authority})
	for _, name := range m.headers {
		if v, ok := req.Header(name); ok {
			out = append(out, [2]string{name, v})
		}
	}
	return out
}

// mirrorAuthority appends "-shadow" to the host, before any port.
func mirrorAuthority(a string) string {
	host, port := a, ""
	if i := strings.LastIndexByte(a, ':'); i >= 0 && !strings.Contains(a[i:], "]") {
		host, port = a[:i], a[i:]
	}
	return host + "-shadow" + port
}
