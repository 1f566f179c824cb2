package authz

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/internal/casstore"
)

func extCfg(provider, policies string) string {
	return `{"extensionProviders":[{"name":"ext","envoyExtAuthzHttp":{"cluster":"outbound|9000||authz","pathPrefix":"/check",
  "timeout":"300ms","includeRequestHeadersInCheck":["x-user-role","cookie"],"includeAdditionalHeadersInCheck":{"x-from":"meshwasm"},
  "headersToUpstreamOnAllow":["x-user-*"],"headersToDownstreamOnAllow":["x-trace"],"headersToDownstreamOnDeny":["www-authenticate","set-cookie"]` + provider + `}}],
  "policies":[{"name":"ext-check","action":"CUSTOM","provider":{"name":"ext"},"rules":[{"to":[{"operation":{"paths":["/api/*"]}}]}]}` + policies + `]}`
}

func reply(status string, body string, hs ...string) Reply {
	r := Reply{Headers: [][2]string{{":status", status}}, Body: []byte(body)}
	for i := 0; i < len(hs); i += 2 {
		r.Headers = append(r.Headers, [2]string{hs[i], hs[i+1]})
	}
	return r
}

func TestEngine_Custom(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		policies string
		reply    Reply
		verdict  Verdict
		status   int
		body     string
		policy   string
		setReq   []Header
		respHdrs []Header
		marks    []Mark
		extError bool
	}{
		{name: "200 allows and copies headers", reply: reply("200", "", "x-user-id", "u1", "x-other", "no", "X-Trace", "t1", ":path", "/x"),
			verdict: Allow, setReq: []Header{{"x-user-id", "u1"}}, respHdrs: []Header{{"x-trace", "t1"}}, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "403 denies with its body and headers", reply: reply("403", "nope", "www-authenticate", "Basic", "x-user-id", "u1", "content-length", "4"),
			verdict: Deny, status: 403, body: "nope", policy: "ext-check", respHdrs: []Header{{"www-authenticate", "Basic"}}, marks: []Mark{{0, OutcomeDenied}}},
		{name: "any other status denies with that status", reply: reply("302", "", "set-cookie", "a=b"),
			verdict: Deny, status: 302, policy: "ext-check", respHdrs: []Header{{"set-cookie", "a=b"}}, marks: []Mark{{0, OutcomeDenied}}},
		{name: "5xx from the service is a deny, not an error", reply: reply("503", "down"),
			verdict: Deny, status: 503, body: "down", policy: "ext-check", marks: []Mark{{0, OutcomeDenied}}},
		{name: "timeout fails closed", reply: Reply{Failed: true},
			verdict: Deny, status: 403, body: "RBAC: access denied", policy: "ext-check", marks: []Mark{{0, OutcomeDenied}}, extError: true},
		{name: "garbage status fails closed with statusOnError", provider: `,"statusOnError":503`, reply: reply("abc", ""),
			verdict: Deny, status: 503, body: "RBAC: access denied", policy: "ext-check", marks: []Mark{{0, OutcomeDenied}}, extError: true},
		{name: "failOpen lets errors through", provider: `,"failOpen":true`, reply: Reply{Failed: true},
			verdict: Allow, extError: true},
		{name: "allow then local deny", policies: `,{"name":"d","action":"DENY","rules":[{}]}`, reply: reply("200", ""),
			verdict: Deny, status: 403, body: "RBAC: access denied", policy: "d", marks: []Mark{{1, OutcomeDenied}, {0, OutcomeAllowed}}},
		{name: "custom deny comes first and hides local marks", policies: `,{"name":"d","action":"DENY","rules":[{}]},{"name":"au","action":"AUDIT","rules":[{}]}`, reply: reply("401", ""),
			verdict: Deny, status: 401, policy: "ext-check", marks: []Mark{{2, OutcomeAudited}, {0, OutcomeDenied}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := mustEngine(t, extCfg(tc.provider, tc.policies))
			r := mtlsReq()
			r.Path = "/api/payments/1?x=y"
			r.Headers = hdrs{"authorization": "Basic abc", "x-user-role": "admin", "x-secret": "s"}
			var d Decision
			e.Check(r, &d)
			require.Equal(t, CallCustom, d.Verdict)
			require.Equal(t, Callout{Provider: "ext", Cluster: "outbound|9000||authz", Timeout: 300 * time.Millisecond, Headers: [][2]string{
				{":method", "POST"}, {":path", "/check/api/payments/1?x=y"}, {":authority", "payment-service:8080"}, {"content-length", "0"},
				{"authorization", "Basic abc"}, {"x-user-role", "admin"}, {"x-from", "meshwasm"}}}, d.Callout)
			e.Resolve(&d, tc.reply)
			require.Equal(t, tc.verdict, d.Verdict)
			require.Equal(t, tc.status, d.Status)
			require.Equal(t, tc.body, d.Body)
			require.Equal(t, tc.policy, d.Policy)
			require.Equal(t, tc.extError, d.CustomError)
			require.False(t, d.CustomCache)
			if tc.setReq == nil {
				require.Empty(t, d.SetRequestHeaders)
			} else {
				require.Equal(t, tc.setReq, d.SetRequestHeaders)
			}
			if tc.respHdrs == nil {
				require.Empty(t, d.ResponseHeaders)
			} else {
				require.Equal(t, tc.respHdrs, d.ResponseHeaders)
			}
			if tc.marks == nil {
				require.Empty(t, d.Marks)
			} else {
				require.Equal(t, tc.marks, d.Marks)
			}
			e.Resolve(&d, reply("403", "")) // a late second reply changes nothing
			require.Equal(t, tc.verdict, d.Verdict)
		})
	}
}

func TestEngine_Custom_NotMatchedSkipsCallout(t *testing.T) {
	e := mustEngine(t, extCfg("", ""))
	r := mtlsReq()
	r.Path = "/health"
	d := check(e, r)
	require.Equal(t, Allow, d.Verdict)
	require.Empty(t, d.Callout.Cluster)
}

func TestEngine_Custom_Cache(t *testing.T) {
	clk := newFakeClock()
	shared := casstore.NewMemory()
	cfg := mustParse(t, extCfg(`,"cache":{"ttl":"10s","keyHeaders":["authorization",":path"],"maxEntries":4}`, ""))
	w1 := New(cfg, Options{Clock: clk.Now, Shared: shared})
	w2 := New(cfg, Options{Clock: clk.Now, Shared: shared})
	req := func(auth, path string) *Request {
		r := mtlsReq()
		r.Path = path
		r.Headers = hdrs{"authorization": auth}
		return r
	}

	var d Decision
	w1.Check(req("Bearer a", "/api/1"), &d)
	require.Equal(t, CallCustom, d.Verdict)
	w1.Resolve(&d, reply("200", "", "x-user-id", "a"))
	require.Equal(t, Allow, d.Verdict)

	// Another worker answers from the shared cache, headers included.
	w2.Check(req("Bearer a", "/api/1"), &d)
	require.Equal(t, Allow, d.Verdict)
	require.True(t, d.CustomCache)
	require.Equal(t, []Header{{"x-user-id", "a"}}, d.SetRequestHeaders)
	require.Equal(t, []Mark{{0, OutcomeAllowed}}, d.Marks)

	// Different key headers miss.
	w2.Check(req("Bearer b", "/api/1"), &d)
	require.Equal(t, CallCustom, d.Verdict)
	w2.Resolve(&d, reply("403", "no"))
	w1.Check(req("Bearer b", "/api/1"), &d)
	require.Equal(t, Deny, d.Verdict)
	require.Equal(t, "no", d.Body)
	require.True(t, d.CustomCache)
	w1.Check(req("Bearer a", "/api/2"), &d)
	require.Equal(t, CallCustom, d.Verdict)

	// Errors are not cached.
	w1.Resolve(&d, Reply{Failed: true})
	w1.Check(req("Bearer a", "/api/2"), &d)
	require.Equal(t, CallCustom, d.Verdict)

	// Entries expire after the TTL.
	clk.Advance(10 * time.Second)
	w2.Check(req("Bearer a", "/api/1"), &d)
	require.Equal(t, CallCustom, d.Verdict)

	// The key space is bounded by maxEntries.
	for i := 0; i < 50; i++ {
		w1.Check(req("Bearer a", "/api/"+string(rune('a'+i%26))+string(rune('a'+i/26))), &d)
		w1.Resolve(&d, reply("200", ""))
	}
	require.LessOrEqual(t, shared.Len(), 4)
}

func FuzzExtAuthz_Reply(f *testing.F) {
	f.Add("200", "x-user-id", "u", []byte("ok"), false)
	f.Add("403", "set-cookie", "a", []byte("no"), false)
	f.Add("xyz", ":status", "200", []byte{}, true)
	e := mustEngine(f, extCfg(`,"cache":{"ttl":"10s","keyHeaders":["authorization"]}`, ""))
	f.Fuzz(func(t *testing.T, status, name, value string, body []byte, failed bool) {
		var d Decision
		r := mtlsReq()
		e.Check(r, &d)
		if d.Verdict != CallCustom {
			return // answered from the cache
		}
		e.Resolve(&d, Reply{Headers: [][2]string{{":status", status}, {name, value}}, Body: body, Failed: failed})
		require.Contains(t, []Verdict{Allow, Deny}, d.Verdict)
		if d.Verdict == Deny {
			require.GreaterOrEqual(t, d.Status, 100)
		}
	})
}
