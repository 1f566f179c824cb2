package ratelimit

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const globalRules = `{"global": {"cluster": "ratelimit", "domain": "edge", "timeout": "50ms", "failureMode": "%s"},
	"rules": [
		{"name": "local", "algorithm": "fixed_window", "limit": 2, "window": "1m"},
		{"name": "per-key", "mode": "global", "key": ["header:x-api-key", "constant:checkout"], "descriptorKeys": ["api_key", "op"]},
		{"name": "audit", "mode": "global", "shadow": true, "key": ["remote_address"], "match": {"methods": ["POST"]}},
		{"name": "user", "mode": "global", "key": ["header:x-user"]}]}`

func globalFixture(t *testing.T, failureMode string) *fixture {
	return newFixture(t, strings.Replace(globalRules, "%s", failureMode, 1))
}

func TestCheck_GlobalCall(t *testing.T) {
	f := globalFixture(t, "deny")
	req := get("/cart?x=1", "x-api-key", `k"1`)
	req.method = "POST"
	d := f.l.Check(req)
	require.Equal(t, Call, d.Verdict)
	require.Equal(t, "ratelimit", d.Call.Cluster)
	require.Equal(t, 50*time.Millisecond, d.Call.Timeout)
	require.Equal(t, [][2]string{{":method", "POST"}, {":path", "/json"}, {":authority", "ratelimit"}, {"content-type", "application/json"}}, d.Call.Headers)
	// The user rule's key part is missing and it skips; the audit rule
	// matches POST.
	require.JSONEq(t, `{"domain": "edge", "descriptors": [
		{"entries": [{"key": "api_key", "value": "k\"1"}, {"key": "op", "value": "checkout"}]},
		{"entries": [{"key": "remote_address", "value": "10.0.0.1"}]}]}`, string(d.Call.Body))
	require.Equal(t, []int{1, 2}, d.Call.rules)
}

func TestCheck_LocalShedsBeforeGlobal(t *testing.T) {
	f := globalFixture(t, "deny")
	req := get("/", "x-user", "u")
	require.Equal(t, Call, f.l.Check(req).Verdict)
	require.Equal(t, Call, f.l.Check(req).Verdict)
	d := f.l.Check(req)
	require.Equal(t, Deny, d.Verdict, "the local rule denies before any callout")
	require.Nil(t, d.Call)
}

func TestComplete(t *testing.T) {
	twoOK := `{"overallCode": "OK", "statuses": [
		{"code": "OK", "currentLimit": {"requestsPerUnit": 100, "unit": "MINUTE"}, "limitRemaining": 42, "durationUntilReset": "30s"},
		{"code": "OK", "currentLimit": {"requestsPerUnit": 10, "unit": "SECOND"}, "limitRemaining": 9, "durationUntilReset": "0.5s"}]}`
	over := `{"overallCode": "OVER_LIMIT", "statuses": [
		{"code": "OVER_LIMIT", "currentLimit": {"requestsPerUnit": 100, "unit": "MINUTE"}, "durationUntilReset": "12.3s"},
		{"code": "OK", "currentLimit": {"requestsPerUnit": 10, "unit": "SECOND"}, "limitRemaining": 3}]}`
	shadowOver := `{"overall_code": 2, "statuses": [
		{"code": 1, "current_limit": {"requests_per_unit": 100, "unit": "HOUR"}, "limit_remaining": 7},
		{"code": 2, "current_limit": {"requests_per_unit": 10, "unit": "SECOND"}}]}`
	tests := []struct {
		name, mode string
		status     int
		body       string
		want       Decision
		metrics    map[Metric]uint64 // rule 1
	}{
		{name: "allowed", mode: "deny", status: 200, body: twoOK,
			want:    Decision{Verdict: Allow, Rule: -1, Quota: Quota{Name: "local", Limit: 2, Window: 60, Remaining: 1, Reset: 60}},
			metrics: map[Metric]uint64{MetricAllowed: 1}},
		{name: "over limit", mode: "allow", status: 429, body: over,
			want:    Decision{Verdict: Deny, Rule: 1, RetryAfter: 13, Quota: Quota{Name: "per-key", Limit: 100, Window: 60, Remaining: 0, Reset: 13}},
			metrics: map[Metric]uint64{MetricLimited: 1}},
		{name: "shadow over limit", mode: "deny", status: 429, body: shadowOver,
			want:    Decision{Verdict: Allow, Rule: -1, Quota: Quota{Name: "local", Limit: 2, Window: 60, Remaining: 1, Reset: 60}, ShadowLimited: []int{2}},
			metrics: map[Metric]uint64{MetricAllowed: 1}},
		{name: "timeout denies", mode: "deny", status: 0,
			want:    Decision{Verdict: Deny, Rule: 1, RetryAfter: 1},
			metrics: map[Metric]uint64{MetricGlobalErrors: 1}},
		{name: "timeout allows", mode: "allow", status: 0,
			want:    Decision{Verdict: Allow, Rule: -1, Quota: Quota{Name: "local", Limit: 2, Window: 60, Remaining: 1, Reset: 60}},
			metrics: map[Metric]uint64{MetricGlobalErrors: 1}},
		{name: "garbage denies", mode: "deny", status: 200, body: `<html>`,
			want:    Decision{Verdict: Deny, Rule: 1, RetryAfter: 1},
			metrics: map[Metric]uint64{MetricGlobalErrors: 1}},
		{name: "server error allows", mode: "allow", status: 503, body: `upstream connect error`,
			want:    Decision{Verdict: Allow, Rule: -1, Quota: Quota{Name: "local", Limit: 2, Window: 60, Remaining: 1, Reset: 60}},
			metrics: map[Metric]uint64{MetricGlobalErrors: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := globalFixture(t, tc.mode)
			req := get("/", "x-api-key", "k")
			req.method = "POST"
			d := f.l.Check(req)
			require.Equal(t, Call, d.Verdict)
			got := f.l.Complete(d.Call, tc.status, []byte(tc.body))
			if len(got.ShadowLimited) == 0 {
				got.ShadowLimited = nil
			}
			require.Equal(t, tc.want, got)
			for _, m := range Metrics() {
				require.Equal(t, tc.metrics[m], f.rec.get(1, m), m.String())
			}
		})
	}
}

func TestComplete_KeepsLocalDelay(t *testing.T) {
	f := newFixture(t, `{"global": {"cluster": "c", "domain": "d", "failureMode": "allow"}, "rules": [
		{"name": "shape", "algorithm": "leaky_bucket", "mode": "shape", "rate": "10/s", "queue": 5},
		{"name": "g", "mode": "global", "key": ["constant:x"]}]}`)
	f.l.Check(get("/"))
	d := f.l.Check(get("/"))
	require.Equal(t, Call, d.Verdict)
	require.Equal(t, 100*time.Millisecond, d.Delay)
	got := f.l.Complete(d.Call, 200, []byte(`{"overallCode": "OK", "statuses": [{"code": "OK"}]}`))
	require.Equal(t, Delay, got.Verdict)
	require.Equal(t, 100*time.Millisecond, got.Delay)
	require.Equal(t, uint64(1), f.rec.get(0, MetricDelayed))
}

func TestParseReply_Errors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{name: "no reply", status: 0, want: "global: no reply"},
		{name: "status", status: 500, body: `{}`, want: "global: unexpected status 500"},
		{name: "not json", status: 200, body: `{"overallCode":`, want: "global: reply is not JSON"},
		{name: "not object", status: 200, body: `[]`, want: "global: reply is not an object"},
		{name: "no overall", status: 200, body: `{"statuses": []}`, want: "global: overallCode: missing"},
		{name: "unknown overall", status: 200, body: `{"overallCode": "UNKNOWN"}`, want: `global: overallCode: unexpected value "UNKNOWN"`},
		{name: "status disagrees", status: 200, body: `{"overallCode": "OVER_LIMIT"}`, want: "global: status 200 disagrees with overallCode"},
		{name: "no statuses", status: 200, body: `{"overallCode": "OK"}`, want: "global: statuses missing"},
		{name: "count", status: 200, body: `{"overallCode": "OK", "statuses": []}`, want: "global: 0 statuses for 1 descriptors"},
		{name: "status not object", status: 200, body: `{"overallCode": "OK", "statuses": [1]}`, want: "global: statuses[0]: not an object"},
		{name: "status code", status: 200, body: `{"overallCode": "OK", "statuses": [{"code": 0}]}`, want: "global: statuses[0].code: unexpected value 0"},
		{name: "limit type", status: 200, body: `{"overallCode": "OK", "statuses": [{"code": "OK", "currentLimit": 5}]}`, want: "global: statuses[0].currentLimit: not an object"},
		{name: "requests per unit", status: 200, body: `{"overallCode": "OK", "statuses": [{"code": "OK", "currentLimit": {"requestsPerUnit": -1}}]}`, want: "global: statuses[0].currentLimit.requestsPerUnit: not a uint32: -1"},
		{name: "unit", status: 200, body: `{"overallCode": "OK", "statuses": [{"code": "OK", "currentLimit": {"unit": "FORTNIGHT"}}]}`, want: "global: statuses[0].currentLimit.unit: unknown unit"},
		{name: "remaining", status: 200, body: `{"overallCode": "OK", "statuses": [{"code": "OK", "limitRemaining": "5"}]}`, want: `global: statuses[0].limitRemaining: not a uint32: "5"`},
		{name: "reset", status: 200, body: `{"overallCode": "OK", "statuses": [{"code": "OK", "durationUntilReset": 5}]}`, want: "global: statuses[0].durationUntilReset: invalid duration"},
		{name: "overall disagrees", status: 429, body: `{"overallCode": "OVER_LIMIT", "statuses": [{"code": "OK"}]}`, want: "global: overallCode disagrees with statuses"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseReply(tc.status, []byte(tc.body), 1)
			require.EqualError(t, err, tc.want)
		})
	}
}

func FuzzParseReply(f *testing.F) {
	f.Add(200, []byte(`{"overallCode": "OK", "statuses": [{"code": "OK", "currentLimit": {"requestsPerUnit": 5, "unit": "MINUTE"}, "limitRemaining": 4, "durationUntilReset": "1s"}]}`))
	f.Add(429, []byte(`{"overallCode": "OVER_LIMIT", "statuses": [{"code": "OVER_LIMIT"}]}`))
	f.Add(200, []byte(`{"overall_code": 1, "statuses": [{"code": 1}]}`))
	f.Add(503, []byte(`oops`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		statuses, err := parseReply(status, body, 1)
		if err != nil {
			require.Nil(t, statuses)
			return
		}
		require.Len(t, statuses, 1)
		require.Equal(t, status == 429, statuses[0].over)
		require.GreaterOrEqual(t, statuses[0].reset, int64(0))
		require.GreaterOrEqual(t, statuses[0].remaining, int64(0))
	})
}
