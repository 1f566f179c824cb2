package tracing

import (
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/meshwasm/meshwasm/tracing/otlpjson"
)

// decodeOTLP reads an OTLP/HTTP JSON body with the official types.
func decodeOTLP(t testing.TB, body []byte) *coltracepb.ExportTraceServiceRequest {
	t.Helper()
	req, err := otlpjson.Decode(body)
	require.NoError(t, err, "%s", body)
	return req
}

func finishedHop(t *testing.T, tr *Tracer, in headers, trace string, status int, d time.Duration) *Hop {
	t.Helper()
	h := &Hop{}
	require.NoError(t, tr.Start(h, in, ids(newSpan, trace), t0))
	tr.Finish(h, status, t0.Add(d), props{"filter_state/meshwasm.authz.policy": "allow"})
	return h
}

func attrs(kvs []*commonKV) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *stringValue:
			m[kv.GetKey()] = v.StringValue
		case *intValue:
			m[kv.GetKey()] = fmt.Sprint(v.IntValue)
		}
	}
	return m
}

func TestExporter_OTLPDecodesWithOfficialTypes(t *testing.T) {
	tr := mustParse(t, seedConfig)
	e := tr.NewExporter()
	require.NotNil(t, e)

	h1 := finishedHop(t, tr, headers{":method": "POST", ":path": "/api/payments/9", "x-user-id": "u\"1", "x-route-version": "v2",
		HeaderTraceparent: "00-" + w3cTrace + "-" + w3cSpan + "-01", HeaderTracestate: "rojo=1"}, "", 201, 5*time.Millisecond)
	h2 := finishedHop(t, tr, headers{":method": "BREW", ":path": "/other", "x-debug": "1"}, newTrace, 0, time.Millisecond)
	require.True(t, e.Add(h1))
	require.True(t, e.Add(h2))

	c, ok := e.Flush(t0)
	require.True(t, ok, "a full batch goes out at once")
	require.Equal(t, "otel-collector", c.Cluster)
	require.Equal(t, 2*time.Second, c.Timeout)
	require.Equal(t, [][2]string{{":method", "POST"}, {":path", "/v1/traces"}, {":authority", "otel-collector"}, {"content-type", "application/json"}}, c.Headers)

	req := decodeOTLP(t, c.Body)
	require.Len(t, req.GetResourceSpans(), 1)
	rs := req.GetResourceSpans()[0]
	require.Equal(t, map[string]string{"service.name": "orders-sidecar", "deployment.environment": "prod"}, attrs(rs.GetResource().GetAttributes()))
	require.Len(t, rs.GetScopeSpans(), 1)
	require.Equal(t, "github.com/meshwasm/meshwasm/tracing", rs.GetScopeSpans()[0].GetScope().GetName())
	spans := rs.GetScopeSpans()[0].GetSpans()
	require.Len(t, spans, 2)

	s := spans[0]
	require.Equal(t, w3cTrace, hex.EncodeToString(s.GetTraceId()))
	require.Equal(t, newSpan, hex.EncodeToString(s.GetSpanId()))
	require.Equal(t, w3cSpan, hex.EncodeToString(s.GetParentSpanId()))
	require.Equal(t, "rojo=1", s.GetTraceState())
	require.Equal(t, "POST /api/payments/*", s.GetName())
	require.Equal(t, tracepb.Span_SPAN_KIND_SERVER, s.GetKind())
	require.Equal(t, uint64(t0.UnixNano()), s.GetStartTimeUnixNano())
	require.Equal(t, uint64(t0.Add(5*time.Millisecond).UnixNano()), s.GetEndTimeUnixNano())
	require.Equal(t, map[string]string{
		"http.request.method": "POST", "url.path": "/api/payments/9", "http.route": "/api/payments/*",
		"http.response.status_code": "201", "meshwasm.sampling.reason": "rule",
		"user.id": "u\"1", "upstream.version": "v2", "authz.policy": "allow",
	}, attrs(s.GetAttributes()))
	require.Nil(t, s.GetStatus())

	s = spans[1]
	require.Equal(t, newTrace, hex.EncodeToString(s.GetTraceId()))
	require.Empty(t, s.GetParentSpanId())
	require.Equal(t, "HTTP", s.GetName())
	require.Equal(t, tracepb.Status_STATUS_CODE_ERROR, s.GetStatus().GetCode())
	require.Equal(t, map[string]string{
		"http.request.method": "HTTP", "url.path": "/other", "meshwasm.sampling.reason": "rule", "authz.policy": "allow",
	}, attrs(s.GetAttributes()))

	require.Equal(t, ExportOK, e.Done(200))
	require.Zero(t, e.Len())
	exported, dropped, failures := e.TakeCounts()
	require.Equal(t, [3]uint64{2, 0, 0}, [3]uint64{exported, dropped, failures})
}

// The collector is down: requests keep being added and never wait, the
// queue stays bounded, overflow and given-up batches are counted.
func TestExporter_CollectorDown(t *testing.T) {
	tr := mustParse(t, seedConfig) // batch 2, queue 4, flush 1s, timeout 2s, 3 attempts
	e := tr.NewExporter()
	sampled := finishedHop(t, tr, headers{":path": "/api/payments/1"}, newTrace, 200, time.Millisecond)
	unsampled := finishedHop(t, tr, headers{":path": "/x"}, newTrace, 200, time.Millisecond)

	require.False(t, e.Add(unsampled), "unsampled hops are not spans")
	for i := 0; i < 6; i++ {
		require.Equal(t, i < 4, e.Add(sampled))
	}
	require.Equal(t, 4, e.Len())
	_, dropped, _ := e.TakeCounts()
	require.Equal(t, uint64(2), dropped)

	now := t0
	for attempt := 1; attempt <= 3; attempt++ {
		_, ok := e.Flush(now)
		require.True(t, ok)
		_, ok = e.Flush(now)
		require.False(t, ok, "one batch in flight at a time")
		require.Equal(t, ExportRetry, e.Done(503))
		now = now.Add(time.Second)
	}
	require.Equal(t, 2, e.Len(), "the batch is given up after maxAttempts")
	exported, dropped, failures := e.TakeCounts()
	require.Equal(t, [3]uint64{0, 2, 3}, [3]uint64{exported, dropped, failures})

	// A callout that never answers is treated as failed after twice its timeout.
	_, ok := e.Flush(now)
	require.True(t, ok)
	_, ok = e.Flush(now.Add(3 * time.Second))
	require.False(t, ok)
	c, ok := e.Flush(now.Add(4 * time.Second))
	require.True(t, ok, "timed out and resent")
	require.NotEmpty(t, c.Body)
	require.Equal(t, ExportDrop, e.Done(400))
	require.Zero(t, e.Len())
	exported, dropped, failures = e.TakeCounts()
	require.Equal(t, [3]uint64{0, 2, 2}, [3]uint64{exported, dropped, failures})
	require.Equal(t, ExportOK, e.Done(200), "a stray reply changes nothing")
}

func TestExporter_FlushPeriod(t *testing.T) {
	tr := mustParse(t, `{"export":{"cluster":"c","batchSize":10,"flushPeriod":"1s"}}`)
	e := tr.NewExporter()
	_, ok := e.Flush(t0)
	require.False(t, ok, "nothing queued")
	require.True(t, e.Add(finishedHop(t, tr, headers{}, newTrace+"", 200, 0)))
	_, ok = e.Flush(t0)
	require.True(t, ok, "first flush: period since zero time has passed")
	require.Equal(t, ExportOK, e.Done(204))
	require.True(t, e.Add(finishedHop(t, tr, headers{}, newTrace, 200, 0)))
	_, ok = e.Flush(t0.Add(500 * time.Millisecond))
	require.False(t, ok, "partial batch waits for the period")
	c, ok := e.Flush(t0.Add(time.Second))
	require.True(t, ok)
	require.Len(t, decodeOTLP(t, c.Body).GetResourceSpans()[0].GetScopeSpans()[0].GetSpans(), 1)
}

func TestClassifyReply(t *testing.T) {
	tests := []struct {
		name   string
		status int
		want   ExportResult
	}{
		{name: "ok", status: 200, want: ExportOK},
		{name: "accepted", status: 202, want: ExportOK},
		{name: "no reply", status: 0, want: ExportRetry},
		{name: "throttled", status: 429, want: ExportRetry},
		{name: "bad gateway", status: 502, want: ExportRetry},
		{name: "unavailable", status: 503, want: ExportRetry},
		{name: "gateway timeout", status: 504, want: ExportRetry},
		{name: "internal error", status: 500, want: ExportDrop},
		{name: "bad request", status: 400, want: ExportDrop},
		{name: "redirect", status: 302, want: ExportDrop},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, ClassifyReply(tc.status))
			require.NotEmpty(t, tc.want.String())
		})
	}
}

// A queued span keeps copies of the request's strings. On Wasm those strings
// are views of the block the host wrote the request into; a span that kept
// the views would pin every such block for as long as it waits in the queue
// (megabytes when the collector is slow). Here the "host memory" is
// overwritten after Add: the exported span must still carry the values.
func TestExporter_SpansOwnTheirStrings(t *testing.T) {
	tr := mustParse(t, seedConfig)
	e := tr.NewExporter()
	block := []byte("/api/payments/9" + "u1" + "v2" + "rojo=1" + "00-" + w3cTrace + "-" + w3cSpan + "-01")
	view := func(from, to int) string { return unsafe.String(&block[from], to-from) }
	h := finishedHop(t, tr, headers{":method": "POST", ":path": view(0, 15), "x-user-id": view(15, 17),
		"x-route-version": view(17, 19), HeaderTracestate: view(19, 25), HeaderTraceparent: view(25, len(block))}, "", 200, time.Millisecond)
	require.True(t, e.Add(h))
	for i := range block {
		block[i] = 'X'
	}
	c, ok := e.Flush(t0)
	require.True(t, ok)
	s := decodeOTLP(t, c.Body).GetResourceSpans()[0].GetScopeSpans()[0].GetSpans()[0]
	require.Equal(t, "rojo=1", s.GetTraceState())
	a := attrs(s.GetAttributes())
	require.Equal(t, "/api/payments/9", a["url.path"])
	require.Equal(t, "u1", a["user.id"])
	require.Equal(t, "v2", a["upstream.version"])
}

// A span whose strings outgrow its slot in the text arena keeps them aside
// until it is sent.
func TestExporter_LongSpanText(t *testing.T) {
	tr := mustParse(t, seedConfig)
	e := tr.NewExporter()
	long := "/api/payments/" + strings.Repeat("9", 300)
	require.True(t, e.Add(finishedHop(t, tr, headers{":method": "GET", ":path": long, "x-user-id": "u1"}, newTrace, 200, 0)))
	require.True(t, e.Add(finishedHop(t, tr, headers{":method": "GET", ":path": "/api/payments/1", "x-user-id": "u2"}, newTrace, 200, 0)))
	require.Len(t, e.overflow, 1)
	c, ok := e.Flush(t0)
	require.True(t, ok)
	spans := decodeOTLP(t, c.Body).GetResourceSpans()[0].GetScopeSpans()[0].GetSpans()
	require.Equal(t, long, attrs(spans[0].GetAttributes())["url.path"])
	require.Equal(t, "u1", attrs(spans[0].GetAttributes())["user.id"])
	require.Equal(t, "/api/payments/1", attrs(spans[1].GetAttributes())["url.path"])
	require.Equal(t, ExportOK, e.Done(200))
	require.Empty(t, e.overflow, "sent spans give their overflow back")
}

// The queue holds no pointer: the collector never scans it. A pointer field
// added to spanRecord (a string, a slice) would make every GC cycle walk the
// whole queue again.
func TestExporter_QueueHoldsNoPointers(t *testing.T) {
	var check func(reflect.Type)
	check = func(ty reflect.Type) {
		switch ty.Kind() {
		case reflect.Struct:
			for i := 0; i < ty.NumField(); i++ {
				check(ty.Field(i).Type)
			}
		case reflect.Array:
			check(ty.Elem())
		case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		default:
			t.Errorf("spanRecord holds a %s", ty)
		}
	}
	check(reflect.TypeOf(spanRecord{}))
	check(reflect.TypeOf(textRef{}))
}
