package tracing

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	newSpan  = "1111111111111111"
	newTrace = "fedcba9876543210fedcba9876543210" // low half fails a 0.1 ratio
	inTrace  = "0123456789abcdef0000000000000001" // low half passes any ratio > 0
)

// ids returns the random bytes Start draws: span id first, then trace id.
func ids(span, trace string) io.Reader {
	b, _ := hex.DecodeString(span + trace)
	return bytes.NewReader(b)
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustParse(t testing.TB, cfg string) *Tracer {
	t.Helper()
	tr, err := Parse([]byte(cfg))
	require.NoError(t, err)
	return tr
}

func set(name, value string) HeaderOp { return HeaderOp{Name: name, Value: value} }
func del(name string) HeaderOp        { return HeaderOp{Name: name, Remove: true} }

func TestTracer_Start(t *testing.T) {
	tr := mustParse(t, seedConfig)
	tests := []struct {
		name     string
		in       headers
		trace    string // id drawn when none comes in
		format   Format
		decision Decision
		req      []HeaderOp
		resp     []HeaderOp
	}{
		{
			name: "w3c in, w3c and b3multi out",
			in: headers{":method": "GET", ":path": "/api/orders?x=1", HeaderTraceparent: "00-" + w3cTrace + "-" + w3cSpan + "-01",
				HeaderTracestate: "rojo=1, congo=2"},
			format:   FormatW3C,
			decision: Decision{Sampled: true, Reason: ReasonParent, Rule: -1},
			req: []HeaderOp{
				set(HeaderTraceparent, "00-"+w3cTrace+"-"+newSpan+"-01"),
				set(HeaderTracestate, "rojo=1,congo=2"),
				set(HeaderB3TraceID, w3cTrace),
				set(HeaderB3SpanID, newSpan),
				set(HeaderB3ParentSpanID, w3cSpan),
				set(HeaderB3Sampled, "1"),
			},
			resp: []HeaderOp{set(HeaderTraceresponse, "00-"+w3cTrace+"-"+newSpan+"-01"), set("x-trace-id", w3cTrace)},
		},
		{
			name:     "64-bit b3 single in: widened for w3c, kept 64-bit for b3, stale single header removed",
			in:       headers{":method": "POST", ":path": "/x", HeaderB3: b3Trace64 + "-" + b3Span + "-0-" + b3Parent},
			format:   FormatB3,
			decision: Decision{Sampled: false, Reason: ReasonParent, Rule: -1},
			req: []HeaderOp{
				set(HeaderTraceparent, "00-0000000000000000"+b3Trace64+"-"+newSpan+"-00"),
				del(HeaderB3),
				set(HeaderB3TraceID, b3Trace64),
				set(HeaderB3SpanID, newSpan),
				set(HeaderB3ParentSpanID, b3Span),
				set(HeaderB3Sampled, "0"),
			},
			resp: []HeaderOp{set(HeaderTraceresponse, "00-0000000000000000"+b3Trace64+"-"+newSpan+"-00"), set("x-trace-id", "0000000000000000"+b3Trace64)},
		},
		{
			name: "invalid traceparent ignores tracestate, falls back to b3multi with debug",
			in: headers{":path": "/x", HeaderTraceparent: "00-" + strings.ToUpper(w3cTrace) + "-" + w3cSpan + "-01", HeaderTracestate: "rojo=1",
				HeaderB3TraceID: b3Trace128, HeaderB3SpanID: b3Span, HeaderB3Flags: "1", HeaderB3Sampled: "1"},
			format:   FormatB3Multi,
			decision: Decision{Sampled: true, Reason: ReasonDebug, Rule: -1},
			req: []HeaderOp{
				set(HeaderTraceparent, "00-"+b3Trace128+"-"+newSpan+"-01"),
				del(HeaderTracestate),
				set(HeaderB3TraceID, b3Trace128),
				set(HeaderB3SpanID, newSpan),
				set(HeaderB3ParentSpanID, b3Span),
				set(HeaderB3Flags, "1"),
				del(HeaderB3Sampled),
			},
			resp: []HeaderOp{set(HeaderTraceresponse, "00-"+b3Trace128+"-"+newSpan+"-01"), set("x-trace-id", b3Trace128)},
		},
		{
			name:     "no context: new root trace, ratio decides",
			in:       headers{":method": "GET", ":path": "/"},
			trace:    newTrace,
			decision: Decision{Sampled: false, Reason: ReasonRatio, Rule: -1},
			req: []HeaderOp{
				set(HeaderTraceparent, "00-"+newTrace+"-"+newSpan+"-00"),
				set(HeaderB3TraceID, newTrace),
				set(HeaderB3SpanID, newSpan),
				set(HeaderB3Sampled, "0"),
			},
			resp: []HeaderOp{set(HeaderTraceresponse, "00-"+newTrace+"-"+newSpan+"-00"), set("x-trace-id", newTrace)},
		},
		{
			name:     "seed habit: lone x-b3-sampled: 1 forces a new sampled trace",
			in:       headers{":path": "/", HeaderB3Sampled: "1"},
			trace:    newTrace,
			decision: Decision{Sampled: true, Reason: ReasonParent, Rule: -1},
			req: []HeaderOp{
				set(HeaderTraceparent, "00-"+newTrace+"-"+newSpan+"-01"),
				set(HeaderB3TraceID, newTrace),
				set(HeaderB3SpanID, newSpan),
				set(HeaderB3Sampled, "1"),
			},
			resp: []HeaderOp{set(HeaderTraceresponse, "00-"+newTrace+"-"+newSpan+"-01"), set("x-trace-id", newTrace)},
		},
		{
			name:     "b3: 0 alone denies the new trace",
			in:       headers{":path": "/", HeaderB3: "0"},
			trace:    inTrace,
			decision: Decision{Sampled: false, Reason: ReasonParent, Rule: -1},
			req: []HeaderOp{
				set(HeaderTraceparent, "00-"+inTrace+"-"+newSpan+"-00"),
				del(HeaderB3),
				set(HeaderB3TraceID, inTrace),
				set(HeaderB3SpanID, newSpan),
				set(HeaderB3Sampled, "0"),
			},
			resp: []HeaderOp{set(HeaderTraceresponse, "00-"+inTrace+"-"+newSpan+"-00"), set("x-trace-id", inTrace)},
		},
		{
			name: "critical path overrides an upstream deny; user id to baggage",
			in: headers{":path": "/api/payments/7", HeaderTraceparent: "00-" + w3cTrace + "-" + w3cSpan + "-00",
				"x-user-id": "u 42", HeaderBaggage: "tenant=acme"},
			format:   FormatW3C,
			decision: Decision{Sampled: true, Reason: ReasonRule, Rule: 1},
			req: []HeaderOp{
				set(HeaderTraceparent, "00-"+w3cTrace+"-"+newSpan+"-01"),
				set(HeaderB3TraceID, w3cTrace),
				set(HeaderB3SpanID, newSpan),
				set(HeaderB3ParentSpanID, w3cSpan),
				set(HeaderB3Sampled, "1"),
				set(HeaderBaggage, "tenant=acme,user.id=u%2042"),
			},
			resp: []HeaderOp{set(HeaderTraceresponse, "00-"+w3cTrace+"-"+newSpan+"-01"), set("x-trace-id", w3cTrace)},
		},
		{
			name:     "baggage to a header Envoy can tag",
			in:       headers{":path": "/", HeaderTraceparent: "00-" + w3cTrace + "-" + w3cSpan + "-01", HeaderBaggage: "user.id=42"},
			format:   FormatW3C,
			decision: Decision{Sampled: true, Reason: ReasonParent, Rule: -1},
			req: []HeaderOp{
				set(HeaderTraceparent, "00-"+w3cTrace+"-"+newSpan+"-01"),
				set(HeaderB3TraceID, w3cTrace),
				set(HeaderB3SpanID, newSpan),
				set(HeaderB3ParentSpanID, w3cSpan),
				set(HeaderB3Sampled, "1"),
				set("x-user-id", "42"),
			},
			resp: []HeaderOp{set(HeaderTraceresponse, "00-"+w3cTrace+"-"+newSpan+"-01"), set("x-trace-id", w3cTrace)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Hop
			require.NoError(t, tr.Start(&h, tc.in, ids(newSpan, tc.trace), t0))
			require.Equal(t, tc.format, h.ParentFormat)
			require.Equal(t, tc.decision, h.Decision)
			require.Equal(t, tc.req, h.RequestHeaders())
			require.Equal(t, tc.resp, h.ResponseHeaders())
			require.Equal(t, newSpan, h.Context.SpanID.String())
		})
	}
}

func TestTracer_Start_FormatsAndRemoval(t *testing.T) {
	in := headers{":path": "/", HeaderTraceparent: "00-" + w3cTrace + "-" + w3cSpan + "-01",
		HeaderB3: b3Trace128 + "-" + b3Span, HeaderB3TraceID: b3Trace128, HeaderB3SpanID: b3Span}
	tests := []struct {
		name string
		cfg  string
		req  []HeaderOp
	}{
		{
			name: "b3 single only, others removed",
			cfg:  `{"inject":["b3"]}`,
			req: []HeaderOp{
				del(HeaderTraceparent),
				set(HeaderB3, w3cTrace+"-"+newSpan+"-1-"+w3cSpan),
				del(HeaderB3TraceID),
				del(HeaderB3SpanID),
			},
		},
		{
			name: "keep other formats",
			cfg:  `{"inject":["b3"],"removeOtherFormats":false}`,
			req:  []HeaderOp{set(HeaderB3, w3cTrace+"-"+newSpan+"-1-"+w3cSpan)},
		},
		{
			name: "b3 first in extract wins",
			cfg:  `{"extract":["b3","w3c"],"inject":["w3c"],"removeOtherFormats":false}`,
			req:  []HeaderOp{set(HeaderTraceparent, "00-"+b3Trace128+"-"+newSpan+"-01")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := mustParse(t, tc.cfg)
			var h Hop
			require.NoError(t, tr.Start(&h, in, ids(newSpan, ""), t0))
			require.Equal(t, tc.req, h.RequestHeaders())
			require.Empty(t, h.ResponseHeaders())
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestTracer_Start_Errors(t *testing.T) {
	tr := mustParse(t, `{}`)
	var h Hop
	err := tr.Start(&h, headers{}, failingReader{}, t0)
	require.EqualError(t, err, "tracing: random source returned no usable ids\nno entropy")
	err = tr.Start(&h, headers{}, bytes.NewReader(make([]byte, 100)), t0)
	require.EqualError(t, err, "tracing: random source returned no usable ids")
}

type props map[string]string

func (p props) Property(path []string) (string, bool) {
	v, ok := p[strings.Join(path, "/")]
	return v, ok
}

func TestTracer_FinishLogMetrics(t *testing.T) {
	tr := mustParse(t, seedConfig)
	var h Hop
	in := headers{":method": "POST", ":path": "/api/payments/7?card=1", "x-user-id": "u\"42",
		"x-route-version": "v2", HeaderTraceparent: "00-" + w3cTrace + "-" + w3cSpan + "-01"}
	require.NoError(t, tr.Start(&h, in, ids(newSpan, ""), t0))
	tr.Finish(&h, 503, t0.Add(12345*time.Microsecond), props{"filter_state/meshwasm.authz.policy": "allow-orders"})

	line := tr.AppendLog(nil, &h)
	require.Equal(t, `{"trace_id":"`+w3cTrace+`","span_id":"`+newSpan+`","method":"POST","path":"/api/payments/7","route":"payments",`+
		`"status":503,"duration_ms":12.345,"sampled":true,"sampling_reason":"rule","user.id":"u\"42","upstream.version":"v2",`+
		`"authz.policy":"allow-orders"}`, string(line))
	require.True(t, json.Valid(line))

	counter, hist, ms := tr.RequestMetrics(&h)
	require.Equal(t, "meshwasm.tracing.payments.rq_5xx", tr.Metrics()[counter].Name)
	require.Equal(t, "meshwasm.tracing.payments.rq_time_ms", tr.Metrics()[hist].Name)
	require.Equal(t, Histogram, tr.Metrics()[hist].Kind)
	require.Equal(t, uint64(12), ms)

	// A reused hop starts clean, and a missing attribute is left out.
	require.NoError(t, tr.Start(&h, headers{":method": "GET", ":path": "/other"}, ids(newSpan, newTrace), t0))
	tr.Finish(&h, 0, t0.Add(-time.Second), nil)
	line = tr.AppendLog(line[:0], &h)
	require.Equal(t, `{"trace_id":"`+newTrace+`","span_id":"`+newSpan+`","method":"GET","path":"/other","route":"default",`+
		`"status":0,"duration_ms":0,"sampled":false,"sampling_reason":"ratio"}`, string(line))
	counter, hist, ms = tr.RequestMetrics(&h)
	require.Equal(t, "meshwasm.tracing.default.rq_other", tr.Metrics()[counter].Name)
	require.Equal(t, "meshwasm.tracing.default.rq_time_ms", tr.Metrics()[hist].Name)
	require.Zero(t, ms)
}

func TestTracer_AppendLog_AllBuiltins(t *testing.T) {
	tr := mustParse(t, `{"accessLog":{"fields":["parent_span_id","start_time","status"]}}`)
	var h Hop
	require.NoError(t, tr.Start(&h, headers{}, ids(newSpan, newTrace), t0))
	tr.Finish(&h, 204, t0, nil)
	require.Equal(t, `{"parent_span_id":null,"start_time":"2026-03-01T12:00:00Z","status":204}`, string(tr.AppendLog(nil, &h)))

	off := mustParse(t, `{}`)
	require.Equal(t, "prefix", string(off.AppendLog([]byte("prefix"), &h)))
}

func TestAppendJSONString(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "plain", in: "abc", want: `"abc"`},
		{name: "quotes and backslash", in: `a"b\c`, want: `"a\"b\\c"`},
		{name: "controls", in: "\n\r\t\x00\x1f\x7f", want: `"\n\r\t\u0000\u001f\u007f"`},
		{name: "utf8 kept", in: "é日本", want: `"é日本"`},
		{name: "invalid utf8", in: "a\xffb", want: `"a\ufffdb"`},
		{name: "line separators", in: "\u2028\u2029", want: `"\u2028\u2029"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := appendJSONString(nil, tc.in)
			require.Equal(t, tc.want, string(got))
			require.True(t, json.Valid(got))
		})
	}
}

func TestAppendMillis(t *testing.T) {
	tests := []struct {
		name string
		ns   int64
		want string
	}{
		{name: "zero", ns: 0, want: "0"},
		{name: "whole", ns: 3e6, want: "3"},
		{name: "micro", ns: 1001000, want: "1.001"},
		{name: "tenth", ns: 1100000, want: "1.1"},
		{name: "sub-micro dropped", ns: 999, want: "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, string(appendMillis(nil, tc.ns)))
		})
	}
}

func TestTracer_Start_EnrichSkipsControlBytes(t *testing.T) {
	tr := mustParse(t, `{"inject":["w3c"],"enrich":[{"fromBaggage":"user.id","toHeader":"x-user-id"}]}`)
	var h Hop
	in := headers{HeaderTraceparent: "00-" + w3cTrace + "-" + w3cSpan + "-01", HeaderBaggage: "user.id=x%0D%0Ay"}
	require.NoError(t, tr.Start(&h, in, ids(newSpan, ""), t0))
	require.Equal(t, []HeaderOp{set(HeaderTraceparent, "00-"+w3cTrace+"-"+newSpan+"-01")}, h.RequestHeaders())
}
