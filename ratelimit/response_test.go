package ratelimit

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHeaders(t *testing.T) {
	q := Quota{Name: "api", Limit: 100, Window: 60, Remaining: 0, Reset: 17}
	tests := []struct {
		name, response string
		d              Decision
		want           [][2]string
	}{
		{name: "deny", d: Decision{Verdict: Deny, RetryAfter: 17, Quota: q}, want: [][2]string{
			{"retry-after", "17"}, {"ratelimit-policy", `"api";q=100;w=60`}, {"ratelimit", `"api";r=0;t=17`}}},
		{name: "deny legacy", response: `"legacyHeaders": true`, d: Decision{Verdict: Deny, RetryAfter: 17, Quota: q}, want: [][2]string{
			{"retry-after", "17"}, {"ratelimit-policy", `"api";q=100;w=60`}, {"ratelimit", `"api";r=0;t=17`},
			{"x-ratelimit-limit", "100"}, {"x-ratelimit-remaining", "0"}, {"x-ratelimit-reset", "17"}}},
		{name: "deny without quota", d: Decision{Verdict: Deny, RetryAfter: 0}, want: [][2]string{{"retry-after", "1"}}},
		{name: "allowed without opt-in", d: Decision{Verdict: Allow, Quota: q}},
		{name: "allowed with opt-in", response: `"headersOnAllowed": true`, d: Decision{Verdict: Delay, Quota: Quota{Name: "api", Limit: 100, Window: 60, Remaining: 99, Reset: 1}},
			want: [][2]string{{"ratelimit-policy", `"api";q=100;w=60`}, {"ratelimit", `"api";r=99;t=1`}}},
		{name: "allowed with no rule", response: `"headersOnAllowed": true`, d: Decision{Verdict: Allow}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, `{"response": {`+tc.response+`}, "rules": [{"name": "api", "algorithm": "token_bucket", "rate": "1/s"}]}`)
			require.Equal(t, tc.want, f.l.Headers(&tc.d))
		})
	}
}

func TestDenyResponse(t *testing.T) {
	f := newFixture(t, `{"rules": [{"name": "api", "algorithm": "fixed_window", "limit": 1, "window": "1m"}]}`)
	f.l.Check(get("/"))
	d := f.l.Check(get("/"))
	status, headers, body := f.l.DenyResponse(&d)
	require.Equal(t, uint32(429), status)
	require.Equal(t, [][2]string{{"retry-after", "60"}, {"ratelimit-policy", `"api";q=1;w=60`}, {"ratelimit", `"api";r=0;t=60`}, {"content-type", "application/problem+json"}}, headers)
	require.JSONEq(t, `{"type": "about:blank", "title": "Too Many Requests", "status": 429, "detail": "request rate limit exceeded"}`, string(body))

	f = newFixture(t, `{"response": {"body": "slow down"}, "rules": [{"name": "api", "algorithm": "fixed_window", "limit": 1, "window": "1m"}]}`)
	_, headers, body = f.l.DenyResponse(&d)
	require.Equal(t, [2]string{"content-type", "text/plain; charset=utf-8"}, headers[len(headers)-1])
	require.Equal(t, "slow down", string(body))

	f = newFixture(t, `{"response": {"body": "{\"e\":1}", "contentType": "application/json"}, "rules": [{"name": "api", "algorithm": "fixed_window", "limit": 1, "window": "1m"}]}`)
	_, headers, body = f.l.DenyResponse(&d)
	require.Equal(t, [2]string{"content-type", "application/json"}, headers[len(headers)-1])
	require.Equal(t, `{"e":1}`, string(body))
}
