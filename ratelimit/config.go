package ratelimit

import (
	"encoding/binary"
	"hash/fnv"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/meshwasm/meshwasm/internal/confjson"
)

// Config is a parsed, immutable configuration. One Config may back the
// Limiters of several VMs.
type Config struct {
	rules        []rule
	prefix       string
	maxRetries   int
	allowOnError bool
	response     response
	global       *globalConfig
}

type response struct {
	body        []byte
	contentType string
	onAllowed   bool
	legacy      bool
}

type globalConfig struct {
	cluster   string
	authority string
	path      string
	domain    string
	timeout   time.Duration
	allow     bool
}

type rule struct {
	name           string
	match          matcher
	key            []source
	descriptorKeys []string
	fallback       bool
	shadow         bool
	global         bool
	tierFrom       source
	tierNames      []string
	tierDefault    int
	tiers          []limits
	buckets        uint64
	fp             uint64
}

const (
	defaultPrefix  = "meshwasm.ratelimit"
	defaultMaxKeys = 1024
	maxTiers       = 200
	maxCount       = 1_000_000_000
	maxUnits       = int64(1) << 62
)

var (
	ruleName      = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	defaultBody   = []byte(`{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"request rate limit exceeded"}`)
	algorithms    = []string{"token_bucket", "leaky_bucket", "fixed_window", "sliding_window"}
	limitKeys     = []string{"limit", "window", "rate", "burst", "queue", "maxDelay", "cost"}
	paramsOf      = map[algorithm][]string{tokenBucket: {"rate", "burst", "cost"}, leakyBucket: {"rate", "queue", "maxDelay", "cost"}, fixedWindow: {"limit", "window", "cost"}, slidingWindow: {"limit", "window", "cost"}}
	ruleKnownKeys = []string{"name", "match", "key", "descriptorKeys", "algorithm", "mode", "limit", "window", "rate", "burst", "queue", "maxDelay", "cost", "tiers", "shadow", "onMissingKey", "maxKeys"}
)

// Parse reads a configuration document. Every object refuses unknown keys and
// every error names the JSON path of the offending value.
func Parse(data []byte) (*Config, error) {
	root, err := confjson.Parse(data)
	if err != nil {
		return nil, err
	}
	if err := root.Object("rules", "maxKeys", "casRetries", "keyPrefix", "onStoreError", "response", "global"); err != nil {
		return nil, err
	}
	c := &Config{}
	if c.prefix, err = root.Get("keyPrefix").OptString(defaultPrefix); err != nil {
		return nil, err
	}
	if strings.ContainsRune(c.prefix, '/') {
		return nil, root.Get("keyPrefix").Errorf("must not contain '/'")
	}
	maxKeys, err := root.Get("maxKeys").Int(defaultMaxKeys, 1, 1<<20)
	if err != nil {
		return nil, err
	}
	retries, err := root.Get("casRetries").Int(16, 1, 1000)
	if err != nil {
		return nil, err
	}
	c.maxRetries = int(retries)
	onErr, err := root.Get("onStoreError").OneOf("deny", "deny", "allow")
	if err != nil {
		return nil, err
	}
	c.allowOnError = onErr == "allow"
	if c.response, err = parseResponse(root.Get("response")); err != nil {
		return nil, err
	}
	if c.global, err = parseGlobal(root.Get("global")); err != nil {
		return nil, err
	}
	rules, err := root.Get("rules").Array()
	if err != nil {
		return nil, err
	}
	if len(rules) == 0 {
		return nil, root.Get("rules").Errorf("at least one rule required")
	}
	seen := map[string]bool{}
	for _, n := range rules {
		r, err := parseRule(n, maxKeys)
		if err != nil {
			return nil, err
		}
		if seen[r.name] {
			return nil, n.Get("name").Errorf("duplicate rule name %q", r.name)
		}
		seen[r.name] = true
		if r.global && c.global == nil {
			return nil, n.Get("mode").Errorf("global rules need the top-level global section")
		}
		c.rules = append(c.rules, r)
	}
	return c, nil
}

func parseResponse(n confjson.Node) (response, error) {
	r := response{body: defaultBody, contentType: "application/problem+json"}
	if err := n.Object("body", "contentType", "headersOnAllowed", "legacyHeaders"); err != nil {
		return r, err
	}
	body, err := n.Get("body").OptString("")
	if err != nil {
		return r, err
	}
	if body != "" {
		r.body = []byte(body)
		r.contentType = "text/plain; charset=utf-8"
	}
	if r.contentType, err = n.Get("contentType").OptString(r.contentType); err != nil {
		return r, err
	}
	if r.onAllowed, err = n.Get("headersOnAllowed").Bool(false); err != nil {
		return r, err
	}
	if r.legacy, err = n.Get("legacyHeaders").Bool(false); err != nil {
		return r, err
	}
	return r, nil
}

func parseGlobal(n confjson.Node) (*globalConfig, error) {
	if !n.Exists() {
		return nil, nil
	}
	if err := n.Object("cluster", "authority", "path", "domain", "timeout", "failureMode"); err != nil {
		return nil, err
	}
	g := &globalConfig{}
	var err error
	if g.cluster, err = n.Get("cluster").String(); err != nil {
		return nil, err
	}
	if g.authority, err = n.Get("authority").OptString(g.cluster); err != nil {
		return nil, err
	}
	if g.path, err = n.Get("path").OptString("/json"); err != nil {
		return nil, err
	}
	if !strings.HasPrefix(g.path, "/") {
		return nil, n.Get("path").Errorf("must start with '/'")
	}
	if g.domain, err = n.Get("domain").String(); err != nil {
		return nil, err
	}
	if g.timeout, err = n.Get("timeout").Duration(100*time.Millisecond, time.Millisecond, time.Minute); err != nil {
		return nil, err
	}
	// No default: whether an unreachable limit service opens or closes the
	// door is a decision the operator must write down.
	if !n.Get("failureMode").Exists() {
		return nil, n.Get("failureMode").Errorf("required (allow or deny)")
	}
	mode, err := n.Get("failureMode").OneOf("", "allow", "deny")
	if err != nil {
		return nil, err
	}
	g.allow = mode == "allow"
	return g, nil
}

func parseRule(n confjson.Node, defMaxKeys int64) (rule, error) {
	var r rule
	if !n.Exists() {
		return r, n.Errorf("must be an object")
	}
	if err := n.Object(ruleKnownKeys...); err != nil {
		return r, err
	}
	var err error
	if r.name, err = n.Get("name").String(); err != nil {
		return r, err
	}
	if !ruleName.MatchString(r.name) {
		return r, n.Get("name").Errorf("must match %s", ruleName)
	}
	if r.match, err = parseMatch(n.Get("match")); err != nil {
		return r, err
	}
	keys, err := n.Get("key").Array()
	if err != nil {
		return r, err
	}
	for _, k := range keys {
		s, err := parseSource(k)
		if err != nil {
			return r, err
		}
		r.key = append(r.key, s)
	}
	missing, err := n.Get("onMissingKey").OneOf("skip", "skip", "fallback")
	if err != nil {
		return r, err
	}
	r.fallback = missing == "fallback"
	if r.shadow, err = n.Get("shadow").Bool(false); err != nil {
		return r, err
	}
	mode, err := n.Get("mode").OneOf("reject", "reject", "shape", "global")
	if err != nil {
		return r, err
	}
	if mode == "global" {
		return parseGlobalRule(n, r)
	}
	if n.Get("descriptorKeys").Exists() {
		return r, n.Get("descriptorKeys").Errorf("only used with mode global")
	}
	if !n.Get("algorithm").Exists() {
		return r, n.Get("algorithm").Errorf("required (one of %v)", algorithms)
	}
	name, err := n.Get("algorithm").OneOf("", algorithms...)
	if err != nil {
		return r, err
	}
	algo := algorithm(indexOf(algorithms, name) + 1)
	if mode == "shape" && algo != leakyBucket {
		return r, n.Get("mode").Errorf("shape needs algorithm leaky_bucket")
	}
	maxKeys, err := n.Get("maxKeys").Int(defMaxKeys, 1, 1<<20)
	if err != nil {
		return r, err
	}
	r.buckets = uint64((maxKeys + entriesPerBucket - 1) / entriesPerBucket)
	base, err := readLimits(n, limits{algo: algo, shape: mode == "shape", cost: 1})
	if err != nil {
		return r, err
	}
	tiers := n.Get("tiers")
	if !tiers.Exists() {
		if err := base.validate(n); err != nil {
			return r, err
		}
		r.tiers = []limits{base}
	} else if err := parseTiers(tiers, base, &r); err != nil {
		return r, err
	}
	r.fp = fingerprint(&r)
	return r, nil
}

func parseGlobalRule(n confjson.Node, r rule) (rule, error) {
	r.global = true
	for _, k := range append(limitKeys, "algorithm", "tiers", "maxKeys") {
		if n.Get(k).Exists() {
			return r, n.Get(k).Errorf("not used with mode global (the limit lives in the ratelimit service)")
		}
	}
	if len(r.key) == 0 {
		return r, n.Get("key").Errorf("global rules need at least one key part (the descriptor entries)")
	}
	dk := n.Get("descriptorKeys")
	if !dk.Exists() {
		for _, s := range r.key {
			r.descriptorKeys = append(r.descriptorKeys, s.descriptorKey())
		}
		return r, nil
	}
	keys, err := dk.Strings()
	if err != nil {
		return r, err
	}
	if len(keys) != len(r.key) {
		return r, dk.Errorf("has %d entries, key has %d", len(keys), len(r.key))
	}
	r.descriptorKeys = keys
	return r, nil
}

func parseTiers(n confjson.Node, base limits, r *rule) error {
	if err := n.Object("from", "default", "values"); err != nil {
		return err
	}
	if !n.Get("from").Exists() {
		return n.Get("from").Errorf("required")
	}
	var err error
	if r.tierFrom, err = parseSource(n.Get("from")); err != nil {
		return err
	}
	members, err := n.Get("values").Members()
	if err != nil {
		return err
	}
	if len(members) == 0 {
		return n.Get("values").Errorf("at least one tier required")
	}
	if len(members) > maxTiers {
		return n.Get("values").Errorf("at most %d tiers", maxTiers)
	}
	for _, m := range members {
		if !m.Value.Exists() {
			return m.Value.Errorf("must be an object")
		}
		if err := m.Value.Object(paramsOf[base.algo]...); err != nil {
			return err
		}
		lm, err := readLimits(m.Value, base)
		if err != nil {
			return err
		}
		if err := lm.validate(m.Value); err != nil {
			return err
		}
		r.tierNames = append(r.tierNames, m.Key)
		r.tiers = append(r.tiers, lm)
	}
	def, err := n.Get("default").String()
	if err != nil {
		return err
	}
	r.tierDefault = indexOf(r.tierNames, def)
	if r.tierDefault < 0 {
		return n.Get("default").Errorf("unknown tier %q", def)
	}
	return nil
}

// readLimits overlays the parameters present in n onto base, refusing the
// ones the algorithm does not use.
func readLimits(n confjson.Node, base limits) (limits, error) {
	lm := base
	allowed := paramsOf[lm.algo]
	for _, k := range limitKeys {
		if n.Get(k).Exists() && indexOf(allowed, k) < 0 {
			return lm, n.Get(k).Errorf("not used by %s", algorithms[lm.algo-1])
		}
	}
	if n.Get("maxDelay").Exists() && !lm.shape {
		return lm, n.Get("maxDelay").Errorf("only used with mode shape")
	}
	var err error
	if lm.limit, err = n.Get("limit").Int(lm.limit, 1, maxCount); err != nil {
		return lm, err
	}
	w, err := n.Get("window").Duration(time.Duration(lm.window), time.Millisecond, 24*time.Hour)
	if err != nil {
		return lm, err
	}
	lm.window = int64(w)
	if rate := n.Get("rate"); rate.Exists() {
		if lm.rate, lm.period, err = parseRate(rate); err != nil {
			return lm, err
		}
	}
	if lm.burst, err = n.Get("burst").Int(lm.burst, 1, maxCount); err != nil {
		return lm, err
	}
	if lm.queue, err = n.Get("queue").Int(lm.queue, 0, maxCount); err != nil {
		return lm, err
	}
	d, err := n.Get("maxDelay").Duration(time.Duration(lm.maxDelay), time.Millisecond, time.Hour)
	if err != nil {
		return lm, err
	}
	lm.maxDelay = int64(d)
	if lm.cost, err = n.Get("cost").Int(lm.cost, 1, maxCount); err != nil {
		return lm, err
	}
	return lm, nil
}

// validate checks that a rule or tier ends up with every parameter its
// algorithm needs and that the integer arithmetic cannot overflow.
func (lm *limits) validate(n confjson.Node) error {
	switch lm.algo {
	case tokenBucket, leakyBucket:
		if lm.rate == 0 {
			return n.Get("rate").Errorf("required")
		}
		capacity := lm.queue + 1
		what := "queue + 1"
		if lm.algo == tokenBucket {
			if lm.burst == 0 {
				lm.burst = lm.rate
			}
			capacity, what = lm.burst, "burst"
		} else if lm.shape && lm.maxDelay == 0 {
			lm.maxDelay = int64(time.Hour)
		}
		if capacity > maxUnits/lm.period {
			return n.Errorf("%s × rate period too large", what)
		}
		if lm.cost > capacity {
			return n.Errorf("cost %d exceeds %s (%d): no request could ever pass", lm.cost, what, capacity)
		}
	default:
		if lm.limit == 0 {
			return n.Get("limit").Errorf("required")
		}
		if lm.window == 0 {
			return n.Get("window").Errorf("required")
		}
		if lm.cost > lm.limit {
			return n.Errorf("cost %d exceeds limit (%d): no request could ever pass", lm.cost, lm.limit)
		}
	}
	return nil
}

// parseRate reads "<count>/<period>", e.g. "5/s", "1000/h" or "10/30s".
func parseRate(n confjson.Node) (count, period int64, err error) {
	s, err := n.String()
	if err != nil {
		return 0, 0, err
	}
	bad := n.Errorf(`invalid rate %q (want "<count>/<period>" such as "5/s" or "100/m")`, s)
	num, per, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, bad
	}
	count, err = strconv.ParseInt(num, 10, 64)
	if err != nil || count < 1 || count > maxCount {
		return 0, 0, bad
	}
	switch per {
	case "s":
		per = "1s"
	case "m":
		per = "1m"
	case "h":
		per = "1h"
	case "d":
		per = "24h"
	}
	d, err := time.ParseDuration(per)
	if err != nil || d < time.Millisecond || d > 24*time.Hour {
		return 0, 0, bad
	}
	return count, int64(d), nil
}

// fingerprint identifies a rule's counting semantics. Buckets written under a
// different fingerprint (an older configuration) are treated as empty, so a
// changed limit never reads counters it cannot interpret.
func fingerprint(r *rule) uint64 {
	h := fnv.New64a()
	var b [8]byte
	put := func(v int64) {
		binary.LittleEndian.PutUint64(b[:], uint64(v))
		h.Write(b[:])
	}
	h.Write([]byte(r.name))
	put(int64(r.buckets))
	for i, t := range r.tiers {
		put(int64(i))
		put(int64(t.algo))
		for _, v := range []int64{t.limit, t.window, t.rate, t.period, t.burst, t.queue} {
			put(v)
		}
	}
	return h.Sum64()
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// RuleNames lists the rule names in configuration order; a rule's index in
// this list is the index used in decisions and metrics.
func (c *Config) RuleNames() []string {
	out := make([]string, len(c.rules))
	for i := range c.rules {
		out[i] = c.rules[i].name
	}
	return out
}

// TickPeriod is the tick period a filter should use to resume shaped
// requests: the shortest emission interval among shaping rules, clamped to
// [1ms, 1s]. It is zero when no rule shapes.
func (c *Config) TickPeriod() time.Duration {
	var best int64
	for i := range c.rules {
		for _, t := range c.rules[i].tiers {
			if !t.shape {
				continue
			}
			iv := t.period / t.rate
			if best == 0 || iv < best {
				best = iv
			}
		}
	}
	if best == 0 {
		return 0
	}
	return min(max(time.Duration(best), time.Millisecond), time.Second)
}
