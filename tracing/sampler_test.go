package tracing

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRatio_WithinOnePercent(t *testing.T) {
	const n = 100_000
	for _, ratio := range []float64{0.01, 0.1, 0.25, 0.5, 0.9} {
		r := NewRatio(ratio)
		rng := rand.New(rand.NewPCG(1, uint64(ratio*1000)))
		var ids [n]TraceID
		kept := 0
		for i := range ids {
			binary.BigEndian.PutUint64(ids[i][:8], rng.Uint64())
			binary.BigEndian.PutUint64(ids[i][8:], rng.Uint64())
			if r.Sample(ids[i]) {
				kept++
			}
		}
		got := float64(kept) / n
		require.InDelta(t, ratio, got, 0.01, "ratio %g", ratio)
		// Same decision for the same id, every time.
		again := NewRatio(ratio)
		for i := range ids {
			require.Equal(t, r.Sample(ids[i]), again.Sample(ids[i]))
		}
	}
}

// The decision must be OpenTelemetry's: the last 8 bytes big-endian, shifted
// right by one, below ratio*2^63. These ids sit right at the 0.5 boundary.
func TestRatio_MatchesOpenTelemetry(t *testing.T) {
	tenth := 0.1
	tenthBound := uint64(tenth * (1 << 63))
	tests := []struct {
		name  string
		ratio float64
		low   uint64 // last 8 bytes of the trace id
		high  uint64 // first 8 bytes, which must not matter
		want  bool
	}{
		{name: "just below half", ratio: 0.5, low: 0x7fffffffffffffff, want: true},
		{name: "at half", ratio: 0.5, low: 0x8000000000000000, want: false},
		{name: "high bytes ignored", ratio: 0.5, low: 0x8000000000000000, high: 0, want: false},
		{name: "high bytes ignored 2", ratio: 0.5, low: 1, high: 0xffffffffffffffff, want: true},
		{name: "zero ratio", ratio: 0, low: 0, high: 1, want: false},
		{name: "one", ratio: 1, low: 0xffffffffffffffff, want: true},
		{name: "above one", ratio: 2, low: 0xffffffffffffffff, want: true},
		{name: "tenth boundary in", ratio: 0.1, low: (tenthBound - 1) << 1, want: true},
		{name: "tenth boundary out", ratio: 0.1, low: tenthBound << 1, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var id TraceID
			binary.BigEndian.PutUint64(id[:8], tc.high)
			binary.BigEndian.PutUint64(id[8:], tc.low)
			require.Equal(t, tc.want, NewRatio(tc.ratio).Sample(id))
		})
	}
}

func TestSampler_Decide(t *testing.T) {
	var in, out TraceID // in samples at 0.5, out does not
	binary.BigEndian.PutUint64(in[8:], 1)
	binary.BigEndian.PutUint64(out[8:], 0xffffffffffffffff)
	s := Sampler{
		Root:        NewRatio(0.5),
		ParentBased: true,
		Rules: []Rule{
			{Header: "x-debug", Ratio: NewRatio(1)},
			{Header: "x-canary", Equals: "true", Path: NewPathPattern("/api/*"), Ratio: NewRatio(1)},
			{Path: NewPathPattern("/api/payments/*"), Ratio: NewRatio(1)},
			{Path: NewPathPattern("/health"), Ratio: NewRatio(0)},
		},
	}
	tests := []struct {
		name    string
		parent  Sampling
		tid     TraceID
		h       headers
		path    string
		sampled bool
		reason  Reason
		rule    int
	}{
		{name: "root in", tid: in, path: "/x", sampled: true, reason: ReasonRatio, rule: -1},
		{name: "root out", tid: out, path: "/x", sampled: false, reason: ReasonRatio, rule: -1},
		{name: "parent accept", parent: SamplingAccept, tid: out, path: "/x", sampled: true, reason: ReasonParent, rule: -1},
		{name: "parent deny", parent: SamplingDeny, tid: in, path: "/x", sampled: false, reason: ReasonParent, rule: -1},
		{name: "debug", parent: SamplingDebug, tid: out, path: "/health", sampled: true, reason: ReasonDebug, rule: -1},
		{name: "header rule overrides deny", parent: SamplingDeny, tid: out, h: headers{"x-debug": "anything"}, path: "/x", sampled: true, reason: ReasonRule, rule: 0},
		{name: "header equals and path", tid: out, h: headers{"x-canary": "true"}, path: "/api/orders", sampled: true, reason: ReasonRule, rule: 1},
		{name: "header equals mismatch", tid: out, h: headers{"x-canary": "false"}, path: "/api/orders", sampled: false, reason: ReasonRatio, rule: -1},
		{name: "header and path, path mismatch", tid: out, h: headers{"x-canary": "true"}, path: "/web", sampled: false, reason: ReasonRatio, rule: -1},
		{name: "critical path", parent: SamplingDeny, tid: out, path: "/api/payments/42", sampled: true, reason: ReasonRule, rule: 2},
		{name: "health never", parent: SamplingAccept, tid: in, path: "/health", sampled: false, reason: ReasonRule, rule: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.h == nil {
				tc.h = headers{}
			}
			d := s.Decide(SpanContext{Sampling: tc.parent}, tc.tid, tc.h, tc.path)
			require.Equal(t, Decision{Sampled: tc.sampled, Reason: tc.reason, Rule: tc.rule}, d)
		})
	}

	notParentBased := Sampler{Root: NewRatio(0.5)}
	d := notParentBased.Decide(SpanContext{Sampling: SamplingAccept}, out, headers{}, "/")
	require.Equal(t, Decision{Sampled: false, Reason: ReasonRatio, Rule: -1}, d)
}

func TestPathPattern_Match(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		path    string
		want    bool
	}{
		{name: "exact", pattern: "/health", path: "/health", want: true},
		{name: "exact no prefix match", pattern: "/health", path: "/healthz", want: false},
		{name: "prefix", pattern: "/api/payments/*", path: "/api/payments/42/refund", want: true},
		{name: "prefix needs slash", pattern: "/api/payments/*", path: "/api/payments", want: false},
		{name: "prefix empty rest", pattern: "/api/payments/*", path: "/api/payments/", want: true},
		{name: "suffix", pattern: "*.png", path: "/img/a.png", want: true},
		{name: "suffix mismatch", pattern: "*.png", path: "/img/a.jpg", want: false},
		{name: "middle", pattern: "/users/*/orders", path: "/users/7/orders", want: true},
		{name: "middle mismatch", pattern: "/users/*/orders", path: "/users/7/carts", want: false},
		{name: "two stars", pattern: "/a/*/b/*", path: "/a/x/b/y", want: true},
		{name: "overlap not double counted", pattern: "/ab*ba", path: "/aba", want: false},
		{name: "star only", pattern: "*", path: "/anything", want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, NewPathPattern(tc.pattern).Match(tc.path))
		})
	}
}
