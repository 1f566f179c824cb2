package ratelimit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/internal/casstore"
)

// fakeClock is a settable clock; tests move it explicitly.
type fakeClock struct{ t time.Time }

func newClock() *fakeClock {
	// A minute boundary, so fixed and sliding windows start here.
	return &fakeClock{t: time.Unix(1_700_000_040, 0)}
}

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

type fakeReq struct {
	method, path, remote string
	headers, props       map[string]string
}

func (r *fakeReq) Method() string        { return r.method }
func (r *fakeReq) Path() string          { return r.path }
func (r *fakeReq) RemoteAddress() string { return r.remote }
func (r *fakeReq) Header(name string) (string, bool) {
	v, ok := r.headers[name]
	return v, ok
}
func (r *fakeReq) Property(path string) (string, bool) {
	v, ok := r.props[path]
	return v, ok
}

func get(path string, headers ...string) *fakeReq {
	r := &fakeReq{method: "GET", path: path, remote: "10.0.0.1:5555", headers: map[string]string{}}
	for i := 0; i+1 < len(headers); i += 2 {
		r.headers[headers[i]] = headers[i+1]
	}
	return r
}

// recorder counts metrics per rule.
type recorder struct{ n map[int]map[Metric]uint64 }

func newRecorder() *recorder { return &recorder{n: map[int]map[Metric]uint64{}} }

func (r *recorder) Count(rule int, m Metric, n uint64) {
	if r.n[rule] == nil {
		r.n[rule] = map[Metric]uint64{}
	}
	r.n[rule][m] += n
}

func (r *recorder) get(rule int, m Metric) uint64 { return r.n[rule][m] }

type fixture struct {
	l     *Limiter
	clock *fakeClock
	store *casstore.Memory
	rec   *recorder
}

func newFixture(t testing.TB, config string) *fixture {
	t.Helper()
	cfg, err := Parse([]byte(config))
	require.NoError(t, err)
	f := &fixture{clock: newClock(), store: casstore.NewMemory(), rec: newRecorder()}
	f.l, err = New(cfg, Options{Store: f.store, Clock: f.clock.Now, Recorder: f.rec})
	require.NoError(t, err)
	return f
}

// verdicts runs n identical requests and returns their verdicts.
func (f *fixture) verdicts(req Request, n int) []Verdict {
	out := make([]Verdict, n)
	for i := range out {
		out[i] = f.l.Check(req).Verdict
	}
	return out
}

func countOf(vs []Verdict, v Verdict) int {
	n := 0
	for _, x := range vs {
		if x == v {
			n++
		}
	}
	return n
}
