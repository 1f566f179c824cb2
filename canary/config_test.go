package canary

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParse_Defaults(t *testing.T) {
	r := mustParse(t, `{"versions":["v1","v2"],"guard":{},"mirror":{"cluster":"shadow"}}`)
	require.Equal(t, "x-route-version", r.RouteHeader())
	require.Equal(t, "", r.ResponseHeader())
	require.Equal(t, 0, r.Default())
	require.Empty(t, r.RuleNames())

	g := r.Guard()
	require.Equal(t, uint16(100), g.window)
	require.Equal(t, 20, g.minRequests)
	require.Equal(t, 0.5, g.maxErrorRatio)
	require.Equal(t, uint32(5), g.consecutive)
	require.Equal(t, 30*time.Second, g.cooldown)
	require.Equal(t, uint64(500), g.probeShare)
	require.Equal(t, uint32(10), g.probeSuccesses)
	require.True(t, g.admitOnError)
	require.Equal(t, []string{"", "meshwasm.canary.guard.v2"}, g.keys)

	m := r.Mirror()
	require.Equal(t, time.Second, m.Timeout)
	require.Equal(t, uint64(10000), m.share)

	small := mustParse(t, `{"versions":["v1","v2"],"guard":{"window":8}}`).Guard()
	require.Equal(t, 8, small.minRequests, "minRequests defaults to at most the window")
}

func TestParse_Empty(t *testing.T) {
	_, err := Parse(nil)
	require.EqualError(t, err, "versions: required")
}

func TestParse_Errors(t *testing.T) {
	const vs = `"versions":["v1","v2"]`
	tests := []struct {
		name, in, want string
	}{
		{name: "invalid json", in: `{`, want: "configuration: invalid JSON"},
		{name: "unknown key", in: `{` + vs + `,"verison":"v1"}`, want: "verison: unknown key"},
		{name: "versions missing", in: `{}`, want: "versions: required"},
		{name: "versions empty", in: `{"versions":[]}`, want: "versions: at least one version is required"},
		{name: "versions not array", in: `{"versions":"v1"}`, want: "versions: must be an array"},
		{name: "version empty", in: `{"versions":["v1",""]}`, want: "versions[1]: empty string"},
		{name: "version bad chars", in: `{"versions":["v1","v 2"]}`, want: `versions[1]: invalid version name "v 2" (letters, digits, ".", "_", "-")`},
		{name: "version too long", in: `{"versions":["` + repeat("v", 65) + `"]}`, want: "versions[0]: version name longer than 64 characters"},
		{name: "version duplicate", in: `{"versions":["v1","v2","v1"]}`, want: `versions[2]: duplicate version "v1"`},
		{name: "default unknown", in: `{` + vs + `,"default":"v3"}`, want: `default: unknown version "v3"`},
		{name: "route header upper case", in: `{` + vs + `,"routeHeader":"X-Route"}`, want: `routeHeader: invalid header name "X-Route" (want a lowercase token)`},
		{name: "route header pseudo", in: `{` + vs + `,"routeHeader":":authority"}`, want: `routeHeader: invalid header name ":authority" (want a lowercase token)`},
		{name: "response header number", in: `{` + vs + `,"responseHeader":1}`, want: "responseHeader: must be a string"},

		{name: "trust unknown key", in: `{` + vs + `,"trust":{"ips":[]}}`, want: "trust.ips: unknown key"},
		{name: "trust header not object", in: `{` + vs + `,"trust":{"headers":["x"]}}`, want: "trust.headers[0]: must be an object"},
		{name: "trust header null", in: `{` + vs + `,"trust":{"headers":[null]}}`, want: "trust.headers[0]: must be an object"},
		{name: "trust header name missing", in: `{` + vs + `,"trust":{"headers":[{"value":"x"}]}}`, want: "trust.headers[0].name: required"},
		{name: "trust header is route header", in: `{` + vs + `,"trust":{"headers":[{"name":"x-route-version","value":"v2"}]}}`, want: "trust.headers[0].name: cannot be the routing header"},
		{name: "trust header value missing", in: `{` + vs + `,"trust":{"headers":[{"name":"x-token"}]}}`, want: "trust.headers[0].value: required"},
		{name: "trust principal empty", in: `{` + vs + `,"trust":{"principals":[""]}}`, want: "trust.principals[0]: empty string"},

		{name: "rules not array", in: `{` + vs + `,"rules":{}}`, want: "rules: must be an array"},
		{name: "rule null", in: `{` + vs + `,"rules":[null]}`, want: "rules[0]: must be an object"},
		{name: "rule unknown key", in: `{` + vs + `,"rules":[{"route":"v1","weight":1}]}`, want: "rules[0].weight: unknown key"},
		{name: "rule no target", in: `{` + vs + `,"rules":[{"name":"a"}]}`, want: "rules[0]: one of route, split is required"},
		{name: "rule both targets", in: `{` + vs + `,"rules":[{"route":"v1","split":{"weights":{"v1":1}}}]}`, want: "rules[0]: route and split are exclusive"},
		{name: "rule route unknown", in: `{` + vs + `,"rules":[{"route":"v1"},{"route":"v3"}]}`, want: `rules[1].route: unknown version "v3"`},
		{name: "rule name bad", in: `{` + vs + `,"rules":[{"name":"a b","route":"v1"}]}`, want: `rules[0].name: invalid rule name "a b" (letters, digits, ".", "_", "-")`},
		{name: "rule name duplicate", in: `{` + vs + `,"rules":[{"name":"a","route":"v1"},{"name":"a","route":"v2"}]}`, want: `rules[1].name: duplicate rule name "a"`},

		{name: "match unknown key", in: `{` + vs + `,"rules":[{"match":{"header":[]},"route":"v1"}]}`, want: "rules[0].match.header: unknown key"},
		{name: "method lower case", in: `{` + vs + `,"rules":[{"match":{"methods":["get"]},"route":"v1"}]}`, want: `rules[0].match.methods[0]: invalid method "get" (want an upper-case token such as "GET")`},
		{name: "method not string", in: `{` + vs + `,"rules":[{"match":{"methods":[1]},"route":"v1"}]}`, want: "rules[0].match.methods[0]: must be a string"},
		{name: "path two kinds", in: `{` + vs + `,"rules":[{"match":{"path":{"exact":"/a","prefix":"/b"}},"route":"v1"}]}`, want: "rules[0].match.path: exact and prefix are exclusive"},
		{name: "path no kind", in: `{` + vs + `,"rules":[{"match":{"path":{}},"route":"v1"}]}`, want: "rules[0].match.path: one of exact, prefix, regex is required"},
		{name: "path relative", in: `{` + vs + `,"rules":[{"match":{"path":{"prefix":"api"}},"route":"v1"}]}`, want: `rules[0].match.path.prefix: must start with "/"`},
		{name: "path exact relative", in: `{` + vs + `,"rules":[{"match":{"path":{"exact":"api"}},"route":"v1"}]}`, want: `rules[0].match.path.exact: must start with "/"`},
		{name: "path regex invalid", in: `{` + vs + `,"rules":[{"match":{"path":{"regex":"/a(["}},"route":"v1"}]}`,
			want: "rules[0].match.path.regex: invalid regex: error parsing regexp: missing closing ]: `[`"},
		{name: "header name missing", in: `{` + vs + `,"rules":[{"match":{"headers":[{"exact":"x"}]},"route":"v1"}]}`, want: "rules[0].match.headers[0].name: required"},
		{name: "header name upper case", in: `{` + vs + `,"rules":[{"match":{"headers":[{"name":"X-Canary","exact":"x"}]},"route":"v1"}]}`,
			want: `rules[0].match.headers[0].name: invalid header name "X-Canary" (want a lowercase token)`},
		{name: "header no kind", in: `{` + vs + `,"rules":[{"match":{"headers":[{"name":"x-a"}]},"route":"v1"}]}`,
			want: "rules[0].match.headers[0]: one of exact, prefix, suffix, regex, present, absent, modulo is required"},
		{name: "header two kinds", in: `{` + vs + `,"rules":[{"match":{"headers":[{"name":"x-a","exact":"1","regex":"1"}]},"route":"v1"}]}`,
			want: "rules[0].match.headers[0]: exact and regex are exclusive"},
		{name: "header unknown key", in: `{` + vs + `,"rules":[{"match":{"headers":[{"name":"x-a","contains":"1"}]},"route":"v1"}]}`,
			want: "rules[0].match.headers[0].contains: unknown key"},
		{name: "header exact empty", in: `{` + vs + `,"rules":[{"match":{"headers":[{"name":"x-a","exact":""}]},"route":"v1"}]}`,
			want: "rules[0].match.headers[0].exact: empty string"},
		{name: "header present false", in: `{` + vs + `,"rules":[{"match":{"headers":[{"name":"x-a","present":false}]},"route":"v1"}]}`,
			want: "rules[0].match.headers[0].present: must be true (use invert to negate)"},
		{name: "header absent not bool", in: `{` + vs + `,"rules":[{"match":{"headers":[{"name":"x-a","absent":"yes"}]},"route":"v1"}]}`,
			want: "rules[0].match.headers[0].absent: must be a boolean"},
		{name: "header invert not bool", in: `{` + vs + `,"rules":[{"match":{"headers":[{"name":"x-a","present":true,"invert":1}]},"route":"v1"}]}`,
			want: "rules[0].match.headers[0].invert: must be a boolean"},
		{name: "header regex invalid", in: `{` + vs + `,"rules":[{"match":{"headers":[{"name":"x-a","regex":"a**"}]},"route":"v1"}]}`,
			want: "rules[0].match.headers[0].regex: invalid regex: error parsing regexp: invalid nested repetition operator: `**`"},
		{name: "header null matcher", in: `{` + vs + `,"rules":[{"match":{"headers":[null]},"route":"v1"}]}`, want: "rules[0].match.headers[0]: must be an object"},
		{name: "modulo not object", in: `{` + vs + `,"rules":[{"match":{"headers":[{"name":"x-a","modulo":2}]},"route":"v1"}]}`,
			want: "rules[0].match.headers[0].modulo: must be an object"},
		{name: "modulo divisor missing", in: `{` + vs + `,"rules":[{"match":{"headers":[{"name":"x-a","modulo":{"remainder":0}}]},"route":"v1"}]}`,
			want: "rules[0].match.headers[0].modulo.divisor: required"},
		{name: "modulo divisor one", in: `{` + vs + `,"rules":[{"match":{"headers":[{"name":"x-a","modulo":{"divisor":1}}]},"route":"v1"}]}`,
			want: "rules[0].match.headers[0].modulo.divisor: must be between 2 and 4294967295"},
		{name: "modulo divisor fraction", in: `{` + vs + `,"rules":[{"match":{"headers":[{"name":"x-a","modulo":{"divisor":2.5}}]},"route":"v1"}]}`,
			want: "rules[0].match.headers[0].modulo.divisor: must be an integer"},
		{name: "modulo remainder too big", in: `{` + vs + `,"rules":[{"match":{"headers":[{"name":"x-a","modulo":{"divisor":2,"remainder":2}}]},"route":"v1"}]}`,
			want: "rules[0].match.headers[0].modulo.remainder: must be less than divisor 2"},
		{name: "modulo unknown key", in: `{` + vs + `,"rules":[{"match":{"headers":[{"name":"x-a","modulo":{"divisor":2,"equals":0}}]},"route":"v1"}]}`,
			want: "rules[0].match.headers[0].modulo.equals: unknown key"},
		{name: "query name empty", in: `{` + vs + `,"rules":[{"match":{"query":[{"name":"","present":true}]},"route":"v1"}]}`,
			want: "rules[0].match.query[0].name: empty string"},
		{name: "cookie no kind", in: `{` + vs + `,"rules":[{"match":{"cookies":[{"name":"c"}]},"route":"v1"}]}`,
			want: "rules[0].match.cookies[0]: one of exact, prefix, suffix, regex, present, absent, modulo is required"},

		{name: "split not object", in: `{` + vs + `,"rules":[{"split":[1]}]}`, want: "rules[0].split: must be an object"},
		{name: "split weights missing", in: `{` + vs + `,"rules":[{"split":{}}]}`, want: "rules[0].split.weights: required"},
		{name: "split unknown version", in: `{` + vs + `,"rules":[{"split":{"weights":{"v1":90,"v3":10}}}]}`, want: "rules[0].split.weights.v3: unknown version"},
		{name: "split negative weight", in: `{` + vs + `,"rules":[{"split":{"weights":{"v1":-1}}}]}`, want: "rules[0].split.weights.v1: must be between 0 and 1000000"},
		{name: "split fractional weight", in: `{` + vs + `,"rules":[{"split":{"weights":{"v1":0.5}}}]}`, want: "rules[0].split.weights.v1: must be an integer"},
		{name: "split null weight", in: `{` + vs + `,"rules":[{"split":{"weights":{"v1":null}}}]}`, want: "rules[0].split.weights.v1: must be a number"},
		{name: "split duplicate version", in: `{` + vs + `,"rules":[{"split":{"weights":{"v1":1,"v1":2}}}]}`, want: "rules[0].split.weights.v1: duplicate key"},
		{name: "split all zero", in: `{` + vs + `,"rules":[{"split":{"weights":{"v1":0,"v2":0}}}]}`, want: "rules[0].split.weights: at least one weight must be positive"},
		{name: "split unknown key", in: `{` + vs + `,"rules":[{"split":{"weights":{"v1":1},"hash":"x"}}]}`, want: "rules[0].split.hash: unknown key"},
		{name: "hashOn two", in: `{` + vs + `,"rules":[{"split":{"weights":{"v1":1},"hashOn":{"header":"x-u","random":true}}}]}`,
			want: "rules[0].split.hashOn: header and random are exclusive"},
		{name: "hashOn none", in: `{` + vs + `,"rules":[{"split":{"weights":{"v1":1},"hashOn":{}}}]}`,
			want: "rules[0].split.hashOn: one of header, cookie, sourceAddress, random is required"},
		{name: "hashOn header bad", in: `{` + vs + `,"rules":[{"split":{"weights":{"v1":1},"hashOn":{"header":"X-U"}}}]}`,
			want: `rules[0].split.hashOn.header: invalid header name "X-U" (want a lowercase token)`},
		{name: "hashOn cookie bad", in: `{` + vs + `,"rules":[{"split":{"weights":{"v1":1},"hashOn":{"cookie":"a;b"}}}]}`,
			want: `rules[0].split.hashOn.cookie: invalid cookie name "a;b"`},
		{name: "hashOn random false", in: `{` + vs + `,"rules":[{"split":{"weights":{"v1":1},"hashOn":{"random":false}}}]}`,
			want: "rules[0].split.hashOn.random: must be true"},
		{name: "hashOn source string", in: `{` + vs + `,"rules":[{"split":{"weights":{"v1":1},"hashOn":{"sourceAddress":"yes"}}}]}`,
			want: "rules[0].split.hashOn.sourceAddress: must be a boolean"},

		{name: "sticky cookie missing", in: `{` + vs + `,"sticky":{}}`, want: "sticky.cookie: required"},
		{name: "sticky cookie bad", in: `{` + vs + `,"sticky":{"cookie":"a=b"}}`, want: `sticky.cookie: invalid cookie name "a=b"`},
		{name: "sticky ttl short", in: `{` + vs + `,"sticky":{"cookie":"c","ttl":"10ms"}}`, want: "sticky.ttl: must be between 1s and 9600h0m0s"},
		{name: "sticky ttl bad", in: `{` + vs + `,"sticky":{"cookie":"c","ttl":"1 hour"}}`, want: `sticky.ttl: invalid duration "1 hour"`},
		{name: "sticky path relative", in: `{` + vs + `,"sticky":{"cookie":"c","path":"x"}}`, want: `sticky.path: must start with "/" and not contain ";" or control characters`},
		{name: "sticky path injection", in: `{` + vs + `,"sticky":{"cookie":"c","path":"/; Domain=evil"}}`, want: `sticky.path: must start with "/" and not contain ";" or control characters`},
		{name: "sticky domain bad", in: `{` + vs + `,"sticky":{"cookie":"c","domain":"a;b"}}`, want: `sticky.domain: invalid domain "a;b"`},
		{name: "sticky samesite bad", in: `{` + vs + `,"sticky":{"cookie":"c","sameSite":"lax"}}`, want: `sticky.sameSite: unknown value "lax" (want one of [Strict Lax None])`},
		{name: "sticky samesite none insecure", in: `{` + vs + `,"sticky":{"cookie":"c","sameSite":"None"}}`, want: `sticky.sameSite: "None" requires secure: true`},
		{name: "sticky unknown key", in: `{` + vs + `,"sticky":{"cookie":"c","maxAge":1}}`, want: "sticky.maxAge: unknown key"},

		{name: "mirror cluster missing", in: `{` + vs + `,"mirror":{}}`, want: "mirror.cluster: required"},
		{name: "mirror timeout long", in: `{` + vs + `,"mirror":{"cluster":"s","timeout":"2m"}}`, want: "mirror.timeout: must be between 1ms and 1m0s"},
		{name: "mirror header bad", in: `{` + vs + `,"mirror":{"cluster":"s","headers":["ok","Bad"]}}`, want: `mirror.headers[1]: invalid header name "Bad" (want a lowercase token)`},
		{name: "mirror header null", in: `{` + vs + `,"mirror":{"cluster":"s","headers":[null]}}`, want: "mirror.headers[0]: required"},
		{name: "mirror percent", in: `{` + vs + `,"mirror":{"cluster":"s","percent":101}}`, want: "mirror.percent: must be between 0 and 100"},
		{name: "mirror unknown key", in: `{` + vs + `,"mirror":{"cluster":"s","host":"x"}}`, want: "mirror.host: unknown key"},

		{name: "guard unknown key", in: `{` + vs + `,"guard":{"threshold":1}}`, want: "guard.threshold: unknown key"},
		{name: "guard default version", in: `{` + vs + `,"guard":{"versions":["v2","v1"]}}`, want: "guard.versions[1]: the default version cannot be guarded: diverted traffic goes to it"},
		{name: "guard unknown version", in: `{` + vs + `,"guard":{"versions":["v3"]}}`, want: `guard.versions[0]: unknown version "v3"`},
		{name: "guard nothing to guard", in: `{"versions":["v1"],"guard":{}}`, want: "guard.versions: no version to guard besides the default"},
		{name: "guard empty versions", in: `{` + vs + `,"guard":{"versions":[]}}`, want: "guard.versions: no version to guard besides the default"},
		{name: "guard window big", in: `{` + vs + `,"guard":{"window":1000}}`, want: "guard.window: must be between 1 and 256"},
		{name: "guard min over window", in: `{` + vs + `,"guard":{"window":10,"minRequests":11}}`, want: "guard.minRequests: must not exceed window 10"},
		{name: "guard ratio big", in: `{` + vs + `,"guard":{"maxErrorRatio":1.5}}`, want: "guard.maxErrorRatio: must be between 0 and 1"},
		{name: "guard never trips", in: `{` + vs + `,"guard":{"maxErrorRatio":0,"consecutive5xx":0}}`, want: "guard: maxErrorRatio and consecutive5xx are both 0: the guard could never trip"},
		{name: "guard cooldown short", in: `{` + vs + `,"guard":{"cooldown":"1ms"}}`, want: "guard.cooldown: must be between 1s and 24h0m0s"},
		{name: "guard probe zero", in: `{` + vs + `,"guard":{"probePercent":0}}`, want: "guard.probePercent: must be between 0.01 and 100"},
		{name: "guard probe successes", in: `{` + vs + `,"guard":{"probeSuccesses":0}}`, want: "guard.probeSuccesses: must be between 1 and 10000"},
		{name: "guard store mode", in: `{` + vs + `,"guard":{"onStoreError":"deny"}}`, want: `guard.onStoreError: unknown value "deny" (want one of [admit divert])`},
		{name: "guard key empty", in: `{` + vs + `,"guard":{"key":""}}`, want: "guard.key: empty string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse([]byte(tc.in))
			require.EqualError(t, err, tc.want)
			require.Nil(t, r)
		})
	}
}
