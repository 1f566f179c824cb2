package authz

import (
	"sync"
	"time"

	"github.com/meshwasm/meshwasm/internal/casstore"
)

// Clock returns the current time; tests inject a fake one.
type Clock func() time.Time

// Options are the engine's host dependencies.
type Options struct {
	// Clock defaults to time.Now.
	Clock Clock
	// Shared is the cross-worker store for remote key sets and cached
	// external authorization verdicts; defaults to a private in-memory store.
	Shared SharedData
}

// Engine decides requests for one configuration. It owns the mutable state
// a worker accumulates (key sets, verified tokens); it is safe for concurrent
// use, though a Wasm VM only ever calls it from one thread.
type Engine struct {
	cfg    *Config
	clock  Clock
	shared SharedData

	mu     sync.Mutex
	jwks   []jwksState
	tokens *tokenCache
}

// New builds an engine for cfg.
func New(cfg *Config, opts Options) *Engine {
	e := &Engine{cfg: cfg, clock: opts.Clock, shared: opts.Shared}
	if e.clock == nil {
		e.clock = time.Now
	}
	if e.shared == nil {
		e.shared = casstore.NewMemory()
	}
	e.jwks = make([]jwksState, len(cfg.jwt.providers))
	for i, p := range cfg.jwt.providers {
		if p.inline != nil {
			e.installKeys(&e.jwks[i], p.inline, time.Time{})
		}
	}
	e.tokens = newTokenCache(cfg.jwt.cacheSize)
	return e
}

// Config returns the configuration the engine was built with.
func (e *Engine) Config() *Config { return e.cfg }

// Verdict is what the filter must do with the request.
type Verdict uint8

// Verdicts.
const (
	// Allow: continue. Apply RemoveRequestHeaders, then SetRequestHeaders;
	// add ResponseHeaders to the upstream response.
	Allow Verdict = iota
	// Deny: send a local response with Status, Body and ResponseHeaders.
	Deny
	// Unauthenticated: an invalid JWT; send Status 401 with Body and
	// ResponseHeaders (WWW-Authenticate).
	Unauthenticated
	// BadRequest: the path cannot be normalized safely; send Status 400.
	BadRequest
	// CallCustom: pause the request, make Callout, then call Engine.Resolve
	// with the reply; the Decision then holds one of the verdicts above.
	CallCustom
)

var verdictNames = [...]string{"allow", "deny", "unauthenticated", "bad_request", "call_custom"}

func (v Verdict) String() string { return verdictNames[v] }

// Outcome is a per-policy metric event.
type Outcome uint8

// Outcomes, each a counter per policy.
const (
	OutcomeAllowed Outcome = iota
	OutcomeDenied
	OutcomeAudited
	OutcomeDryRunDenied
)

var outcomeNames = [...]string{"allowed", "denied", "audited", "dry_run_denied"}

func (o Outcome) String() string { return outcomeNames[o] }

// Mark is one metric event. Policy indexes [Config.Policies]; -1 is the
// implicit default deny when ALLOW policies exist and none matched.
type Mark struct {
	Policy  int
	Outcome Outcome
}

// Header is one HTTP header.
type Header struct {
	Name, Value string
}

// Decision is the result of a check. The caller owns it and should reuse it:
// Check resets it and reuses its slices, which is what keeps a decision free
// of allocations. A CallCustom decision belongs to its stream until Resolve;
// its slices are valid until the next Check on the same Decision.
type Decision struct {
	Verdict Verdict
	Status  int    // HTTP status of the local response (Deny, Unauthenticated, BadRequest)
	Body    string // body of the local response

	// ResponseHeaders go on the local response, or, with Allow, on the
	// upstream response (ext-authz headersToDownstreamOnAllow).
	ResponseHeaders []Header
	// RemoveRequestHeaders must be removed before SetRequestHeaders are
	// set: client-supplied copies of claim headers never reach upstream.
	RemoveRequestHeaders []string
	SetRequestHeaders    []Header

	// For the debug log only; never sent to the client.
	Policy string // policy that decided; "" for a default decision
	Rule   int    // index of the matching rule in Policy, -1 if none
	Reason string // why a request was refused before policies ran

	Marks       []Mark     // per-policy metric events
	JWTFailure  JWTFailure // set with Unauthenticated
	JWTProvider int        // provider of the token (verified or blamed), -1 if none

	Callout     Callout // set with CallCustom
	CustomCache bool    // the external verdict came from the cache
	CustomError bool    // the external check failed (timeout, garbage): failOpen decided

	pending pending
}

// pending is the local result waiting on an external check.
type pending struct {
	verdict     Verdict
	policy      string
	rule        int
	marksBefore int
	custom      *policy
	customRule  int
	key         [32]byte
	calloutBuf  [][2]string
}

func (d *Decision) reset() {
	*d = Decision{
		Rule:                 -1,
		JWTProvider:          -1,
		ResponseHeaders:      d.ResponseHeaders[:0],
		RemoveRequestHeaders: d.RemoveRequestHeaders[:0],
		SetRequestHeaders:    d.SetRequestHeaders[:0],
		Marks:                d.Marks[:0],
		pending:              pending{calloutBuf: d.pending.calloutBuf[:0]},
	}
}

func (d *Decision) local(v Verdict, status int, body, reason string) {
	d.Verdict, d.Status, d.Body, d.Reason = v, status, body, reason
}

// Check decides a request: path normalization (400), JWT authentication
// (401), then CUSTOM, DENY and ALLOW policies in Istio's order. AUDIT and
// dry-run policies only add Marks.
func (e *Engine) Check(r *Request, d *Decision) {
	d.reset()
	d.RemoveRequestHeaders = append(d.RemoveRequestHeaders, e.cfg.jwt.outputNames...)
	path, reason := NormalizePath(r.Path, e.cfg.slashes)
	if reason != "" {
		d.local(BadRequest, 400, "Bad Request", reason)
		return
	}
	var rc reqCtx
	if reason := rc.init(r, path, e.cfg.trustedHops); reason != "" {
		d.local(BadRequest, 400, "Bad Request", reason)
		return
	}
	if len(e.cfg.jwt.providers) > 0 && !e.authenticate(r, &rc, d) {
		return
	}
	e.authorize(r, &rc, d)
}

func (e *Engine) authenticate(r *Request, rc *reqCtx, d *Decision) bool {
	tok, loc, ok := e.cfg.jwt.findToken(r)
	if !ok {
		return true // no token: only policies that need a principal fail
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock()
	info := e.tokens.get(tok)
	if info != nil && (info.gen != e.jwks[info.provider].gen || !now.Before(info.expires) ||
		!e.cfg.jwt.providers[info.provider].hasLocation(loc)) {
		info = nil
	}
	if info == nil {
		var fail JWTFailure
		var pi int
		info, fail, pi = e.verify(tok, loc, now)
		if fail != JWTOK {
			d.local(Unauthenticated, 401, "Jwt verification fails", "jwt "+fail.String())
			d.ResponseHeaders = append(d.ResponseHeaders, Header{"www-authenticate", `Bearer realm="meshwasm", error="invalid_token"`})
			d.JWTFailure, d.JWTProvider = fail, pi
			return false
		}
		e.tokens.put(info)
	}
	rc.auth = info
	d.JWTProvider = info.provider
	if p := e.cfg.jwt.providers[info.provider]; !p.forward && loc.header != "" {
		d.RemoveRequestHeaders = append(d.RemoveRequestHeaders, loc.header)
	}
	d.SetRequestHeaders = append(d.SetRequestHeaders, info.headers...)
	return true
}

func (d *Decision) mark(p *policy, o Outcome) {
	i := -1
	if p != nil {
		i = p.index
	}
	d.Marks = append(d.Marks, Mark{Policy: i, Outcome: o})
}

func (e *Engine) authorize(r *Request, rc *reqCtx, d *Decision) {
	cfg := e.cfg
	for _, p := range cfg.audit {
		if p.match(rc) >= 0 {
			d.mark(p, OutcomeAudited)
		}
	}
	for _, p := range cfg.deny {
		if p.dryRun && p.match(rc) >= 0 {
			d.mark(p, OutcomeDryRunDenied)
		}
	}
	pd := &d.pending
	pd.marksBefore = len(d.Marks)
	pd.verdict, pd.rule = Allow, -1
	for _, p := range cfg.deny {
		if p.dryRun {
			continue
		}
		if i := p.match(rc); i >= 0 {
			pd.verdict, pd.policy, pd.rule = Deny, p.name, i
			d.mark(p, OutcomeDenied)
			break
		}
	}
	if pd.verdict == Allow && (cfg.hasAllow || cfg.dryAllow) {
		var matched, dryMatched bool
		for _, p := range cfg.allow {
			i := p.match(rc)
			if i < 0 {
				continue
			}
			if p.dryRun {
				dryMatched = true
				continue
			}
			pd.policy, pd.rule, matched = p.name, i, true
			d.mark(p, OutcomeAllowed)
			break
		}
		switch {
		case cfg.hasAllow && !matched:
			pd.verdict = Deny
			d.mark(nil, OutcomeDenied)
		case !cfg.hasAllow && !dryMatched:
			// Enforcing the dry-run ALLOW policies would deny by default.
			for _, p := range cfg.allow {
				d.mark(p, OutcomeDryRunDenied)
			}
		}
	}
	for _, p := range cfg.custom {
		i := p.match(rc)
		if i < 0 {
			continue
		}
		pd.custom, pd.customRule = p, i
		ext := cfg.ext[p.provider]
		if ext.cacheTTL > 0 {
			pd.key = ext.cacheKey(r)
			if v, ok := e.cacheGet(ext, pd.key, e.clock()); ok {
				d.CustomCache = true
				e.applyCustom(d, v, true)
				return
			}
		}
		d.Verdict = CallCustom
		d.Callout = ext.callout(r, pd.calloutBuf)
		pd.calloutBuf = d.Callout.Headers
		return
	}
	e.finish(d)
}

// finish turns the pending local result into the decision.
func (e *Engine) finish(d *Decision) {
	pd := &d.pending
	d.Verdict, d.Policy, d.Rule = pd.verdict, pd.policy, pd.rule
	if pd.verdict == Deny {
		d.Status, d.Body = e.cfg.denyStatus, e.cfg.denyBody
	}
}

// Resolve completes a CallCustom decision with the external check's reply.
// It does nothing for other verdicts.
func (e *Engine) Resolve(d *Decision, reply Reply) {
	if d.Verdict != CallCustom || d.pending.custom == nil {
		return
	}
	ext := e.cfg.ext[d.pending.custom.provider]
	v, ok := ext.parseReply(reply)
	if ok && ext.cacheTTL > 0 {
		e.cachePut(ext, d.pending.key, v, e.clock())
	}
	d.Callout = Callout{}
	e.applyCustom(d, v, ok)
}

func (e *Engine) applyCustom(d *Decision, v extVerdict, ok bool) {
	pd := &d.pending
	ext := e.cfg.ext[pd.custom.provider]
	if !ok {
		d.CustomError = true
		if ext.failOpen {
			e.finish(d)
			return
		}
		v = extVerdict{Status: ext.statusOnError, Body: e.cfg.denyBody}
	}
	if !v.Allow {
		// The external check runs first: local results never happened.
		d.Marks = d.Marks[:pd.marksBefore]
		d.mark(pd.custom, OutcomeDenied)
		d.local(Deny, v.Status, v.Body, "")
		d.Policy, d.Rule = pd.custom.name, pd.customRule
		for _, h := range v.Down {
			d.ResponseHeaders = append(d.ResponseHeaders, Header{h[0], h[1]})
		}
		return
	}
	d.mark(pd.custom, OutcomeAllowed)
	e.finish(d)
	if d.Verdict != Allow {
		return
	}
	for _, h := range v.Upstream {
		d.RemoveRequestHeaders = append(d.RemoveRequestHeaders, h[0])
		d.SetRequestHeaders = append(d.SetRequestHeaders, Header{h[0], h[1]})
	}
	for _, h := range v.Down {
		d.ResponseHeaders = append(d.ResponseHeaders, Header{h[0], h[1]})
	}
}
