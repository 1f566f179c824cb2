package canary

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeRequest is a Request over a map; it counts the lazy lookups so tests can
// check that the host is asked only for what a decision needs.
type fakeRequest struct {
	headers        map[string]string
	source         string
	principal      string
	sourceCalls    int
	principalCalls int
}

func (r *fakeRequest) Header(name string) (string, bool) {
	v, ok := r.headers[name]
	return v, ok
}

func (r *fakeRequest) SourceAddress() string { r.sourceCalls++; return r.source }
func (r *fakeRequest) Principal() string     { r.principalCalls++; return r.principal }

func get(path string, headers ...string) *fakeRequest {
	h := map[string]string{":method": "GET", ":path": path, ":authority": "orders"}
	for i := 0; i+1 < len(headers); i += 2 {
		h[headers[i]] = headers[i+1]
	}
	return &fakeRequest{headers: h}
}

func mustParse(t testing.TB, config string) *Router {
	t.Helper()
	r, err := Parse([]byte(config))
	require.NoError(t, err)
	return r
}

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// matcherConfig routes to v2 when the rule under test matches, v1 otherwise.
func matcherConfig(match string) string {
	return `{"versions":["v1","v2"],"rules":[{"name":"r","match":` + match + `,"route":"v2"}]}`
}

func TestDecide_Matchers(t *testing.T) {
	tests := []struct {
		name  string
		match string
		req   *fakeRequest
		want  string
	}{
		{name: "header exact", match: `{"headers":[{"name":"x-canary","exact":"true"}]}`, req: get("/", "x-canary", "true"), want: "v2"},
		{name: "header exact mismatch", match: `{"headers":[{"name":"x-canary","exact":"true"}]}`, req: get("/", "x-canary", "TRUE"), want: "v1"},
		{name: "header exact missing", match: `{"headers":[{"name":"x-canary","exact":"true"}]}`, req: get("/"), want: "v1"},
		{name: "header prefix", match: `{"headers":[{"name":"user-agent","prefix":"Mozilla/"}]}`, req: get("/", "user-agent", "Mozilla/5.0"), want: "v2"},
		{name: "header prefix mismatch", match: `{"headers":[{"name":"user-agent","prefix":"Mozilla/"}]}`, req: get("/", "user-agent", "curl/8"), want: "v1"},
		{name: "header suffix", match: `{"headers":[{"name":"x-email","suffix":"@example.com"}]}`, req: get("/", "x-email", "a@example.com"), want: "v2"},
		{name: "header suffix mismatch", match: `{"headers":[{"name":"x-email","suffix":"@example.com"}]}`, req: get("/", "x-email", "a@example.org"), want: "v1"},
		{name: "header regex", match: `{"headers":[{"name":"x-user-id","regex":"[0-9]*[02468]"}]}`, req: get("/", "x-user-id", "1234"), want: "v2"},
		{name: "header regex is anchored", match: `{"headers":[{"name":"x-user-id","regex":"[0-9]*[02468]"}]}`, req: get("/", "x-user-id", "1234x"), want: "v1"},
		{name: "header regex alternation anchored", match: `{"headers":[{"name":"x-tier","regex":"gold|silver"}]}`, req: get("/", "x-tier", "goldfish"), want: "v1"},
		{name: "header present", match: `{"headers":[{"name":"x-debug","present":true}]}`, req: get("/", "x-debug", ""), want: "v2"},
		{name: "header present missing", match: `{"headers":[{"name":"x-debug","present":true}]}`, req: get("/"), want: "v1"},
		{name: "header absent", match: `{"headers":[{"name":"x-debug","absent":true}]}`, req: get("/"), want: "v2"},
		{name: "header absent present", match: `{"headers":[{"name":"x-debug","absent":true}]}`, req: get("/", "x-debug", "1"), want: "v1"},
		{name: "header invert", match: `{"headers":[{"name":"x-canary","exact":"false","invert":true}]}`, req: get("/", "x-canary", "true"), want: "v2"},
		{name: "header invert matches missing", match: `{"headers":[{"name":"x-canary","exact":"false","invert":true}]}`, req: get("/"), want: "v2"},
		{name: "header invert excludes", match: `{"headers":[{"name":"x-canary","exact":"false","invert":true}]}`, req: get("/", "x-canary", "false"), want: "v1"},
		{name: "modulo even", match: `{"headers":[{"name":"x-user-id","modulo":{"divisor":2,"remainder":0}}]}`, req: get("/", "x-user-id", "1234"), want: "v2"},
		{name: "modulo odd", match: `{"headers":[{"name":"x-user-id","modulo":{"divisor":2,"remainder":0}}]}`, req: get("/", "x-user-id", "1235"), want: "v1"},
		{name: "modulo remainder", match: `{"headers":[{"name":"x-user-id","modulo":{"divisor":10,"remainder":7}}]}`, req: get("/", "x-user-id", "97"), want: "v2"},
		{name: "modulo not a number", match: `{"headers":[{"name":"x-user-id","modulo":{"divisor":2}}]}`, req: get("/", "x-user-id", "abc"), want: "v1"},
		{name: "modulo missing", match: `{"headers":[{"name":"x-user-id","modulo":{"divisor":2}}]}`, req: get("/"), want: "v1"},
		{name: "query exact", match: `{"query":[{"name":"canary","exact":"1"}]}`, req: get("/orders?canary=1"), want: "v2"},
		{name: "query encoded", match: `{"query":[{"name":"who","exact":"a b"}]}`, req: get("/orders?who=a%20b"), want: "v2"},
		{name: "query mismatch", match: `{"query":[{"name":"canary","exact":"1"}]}`, req: get("/orders?canary=0"), want: "v1"},
		{name: "query present", match: `{"query":[{"name":"canary","present":true}]}`, req: get("/orders?canary"), want: "v2"},
		{name: "query absent", match: `{"query":[{"name":"canary","absent":true}]}`, req: get("/orders?x=1"), want: "v2"},
		{name: "query modulo", match: `{"query":[{"name":"uid","modulo":{"divisor":2}}]}`, req: get("/orders?uid=8"), want: "v2"},
		{name: "cookie exact", match: `{"cookies":[{"name":"beta","exact":"yes"}]}`, req: get("/", "cookie", "a=1; beta=yes"), want: "v2"},
		{name: "cookie missing header", match: `{"cookies":[{"name":"beta","exact":"yes"}]}`, req: get("/"), want: "v1"},
		{name: "cookie regex", match: `{"cookies":[{"name":"beta","regex":"y.*"}]}`, req: get("/", "cookie", "beta=yep"), want: "v2"},
		{name: "cookie absent", match: `{"cookies":[{"name":"beta","absent":true}]}`, req: get("/", "cookie", "other=1"), want: "v2"},
		{name: "path exact", match: `{"path":{"exact":"/api/orders"}}`, req: get("/api/orders?x=1"), want: "v2"},
		{name: "path exact mismatch", match: `{"path":{"exact":"/api/orders"}}`, req: get("/api/orders/1"), want: "v1"},
		{name: "path prefix", match: `{"path":{"prefix":"/api/"}}`, req: get("/api/orders"), want: "v2"},
		{name: "path prefix mismatch", match: `{"path":{"prefix":"/api/"}}`, req: get("/apix"), want: "v1"},
		{name: "path regex", match: `{"path":{"regex":"/api/orders/[0-9]+"}}`, req: get("/api/orders/42?full=1"), want: "v2"},
		{name: "path regex anchored", match: `{"path":{"regex":"/api/orders/[0-9]+"}}`, req: get("/v0/api/orders/42"), want: "v1"},
		{name: "method", match: `{"methods":["POST","PUT"]}`, req: &fakeRequest{headers: map[string]string{":method": "PUT", ":path": "/"}}, want: "v2"},
		{name: "method mismatch", match: `{"methods":["POST","PUT"]}`, req: get("/"), want: "v1"},
		{name: "all parts must hold", match: `{"methods":["GET"],"path":{"prefix":"/api"},"headers":[{"name":"x-a","present":true}],"query":[{"name":"q","exact":"1"}],"cookies":[{"name":"c","exact":"1"}]}`,
			req: get("/api?q=1", "x-a", "", "cookie", "c=1"), want: "v2"},
		{name: "one part fails", match: `{"methods":["GET"],"path":{"prefix":"/api"},"headers":[{"name":"x-a","present":true}],"query":[{"name":"q","exact":"1"}],"cookies":[{"name":"c","exact":"1"}]}`,
			req: get("/api?q=1", "x-a", "", "cookie", "c=2"), want: "v1"},
		{name: "empty match is catch-all", match: `{}`, req: get("/"), want: "v2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustParse(t, matcherConfig(tc.match))
			d := r.Decide(tc.req, Env{Now: epoch})
			require.Equal(t, tc.want, d.Version)
			if tc.want == "v2" {
				require.Equal(t, 0, d.Rule)
				require.Equal(t, ReasonRule, d.Reason)
			} else {
				require.Equal(t, -1, d.Rule)
				require.Equal(t, ReasonDefault, d.Reason)
			}
			require.Equal(t, 0, tc.req.sourceCalls)
			require.Equal(t, 0, tc.req.principalCalls)
		})
	}
}

func TestDecide_FirstMatchWins(t *testing.T) {
	r := mustParse(t, `{"versions":["v1","v2","v3"],"default":"v1","rules":[
		{"name":"beta","match":{"headers":[{"name":"x-beta","present":true}]},"route":"v3"},
		{"name":"canary","match":{"headers":[{"name":"x-canary","exact":"true"}]},"route":"v2"},
		{"name":"rest","route":"v1"}]}`)
	tests := []struct {
		name     string
		req      *fakeRequest
		version  string
		rule     int
		ruleName string
	}{
		{name: "both match, first wins", req: get("/", "x-beta", "1", "x-canary", "true"), version: "v3", rule: 0, ruleName: "beta"},
		{name: "second", req: get("/", "x-canary", "true"), version: "v2", rule: 1, ruleName: "canary"},
		{name: "catch-all", req: get("/"), version: "v1", rule: 2, ruleName: "rest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := r.Decide(tc.req, Env{Now: epoch})
			require.Equal(t, tc.version, d.Version)
			require.Equal(t, tc.rule, d.Rule)
			require.Equal(t, tc.ruleName, r.RuleNames()[d.Rule])
			require.Equal(t, r.Versions()[d.VersionIndex], d.Version)
		})
	}
}

func TestDecide_AntiSpoofing(t *testing.T) {
	r := mustParse(t, `{"versions":["v1","v2"],"routeHeader":"x-route-version",
		"trust":{"headers":[{"name":"x-qa-token","value":"s3cret"}],"principals":["spiffe://cluster.local/ns/qa/sa/tester","spiffe://cluster.local/ns/ops/*"]},
		"rules":[{"match":{"headers":[{"name":"x-canary","exact":"true"}]},"route":"v2"}]}`)
	tests := []struct {
		name      string
		req       *fakeRequest
		principal string
		version   string
		reason    Reason
		client    ClientHeader
	}{
		{name: "no header", req: get("/"), version: "v1", reason: ReasonDefault, client: ClientHeaderAbsent},
		{name: "spoofed canary", req: get("/", "x-route-version", "v2"), version: "v1", reason: ReasonDefault, client: ClientHeaderReplaced},
		{name: "spoofed stable still follows rules", req: get("/", "x-route-version", "v1", "x-canary", "true"), version: "v2", reason: ReasonRule, client: ClientHeaderReplaced},
		{name: "wrong token", req: get("/", "x-route-version", "v2", "x-qa-token", "guess"), version: "v1", reason: ReasonDefault, client: ClientHeaderReplaced},
		{name: "trusted token", req: get("/", "x-route-version", "v2", "x-qa-token", "s3cret"), version: "v2", reason: ReasonTrusted, client: ClientHeaderHonoured},
		{name: "trusted principal", req: get("/", "x-route-version", "v2"), principal: "spiffe://cluster.local/ns/qa/sa/tester", version: "v2", reason: ReasonTrusted, client: ClientHeaderHonoured},
		{name: "trusted principal prefix", req: get("/", "x-route-version", "v2"), principal: "spiffe://cluster.local/ns/ops/sa/x", version: "v2", reason: ReasonTrusted, client: ClientHeaderHonoured},
		{name: "other principal", req: get("/", "x-route-version", "v2"), principal: "spiffe://cluster.local/ns/qa/sa/other", version: "v1", reason: ReasonDefault, client: ClientHeaderReplaced},
		{name: "trusted but unknown version", req: get("/", "x-route-version", "v9", "x-qa-token", "s3cret"), version: "v1", reason: ReasonDefault, client: ClientHeaderReplaced},
		{name: "trusted overrides rules", req: get("/", "x-route-version", "v1", "x-canary", "true", "x-qa-token", "s3cret"), version: "v1", reason: ReasonTrusted, client: ClientHeaderHonoured},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.principal = tc.principal
			d := r.Decide(tc.req, Env{Now: epoch})
			require.Equal(t, tc.version, d.Version)
			require.Equal(t, tc.reason, d.Reason)
			require.Equal(t, tc.client, d.ClientHeader)
		})
	}
}

func TestDecide_NoTrustConfigured(t *testing.T) {
	r := mustParse(t, `{"versions":["v1","v2"]}`)
	req := get("/", "x-route-version", "v2")
	d := r.Decide(req, Env{Now: epoch})
	require.Equal(t, "v1", d.Version)
	require.Equal(t, ClientHeaderReplaced, d.ClientHeader)
	require.Equal(t, 0, req.principalCalls, "no principal lookup without trusted principals")
}

func TestDecide_Sticky(t *testing.T) {
	r := mustParse(t, `{"versions":["v1","v2","v3"],
		"sticky":{"cookie":"canary","ttl":"1h","path":"/","secure":true,"sameSite":"Strict"},
		"rules":[
			{"name":"fixed","match":{"headers":[{"name":"x-canary","exact":"true"}]},"route":"v2"},
			{"name":"split","split":{"weights":{"v1":90,"v2":10,"v3":0},"hashOn":{"header":"x-user-id"}}}]}`)
	setV2 := "canary=v2; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Strict"
	tests := []struct {
		name      string
		req       *fakeRequest
		version   string
		reason    Reason
		setCookie string
	}{
		{name: "pinned to canary in split", req: get("/", "cookie", "canary=v2"), version: "v2", reason: ReasonSticky},
		{name: "pinned to stable in split", req: get("/", "cookie", "canary=v1"), version: "v1", reason: ReasonSticky},
		{name: "pinned version without weight re-picks", req: get("/", "cookie", "canary=v3", "x-user-id", "7"), version: "", reason: ReasonSplit, setCookie: "re-pick"},
		{name: "unknown pinned version re-picks", req: get("/", "cookie", "canary=v9", "x-user-id", "7"), version: "", reason: ReasonSplit, setCookie: "re-pick"},
		{name: "pinned fixed target", req: get("/", "x-canary", "true", "cookie", "canary=v2"), version: "v2", reason: ReasonSticky},
		{name: "pin differs from fixed target", req: get("/", "x-canary", "true", "cookie", "canary=v1"), version: "v2", reason: ReasonRule, setCookie: setV2},
		{name: "no cookie gets one", req: get("/", "x-canary", "true"), version: "v2", reason: ReasonRule, setCookie: setV2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := r.Decide(tc.req, Env{Now: epoch})
			require.Equal(t, tc.reason, d.Reason)
			if tc.version != "" {
				require.Equal(t, tc.version, d.Version)
			}
			switch tc.setCookie {
			case "re-pick":
				require.Contains(t, []string{"v1", "v2"}, d.Version)
				require.Equal(t, "canary="+d.Version+"; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Strict", d.SetCookie)
			default:
				require.Equal(t, tc.setCookie, d.SetCookie)
			}
		})
	}
}

// A random split without a key is sticky only through the cookie: the cookie
// it sets must bring the client back to the same version on every request.
func TestDecide_StickyRandomSplitRoundTrip(t *testing.T) {
	r := mustParse(t, `{"versions":["v1","v2"],"sticky":{"cookie":"cv"},
		"rules":[{"split":{"weights":{"v1":50,"v2":50}}}]}`)
	for i := range 200 {
		first := r.Decide(get("/"), Env{Now: epoch, Random: uint64(i) * 0x9e3779b97f4a7c15})
		require.NotEmpty(t, first.SetCookie)
		cookie, _, _ := strings.Cut(first.SetCookie, ";")
		for j := range 5 {
			next := r.Decide(get("/", "cookie", cookie), Env{Now: epoch, Random: uint64(j)})
			require.Equal(t, first.Version, next.Version)
			require.Equal(t, ReasonSticky, next.Reason)
			require.Empty(t, next.SetCookie)
		}
	}
}

func TestDecide_StickyCookieAttributes(t *testing.T) {
	tests := []struct {
		name, sticky, want string
	}{
		{name: "defaults", sticky: `{"cookie":"cv"}`, want: "cv=v2; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax"},
		{name: "all", sticky: `{"cookie":"cv","ttl":"90m","path":"/shop","domain":"example.com","httpOnly":false,"secure":true,"sameSite":"None"}`,
			want: "cv=v2; Path=/shop; Domain=example.com; Max-Age=5400; Secure; SameSite=None"},
		{name: "ttl truncated to seconds", sticky: `{"cookie":"cv","ttl":"1500ms"}`, want: "cv=v2; Path=/; Max-Age=1; HttpOnly; SameSite=Lax"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustParse(t, `{"versions":["v1","v2"],"sticky":`+tc.sticky+`,"rules":[{"route":"v2"}]}`)
			d := r.Decide(get("/"), Env{Now: epoch})
			require.Equal(t, tc.want, d.SetCookie)
		})
	}
}

func TestDecide_DefaultRouteIgnoresSticky(t *testing.T) {
	r := mustParse(t, `{"versions":["v1","v2"],"sticky":{"cookie":"cv"},
		"rules":[{"match":{"path":{"prefix":"/api"}},"route":"v2"}]}`)
	d := r.Decide(get("/other", "cookie", "cv=v2"), Env{Now: epoch})
	require.Equal(t, "v1", d.Version)
	require.Equal(t, ReasonDefault, d.Reason)
	require.Empty(t, d.SetCookie)
}

func TestDecide_Mirror(t *testing.T) {
	tests := []struct {
		name    string
		percent string
		want    int // mirrored out of 10000 draws
		margin  int
	}{
		{name: "always", percent: ``, want: 10000},
		{name: "never", percent: `,"percent":0`, want: 0},
		{name: "ten percent", percent: `,"percent":10`, want: 1000, margin: 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustParse(t, `{"versions":["v1","v2"],"mirror":{"cluster":"shadow"`+tc.percent+`}}`)
			n := 0
			for i := range 10000 {
				if r.Decide(get("/"), Env{Now: epoch, Random: mix64(uint64(i))}).Mirror {
					n++
				}
			}
			require.InDelta(t, tc.want, n, float64(tc.margin))
		})
	}
}

func TestMirror_Headers(t *testing.T) {
	tests := []struct {
		name   string
		mirror string
		req    *fakeRequest
		want   [][2]string
	}{
		{name: "pseudo headers and shadow suffix", mirror: `{"cluster":"shadow"}`,
			req:  get("/orders?id=1", "x-user-id", "7"),
			want: [][2]string{{":method", "GET"}, {":path", "/orders?id=1"}, {":authority", "orders-shadow"}}},
		{name: "suffix before port", mirror: `{"cluster":"shadow"}`,
			req:  &fakeRequest{headers: map[string]string{":method": "POST", ":path": "/", ":authority": "orders:8080"}},
			want: [][2]string{{":method", "POST"}, {":path", "/"}, {":authority", "orders-shadow:8080"}}},
		{name: "ipv6 authority without port", mirror: `{"cluster":"shadow"}`,
			req:  &fakeRequest{headers: map[string]string{":method": "GET", ":path": "/", ":authority": "[::1]"}},
			want: [][2]string{{":method", "GET"}, {":path", "/"}, {":authority", "[::1]-shadow"}}},
		{name: "configured headers copied when present", mirror: `{"cluster":"shadow","authority":"shadow.internal","headers":["x-user-id","x-missing","x-request-id"]}`,
			req:  get("/", "x-user-id", "7", "x-request-id", "abc", "authorization", "secret"),
			want: [][2]string{{":method", "GET"}, {":path", "/"}, {":authority", "shadow.internal"}, {"x-user-id", "7"}, {"x-request-id", "abc"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustParse(t, `{"versions":["v1"],"mirror":`+tc.mirror+`}`)
			m := r.Mirror()
			require.Equal(t, "shadow", m.Cluster)
			require.Equal(t, time.Second, m.Timeout)
			require.Equal(t, tc.want, m.Headers(tc.req))
		})
	}
}

func TestRouter_Accessors(t *testing.T) {
	r := mustParse(t, `{"versions":["stable","canary"],"default":"stable","routeHeader":"x-v","responseHeader":"x-served-by",
		"rules":[{"name":"a","route":"canary"},{"route":"stable"}]}`)
	require.Equal(t, "x-v", r.RouteHeader())
	require.Equal(t, "x-served-by", r.ResponseHeader())
	require.Equal(t, []string{"stable", "canary"}, r.Versions())
	require.Equal(t, 0, r.Default())
	require.Equal(t, []string{"a", "1"}, r.RuleNames())
	require.Nil(t, r.Mirror())
	require.Nil(t, r.Guard())
}

func TestReason_String(t *testing.T) {
	for r, want := range map[Reason]string{ReasonDefault: "default", ReasonRule: "rule", ReasonSplit: "split", ReasonSticky: "sticky", ReasonTrusted: "trusted"} {
		require.Equal(t, want, r.String())
	}
}
