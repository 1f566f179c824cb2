package ratelimit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTokenBucket_BurstThenRefill(t *testing.T) {
	f := newFixture(t, `{"rules": [{"name": "tb", "key": ["remote_address"], "algorithm": "token_bucket", "rate": "10/s", "burst": 5}]}`)
	req := get("/")
	steps := []struct {
		name    string
		advance time.Duration
		n       int
		want    []Verdict
	}{
		{name: "burst", n: 6, want: []Verdict{Allow, Allow, Allow, Allow, Allow, Deny}},
		{name: "99ms is not a token", advance: 99 * time.Millisecond, n: 1, want: []Verdict{Deny}},
		{name: "100ms is one token", advance: time.Millisecond, n: 2, want: []Verdict{Allow, Deny}},
		{name: "refill caps at burst", advance: 10 * time.Second, n: 6, want: []Verdict{Allow, Allow, Allow, Allow, Allow, Deny}},
		{name: "steady rate", advance: 300 * time.Millisecond, n: 4, want: []Verdict{Allow, Allow, Allow, Deny}},
	}
	for _, s := range steps {
		f.clock.Advance(s.advance)
		require.Equal(t, s.want, f.verdicts(req, s.n), s.name)
	}
	require.Equal(t, uint64(5+1+5+3), f.rec.get(0, MetricAllowed))
	require.Equal(t, uint64(1+1+1+1+1), f.rec.get(0, MetricLimited))
}

func TestTokenBucket_ExactOverTime(t *testing.T) {
	// 7 per second does not divide a second into whole nanoseconds; the
	// unit arithmetic must still admit exactly 7 per second in steady state.
	f := newFixture(t, `{"rules": [{"name": "tb", "algorithm": "token_bucket", "rate": "7/s", "burst": 1}]}`)
	admitted := 0
	for i := 0; i < 100_000; i++ { // 100 s in 1 ms steps
		if f.l.Check(get("/")).Verdict == Allow {
			admitted++
		}
		f.clock.Advance(time.Millisecond)
	}
	require.Equal(t, 700, admitted)
}

func TestTokenBucket_Decision(t *testing.T) {
	f := newFixture(t, `{"rules": [{"name": "tb", "algorithm": "token_bucket", "rate": "1/10s", "burst": 3}]}`)
	d := f.l.Check(get("/"))
	require.Equal(t, Decision{Verdict: Allow, Rule: -1, Quota: Quota{Name: "tb", Limit: 3, Window: 30, Remaining: 2, Reset: 10}, ShadowLimited: []int{}}, d)
	f.verdicts(get("/"), 2)
	f.clock.Advance(4 * time.Second)
	d = f.l.Check(get("/"))
	require.Equal(t, Deny, d.Verdict)
	require.Equal(t, 0, d.Rule)
	require.Equal(t, int64(6), d.RetryAfter, "next token 6 s away")
	require.Equal(t, Quota{Name: "tb", Limit: 3, Window: 30, Remaining: 0, Reset: 26}, d.Quota)
}

func TestTokenBucket_Cost(t *testing.T) {
	f := newFixture(t, `{"rules": [{"name": "tb", "algorithm": "token_bucket", "rate": "10/s", "burst": 10, "cost": 4}]}`)
	require.Equal(t, []Verdict{Allow, Allow, Deny}, f.verdicts(get("/"), 3))
	f.clock.Advance(200 * time.Millisecond)
	require.Equal(t, []Verdict{Allow, Deny}, f.verdicts(get("/"), 2))
}

func TestLeakyBucket_Reject(t *testing.T) {
	// nginx limit_req rate=10r/s burst=2 nodelay.
	f := newFixture(t, `{"rules": [{"name": "lb", "algorithm": "leaky_bucket", "rate": "10/s", "queue": 2}]}`)
	require.Equal(t, []Verdict{Allow, Allow, Allow, Deny}, f.verdicts(get("/"), 4))
	f.clock.Advance(100 * time.Millisecond)
	require.Equal(t, []Verdict{Allow, Deny}, f.verdicts(get("/"), 2))
}

func TestLeakyBucket_Shape(t *testing.T) {
	// nginx limit_req rate=10r/s burst=3 (no nodelay): requests wait their
	// turn at the rate; beyond the queue they are refused.
	f := newFixture(t, `{"rules": [{"name": "lb", "algorithm": "leaky_bucket", "mode": "shape", "rate": "10/s", "queue": 3}]}`)
	var delays []time.Duration
	for i := 0; i < 4; i++ {
		d := f.l.Check(get("/"))
		delays = append(delays, d.Delay)
		if i == 0 {
			require.Equal(t, Allow, d.Verdict)
		} else {
			require.Equal(t, Delay, d.Verdict)
			require.Equal(t, 0, d.Rule)
		}
	}
	require.Equal(t, []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}, delays)
	d := f.l.Check(get("/"))
	require.Equal(t, Deny, d.Verdict, "queue overflow")
	require.Equal(t, int64(1), d.RetryAfter)
	require.Equal(t, uint64(3), f.rec.get(0, MetricDelayed))
	require.Equal(t, uint64(1), f.rec.get(0, MetricLimited))

	// The queue drains at the rate: after 250 ms two requests have left.
	f.clock.Advance(250 * time.Millisecond)
	d = f.l.Check(get("/"))
	require.Equal(t, Delay, d.Verdict)
	require.Equal(t, 150*time.Millisecond, d.Delay)
}

func TestLeakyBucket_MaxDelay(t *testing.T) {
	f := newFixture(t, `{"rules": [{"name": "lb", "algorithm": "leaky_bucket", "mode": "shape", "rate": "10/s", "queue": 10, "maxDelay": "150ms"}]}`)
	var got []time.Duration
	for _, v := range f.verdicts(get("/"), 2) {
		require.NotEqual(t, Deny, v)
	}
	d := f.l.Check(get("/"))
	got = append(got, d.Delay)
	require.Equal(t, []time.Duration{0}, got)
	require.Equal(t, Deny, d.Verdict, "a 200ms wait exceeds maxDelay")
	f.clock.Advance(50 * time.Millisecond)
	d = f.l.Check(get("/"))
	require.Equal(t, Delay, d.Verdict)
	require.Equal(t, 150*time.Millisecond, d.Delay)
}

func TestFixedWindow(t *testing.T) {
	f := newFixture(t, `{"rules": [{"name": "fw", "algorithm": "fixed_window", "limit": 3, "window": "1m"}]}`)
	f.clock.Advance(20 * time.Second)
	require.Equal(t, []Verdict{Allow, Allow, Allow, Deny}, f.verdicts(get("/"), 4))
	d := f.l.Check(get("/"))
	require.Equal(t, int64(40), d.RetryAfter, "retry at the window's end, never before")
	require.Equal(t, Quota{Name: "fw", Limit: 3, Window: 60, Remaining: 0, Reset: 40}, d.Quota)
	f.clock.Advance(40*time.Second - time.Nanosecond)
	require.Equal(t, Deny, f.l.Check(get("/")).Verdict)
	f.clock.Advance(time.Nanosecond)
	require.Equal(t, []Verdict{Allow, Allow, Allow, Deny}, f.verdicts(get("/"), 4))
}

// burstAtEdge sends as many requests as admitted in the last millisecond of
// one window and the first of the next.
func burstAtEdge(t *testing.T, algo string) int {
	f := newFixture(t, `{"rules": [{"name": "w", "algorithm": "`+algo+`", "limit": 100, "window": "1m"}]}`)
	f.clock.Advance(time.Minute - time.Millisecond)
	n := countOf(f.verdicts(get("/"), 300), Allow)
	f.clock.Advance(2 * time.Millisecond)
	return n + countOf(f.verdicts(get("/"), 300), Allow)
}

func TestFixedWindow_DoubleBurstAtEdge(t *testing.T) {
	require.Equal(t, 200, burstAtEdge(t, "fixed_window"), "fixed windows admit twice the limit within 2 ms")
}

func TestSlidingWindow_BoundsEdgeBurst(t *testing.T) {
	// 1 ms into the new window the previous window still weighs
	// 100×(59.999/60) = 99.998, so no request fits.
	require.Equal(t, 100, burstAtEdge(t, "sliding_window"))
}

func TestSlidingWindow_ErrorBound(t *testing.T) {
	// Adversarial load: the whole quota in the last millisecond of a
	// window, then a request every 10 ms for two windows. In any interval of
	// length d ≤ W the weighted counter admits at most N×(1 + d/W) (see
	// README); check every interval ending at an admission.
	const n, w = 20, int64(time.Second)
	f := newFixture(t, `{"rules": [{"name": "w", "algorithm": "sliding_window", "limit": 20, "window": "1s"}]}`)
	var admitted []int64
	f.clock.Advance(time.Second - time.Millisecond)
	for i := 0; i < 20; i++ {
		require.Equal(t, Allow, f.l.Check(get("/")).Verdict)
		admitted = append(admitted, f.clock.t.UnixNano())
	}
	for i := 0; i < 200; i++ {
		f.clock.Advance(10 * time.Millisecond)
		if f.l.Check(get("/")).Verdict == Allow {
			admitted = append(admitted, f.clock.t.UnixNano())
		}
	}
	require.NotEmpty(t, admitted)
	maxInWindow := 0
	for i, end := range admitted {
		for _, d := range []int64{w / 10, w / 2, w} {
			c := 0
			for j := i; j >= 0 && admitted[j] > end-d; j-- {
				c++
			}
			require.LessOrEqual(t, int64(c)*w, n*(w+d), "interval %d ending at admission %d", d, i)
			if d == w {
				maxInWindow = max(maxInWindow, c)
			}
		}
	}
	require.LessOrEqual(t, maxInWindow, 2*n)
	require.Greater(t, maxInWindow, n, "the bound is reached: the estimate is not exact")
}

func TestSlidingWindow_Retry(t *testing.T) {
	f := newFixture(t, `{"rules": [{"name": "w", "algorithm": "sliding_window", "limit": 10, "window": "10s"}]}`)
	require.Equal(t, 10, countOf(f.verdicts(get("/"), 10), Allow))
	// Next window, 2 s in: previous weighs 10×0.8 = 8, so 2 fit.
	f.clock.Advance(12 * time.Second)
	require.Equal(t, []Verdict{Allow, Allow, Deny}, f.verdicts(get("/"), 3))
	d := f.l.Check(get("/"))
	// One more fits when 10×(10−e)/10 ≤ 7, i.e. e ≥ 3 s: 1 s from now.
	require.Equal(t, int64(1), d.RetryAfter)
	require.Equal(t, Quota{Name: "w", Limit: 10, Window: 10, Remaining: 0, Reset: 18}, d.Quota)
	f.clock.Advance(time.Second - time.Nanosecond)
	require.Equal(t, Deny, f.l.Check(get("/")).Verdict)
	f.clock.Advance(time.Nanosecond)
	require.Equal(t, Allow, f.l.Check(get("/")).Verdict)
}

func TestSlidingWindow_RetryInNextWindow(t *testing.T) {
	lm := limits{algo: slidingWindow, limit: 10, window: int64(10 * time.Second), cost: 1}
	now := int64(1_000) * lm.window
	s := state{a: now / lm.window, b: 10}
	_, out := lm.take(s, now+int64(4*time.Second))
	require.False(t, out.admitted)
	// cur=10 fills this window; in the next, 10×(10−e)/10 ≤ 9 needs e ≥ 1 s.
	require.Equal(t, int64(7*time.Second), out.retry)
}

func TestLimits_Idle(t *testing.T) {
	const s = int64(time.Second)
	now := 1_000 * s
	tests := []struct {
		name string
		lm   limits
		st   state
		want bool
	}{
		{name: "bucket drained", lm: limits{algo: tokenBucket, rate: 1, period: s, burst: 5}, st: state{a: now - 2*s, b: 2 * s}, want: true},
		{name: "bucket draining", lm: limits{algo: tokenBucket, rate: 1, period: s, burst: 5}, st: state{a: now - s, b: 2 * s}, want: false},
		{name: "fixed old window", lm: limits{algo: fixedWindow, limit: 5, window: 10 * s}, st: state{a: now/(10*s) - 1, b: 5}, want: true},
		{name: "fixed live window", lm: limits{algo: fixedWindow, limit: 5, window: 10 * s}, st: state{a: now / (10 * s), b: 1}, want: false},
		{name: "sliding previous still weighs", lm: limits{algo: slidingWindow, limit: 5, window: 10 * s}, st: state{a: now/(10*s) - 1, b: 1}, want: false},
		{name: "sliding two windows old", lm: limits{algo: slidingWindow, limit: 5, window: 10 * s}, st: state{a: now/(10*s) - 2, b: 5}, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.lm.idle(tc.st, now))
		})
	}
}

func TestClockSteppingBack(t *testing.T) {
	f := newFixture(t, `{"rules": [{"name": "fw", "algorithm": "fixed_window", "limit": 2, "window": "1m"},
		{"name": "tb", "algorithm": "token_bucket", "rate": "1/m", "burst": 3}]}`)
	f.clock.Advance(time.Minute)
	require.Equal(t, []Verdict{Allow, Allow}, f.verdicts(get("/"), 2))
	f.clock.Advance(-2 * time.Minute)
	require.Equal(t, Deny, f.l.Check(get("/")).Verdict, "a clock stepping back never reopens a window")
}
