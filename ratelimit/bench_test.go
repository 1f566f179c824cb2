package ratelimit

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/internal/casstore"
)

// sharedStore is a single-threaded Store that hands out its own slices, as
// a host that does not copy would; it isolates the core's allocations from
// the test store's.
type sharedStore struct {
	m    map[string]*benchEntry
	next uint32
}

type benchEntry struct {
	value []byte
	cas   uint32
}

func (s *sharedStore) Get(key string) ([]byte, uint32, bool, error) {
	e, ok := s.m[key]
	if !ok {
		return nil, 0, false, nil
	}
	return e.value, e.cas, true, nil
}

func (s *sharedStore) Set(key string, value []byte, cas uint32) error {
	e, ok := s.m[key]
	if !ok {
		e = &benchEntry{}
		s.m[key] = e
	} else if cas != 0 && cas != e.cas {
		return ErrCASMismatch
	}
	e.value = append(e.value[:0], value...)
	s.next++
	e.cas = s.next
	return nil
}

const benchConfig = `{"rules": [
	{"name": "per-ip", "key": ["remote_address"], "algorithm": "token_bucket", "rate": "1000000/s", "burst": 1000000},
	{"name": "plans", "match": {"paths": [{"prefix": "/api/"}], "headers": [{"name": "x-api-key", "present": true}]},
	 "key": ["header:x-api-key"], "algorithm": "sliding_window", "window": "1m",
	 "tiers": {"from": "header:x-plan", "default": "free", "values": {"free": {"limit": 100000000}, "premium": {"limit": 1000000000}}}},
	{"name": "writes", "match": {"methods": ["POST"]}, "algorithm": "fixed_window", "limit": 10, "window": "1s"}]}`

func benchLimiter(t testing.TB) (*Limiter, *fakeClock) {
	cfg, err := Parse([]byte(benchConfig))
	require.NoError(t, err)
	clock := newClock()
	l, err := New(cfg, Options{Store: &sharedStore{m: map[string]*benchEntry{}, next: 1}, Clock: clock.Now, Recorder: newRecorder()})
	require.NoError(t, err)
	return l, clock
}

func TestCheck_ZeroAllocs(t *testing.T) {
	l, clock := benchLimiter(t)
	req := get("/api/items?page=2", "x-api-key", "key-123", "x-plan", "premium")
	l.Check(req) // first use creates buckets and caches their key names
	allocs := testing.AllocsPerRun(1000, func() {
		clock.Advance(time.Microsecond)
		if l.Check(req).Verdict != Allow {
			panic("denied")
		}
	})
	require.Zero(t, allocs)
}

func BenchmarkCheck(b *testing.B) {
	l, clock := benchLimiter(b)
	req := get("/api/items?page=2", "x-api-key", "key-123", "x-plan", "premium")
	b.ReportAllocs()
	for b.Loop() {
		clock.Advance(time.Microsecond)
		l.Check(req)
	}
}

func BenchmarkCheck_NoMatch(b *testing.B) {
	cfg, err := Parse([]byte(`{"rules": [{"name": "r", "match": {"paths": [{"prefix": "/admin/"}]}, "algorithm": "token_bucket", "rate": "1/s"}]}`))
	require.NoError(b, err)
	l, err := New(cfg, Options{Store: casstore.NewMemory(), Clock: newClock().Now})
	require.NoError(b, err)
	req := get("/api/items")
	b.ReportAllocs()
	for b.Loop() {
		l.Check(req)
	}
}

func BenchmarkCheck_Denied(b *testing.B) {
	cfg, err := Parse([]byte(`{"rules": [{"name": "r", "key": ["remote_address"], "algorithm": "fixed_window", "limit": 1, "window": "1h"}]}`))
	require.NoError(b, err)
	l, err := New(cfg, Options{Store: &sharedStore{m: map[string]*benchEntry{}, next: 1}, Clock: newClock().Now})
	require.NoError(b, err)
	req := get("/")
	l.Check(req)
	b.ReportAllocs()
	for b.Loop() {
		l.Check(req)
	}
}

func FuzzCheck(f *testing.F) {
	f.Add("GET", "/api/x?y", "10.0.0.1:80", "k", "premium", int64(0))
	f.Add("POST", "", "[::1", "", "", int64(59_999_999_999))
	f.Add("", "/api/", "", "\x00\xff", "free", int64(-5))
	f.Fuzz(func(t *testing.T, method, path, remote, key, plan string, advance int64) {
		cfg, err := Parse([]byte(benchConfig))
		require.NoError(t, err)
		clock := newClock()
		l, err := New(cfg, Options{Store: casstore.NewMemory(), Clock: clock.Now})
		require.NoError(t, err)
		req := &fakeReq{method: method, path: path, remote: remote, headers: map[string]string{"x-api-key": key, "x-plan": plan}}
		for i := 0; i < 3; i++ {
			d := l.Check(req)
			require.Contains(t, []Verdict{Allow, Deny, Delay}, d.Verdict)
			if d.Verdict == Deny {
				require.GreaterOrEqual(t, d.RetryAfter, int64(1))
			}
			clock.Advance(time.Duration(advance))
		}
	})
}

// TestDependencies keeps the core free of the proxy-wasm SDK and of the
// filter layer, so it stays natively testable.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, dep := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		require.NotContains(t, dep, "proxy-wasm", dep)
		require.NotContains(t, dep, "github.com/meshwasm/meshwasm/filters", dep)
	}
}
