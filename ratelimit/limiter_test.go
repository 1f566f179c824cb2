package ratelimit

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/internal/casstore"
)

func TestCheck_Tiers(t *testing.T) {
	// The seed article's API monetization: free 10/min, premium 1000/min,
	// per API key; an unknown or missing plan gets the default tier.
	f := newFixture(t, `{"rules": [{"name": "plans", "key": ["header:x-api-key"], "algorithm": "fixed_window", "window": "1m",
		"tiers": {"from": "header:x-plan", "default": "free", "values": {"free": {"limit": 10}, "premium": {"limit": 1000}}}}]}`)
	tests := []struct {
		name  string
		req   *fakeReq
		admit int
	}{
		{name: "free", req: get("/", "x-api-key", "k1", "x-plan", "free"), admit: 10},
		{name: "premium", req: get("/", "x-api-key", "k2", "x-plan", "premium"), admit: 1000},
		{name: "unknown plan is free", req: get("/", "x-api-key", "k3", "x-plan", "platinum"), admit: 10},
		{name: "missing plan is free", req: get("/", "x-api-key", "k4"), admit: 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.admit, countOf(f.verdicts(tc.req, 1200), Allow))
		})
	}
	d := f.l.Check(get("/", "x-api-key", "k2", "x-plan", "premium"))
	require.Equal(t, Quota{Name: "plans", Limit: 1000, Window: 60, Remaining: 0, Reset: 60}, d.Quota)
}

func TestCheck_Shadow(t *testing.T) {
	f := newFixture(t, `{"rules": [
		{"name": "trial", "shadow": true, "algorithm": "fixed_window", "limit": 2, "window": "1m"},
		{"name": "real", "algorithm": "fixed_window", "limit": 4, "window": "1m"}]}`)
	var shadowed [][]int
	for i := 0; i < 5; i++ {
		d := f.l.Check(get("/"))
		var s []int
		if len(d.ShadowLimited) > 0 {
			s = append(s, d.ShadowLimited...)
		}
		shadowed = append(shadowed, s)
		if i < 4 {
			require.Equal(t, Allow, d.Verdict, "shadow rules never enforce")
			require.Equal(t, "real", d.Quota.Name, "shadow rules do not feed the headers")
		} else {
			require.Equal(t, Deny, d.Verdict)
			require.Equal(t, 1, d.Rule)
		}
	}
	require.Equal(t, [][]int{nil, nil, {0}, {0}, {0}}, shadowed)
	require.Equal(t, uint64(3), f.rec.get(0, MetricShadowLimited))
	require.Equal(t, uint64(2), f.rec.get(0, MetricAllowed))
	require.Equal(t, uint64(0), f.rec.get(0, MetricLimited))
}

func TestCheck_MissingKey(t *testing.T) {
	f := newFixture(t, `{"rules": [
		{"name": "skip", "key": ["header:x-user-id"], "algorithm": "fixed_window", "limit": 1, "window": "1m"},
		{"name": "fallback", "key": ["header:x-api-key"], "onMissingKey": "fallback", "algorithm": "fixed_window", "limit": 2, "window": "1m"}]}`)
	anon := get("/")
	// Anonymous requests skip the first rule and share one fallback key in
	// the second.
	require.Equal(t, []Verdict{Allow, Allow, Deny}, f.verdicts(anon, 3))
	require.Equal(t, uint64(0), f.rec.get(0, MetricAllowed))
	require.Equal(t, uint64(1), f.rec.get(1, MetricLimited))
	// A present key is its own counter, distinct from the fallback one even
	// when the value is empty.
	require.Equal(t, []Verdict{Allow, Allow, Deny}, f.verdicts(get("/", "x-api-key", ""), 3))
	require.Equal(t, []Verdict{Allow, Deny}, f.verdicts(get("/", "x-user-id", "u", "x-api-key", "k"), 2))
}

func TestCheck_KeyParts(t *testing.T) {
	f := newFixture(t, `{"rules": [{"name": "r", "key": ["remote_address", "method", "path", "property:source.principal", "constant:c"], "algorithm": "fixed_window", "limit": 1, "window": "1m"}]}`)
	req := func(remote, method, path, principal string) *fakeReq {
		return &fakeReq{method: method, path: path, remote: remote, props: map[string]string{"source.principal": principal}}
	}
	tests := []struct {
		name string
		req  *fakeReq
		want Verdict
	}{
		{name: "first", req: req("10.0.0.1:1000", "GET", "/a", "spiffe://a"), want: Allow},
		{name: "port ignored", req: req("10.0.0.1:2000", "GET", "/a", "spiffe://a"), want: Deny},
		{name: "query ignored", req: req("10.0.0.1:2000", "GET", "/a?x=1", "spiffe://a"), want: Deny},
		{name: "other ip", req: req("10.0.0.2:1000", "GET", "/a", "spiffe://a"), want: Allow},
		{name: "ipv6", req: req("[::1]:1000", "GET", "/a", "spiffe://a"), want: Allow},
		{name: "ipv6 port ignored", req: req("[::1]:2000", "GET", "/a", "spiffe://a"), want: Deny},
		{name: "bare ipv6 is the same address", req: req("::1", "GET", "/a", "spiffe://a"), want: Deny},
		{name: "other method", req: req("10.0.0.1:1000", "POST", "/a", "spiffe://a"), want: Allow},
		{name: "other path", req: req("10.0.0.1:1000", "GET", "/b", "spiffe://a"), want: Allow},
		{name: "other principal", req: req("10.0.0.1:1000", "GET", "/a", "spiffe://b"), want: Allow},
		{name: "part boundaries matter", req: req("10.0.0.1:1000", "GET", "/a", "spiffe://"), want: Allow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, f.l.Check(tc.req).Verdict)
		})
	}
}

func TestCheck_LongKeysAreHashed(t *testing.T) {
	f := newFixture(t, `{"rules": [{"name": "r", "key": ["header:x-token"], "algorithm": "fixed_window", "limit": 1, "window": "1m"}]}`)
	long := string(make([]byte, 500))
	require.Equal(t, []Verdict{Allow, Deny}, f.verdicts(get("/", "x-token", long), 2))
	require.Equal(t, Allow, f.l.Check(get("/", "x-token", long+"x")).Verdict)
}

func TestCheck_Match(t *testing.T) {
	f := newFixture(t, `{"rules": [{"name": "r", "algorithm": "fixed_window", "limit": 1, "window": "1m",
		"match": {"methods": ["GET", "POST"],
		          "paths": [{"exact": "/login"}, {"prefix": "/api/"}, {"suffix": ".json"}, {"regex": "^/v[0-9]+/"}],
		          "headers": [{"name": "X-Tenant", "exact": "acme"}, {"name": "user-agent", "prefix": "curl/"},
		                      {"name": "x-env", "regex": "^(prod|stage)$"}, {"name": "authorization", "present": true},
		                      {"name": "x-internal", "absent": true}]}}]}`)
	ok := map[string]string{"x-tenant": "acme", "user-agent": "curl/8", "x-env": "prod", "authorization": "k"}
	with := func(method, path string, change map[string]string, drop ...string) *fakeReq {
		h := map[string]string{}
		for k, v := range ok {
			h[k] = v
		}
		for k, v := range change {
			h[k] = v
		}
		for _, k := range drop {
			delete(h, k)
		}
		return &fakeReq{method: method, path: path, headers: h}
	}
	tests := []struct {
		name    string
		req     *fakeReq
		matches bool
	}{
		{name: "exact path", req: with("GET", "/login", nil), matches: true},
		{name: "exact path with query", req: with("GET", "/login?next=/", nil), matches: true},
		{name: "prefix", req: with("POST", "/api/x", nil), matches: true},
		{name: "suffix", req: with("GET", "/data.json", nil), matches: true},
		{name: "regex", req: with("GET", "/v2/users", nil), matches: true},
		{name: "no path", req: with("GET", "/other", nil)},
		{name: "exact is exact", req: with("GET", "/login/x", nil)},
		{name: "method", req: with("PUT", "/login", nil)},
		{name: "header exact", req: with("GET", "/login", map[string]string{"x-tenant": "acme2"})},
		{name: "header prefix", req: with("GET", "/login", map[string]string{"user-agent": "Mozilla"})},
		{name: "header regex", req: with("GET", "/login", map[string]string{"x-env": "dev"})},
		{name: "header missing", req: with("GET", "/login", nil, "x-tenant")},
		{name: "header not present", req: with("GET", "/login", nil, "authorization")},
		{name: "header not absent", req: with("GET", "/login", map[string]string{"x-internal": "1"})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fresh := newFixture(t, `{"rules": [{"name": "r", "algorithm": "fixed_window", "limit": 1, "window": "1m"}]}`)
			fresh.l.cfg.rules[0].match = f.l.cfg.rules[0].match
			got := fresh.verdicts(tc.req, 2)
			if tc.matches {
				require.Equal(t, []Verdict{Allow, Deny}, got)
			} else {
				require.Equal(t, []Verdict{Allow, Allow}, got)
			}
		})
	}
}

func TestCheck_RulesInOrder(t *testing.T) {
	f := newFixture(t, `{"rules": [
		{"name": "first", "algorithm": "fixed_window", "limit": 3, "window": "1m"},
		{"name": "second", "algorithm": "fixed_window", "limit": 1, "window": "1m"},
		{"name": "third", "algorithm": "fixed_window", "limit": 5, "window": "1m"}]}`)
	d := f.l.Check(get("/"))
	require.Equal(t, Allow, d.Verdict)
	require.Equal(t, "second", d.Quota.Name, "the headers report the tightest rule")
	d = f.l.Check(get("/"))
	require.Equal(t, Deny, d.Verdict)
	require.Equal(t, 1, d.Rule)
	// The denying rule stops evaluation: the third rule was charged once.
	require.Equal(t, uint64(2), f.rec.get(0, MetricAllowed))
	require.Equal(t, uint64(1), f.rec.get(2, MetricAllowed))
}

func TestNew_Errors(t *testing.T) {
	cfg, err := Parse([]byte(`{"rules": [{"name": "r", "algorithm": "token_bucket", "rate": "1/s"}]}`))
	require.NoError(t, err)
	clock := newClock().Now
	tests := []struct {
		name string
		cfg  *Config
		opts Options
		want string
	}{
		{name: "config", opts: Options{Store: casstore.NewMemory(), Clock: clock}, want: "ratelimit: nil config"},
		{name: "store", cfg: cfg, opts: Options{Clock: clock}, want: "ratelimit: a store is required"},
		{name: "clock", cfg: cfg, opts: Options{Store: casstore.NewMemory()}, want: "ratelimit: a clock is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, tc.opts)
			require.EqualError(t, err, tc.want)
		})
	}
}

// TestConcurrentWorkers runs several limiters (one per simulated worker VM,
// each with its own parsed Config) against one store on a frozen clock: the
// number admitted is exactly the limit, not one more.
func TestConcurrentWorkers(t *testing.T) {
	tests := []struct {
		name, rule string
		limit      int
	}{
		{name: "fixed window", rule: `"algorithm": "fixed_window", "limit": 1000, "window": "1m"`, limit: 1000},
		{name: "sliding window", rule: `"algorithm": "sliding_window", "limit": 777, "window": "1m"`, limit: 777},
		{name: "token bucket", rule: `"algorithm": "token_bucket", "rate": "1/h", "burst": 500`, limit: 500},
		{name: "leaky bucket shape", rule: `"algorithm": "leaky_bucket", "mode": "shape", "rate": "100/h", "queue": 99, "maxDelay": "1h"`, limit: 100},
	}
	const workers, perWorker = 8, 400
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := casstore.NewMemory()
			clock := newClock()
			config := `{"casRetries": 1000, "rules": [{"name": "r", "key": ["header:x-api-key"], ` + tc.rule + `}]}`
			var admitted, retries atomic.Int64
			var wg sync.WaitGroup
			for w := 0; w < workers; w++ {
				cfg, err := Parse([]byte(config))
				require.NoError(t, err)
				rec := newRecorder()
				l, err := New(cfg, Options{Store: yieldStore{store}, Clock: clock.Now, Recorder: rec})
				require.NoError(t, err)
				wg.Add(1)
				go func() {
					defer wg.Done()
					req := get("/", "x-api-key", "shared")
					for i := 0; i < perWorker; i++ {
						if v := l.Check(req).Verdict; v == Allow || v == Delay {
							admitted.Add(1)
						}
					}
					retries.Add(int64(rec.get(0, MetricCASRetries)))
					require.Zero(t, rec.get(0, MetricStoreErrors))
				}()
			}
			wg.Wait()
			require.Equal(t, int64(tc.limit), admitted.Load())
			t.Logf("%s: %d CAS retries for %d requests", tc.name, retries.Load(), workers*perWorker)
		})
	}
}

// yieldStore gives other goroutines a chance to run between a read and the
// write that follows it, to make lost CAS races common.
type yieldStore struct{ *casstore.Memory }

func (y yieldStore) Get(key string) ([]byte, uint32, bool, error) {
	v, cas, found, err := y.Memory.Get(key)
	runtime.Gosched()
	return v, cas, found, err
}

// hookStore runs a function (once) between a Get and the following Set,
// standing in for another worker writing at the worst moment.
type hookStore struct {
	*casstore.Memory
	beforeSet func()
}

func (h *hookStore) Set(key string, value []byte, cas uint32) error {
	if f := h.beforeSet; f != nil {
		h.beforeSet = nil
		f()
	}
	return h.Memory.Set(key, value, cas)
}

func TestCreationRace(t *testing.T) {
	// Two workers both see a bucket missing; the second creates it and
	// counts a request; the first's create must then fail and retry rather
	// than overwrite that count.
	const config = `{"rules": [{"name": "r", "algorithm": "fixed_window", "limit": 1, "window": "1m"}]}`
	mem := casstore.NewMemory()
	clock := newClock()
	cfgA, err := Parse([]byte(config))
	require.NoError(t, err)
	cfgB, err := Parse([]byte(config))
	require.NoError(t, err)
	b, err := New(cfgB, Options{Store: mem, Clock: clock.Now})
	require.NoError(t, err)
	hook := &hookStore{Memory: mem}
	recA := newRecorder()
	a, err := New(cfgA, Options{Store: hook, Clock: clock.Now, Recorder: recA})
	require.NoError(t, err)
	// Both learn a CAS token first (any request on another key would do).
	require.True(t, a.bootstrapCAS())
	require.True(t, b.bootstrapCAS())
	var bVerdict Verdict
	hook.beforeSet = func() { bVerdict = b.Check(get("/")).Verdict }
	aVerdict := a.Check(get("/"))
	require.Equal(t, Allow, bVerdict)
	require.Equal(t, Deny, aVerdict.Verdict, "exactly one of the two is admitted")
	require.Equal(t, uint64(1), recA.get(0, MetricCASRetries))
}

func TestCreationRace_Bootstrap(t *testing.T) {
	// A fresh worker has no token yet: it writes the bootstrap key, which
	// must not disturb counting.
	f := newFixture(t, `{"rules": [{"name": "r", "algorithm": "fixed_window", "limit": 2, "window": "1m"}]}`)
	require.Equal(t, []Verdict{Allow, Allow, Deny}, f.verdicts(get("/"), 3))
	_, _, found, _ := f.store.Get(defaultPrefix + "/cas")
	require.True(t, found)
}

func TestEvictionAndOverflow(t *testing.T) {
	// maxKeys 4 is one bucket of four entries.
	f := newFixture(t, `{"rules": [{"name": "r", "maxKeys": 4, "key": ["header:x-user"], "algorithm": "fixed_window", "limit": 1, "window": "1m"}]}`)
	user := func(i int) *fakeReq { return get("/", "x-user", string(rune('a'+i))) }
	for i := 0; i < 4; i++ {
		require.Equal(t, Allow, f.l.Check(user(i)).Verdict)
	}
	// The table is full of live keys: new keys share the overflow counter,
	// which is limited too (never unlimited).
	require.Equal(t, Allow, f.l.Check(user(4)).Verdict)
	require.Equal(t, Deny, f.l.Check(user(5)).Verdict)
	require.Equal(t, uint64(2), f.rec.get(0, MetricOverflows))
	// Live keys keep their own counters.
	require.Equal(t, Deny, f.l.Check(user(0)).Verdict)
	// Next window: the old entries are idle and are reused.
	f.clock.Advance(time.Minute)
	for i := 4; i < 8; i++ {
		require.Equal(t, Allow, f.l.Check(user(i)).Verdict)
	}
	require.Equal(t, uint64(4), f.rec.get(0, MetricEvictions))
	require.Equal(t, uint64(2), f.rec.get(0, MetricOverflows))
	require.Equal(t, 3, f.store.Len(), "bucket, overflow bucket and bootstrap key: memory stays bounded")
}

func TestOverflowFull(t *testing.T) {
	// One bucket of four entries: four users of tier a fill it, the overflow
	// bucket then takes one entry per tier a to d, and a user of tier e finds
	// no room anywhere and is refused.
	f := newFixture(t, `{"rules": [{"name": "r", "maxKeys": 1, "key": ["header:x-user"], "algorithm": "fixed_window", "window": "1m",
		"tiers": {"from": "header:t", "default": "a", "values": {"a": {"limit": 9}, "b": {"limit": 9}, "c": {"limit": 9}, "d": {"limit": 9}, "e": {"limit": 9}}}}]}`)
	for i, u := range []string{"a1", "a2", "a3", "a4", "a5", "b1", "c1", "d1"} {
		require.Equal(t, Allow, f.l.Check(get("/", "x-user", u, "t", u[:1])).Verdict, i)
	}
	require.Equal(t, uint64(4), f.rec.get(0, MetricOverflows))
	d := f.l.Check(get("/", "x-user", "e1", "t", "e"))
	require.Equal(t, Deny, d.Verdict)
	require.Equal(t, int64(1), d.RetryAfter)
	require.Equal(t, Quota{Name: "r", Limit: 9, Window: 60}, d.Quota)
}

func TestConfigChangeResetsBuckets(t *testing.T) {
	f := newFixture(t, `{"rules": [{"name": "r", "algorithm": "fixed_window", "limit": 1, "window": "1m"}]}`)
	require.Equal(t, Allow, f.l.Check(get("/")).Verdict)
	cfg, err := Parse([]byte(`{"rules": [{"name": "r", "algorithm": "token_bucket", "rate": "1/m"}]}`))
	require.NoError(t, err)
	l, err := New(cfg, Options{Store: f.store, Clock: f.clock.Now})
	require.NoError(t, err)
	require.Equal(t, []Verdict{Allow, Deny}, func() []Verdict {
		return []Verdict{l.Check(get("/")).Verdict, l.Check(get("/")).Verdict}
	}(), "counters of another algorithm are never misread")
}

// failStore fails every Get or every bucket Set.
type failStore struct {
	*casstore.Memory
	getErr, setErr error
}

func (s *failStore) Get(key string) ([]byte, uint32, bool, error) {
	if s.getErr != nil {
		return nil, 0, false, s.getErr
	}
	return s.Memory.Get(key)
}

func (s *failStore) Set(key string, value []byte, cas uint32) error {
	if s.setErr != nil && key != defaultPrefix+"/cas" {
		return s.setErr
	}
	return s.Memory.Set(key, value, cas)
}

func TestStoreFailures(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name, onError  string
		getErr, setErr error
		want           Verdict
		retries        uint64
	}{
		{name: "get error denies", onError: "deny", getErr: boom, want: Deny},
		{name: "set error denies", onError: "deny", setErr: boom, want: Deny},
		{name: "cas exhausted denies", onError: "deny", setErr: ErrCASMismatch, want: Deny, retries: 4},
		{name: "get error allows", onError: "allow", getErr: boom, want: Allow},
		{name: "cas exhausted allows", onError: "allow", setErr: ErrCASMismatch, want: Allow, retries: 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(`{"casRetries": 3, "onStoreError": "` + tc.onError + `", "rules": [{"name": "r", "algorithm": "fixed_window", "limit": 5, "window": "1m"}]}`))
			require.NoError(t, err)
			rec := newRecorder()
			l, err := New(cfg, Options{Store: &failStore{Memory: casstore.NewMemory(), getErr: tc.getErr, setErr: tc.setErr}, Clock: newClock().Now, Recorder: rec})
			require.NoError(t, err)
			d := l.Check(get("/"))
			require.Equal(t, tc.want, d.Verdict)
			require.Equal(t, uint64(1), rec.get(0, MetricStoreErrors))
			require.Equal(t, tc.retries, rec.get(0, MetricCASRetries))
			if tc.want == Deny {
				require.Equal(t, int64(1), d.RetryAfter)
			} else {
				require.Empty(t, d.Quota.Name, "a failed store reports no quota")
			}
		})
	}
}

func TestDecodeBucket_Malformed(t *testing.T) {
	good := encodeBucket(nil, 7, []entry{{owner: []byte{0, 1}, st: state{a: 1, b: 2, c: 3}}})
	var dst [entriesPerBucket]entry
	require.Equal(t, 1, decodeBucket(good, 7, &dst))
	require.Equal(t, state{a: 1, b: 2, c: 3}, dst[0].st)
	tests := []struct {
		name string
		v    []byte
	}{
		{name: "empty", v: nil},
		{name: "other fingerprint", v: encodeBucket(nil, 8, nil)},
		{name: "other version", v: append([]byte{2}, good[1:]...)},
		{name: "truncated", v: good[:len(good)-1]},
		{name: "trailing", v: append(append([]byte(nil), good...), 0)},
		{name: "too many", v: append(append([]byte(nil), good[:9]...), 9)},
		{name: "owner overruns", v: append(append([]byte(nil), good[:10]...), 200)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, 0, decodeBucket(tc.v, 7, &dst))
		})
	}
}

func TestVerdictAndMetricNames(t *testing.T) {
	require.Equal(t, []string{"allow", "deny", "delay", "call", "verdict(9)"}, []string{Allow.String(), Deny.String(), Delay.String(), Call.String(), Verdict(9).String()})
	var names []string
	for _, m := range Metrics() {
		names = append(names, m.String())
	}
	require.Equal(t, []string{"allowed", "limited", "shadow_limited", "delayed", "global_errors", "cas_retries", "evictions", "overflows", "store_errors"}, names)
	require.Equal(t, "metric(99)", Metric(99).String())
}
