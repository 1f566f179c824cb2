package tracing

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// loopRand is a cheap deterministic id source for benchmarks.
type loopRand struct{ n byte }

func (r *loopRand) Read(p []byte) (int, error) {
	for i := range p {
		r.n++
		p[i] = r.n | 1
	}
	return len(p), nil
}

var benchHeaders = headers{
	":method": "GET", ":path": "/api/orders/42?x=1",
	HeaderTraceparent: "00-" + w3cTrace + "-" + w3cSpan + "-01",
	HeaderTracestate:  "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
	"x-user-id":       "42",
}

// benchConfig is the per-request path without enrichment or response
// headers, whose values are copies of request data.
const benchConfig = `{
  "sampling": {"ratio": 0.1, "rules": [{"header": "x-debug"}, {"path": "/api/payments/*"}]},
  "attributes": [{"name": "user.id", "header": "x-user-id"}],
  "accessLog": {},
  "routeGroups": [{"name": "orders", "paths": ["/api/orders/*"]}],
  "export": {"cluster": "otel", "queueSize": 4096, "batchSize": 64}
}`

func BenchmarkTracer_Request(b *testing.B) {
	tr := mustParse(b, seedConfig)
	var (
		h   Hop
		rnd loopRand
		log []byte
	)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = tr.Start(&h, benchHeaders, &rnd, t0)
		tr.Finish(&h, 200, t0.Add(time.Millisecond), nil)
		log = tr.AppendLog(log[:0], &h)
		tr.RequestMetrics(&h)
	}
}

func BenchmarkExtractDecide(b *testing.B) {
	tr := mustParse(b, benchConfig)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c, _ := tr.extractContext(benchHeaders)
		tr.sampler.Decide(c, c.TraceID, benchHeaders, "/api/orders/42")
	}
}

func BenchmarkExporter_AddFlush(b *testing.B) {
	tr := mustParse(b, benchConfig)
	e := tr.NewExporter()
	var (
		h   Hop
		rnd loopRand
	)
	require.NoError(b, tr.Start(&h, headers{":path": "/api/payments/1", "x-user-id": "7"}, &rnd, t0))
	tr.Finish(&h, 200, t0.Add(time.Millisecond), nil)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		e.Add(&h)
		if c, ok := e.Flush(t0); ok {
			b.SetBytes(int64(len(c.Body)))
			e.Done(200)
		}
	}
}

// Parsing and deciding (every request, sampled or not) must not allocate;
// neither must writing the access log, metrics, or queueing and encoding
// spans once buffers are warm. Start allocates exactly once: the single
// string holding every header value it sets.
func TestAllocs(t *testing.T) {
	tr := mustParse(t, benchConfig)
	var (
		h   Hop
		rnd loopRand
		log []byte
	)
	require.NoError(t, tr.Start(&h, benchHeaders, &rnd, t0))
	b3Headers := headers{HeaderB3TraceID: b3Trace128, HeaderB3SpanID: b3Span, HeaderB3Sampled: "1"}
	tests := []struct {
		name string
		want float64
		f    func()
	}{
		{name: "traceparent", f: func() { ParseTraceparent(benchHeaders[HeaderTraceparent]) }},
		{name: "tracestate", f: func() { ParseTracestate(benchHeaders[HeaderTracestate], 512) }},
		{name: "b3", f: func() { ParseB3(b3Trace128 + "-" + b3Span + "-1-" + b3Parent) }},
		{name: "b3multi", f: func() { ParseB3Multi(b3Headers) }},
		{name: "extract and decide", f: func() {
			c, _ := tr.extractContext(benchHeaders)
			tr.sampler.Decide(c, c.TraceID, benchHeaders, "/api/orders/42")
		}},
		{name: "start", want: 1, f: func() { _ = tr.Start(&h, benchHeaders, &rnd, t0) }},
		{name: "finish, log, metrics", f: func() {
			tr.Finish(&h, 200, t0.Add(time.Millisecond), nil)
			log = tr.AppendLog(log[:0], &h)
			tr.RequestMetrics(&h)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.f()
			require.Equal(t, tc.want, testing.AllocsPerRun(200, tc.f))
		})
	}

	e := tr.NewExporter()
	h.Decision.Sampled = true
	for i := 0; i < 64; i++ {
		e.Add(&h)
	}
	_, ok := e.Flush(t0)
	require.True(t, ok)
	e.Done(200)
	require.Zero(t, testing.AllocsPerRun(50, func() {
		for i := 0; i < 64; i++ {
			e.Add(&h)
		}
		_, ok := e.Flush(t0)
		require.True(t, ok)
		e.Done(200)
	}))
}
