package ratelimit

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strconv"
	"time"
)

// Options are what a [Limiter] needs from its host.
type Options struct {
	// Store holds the counters shared by all workers. Required.
	Store Store
	// Clock returns the current time. Required; tests pass a fake clock.
	Clock func() time.Time
	// Recorder receives metric increments; nil drops them.
	Recorder Recorder
}

// Limiter decides requests against a [Config]. One Limiter per VM: it reuses
// buffers between calls and is not safe for concurrent use.
type Limiter struct {
	cfg     *Config
	store   Store
	clock   func() time.Time
	rec     Recorder
	lastCAS uint32

	bucketKeys  []map[uint64]string
	overflowKey []string
	casKey      string

	keyBuf   []byte
	ownerBuf []byte
	valBuf   []byte
	entries  [entriesPerBucket]entry
	shadowed []int
}

// New returns a Limiter for cfg.
func New(cfg *Config, opts Options) (*Limiter, error) {
	if cfg == nil {
		return nil, errors.New("ratelimit: nil config")
	}
	if opts.Store == nil {
		return nil, errors.New("ratelimit: a store is required")
	}
	if opts.Clock == nil {
		return nil, errors.New("ratelimit: a clock is required")
	}
	l := &Limiter{
		cfg:         cfg,
		store:       opts.Store,
		clock:       opts.Clock,
		rec:         opts.Recorder,
		bucketKeys:  make([]map[uint64]string, len(cfg.rules)),
		overflowKey: make([]string, len(cfg.rules)),
		casKey:      cfg.prefix + "/cas",
		keyBuf:      make([]byte, 0, 256),
		ownerBuf:    make([]byte, 0, maxRawOwner+2),
		valBuf:      make([]byte, 0, headerSize+entriesPerBucket*(1+maxRawOwner+2+stateSize)),
		shadowed:    make([]int, 0, len(cfg.rules)),
	}
	for i := range cfg.rules {
		l.bucketKeys[i] = map[uint64]string{}
		l.overflowKey[i] = cfg.prefix + "/" + cfg.rules[i].name + "/overflow"
	}
	return l, nil
}

// Config returns the configuration the Limiter decides with.
func (l *Limiter) Config() *Config { return l.cfg }

// Verdict is what the filter must do with a request.
type Verdict uint8

const (
	// Allow lets the request continue now.
	Allow Verdict = iota
	// Deny answers 429; see [Limiter.DenyResponse].
	Deny
	// Delay pauses the request for Decision.Delay, then continues it.
	Delay
	// Call dispatches Decision.Call to the global rate limit service and
	// finishes the decision with [Limiter.Complete].
	Call
)

func (v Verdict) String() string {
	switch v {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	case Delay:
		return "delay"
	case Call:
		return "call"
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}

// Decision is the outcome of [Limiter.Check] or [Limiter.Complete].
type Decision struct {
	Verdict Verdict
	// Rule is the index of the rule that denied (Deny) or delayed (Delay)
	// the request, or -1.
	Rule int
	// Delay is how long to pause the request (Verdict Delay).
	Delay time.Duration
	// RetryAfter is the Retry-After value in whole seconds (Verdict Deny):
	// never before a request would be admitted again, at least 1.
	RetryAfter int64
	// Quota feeds the RateLimit headers: the denying rule, or on admission
	// the enforced rule with the least remaining quota. Quota.Name is ""
	// when no rule reported one.
	Quota Quota
	// ShadowLimited lists the shadow rules that would have limited the
	// request. From Check it aliases a buffer reused by the next Check.
	ShadowLimited []int
	// Call is the request to send to the global rate limit service
	// (Verdict Call).
	Call *GlobalCall
}

// Quota is one policy's state for the IETF RateLimit headers.
type Quota struct {
	// Name is the rule name (the policy name in the headers).
	Name string
	// Limit is the quota (q): requests per window, or the bucket size.
	Limit int64
	// Window is the policy window (w) in seconds.
	Window int64
	// Remaining is the quota left (r) after this request.
	Remaining int64
	// Reset is the number of seconds (t) until the quota is fully restored.
	Reset int64
}

// Check decides one request. Local rules run in configuration order and stop
// at the first enforced denial, so later rules (and the global callout) are
// neither asked nor charged. Matching global rules are collected into one
// callout made after every local rule has admitted the request.
func (l *Limiter) Check(req Request) Decision { return l.CheckAt(req, l.clock()) }

// CheckAt is Check at a time the caller already read: in a pipeline, the
// request's one clock reading is shared by every filter.
func (l *Limiter) CheckAt(req Request, at time.Time) Decision {
	now := at.UnixNano()
	path := stripQuery(req.Path())
	d := Decision{Verdict: Allow, Rule: -1}
	l.shadowed = l.shadowed[:0]
	var call *GlobalCall
	for i := range l.cfg.rules {
		r := &l.cfg.rules[i]
		if !r.match.matches(req, path) {
			continue
		}
		if r.global {
			call = l.addDescriptor(call, i, r, req, path)
			continue
		}
		tier := r.tier(req, path)
		key, ok := r.appendKey(l.keyBuf[:0], req, path)
		l.keyBuf = key
		if !ok {
			continue
		}
		lm := &r.tiers[tier]
		out := l.apply(i, r, lm, l.owner(tier, key), now)
		out.quota.Name = r.name
		if l.settle(&d, i, r, out) {
			d.ShadowLimited = l.shadowed
			return d
		}
	}
	d.ShadowLimited = l.shadowed
	if call != nil {
		call.local = d
		call.local.ShadowLimited = append([]int(nil), l.shadowed...)
		call.Body = call.body.encode(l.cfg.global.domain)
		d.Verdict = Call
		d.Call = call
		return d
	}
	if d.Delay > 0 {
		d.Verdict = Delay
		l.add(d.Rule, MetricDelayed, 1)
	}
	return d
}

// settle folds one rule's outcome into d and reports whether the request is
// now denied.
func (l *Limiter) settle(d *Decision, i int, r *rule, out outcome) bool {
	switch {
	case out.admitted:
		l.add(i, MetricAllowed, 1)
		if r.shadow {
			return false
		}
		if time.Duration(out.delay) > d.Delay {
			d.Delay = time.Duration(out.delay)
			d.Rule = i
		}
		if !out.failed && (d.Quota.Name == "" || out.quota.Remaining < d.Quota.Remaining) {
			d.Quota = out.quota
		}
		return false
	case r.shadow:
		l.add(i, MetricShadowLimited, 1)
		l.shadowed = append(l.shadowed, i)
		return false
	}
	l.add(i, MetricLimited, 1)
	d.Verdict = Deny
	d.Rule = i
	d.Delay = 0
	d.RetryAfter = max(ceilSeconds(out.retry), 1)
	d.Quota = out.quota
	return true
}

func (l *Limiter) add(rule int, m Metric, n uint64) {
	if l.rec != nil && n > 0 {
		l.rec.Count(rule, m, n)
	}
}

// owner is the identity stored in a bucket entry: the tier, then the key
// parts verbatim when short, or their SHA-256 when long, so that distinct
// keys never share a counter and long keys cost a fixed size.
func (l *Limiter) owner(tier int, key []byte) []byte {
	o := append(l.ownerBuf[:0], byte(tier))
	if len(key) <= maxRawOwner {
		o = append(o, key...)
	} else {
		sum := sha256.Sum256(key)
		o = append(o, ownerHashed)
		o = append(o, sum[:]...)
	}
	l.ownerBuf = o
	return o
}

func hash64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

func (l *Limiter) bucketKey(ri int, r *rule, b uint64) string {
	m := l.bucketKeys[ri]
	if k, ok := m[b]; ok {
		return k
	}
	k := l.cfg.prefix + "/" + r.name + "/" + strconv.FormatUint(b, 10)
	m[b] = k
	return k
}

// apply runs one rule's read-modify-write against the store: read the
// bucket, find (or place) the key's entry, run the algorithm, and write back
// with the CAS token read, retrying on a lost race. Denials write nothing: the
// read they rest on was a consistent snapshot.
func (l *Limiter) apply(ri int, r *rule, lm *limits, owner []byte, now int64) outcome {
	key := l.bucketKey(ri, r, hash64(owner)%r.buckets)
	overflow := false
	retries := 0
	defer func() { l.add(ri, MetricCASRetries, uint64(retries)) }()
	for {
		val, cas, found, err := l.store.Get(key)
		if err != nil {
			return l.storeFailure(ri)
		}
		setCAS := cas
		if found {
			l.lastCAS = cas
		} else {
			// Envoy creates a missing key whatever CAS is passed, and cas 0
			// overwrites unconditionally, so two workers creating the same
			// bucket could each count a request on a fresh copy. A token seen
			// before this Get is older than any token the key can have if it
			// gets created meanwhile, so the create fails instead.
			if l.lastCAS == 0 {
				if !l.bootstrapCAS() {
					return l.storeFailure(ri)
				}
				continue
			}
			setCAS = l.lastCAS
		}
		n := decodeBucket(val, r.fp, &l.entries)
		slot, evict := l.pick(r, owner, n, now)
		if slot < 0 {
			if overflow {
				// Even the shared overflow bucket is full of live tiers:
				// refuse rather than count nowhere.
				return outcome{retry: second, quota: Quota{Limit: lm.quotaLimit(), Window: lm.quotaWindow()}}
			}
			overflow = true
			l.add(ri, MetricOverflows, 1)
			key = l.overflowKey[ri]
			owner = owner[:1]
			continue
		}
		var cur state
		if slot < n && !evict {
			cur = l.entries[slot].st
		}
		next, out := lm.take(cur, now)
		if !out.admitted {
			return out
		}
		if slot == n {
			n++
		}
		l.entries[slot] = entry{owner: owner, st: next}
		l.valBuf = encodeBucket(l.valBuf[:0], r.fp, l.entries[:n])
		err = l.store.Set(key, l.valBuf, setCAS)
		switch {
		case err == nil:
			if evict {
				l.add(ri, MetricEvictions, 1)
			}
			return out
		case errors.Is(err, ErrCASMismatch):
			retries++
			if retries > l.cfg.maxRetries {
				return l.storeFailure(ri)
			}
		default:
			return l.storeFailure(ri)
		}
	}
}

// pick finds the entry for owner among the first n entries: its own, else a
// free one, else an idle one of another key (evict). -1 means all are live.
func (l *Limiter) pick(r *rule, owner []byte, n int, now int64) (slot int, evict bool) {
	idle := -1
	for j := 0; j < n; j++ {
		e := &l.entries[j]
		if bytes.Equal(e.owner, owner) {
			return j, false
		}
		if idle < 0 && (len(e.owner) == 0 || int(e.owner[0]) >= len(r.tiers) || r.tiers[e.owner[0]].idle(e.st, now)) {
			idle = j
		}
	}
	if n < entriesPerBucket {
		return n, false
	}
	return idle, idle >= 0
}

// bootstrapCAS learns one CAS token from a key whose content does not
// matter, so that later bucket creations have a token to fail on.
func (l *Limiter) bootstrapCAS() bool {
	if err := l.store.Set(l.casKey, []byte{1}, 0); err != nil {
		return false
	}
	_, cas, found, err := l.store.Get(l.casKey)
	if err != nil || !found || cas == 0 {
		return false
	}
	l.lastCAS = cas
	return true
}

func (l *Limiter) storeFailure(ri int) outcome {
	l.add(ri, MetricStoreErrors, 1)
	if l.cfg.allowOnError {
		return outcome{admitted: true, failed: true}
	}
	return outcome{retry: second, failed: true}
}

func (lm *limits) quotaWindow() int64 {
	if lm.algo == fixedWindow || lm.algo == slidingWindow {
		return ceilSeconds(lm.window)
	}
	return ceilSeconds(ceilDiv(lm.quotaLimit()*lm.period, lm.rate))
}

func (lm *limits) quotaLimit() int64 {
	switch lm.algo {
	case tokenBucket:
		return lm.burst
	case leakyBucket:
		return lm.queue + 1
	}
	return lm.limit
}
