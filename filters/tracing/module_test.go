package tracing_test

import (
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/meshwasm/meshwasm/filters/internal/wasmhost"
	"github.com/meshwasm/meshwasm/filters/tracing"
	core "github.com/meshwasm/meshwasm/tracing"
)

// These tests run build/tracing.wasm (built by `make build`) on the wazero
// host: headers after the callbacks, callouts, logs and metrics are what
// Envoy would see. A missing module fails them.

const (
	logInfo     = 2
	logCritical = 5

	inTrace   = "4bf92f3577b34da6a3ce929d0e0e4736"
	inSpan    = "00f067aa0ba902b7"
	b3Trace64 = "463ac35c9f6413ad"
	b3Span    = "a2fb4a1d1a96d312"
	b3Parent  = "0020000000000001"
	zeros64   = "0000000000000000"
)

// propagateConfig samples no root trace unless forced by x-debug, follows
// the caller otherwise, and returns the trace id both ways.
const propagateConfig = `{
  "sampling": {"ratio": 0, "rules": [{"header": "x-debug"}]},
  "response": {"traceresponse": true, "traceIdHeader": "x-trace-id"}
}`

func start(t testing.TB, h *wasmhost.Host, config string, clusters ...string) *wasmhost.Plugin {
	t.Helper()
	p := h.NewPlugin(wasmhost.VMOptions{Clusters: clusters}, wasmhost.PluginOptions{RootID: tracing.Name, Config: []byte(config)})
	require.True(t, p.Started(), "plugin start failed: %v", p.VM().Logs())
	return p
}

func get(path string, extra ...string) [][2]string {
	hs := [][2]string{{":method", "GET"}, {":path", path}, {":authority", "orders.example"}}
	for i := 0; i+1 < len(extra); i += 2 {
		hs = append(hs, [2]string{extra[i], extra[i+1]})
	}
	return hs
}

var traceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$`)

// traceparent splits a traceparent the filter wrote, failing on any other
// shape.
func traceparent(t testing.TB, v string) (trace, span, flags string) {
	t.Helper()
	m := traceparentRE.FindStringSubmatch(v)
	require.NotNil(t, m, "traceparent %q", v)
	require.NotEqual(t, zeros64+zeros64, m[1])
	require.NotEqual(t, zeros64, m[2])
	return m[1], m[2], m[3]
}

func metric(t testing.TB, h *wasmhost.Host, name string) uint64 {
	t.Helper()
	v, ok := h.Metric(name)
	require.True(t, ok, "metric %s not defined; have %v", name, h.MetricNames())
	return v
}

func TestModule_Propagation(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		// trace is the W3C trace id out; "" means a new trace.
		trace string
		// b3Trace is x-b3-traceid when it differs from trace (64-bit B3).
		b3Trace string
		parent  string // x-b3-parentspanid; "" absent
		flags   string // traceparent flags
		sampled string // x-b3-sampled; "" absent (debug sends x-b3-flags)
		debug   bool
		state   string // tracestate out; "" absent
	}{
		{name: "w3c in", in: []string{"traceparent", "00-" + inTrace + "-" + inSpan + "-01", "tracestate", "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE"},
			trace: inTrace, parent: inSpan, flags: "01", sampled: "1", state: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"},
		{name: "w3c caller's deny is followed", in: []string{"traceparent", "00-" + inTrace + "-" + inSpan + "-00"},
			trace: inTrace, parent: inSpan, flags: "00", sampled: "0"},
		{name: "w3c higher version read by prefix", in: []string{"traceparent", "cc-" + inTrace + "-" + inSpan + "-01-what-the-future-holds"},
			trace: inTrace, parent: inSpan, flags: "01", sampled: "1"},
		{name: "w3c unknown flag bits ignored", in: []string{"traceparent", "00-" + inTrace + "-" + inSpan + "-ff"},
			trace: inTrace, parent: inSpan, flags: "01", sampled: "1"},
		{name: "b3 single 128-bit to w3c", in: []string{"b3", inTrace + "-" + inSpan + "-1"},
			trace: inTrace, parent: inSpan, flags: "01", sampled: "1"},
		{name: "b3 single 64-bit widened for w3c, kept for b3", in: []string{"b3", b3Trace64 + "-" + b3Span + "-1-" + b3Parent},
			trace: zeros64 + b3Trace64, b3Trace: b3Trace64, parent: b3Span, flags: "01", sampled: "1"},
		{name: "b3 multi to w3c", in: []string{"x-b3-traceid", b3Trace64, "x-b3-spanid", b3Span, "x-b3-parentspanid", b3Parent, "x-b3-sampled", "1"},
			trace: zeros64 + b3Trace64, b3Trace: b3Trace64, parent: b3Span, flags: "01", sampled: "1"},
		{name: "b3 single wins over multi", in: []string{"b3", inTrace + "-" + inSpan + "-0", "x-b3-traceid", b3Trace64, "x-b3-spanid", b3Span, "x-b3-sampled", "1"},
			trace: inTrace, parent: inSpan, flags: "00", sampled: "0"},
		{name: "b3 debug flag", in: []string{"x-b3-traceid", b3Trace64, "x-b3-spanid", b3Span, "x-b3-flags", "1"},
			trace: zeros64 + b3Trace64, b3Trace: b3Trace64, parent: b3Span, flags: "01", debug: true},
		{name: "b3: 0 starts an unsampled trace", in: []string{"b3", "0"}, flags: "00", sampled: "0"},
		{name: "lone x-b3-sampled: 1 forces a sampled trace", in: []string{"x-b3-sampled", "1"}, flags: "01", sampled: "1"},
		{name: "no context, ratio 0", flags: "00", sampled: "0"},
		{name: "x-debug forces a root trace", in: []string{"x-debug", "1"}, flags: "01", sampled: "1"},
		{name: "x-debug overrides the caller's deny", in: []string{"traceparent", "00-" + inTrace + "-" + inSpan + "-00", "x-debug", "1"},
			trace: inTrace, parent: inSpan, flags: "01", sampled: "1"},
		{name: "uppercase traceparent invalid, its tracestate ignored", in: []string{"traceparent", "00-" + strings.ToUpper(inTrace) + "-" + inSpan + "-01", "tracestate", "rojo=1"},
			flags: "00", sampled: "0"},
		{name: "version ff invalid", in: []string{"traceparent", "ff-" + inTrace + "-" + inSpan + "-01"}, flags: "00", sampled: "0"},
		{name: "all-zero trace id invalid", in: []string{"traceparent", "00-" + zeros64 + zeros64 + "-" + inSpan + "-01"}, flags: "00", sampled: "0"},
	}
	h := wasmhost.Load(t, "tracing")
	p := start(t, h, propagateConfig)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := p.NewStream()
			require.Equal(t, types.ActionContinue, s.SendRequestHeaders(get("/orders", tc.in...), true))

			trace, span, flags := traceparent(t, s.RequestHeader("traceparent"))
			if tc.trace != "" {
				require.Equal(t, tc.trace, trace, "trace id carried over")
			}
			require.NotEqual(t, inSpan, span, "a new span id for the proxy hop")
			require.NotEqual(t, b3Span, span)
			require.Equal(t, tc.flags, flags)
			b3Trace := tc.b3Trace
			if b3Trace == "" {
				b3Trace = trace
			}
			require.Equal(t, b3Trace, s.RequestHeader("x-b3-traceid"))
			require.Equal(t, span, s.RequestHeader("x-b3-spanid"), "every format names the same hop")
			require.Equal(t, tc.parent, s.RequestHeader("x-b3-parentspanid"))
			require.Equal(t, tc.parent != "", s.HasRequestHeader("x-b3-parentspanid"))
			require.Equal(t, tc.sampled, s.RequestHeader("x-b3-sampled"))
			if tc.debug {
				require.Equal(t, "1", s.RequestHeader("x-b3-flags"))
			} else {
				require.False(t, s.HasRequestHeader("x-b3-flags"))
			}
			require.Equal(t, tc.state, s.RequestHeader("tracestate"))
			require.Equal(t, tc.state != "", s.HasRequestHeader("tracestate"))
			require.False(t, s.HasRequestHeader("b3"), "formats not injected are removed")

			require.Equal(t, types.ActionContinue, s.SendResponseHeaders([][2]string{{":status", "200"}, {"traceresponse", "00-" + inTrace + "-" + b3Span + "-01"}}, false))
			require.Equal(t, "00-"+trace+"-"+span+"-"+flags, s.ResponseHeader("traceresponse"), "the proxy's hop replaces an upstream's")
			require.Equal(t, trace, s.ResponseHeader("x-trace-id"))
			s.Finish()
		})
	}
}

func TestModule_TranslateToB3Single(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want func(span string) string
	}{
		{name: "w3c to b3 single", in: []string{"traceparent", "00-" + inTrace + "-" + inSpan + "-01"},
			want: func(span string) string { return inTrace + "-" + span + "-1-" + inSpan }},
		{name: "b3 multi 64-bit to b3 single keeps 64 bits", in: []string{"x-b3-traceid", b3Trace64, "x-b3-spanid", b3Span, "x-b3-flags", "1"},
			want: func(span string) string { return b3Trace64 + "-" + span + "-d-" + b3Span }},
	}
	h := wasmhost.Load(t, "tracing")
	p := start(t, h, `{"inject": ["b3"], "response": {"traceIdHeader": "x-trace-id"}}`)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := p.NewStream()
			require.Equal(t, types.ActionContinue, s.SendRequestHeaders(get("/", tc.in...), true))
			b3 := s.RequestHeader("b3")
			parts := strings.Split(b3, "-")
			require.GreaterOrEqual(t, len(parts), 3, "b3 %q", b3)
			require.Equal(t, tc.want(parts[1]), b3)
			for _, gone := range []string{"traceparent", "tracestate", "x-b3-traceid", "x-b3-spanid", "x-b3-flags", "x-b3-sampled"} {
				require.False(t, s.HasRequestHeader(gone), "%s removed: only b3 is injected", gone)
			}
			s.Finish()
		})
	}
}

func TestModule_BaggageAndTagHeaders(t *testing.T) {
	config := `{
	  "enrich": [
	    {"fromHeader": "x-user-id", "toBaggage": "user.id"},
	    {"fromBaggage": "tenant", "toHeader": "x-tenant"}
	  ]
	}`
	tests := []struct {
		name       string
		in         []string
		baggage    string // "" absent
		tenant     string // "" absent
		hasBaggage bool
	}{
		{name: "header into baggage, existing members kept", in: []string{"x-user-id", "u 42", "baggage", "tenant=acme, other=1"},
			baggage: "tenant=acme,other=1,user.id=u%2042", tenant: "acme", hasBaggage: true},
		{name: "caller's entry replaced", in: []string{"x-user-id", "7", "baggage", "user.id=forged"},
			baggage: "user.id=7", hasBaggage: true},
		{name: "baggage into a tag header Envoy's custom_tags can read", in: []string{"baggage", "tenant=globex"},
			baggage: "tenant=globex", tenant: "globex", hasBaggage: true},
		{name: "nothing to copy"},
	}
	h := wasmhost.Load(t, "tracing")
	p := start(t, h, config)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := p.NewStream()
			require.Equal(t, types.ActionContinue, s.SendRequestHeaders(get("/", tc.in...), true))
			require.Equal(t, tc.baggage, s.RequestHeader("baggage"))
			require.Equal(t, tc.hasBaggage, s.HasRequestHeader("baggage"))
			require.Equal(t, tc.tenant, s.RequestHeader("x-tenant"))
			require.Equal(t, tc.tenant != "", s.HasRequestHeader("x-tenant"))
			s.Finish()
		})
	}
}

// logConfig logs every request with an attribute read from a header and one
// read from a property at the end of the stream.
const logConfig = `{
  "attributes": [
    {"name": "user.id", "header": "x-user-id"},
    {"name": "route.name", "property": "xds.route_name"}
  ],
  "accessLog": {"fields": ["trace_id", "span_id", "method", "path", "route", "status", "duration_ms", "sampled", "user.id", "route.name"]},
  "routeGroups": [{"name": "payments", "paths": ["/api/payments/*"]}]
}`

func TestModule_AccessLogAndMetrics(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		status   string // "" the stream ends without a response
		group    string
		class    string
		wantCode float64
	}{
		{name: "payments 2xx", path: "/api/payments/42?debug=1", status: "201", group: "payments", class: "rq_2xx", wantCode: 201},
		{name: "default group 5xx", path: "/orders", status: "503", group: "default", class: "rq_5xx", wantCode: 503},
		{name: "reset before the response", path: "/orders", group: "default", class: "rq_other", wantCode: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := wasmhost.Load(t, "tracing")
			p := start(t, h, logConfig)
			s := p.NewStream()
			s.Properties["xds.route_name"] = []byte("orders-route")
			require.Equal(t, types.ActionContinue, s.SendRequestHeaders(get(tc.path, "x-user-id", "u-1"), true))
			trace, span, _ := traceparent(t, s.RequestHeader("traceparent"))
			h.Clock.Advance(25 * time.Millisecond)
			if tc.status != "" {
				s.SendResponseHeaders([][2]string{{":status", tc.status}}, true)
			}
			s.Finish()

			lines := p.VM().LogsContaining(logInfo, `"trace_id"`)
			require.Len(t, lines, 1)
			var line map[string]any
			require.NoError(t, json.Unmarshal([]byte(lines[0]), &line), lines[0])
			require.Equal(t, map[string]any{
				"trace_id": trace, "span_id": span, "method": "GET", "path": strings.Split(tc.path, "?")[0],
				"route": tc.group, "status": tc.wantCode, "duration_ms": float64(25), "sampled": true,
				"user.id": "u-1", "route.name": "orders-route",
			}, line)

			require.Equal(t, uint64(1), metric(t, h, "meshwasm.tracing."+tc.group+"."+tc.class))
			require.Equal(t, []uint64{25}, h.Histogram("meshwasm.tracing."+tc.group+".rq_time_ms"))
			for _, other := range []string{"rq_1xx", "rq_2xx", "rq_3xx", "rq_4xx", "rq_5xx", "rq_other"} {
				if other != tc.class {
					require.Zero(t, metric(t, h, "meshwasm.tracing."+tc.group+"."+other), other)
				}
			}
		})
	}
}

// exportConfig exports to the "otel" cluster in batches of two.
const exportConfig = `{
  "sampling": {"ratio": 0, "rules": [{"header": "x-debug"}]},
  "attributes": [
    {"name": "user.id", "header": "x-user-id"},
    {"name": "authz.policy", "property": ["filter_state", "meshwasm.authz.policy"]}
  ],
  "routeGroups": [{"name": "payments", "paths": ["/api/payments/*"]}],
  "export": {"cluster": "otel", "batchSize": 2, "queueSize": 4, "flushPeriod": "1s", "timeout": "500ms",
             "maxAttempts": 2, "serviceName": "orders-sidecar", "resource": {"deployment.environment": "test"}}
}`

// sampled sends one request that the x-debug rule samples and returns its
// trace and span ids.
func sampled(t testing.TB, p *wasmhost.Plugin, path, status string, extra ...string) (trace, span string) {
	t.Helper()
	s := p.NewStream()
	s.Properties["filter_state.meshwasm.authz.policy"] = []byte("allow-orders")
	require.Equal(t, types.ActionContinue, s.SendRequestHeaders(get(path, append([]string{"x-debug", "1"}, extra...)...), true))
	trace, span, flags := traceparent(t, s.RequestHeader("traceparent"))
	require.Equal(t, "01", flags)
	p.VM().Host().Clock.Advance(3 * time.Millisecond)
	s.SendResponseHeaders([][2]string{{":status", status}}, true)
	s.Finish()
	return trace, span
}

func TestModule_ExportOTLP(t *testing.T) {
	h := wasmhost.Load(t, "tracing")
	p := start(t, h, exportConfig, "otel")
	require.Equal(t, uint32(1000), p.TickPeriod())

	startAt := h.Clock.Now()
	trace1, span1 := sampled(t, p, "/api/payments/7", "201", "x-user-id", "u-7")
	// Not sampled: never exported.
	s := p.NewStream()
	s.SendRequestHeaders(get("/orders"), true)
	s.Finish()
	trace2, span2 := sampled(t, p, "/orders", "503")
	trace3, _ := sampled(t, p, "/orders", "200")
	require.Empty(t, p.VM().Callouts(), "requests never call out")

	p.Tick()
	callouts := p.VM().Callouts()
	require.Len(t, callouts, 1)
	c := callouts[0]
	require.Equal(t, "otel", c.Cluster)
	require.Equal(t, "POST", c.Header(":method"))
	require.Equal(t, "/v1/traces", c.Header(":path"))
	require.Equal(t, "otel", c.Header(":authority"))
	require.Equal(t, "application/json", c.Header("content-type"))
	require.Equal(t, uint32(500), c.Timeout)

	req := decodeOTLP(t, c.Body)
	require.Len(t, req.GetResourceSpans(), 1)
	require.Equal(t, map[string]string{"service.name": "orders-sidecar", "deployment.environment": "test"},
		attrs(req.GetResourceSpans()[0].GetResource().GetAttributes()))
	spans := spansOf(req)
	require.Len(t, spans, 2, "one full batch")

	sp := spans[0]
	require.Equal(t, trace1, hex.EncodeToString(sp.GetTraceId()))
	require.Equal(t, span1, hex.EncodeToString(sp.GetSpanId()))
	require.Empty(t, sp.GetParentSpanId(), "a root span")
	require.Equal(t, "GET /api/payments/*", sp.GetName())
	require.Equal(t, tracepb.Span_SPAN_KIND_SERVER, sp.GetKind())
	require.Equal(t, uint64(startAt.UnixNano()), sp.GetStartTimeUnixNano())
	require.Equal(t, uint64(startAt.Add(3*time.Millisecond).UnixNano()), sp.GetEndTimeUnixNano())
	require.Equal(t, map[string]string{
		"http.request.method": "GET", "url.path": "/api/payments/7", "http.route": "/api/payments/*",
		"http.response.status_code": "201", "meshwasm.sampling.reason": "rule",
		"user.id": "u-7", "authz.policy": "allow-orders",
	}, attrs(sp.GetAttributes()))
	require.Nil(t, sp.GetStatus())

	sp = spans[1]
	require.Equal(t, trace2, hex.EncodeToString(sp.GetTraceId()))
	require.Equal(t, span2, hex.EncodeToString(sp.GetSpanId()))
	require.Equal(t, "GET", sp.GetName())
	require.Equal(t, tracepb.Status_STATUS_CODE_ERROR, sp.GetStatus().GetCode(), "5xx is an error on a server span")

	// The reply drains nothing more: one span left, less than a batch, and
	// the flush period has not passed.
	c.Respond(200, nil, nil, nil)
	require.Empty(t, p.VM().Callouts())
	require.Equal(t, uint64(2), metric(t, h, "meshwasm.tracing.spans_exported"))

	h.Clock.Advance(time.Second)
	p.Tick()
	callouts = p.VM().Callouts()
	require.Len(t, callouts, 1)
	spans = spansOf(decodeOTLP(t, callouts[0].Body))
	require.Len(t, spans, 1)
	require.Equal(t, trace3, hex.EncodeToString(spans[0].GetTraceId()))
	callouts[0].Respond(200, nil, nil, nil)

	require.Equal(t, uint64(3), metric(t, h, "meshwasm.tracing.spans_exported"))
	require.Zero(t, metric(t, h, "meshwasm.tracing.spans_dropped"))
	require.Zero(t, metric(t, h, "meshwasm.tracing.export_failures"))
}

func TestModule_CollectorDown(t *testing.T) {
	h := wasmhost.Load(t, "tracing")
	p := start(t, h, exportConfig, "otel")

	// Fill the 4-span queue and then some: requests keep flowing untouched.
	for i := 0; i < 4; i++ {
		sampled(t, p, "/orders", "200")
	}
	p.Tick()
	require.Len(t, p.VM().Callouts(), 1)
	for i := 0; i < 6; i++ {
		sampled(t, p, "/orders", "200")
	}
	require.Equal(t, uint64(6), metric(t, h, "meshwasm.tracing.spans_dropped"), "queue full: dropped and counted at once")

	// A slow collector: no second callout while one is in flight.
	p.Tick()
	require.Len(t, p.VM().Callouts(), 1, "one callout at a time")

	// Down: the call fails and the batch is retried at once, then dropped
	// after maxAttempts (2); the queue never grows past its bound.
	p.VM().Callouts()[0].Fail()
	require.Equal(t, uint64(1), metric(t, h, "meshwasm.tracing.export_failures"))
	callouts := p.VM().Callouts()
	require.Len(t, callouts, 1, "the retry")
	callouts[0].Fail()
	require.Equal(t, uint64(2), metric(t, h, "meshwasm.tracing.export_failures"))
	require.Equal(t, uint64(8), metric(t, h, "meshwasm.tracing.spans_dropped"), "the batch is dropped after maxAttempts")

	// The failed reply already sent the next full batch; the collector is back.
	callouts = p.VM().Callouts()
	require.Len(t, callouts, 1)
	require.Len(t, spansOf(decodeOTLP(t, callouts[0].Body)), 2)
	callouts[0].Respond(200, nil, nil, nil)
	require.Equal(t, uint64(2), metric(t, h, "meshwasm.tracing.spans_exported"))
	require.Empty(t, p.VM().Callouts())

	// A collector that never answers: after twice the timeout the call
	// counts as failed and the batch goes out again; the late reply to the
	// abandoned call is ignored, not credited to the new one.
	trace, _ := sampled(t, p, "/orders", "200")
	h.Clock.Advance(time.Second)
	p.Tick()
	require.Len(t, p.VM().Callouts(), 1)
	stale := p.VM().Callouts()[0]
	h.Clock.Advance(time.Second)
	p.Tick()
	require.Equal(t, uint64(3), metric(t, h, "meshwasm.tracing.export_failures"))
	callouts = p.VM().Callouts()
	require.Len(t, callouts, 2)
	retry := callouts[1]
	stale.Respond(200, nil, nil, nil)
	require.Equal(t, uint64(2), metric(t, h, "meshwasm.tracing.spans_exported"), "a stale reply credits nothing")
	spans := spansOf(decodeOTLP(t, retry.Body))
	require.Len(t, spans, 1)
	require.Equal(t, trace, hex.EncodeToString(spans[0].GetTraceId()))
	retry.Respond(200, nil, nil, nil)
	require.Equal(t, uint64(3), metric(t, h, "meshwasm.tracing.spans_exported"))
}

func TestModule_DispatchRefused(t *testing.T) {
	h := wasmhost.Load(t, "tracing")
	// The host knows no "otel" cluster: every dispatch is refused.
	p := start(t, h, exportConfig)
	sampled(t, p, "/orders", "200")
	sampled(t, p, "/orders", "200")
	p.Tick()
	require.Empty(t, p.VM().Callouts())
	require.Equal(t, uint64(1), metric(t, h, tracing.MetricDispatchErrors))
	require.Equal(t, uint64(1), metric(t, h, "meshwasm.tracing.export_failures"))
	p.Tick()
	require.Equal(t, uint64(2), metric(t, h, tracing.MetricDispatchErrors))
	require.Equal(t, uint64(2), metric(t, h, "meshwasm.tracing.spans_dropped"), "dropped after maxAttempts")
	require.NotEmpty(t, p.VM().LogsContaining(3, "dispatch to otel"))
}

func TestModule_ConfigErrors(t *testing.T) {
	tests := []struct {
		name, config, path string
	}{
		{name: "not JSON", config: `{"sampling":`, path: ""},
		{name: "unknown key", config: `{"sampling": {"ratoi": 0.1}}`, path: "sampling.ratoi"},
		{name: "ratio out of range", config: `{"sampling": {"ratio": 1.5}}`, path: "sampling.ratio"},
		{name: "bad rule path", config: `{"sampling": {"rules": [{"path": "api/*"}]}}`, path: "sampling.rules[0].path"},
		{name: "unknown format", config: `{"inject": ["w3c", "jaeger"]}`, path: "inject[1]"},
		{name: "export without cluster", config: `{"export": {"batchSize": 2}}`, path: "export.cluster"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, want := core.Parse([]byte(tc.config))
			require.Error(t, want)
			require.Contains(t, want.Error(), tc.path)

			h := wasmhost.Load(t, "tracing")
			p := h.NewPlugin(wasmhost.VMOptions{}, wasmhost.PluginOptions{RootID: tracing.Name, Config: []byte(tc.config)})
			require.False(t, p.Started(), "a bad configuration is refused")
			logs := p.VM().LogsContaining(logCritical, "tracing: configuration refused: ")
			require.Equal(t, []string{"tracing: configuration refused: " + want.Error()}, logs)
		})
	}
}

func TestModule_EmptyConfigDefaults(t *testing.T) {
	h := wasmhost.Load(t, "tracing")
	p := start(t, h, "")
	s := p.NewStream()
	require.Equal(t, types.ActionContinue, s.SendRequestHeaders(get("/"), true))
	_, _, flags := traceparent(t, s.RequestHeader("traceparent"))
	require.Equal(t, "01", flags, "default ratio 1")
	require.Zero(t, p.TickPeriod(), "no export, no tick")
	s.SendResponseHeaders([][2]string{{":status", "200"}}, true)
	s.Finish()
	require.Equal(t, uint64(1), metric(t, h, "meshwasm.tracing.default.rq_2xx"))
}
