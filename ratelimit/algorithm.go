package ratelimit

import "math/bits"

type algorithm uint8

const (
	tokenBucket algorithm = iota + 1
	leakyBucket
	fixedWindow
	slidingWindow
)

// limits are the parameters of one rule or tier. Everything is an integer:
// times in nanoseconds, bucket levels in "units" where one request weighs
// period units and the bucket drains rate units per nanosecond. That makes
// "rate requests per period" exact for any rate, with no rounding drift
// between workers.
type limits struct {
	algo     algorithm
	shape    bool
	limit    int64 // windows: requests per window
	window   int64 // windows: ns
	rate     int64 // buckets: requests per period
	period   int64 // buckets: ns
	burst    int64 // token bucket capacity in requests
	queue    int64 // leaky bucket: requests that may wait behind the one in service
	maxDelay int64 // leaky bucket shaping: longest wait, ns
	cost     int64 // weight of one request
}

// state is the fixed-size counter of one key, stored in shared data.
// Buckets: a = last update (ns), b = level (units).
// Windows: a = window index, b = count in that window, c = count in the
// window before (sliding only).
type state struct{ a, b, c int64 }

// outcome is what one rule says about one request.
type outcome struct {
	admitted bool
	delay    int64 // ns the request must wait (shaping)
	retry    int64 // ns until a request would be admitted (denials)
	failed   bool  // the store failed; the verdict follows onStoreError
	quota    Quota
}

const second = int64(1_000_000_000)

func ceilDiv(a, b int64) int64 {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}

func ceilSeconds(ns int64) int64 { return ceilDiv(ns, second) }

// drain lowers a bucket level by elapsed×rate without overflowing for long
// idle times.
func drain(level, elapsed, rate int64) int64 {
	if elapsed <= 0 {
		return level
	}
	if elapsed >= ceilDiv(level, rate) {
		return 0
	}
	return level - elapsed*rate
}

// take applies one request of the configured cost at time now. It never
// mutates s; the caller stores the returned state only when admitted.
func (lm *limits) take(s state, now int64) (state, outcome) {
	switch lm.algo {
	case tokenBucket, leakyBucket:
		return lm.takeBucket(s, now)
	case fixedWindow:
		return lm.takeFixed(s, now)
	default:
		return lm.takeSliding(s, now)
	}
}

// idle reports whether s holds nothing a new request would see, so its slot
// can be handed to another key.
func (lm *limits) idle(s state, now int64) bool {
	switch lm.algo {
	case tokenBucket, leakyBucket:
		return drain(s.b, now-s.a, lm.rate) == 0
	case fixedWindow:
		return s.a < now/lm.window || s.b == 0
	default:
		_, cur, prev := lm.shift(s, now)
		return cur == 0 && prev == 0
	}
}

func (lm *limits) takeBucket(s state, now int64) (state, outcome) {
	level := drain(s.b, now-s.a, lm.rate)
	last := max(s.a, now)
	capacity := lm.burst
	if lm.algo == leakyBucket {
		capacity = lm.queue + 1
	}
	capUnits := capacity * lm.period
	need := lm.cost * lm.period
	var out outcome
	out.quota = Quota{Limit: capacity, Window: ceilSeconds(ceilDiv(capUnits, lm.rate))}
	if level+need > capUnits {
		out.retry = ceilDiv(level+need-capUnits, lm.rate)
	}
	if lm.shape {
		// nginx limit_req without nodelay: the request starts once the work
		// queued ahead of it has drained.
		out.delay = ceilDiv(level+need-lm.period, lm.rate)
		if out.delay > lm.maxDelay {
			out.retry = max(out.retry, out.delay-lm.maxDelay)
		}
	}
	if out.retry > 0 {
		out.delay = 0
		out.quota.Remaining = (capUnits - level) / lm.period
		out.quota.Reset = ceilSeconds(ceilDiv(level, lm.rate))
		return s, out
	}
	level += need
	out.admitted = true
	out.quota.Remaining = (capUnits - level) / lm.period
	out.quota.Reset = ceilSeconds(ceilDiv(level, lm.rate))
	return state{a: last, b: level}, out
}

func (lm *limits) takeFixed(s state, now int64) (state, outcome) {
	idx := now / lm.window
	count := s.b
	if s.a < idx {
		count = 0
	} else {
		// A clock that stepped back keeps counting into the newer window.
		idx = s.a
	}
	end := (idx + 1) * lm.window
	out := outcome{quota: Quota{Limit: lm.limit, Window: ceilSeconds(lm.window), Reset: ceilSeconds(end - now)}}
	if count+lm.cost > lm.limit {
		out.retry = max(end-now, 1)
		out.quota.Remaining = lm.limit - count
		return s, out
	}
	count += lm.cost
	out.admitted = true
	out.quota.Remaining = lm.limit - count
	return state{a: idx, b: count}, out
}

// shift moves a sliding-window state to the window holding now and returns
// that window's index and its current and previous counts.
func (lm *limits) shift(s state, now int64) (idx, cur, prev int64) {
	idx = now / lm.window
	switch {
	case s.a >= idx:
		return s.a, s.b, s.c
	case s.a == idx-1:
		return idx, 0, s.b
	}
	return idx, 0, 0
}

// takeSliding admits while prev×(W−elapsed)/W + cur + cost ≤ limit, compared
// exactly in 128-bit integers.
func (lm *limits) takeSliding(s state, now int64) (state, outcome) {
	w := uint64(lm.window)
	idx, cur, prev := lm.shift(s, now)
	el := min(max(now-idx*lm.window, 0), lm.window)
	rest := uint64(lm.window - el)
	out := outcome{quota: Quota{Limit: lm.limit, Window: ceilSeconds(lm.window)}}
	weighted := func(c int64) (hi, lo uint64) { // prev×rest + c×W
		h1, l1 := bits.Mul64(uint64(prev), rest)
		h2, l2 := bits.Mul64(uint64(c), w)
		lo, carry := bits.Add64(l1, l2, 0)
		return h1 + h2 + carry, lo
	}
	limHi, limLo := bits.Mul64(uint64(lm.limit), w)
	hi, lo := weighted(cur + lm.cost)
	if hi > limHi || (hi == limHi && lo > limLo) {
		out.retry = lm.slidingRetry(cur, prev, el)
		out.quota.Remaining = lm.slidingRemaining(cur, prev, rest)
		out.quota.Reset = lm.slidingReset(cur, prev, el)
		return s, out
	}
	cur += lm.cost
	out.admitted = true
	out.quota.Remaining = lm.slidingRemaining(cur, prev, rest)
	out.quota.Reset = lm.slidingReset(cur, prev, el)
	return state{a: idx, b: cur, c: prev}, out
}

// slidingRemaining is limit − cur − ⌈prev×rest/W⌉, at least zero.
func (lm *limits) slidingRemaining(cur, prev int64, rest uint64) int64 {
	hi, lo := bits.Mul64(uint64(prev), rest)
	q, r := bits.Div64(hi, lo, uint64(lm.window))
	used := cur + int64(q)
	if r > 0 {
		used++
	}
	return max(lm.limit-used, 0)
}

func (lm *limits) slidingReset(cur, prev, el int64) int64 {
	switch {
	case cur > 0:
		return ceilSeconds(2*lm.window - el)
	case prev > 0:
		return ceilSeconds(lm.window - el)
	}
	return 0
}

// slidingRetry is the time from elapsed el until a request of the
// configured cost would be admitted: later in this window if the weight of
// the previous window fading out is enough, otherwise in the next one, where
// the current count becomes the fading one.
func (lm *limits) slidingRetry(cur, prev, el int64) int64 {
	w := lm.window
	// earliest elapsed e in a window with fading count f and own count c
	// such that f×(W−e) ≤ (limit−c−cost)×W.
	earliest := func(f, c int64) (int64, bool) {
		room := lm.limit - c - lm.cost
		if room < 0 {
			return 0, false
		}
		if f <= room {
			return 0, true
		}
		hi, lo := bits.Mul64(uint64(room), uint64(w))
		q, _ := bits.Div64(hi, lo, uint64(f))
		return w - int64(q), true
	}
	if e, ok := earliest(prev, cur); ok && e > el {
		return e - el
	}
	e, _ := earliest(cur, 0)
	return w - el + e
}
