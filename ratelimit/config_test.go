package ratelimit

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/internal/casstore"
)

func TestParse(t *testing.T) {
	cfg, err := Parse([]byte(`{
		"maxKeys": 64, "casRetries": 4, "keyPrefix": "rl", "onStoreError": "allow",
		"response": {"headersOnAllowed": true, "legacyHeaders": true},
		"global": {"cluster": "ratelimit", "domain": "edge", "timeout": "250ms", "failureMode": "allow"},
		"rules": [
			{"name": "per-ip", "key": ["remote_address"], "algorithm": "token_bucket", "rate": "5/s", "burst": 10},
			{"name": "plans", "match": {"paths": [{"prefix": "/api/"}]}, "key": ["header:X-API-Key"],
			 "algorithm": "fixed_window", "window": "1m",
			 "tiers": {"from": "header:x-plan", "default": "free",
			           "values": {"free": {"limit": 10}, "premium": {"limit": 1000}}}},
			{"name": "shape", "key": ["constant:all"], "algorithm": "leaky_bucket", "mode": "shape", "rate": "10/s", "queue": 5, "maxDelay": "2s"},
			{"name": "edge", "mode": "global", "key": ["remote_address", "property:connection.uri_san_peer_certificate"], "descriptorKeys": ["ip", "principal"]}
		]}`))
	require.NoError(t, err)
	require.Equal(t, []string{"per-ip", "plans", "shape", "edge"}, cfg.RuleNames())
	require.Equal(t, "rl", cfg.prefix)
	require.Equal(t, 4, cfg.maxRetries)
	require.True(t, cfg.allowOnError)
	require.True(t, cfg.response.onAllowed)
	require.Equal(t, &globalConfig{cluster: "ratelimit", authority: "ratelimit", path: "/json", domain: "edge", timeout: 250 * time.Millisecond, allow: true}, cfg.global)

	r := cfg.rules[0]
	require.Equal(t, []limits{{algo: tokenBucket, rate: 5, period: int64(time.Second), burst: 10, cost: 1}}, r.tiers)
	require.Equal(t, uint64(16), r.buckets)

	r = cfg.rules[1]
	require.Equal(t, []source{{kind: srcHeader, arg: "x-api-key"}}, r.key)
	require.Equal(t, []string{"free", "premium"}, r.tierNames)
	require.Equal(t, 0, r.tierDefault)
	require.Equal(t, int64(10), r.tiers[0].limit)
	require.Equal(t, int64(1000), r.tiers[1].limit)
	require.Equal(t, int64(time.Minute), r.tiers[1].window)

	r = cfg.rules[2]
	require.Equal(t, limits{algo: leakyBucket, shape: true, rate: 10, period: int64(time.Second), queue: 5, maxDelay: int64(2 * time.Second), cost: 1}, r.tiers[0])
	require.Equal(t, 100*time.Millisecond, cfg.TickPeriod())

	r = cfg.rules[3]
	require.True(t, r.global)
	require.Equal(t, []string{"ip", "principal"}, r.descriptorKeys)
}

func TestParse_Defaults(t *testing.T) {
	cfg, err := Parse([]byte(`{"rules": [{"name": "a", "algorithm": "token_bucket", "rate": "100/m"},
		{"name": "b", "algorithm": "leaky_bucket", "mode": "shape", "rate": "1/h"},
		{"name": "g", "mode": "global", "key": ["header:x-user", "constant:checkout", "path", "method"]}],
		"global": {"cluster": "rls", "domain": "d", "failureMode": "deny"}}`))
	require.NoError(t, err)
	require.Equal(t, int64(100), cfg.rules[0].tiers[0].burst, "burst defaults to the rate's count")
	require.Equal(t, uint64(defaultMaxKeys/entriesPerBucket), cfg.rules[0].buckets)
	require.Equal(t, defaultPrefix, cfg.prefix)
	require.Equal(t, 16, cfg.maxRetries)
	require.False(t, cfg.allowOnError)
	require.Equal(t, int64(time.Hour), cfg.rules[1].tiers[0].maxDelay)
	require.Equal(t, []string{"x-user", "generic_key", "path", "method"}, cfg.rules[2].descriptorKeys)
	require.Equal(t, "application/problem+json", cfg.response.contentType)
	require.Equal(t, time.Second, cfg.TickPeriod(), "long emission intervals clamp to 1s")
	require.NotEqual(t, cfg.rules[0].fp, cfg.rules[1].fp)
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		name, in      string
		count, period int64
	}{
		{name: "per second", in: "5/s", count: 5, period: int64(time.Second)},
		{name: "per minute", in: "100/m", count: 100, period: int64(time.Minute)},
		{name: "per hour", in: "1000/h", count: 1000, period: int64(time.Hour)},
		{name: "per day", in: "7/d", count: 7, period: int64(24 * time.Hour)},
		{name: "go duration", in: "10/30s", count: 10, period: int64(30 * time.Second)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(`{"rules":[{"name":"r","algorithm":"token_bucket","rate":"` + tc.in + `"}]}`))
			require.NoError(t, err)
			require.Equal(t, tc.count, cfg.rules[0].tiers[0].rate)
			require.Equal(t, tc.period, cfg.rules[0].tiers[0].period)
		})
	}
}

func TestParse_Errors(t *testing.T) {
	const tb = `"algorithm": "token_bucket", "rate": "1/s"`
	rule := func(body string) string { return `{"rules": [{"name": "r", ` + body + `}]}` }
	tests := []struct {
		name, in, want string
	}{
		{name: "invalid json", in: `{`, want: "configuration: invalid JSON"},
		{name: "unknown top key", in: `{"rule": []}`, want: "rule: unknown key"},
		{name: "no rules", in: `{}`, want: "rules: at least one rule required"},
		{name: "rules not array", in: `{"rules": {}}`, want: "rules: must be an array"},
		{name: "rule not object", in: `{"rules": [1]}`, want: "rules[0]: must be an object"},
		{name: "rule unknown key", in: rule(tb + `, "limits": 1`), want: "rules[0].limits: unknown key"},
		{name: "missing name", in: `{"rules": [{"algorithm": "fixed_window"}]}`, want: "rules[0].name: required"},
		{name: "bad name", in: `{"rules": [{"name": "a b", ` + tb + `}]}`, want: "rules[0].name: must match ^[A-Za-z0-9_.-]{1,64}$"},
		{name: "duplicate name", in: `{"rules": [{"name": "a", ` + tb + `}, {"name": "a", ` + tb + `}]}`, want: `rules[1].name: duplicate rule name "a"`},
		{name: "missing algorithm", in: rule(`"rate": "1/s"`), want: "rules[0].algorithm: required (one of [token_bucket leaky_bucket fixed_window sliding_window])"},
		{name: "unknown algorithm", in: rule(`"algorithm": "gcra"`), want: `rules[0].algorithm: unknown value "gcra" (want one of [token_bucket leaky_bucket fixed_window sliding_window])`},
		{name: "unknown mode", in: rule(tb + `, "mode": "drop"`), want: `rules[0].mode: unknown value "drop" (want one of [reject shape global])`},
		{name: "shape needs leaky", in: rule(tb + `, "mode": "shape"`), want: "rules[0].mode: shape needs algorithm leaky_bucket"},
		{name: "missing rate", in: rule(`"algorithm": "token_bucket"`), want: "rules[0].rate: required"},
		{name: "bad rate", in: rule(`"algorithm": "token_bucket", "rate": "5 per s"`), want: `rules[0].rate: invalid rate "5 per s" (want "<count>/<period>" such as "5/s" or "100/m")`},
		{name: "zero rate", in: rule(`"algorithm": "token_bucket", "rate": "0/s"`), want: `rules[0].rate: invalid rate "0/s" (want "<count>/<period>" such as "5/s" or "100/m")`},
		{name: "tiny period", in: rule(`"algorithm": "token_bucket", "rate": "1/1us"`), want: `rules[0].rate: invalid rate "1/1us" (want "<count>/<period>" such as "5/s" or "100/m")`},
		{name: "rate not string", in: rule(`"algorithm": "token_bucket", "rate": 5`), want: "rules[0].rate: must be a string"},
		{name: "limit on bucket", in: rule(tb + `, "limit": 5`), want: "rules[0].limit: not used by token_bucket"},
		{name: "burst on window", in: rule(`"algorithm": "fixed_window", "limit": 1, "window": "1s", "burst": 2`), want: "rules[0].burst: not used by fixed_window"},
		{name: "maxDelay without shape", in: rule(`"algorithm": "leaky_bucket", "rate": "1/s", "maxDelay": "1s"`), want: "rules[0].maxDelay: only used with mode shape"},
		{name: "missing limit", in: rule(`"algorithm": "sliding_window", "window": "1m"`), want: "rules[0].limit: required"},
		{name: "missing window", in: rule(`"algorithm": "fixed_window", "limit": 3`), want: "rules[0].window: required"},
		{name: "window too long", in: rule(`"algorithm": "fixed_window", "limit": 3, "window": "48h"`), want: "rules[0].window: must be between 1ms and 24h0m0s"},
		{name: "negative limit", in: rule(`"algorithm": "fixed_window", "limit": -3, "window": "1s"`), want: "rules[0].limit: must be between 1 and 1000000000"},
		{name: "cost over limit", in: rule(`"algorithm": "fixed_window", "limit": 3, "window": "1s", "cost": 4`), want: "rules[0]: cost 4 exceeds limit (3): no request could ever pass"},
		{name: "cost over burst", in: rule(tb + `, "burst": 2, "cost": 3`), want: "rules[0]: cost 3 exceeds burst (2): no request could ever pass"},
		{name: "cost over queue", in: rule(`"algorithm": "leaky_bucket", "rate": "1/s", "cost": 2`), want: "rules[0]: cost 2 exceeds queue + 1 (1): no request could ever pass"},
		{name: "overflowing units", in: rule(`"algorithm": "token_bucket", "rate": "1/24h", "burst": 1000000000`), want: "rules[0]: burst × rate period too large"},
		{name: "maxKeys", in: rule(tb + `, "maxKeys": 0`), want: "rules[0].maxKeys: must be between 1 and 1048576"},
		{name: "top maxKeys", in: `{"maxKeys": "9", "rules": []}`, want: "maxKeys: must be a number"},
		{name: "onMissingKey", in: rule(tb + `, "onMissingKey": "deny"`), want: `rules[0].onMissingKey: unknown value "deny" (want one of [skip fallback])`},
		{name: "shadow type", in: rule(tb + `, "shadow": "yes"`), want: "rules[0].shadow: must be a boolean"},
		{name: "key source", in: rule(tb + `, "key": ["cookie:session"]`), want: `rules[0].key[0]: unknown key source "cookie:session" (want remote_address, path, method, header:<name>, property:<path> or constant:<value>)`},
		{name: "empty header source", in: rule(tb + `, "key": ["header:"]`), want: `rules[0].key[0]: unknown key source "header:" (want remote_address, path, method, header:<name>, property:<path> or constant:<value>)`},
		{name: "key not array", in: rule(tb + `, "key": "path"`), want: "rules[0].key: must be an array"},
		{name: "descriptorKeys local", in: rule(tb + `, "descriptorKeys": ["a"]`), want: "rules[0].descriptorKeys: only used with mode global"},
		{name: "match unknown", in: rule(tb + `, "match": {"path": "/x"}`), want: "rules[0].match.path: unknown key"},
		{name: "empty method", in: rule(tb + `, "match": {"methods": ["GET", ""]}`), want: "rules[0].match.methods[1]: empty string"},
		{name: "path two ops", in: rule(tb + `, "match": {"paths": [{"exact": "/a", "prefix": "/b"}]}`), want: "rules[0].match.paths[0]: needs exactly one of [exact prefix suffix regex]"},
		{name: "path no op", in: rule(tb + `, "match": {"paths": [{}]}`), want: "rules[0].match.paths[0]: needs exactly one of [exact prefix suffix regex]"},
		{name: "path string", in: rule(tb + `, "match": {"paths": ["/a"]}`), want: "rules[0].match.paths[0]: must be an object"},
		{name: "path regex", in: rule(tb + `, "match": {"paths": [{"regex": "(("}]}`), want: "rules[0].match.paths[0].regex: invalid regex: error parsing regexp: missing closing ): `((`"},
		{name: "path empty", in: rule(tb + `, "match": {"paths": [{"suffix": ""}]}`), want: "rules[0].match.paths[0].suffix: empty string"},
		{name: "header name", in: rule(tb + `, "match": {"headers": [{"present": true}]}`), want: "rules[0].match.headers[0].name: required"},
		{name: "header suffix", in: rule(tb + `, "match": {"headers": [{"name": "a", "suffix": "x"}]}`), want: "rules[0].match.headers[0].suffix: unknown key"},
		{name: "header present false", in: rule(tb + `, "match": {"headers": [{"name": "a", "present": false}]}`), want: "rules[0].match.headers[0].present: must be true (omit the condition instead)"},
		{name: "tiers without from", in: rule(tb + `, "tiers": {"default": "a", "values": {"a": {}}}`), want: "rules[0].tiers.from: required"},
		{name: "tiers no values", in: rule(tb + `, "tiers": {"from": "header:x", "default": "a", "values": {}}`), want: "rules[0].tiers.values: at least one tier required"},
		{name: "tiers unknown default", in: rule(tb + `, "tiers": {"from": "header:x", "default": "b", "values": {"a": {}}}`), want: `rules[0].tiers.default: unknown tier "b"`},
		{name: "tiers missing default", in: rule(tb + `, "tiers": {"from": "header:x", "values": {"a": {}}}`), want: "rules[0].tiers.default: required"},
		{name: "tier wrong param", in: rule(tb + `, "tiers": {"from": "header:x", "default": "a", "values": {"a": {"limit": 3}}}`), want: "rules[0].tiers.values.a.limit: unknown key"},
		{name: "tier incomplete", in: rule(`"algorithm": "fixed_window", "window": "1m", "tiers": {"from": "header:x", "default": "a", "values": {"a": {"limit": 3}, "b": {}}}`), want: "rules[0].tiers.values.b.limit: required"},
		{name: "tier not object", in: rule(tb + `, "tiers": {"from": "header:x", "default": "a", "values": {"a": 1}}`), want: "rules[0].tiers.values.a: must be an object"},
		{name: "tier duplicate", in: rule(tb + `, "tiers": {"from": "header:x", "default": "a", "values": {"a": {}, "a": {}}}`), want: "rules[0].tiers.values.a: duplicate key"},
		{name: "tier unknown key", in: rule(tb + `, "tiers": {"by": "header:x"}`), want: "rules[0].tiers.by: unknown key"},
		{name: "global without section", in: rule(`"mode": "global", "key": ["path"]`), want: "rules[0].mode: global rules need the top-level global section"},
		{name: "global with limit", in: rule(`"mode": "global", "key": ["path"], "limit": 5`), want: "rules[0].limit: not used with mode global (the limit lives in the ratelimit service)"},
		{name: "global without key", in: rule(`"mode": "global"`), want: "rules[0].key: global rules need at least one key part (the descriptor entries)"},
		{name: "global descriptor count", in: rule(`"mode": "global", "key": ["path"], "descriptorKeys": ["a", "b"]`), want: "rules[0].descriptorKeys: has 2 entries, key has 1"},
		{name: "global failureMode required", in: `{"global": {"cluster": "c", "domain": "d"}, "rules": []}`, want: "global.failureMode: required (allow or deny)"},
		{name: "global failureMode value", in: `{"global": {"cluster": "c", "domain": "d", "failureMode": "open"}, "rules": []}`, want: `global.failureMode: unknown value "open" (want one of [allow deny])`},
		{name: "global cluster", in: `{"global": {"domain": "d", "failureMode": "deny"}, "rules": []}`, want: "global.cluster: required"},
		{name: "global domain", in: `{"global": {"cluster": "c", "failureMode": "deny"}, "rules": []}`, want: "global.domain: required"},
		{name: "global path", in: `{"global": {"cluster": "c", "domain": "d", "path": "json", "failureMode": "deny"}, "rules": []}`, want: "global.path: must start with '/'"},
		{name: "global timeout", in: `{"global": {"cluster": "c", "domain": "d", "timeout": "5m", "failureMode": "deny"}, "rules": []}`, want: "global.timeout: must be between 1ms and 1m0s"},
		{name: "global unknown", in: `{"global": {"cluster": "c", "domain": "d", "failureMode": "deny", "grpc": true}, "rules": []}`, want: "global.grpc: unknown key"},
		{name: "response unknown", in: `{"response": {"status": 503}, "rules": []}`, want: "response.status: unknown key"},
		{name: "response body", in: `{"response": {"body": ""}, "rules": []}`, want: "response.body: empty string"},
		{name: "key prefix slash", in: `{"keyPrefix": "a/b", "rules": []}`, want: "keyPrefix: must not contain '/'"},
		{name: "onStoreError", in: `{"onStoreError": "open", "rules": []}`, want: `onStoreError: unknown value "open" (want one of [deny allow])`},
		{name: "casRetries", in: `{"casRetries": 0, "rules": []}`, want: "casRetries: must be between 1 and 1000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			require.EqualError(t, err, tc.want)
		})
	}
}

func TestParse_TooManyTiers(t *testing.T) {
	var b strings.Builder
	for i := 0; i <= maxTiers; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"t` + strings.Repeat("x", i) + `": {}`)
	}
	_, err := Parse([]byte(`{"rules": [{"name": "r", "algorithm": "token_bucket", "rate": "1/s",
		"tiers": {"from": "header:x", "default": "t", "values": {` + b.String() + `}}}]}`))
	require.EqualError(t, err, "rules[0].tiers.values: at most 200 tiers")
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"rules": [{"name": "r", "algorithm": "token_bucket", "rate": "5/s"}]}`))
	f.Add([]byte(`{"rules": [{"name": "r", "algorithm": "sliding_window", "limit": 5, "window": "1m", "key": ["header:x"], "tiers": {"from": "header:p", "default": "a", "values": {"a": {"limit": 2}}}}]}`))
	f.Add([]byte(`{"global": {"cluster": "c", "domain": "d", "failureMode": "deny"}, "rules": [{"name": "g", "mode": "global", "key": ["path"]}]}`))
	f.Add([]byte(`{"rules": [{"name": "l", "algorithm": "leaky_bucket", "mode": "shape", "rate": "3/m", "queue": 2, "match": {"paths": [{"regex": "^/a"}], "headers": [{"name": "x", "absent": true}]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			require.Nil(t, cfg)
			require.NotEmpty(t, err.Error())
			return
		}
		// Every accepted configuration must decide every request definitely.
		l, err := New(cfg, Options{Store: casstore.NewMemory(), Clock: newClock().Now})
		require.NoError(t, err)
		d := l.Check(get("/a?b", "x", "1", "p", "a"))
		require.Contains(t, []Verdict{Allow, Deny, Delay, Call}, d.Verdict)
		require.Equal(t, d.Verdict == Call, d.Call != nil)
	})
}
