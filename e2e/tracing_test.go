//go:build e2e

package e2e

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/e2e/harness"
)

// TestTracing_Envoy runs envoy/tracing/envoy.yaml itself (ports and the module path
// replaced) with build/tracing.wasm and Envoy's own OpenTelemetry tracer, both
// exporting to an OTLP/HTTP receiver started here. It proves in real Envoy that B3
// and W3C callers join one trace: the upstream (echo, which returns the headers it
// saw) gets the same trace id in both formats, and the collector receives the
// filter's span and Envoy's span under that trace id, Envoy's as the child of ours.
func TestTracing_Envoy(t *testing.T) {
	module := harness.WasmModule(t, "tracing.wasm")
	otlp := harness.StartOTLP(t)
	topo := harness.StartFile(t, harness.FileOptions{
		File:    "envoy/tracing/envoy.yaml",
		Workers: 2,
		Replace: func(services map[string]string) map[string]string {
			return map[string]string{
				`"build/tracing.wasm"`:                   `"` + module + `"`,
				harness.SocketAddress("127.0.0.1:10000"): harness.SocketAddress("127.0.0.1:0"),
				harness.SocketAddress("127.0.0.1:9901"):  harness.SocketAddress("127.0.0.1:0"),
				harness.SocketAddress("127.0.0.1:8081"):  harness.SocketAddress(services["echo-v1"]),
				harness.SocketAddress("127.0.0.1:8082"):  harness.SocketAddress(services["echo-v2"]),
				harness.SocketAddress("127.0.0.1:4318"):  harness.SocketAddress(otlp.Addr()),
			}
		},
	})
	client := topo.Client()

	do := func(t *testing.T, headers ...string) (harness.EchoReply, *http.Response) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, topo.URL("/orders"), nil)
		require.NoError(t, err)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Add(headers[i], headers[i+1])
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return harness.ReadEcho(t, resp), resp
	}
	tp := regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-01$`)

	tests := []struct {
		name    string
		headers []string
		// trace is the W3C trace id everyone must share; b3Trace the X-B3-TraceId.
		trace, b3Trace string
		// parent is the caller's span: the parent of the filter's span.
		parent string
		// userAttr is the span's user.id attribute ("" absent).
		userAttr string
	}{
		{
			name:    "b3 single 64-bit caller to w3c",
			headers: []string{"b3", "463ac35c9f6413ad-a2fb4a1d1a96d312-1", "x-user-id", "42"},
			trace:   "0000000000000000463ac35c9f6413ad", b3Trace: "463ac35c9f6413ad", parent: "a2fb4a1d1a96d312", userAttr: "42",
		},
		{
			name:    "b3 multi caller to w3c",
			headers: []string{"X-B3-TraceId", "80f198ee56343ba864fe8b2a57d3eff7", "X-B3-SpanId", "e457b5a2e4d86bd1", "X-B3-Sampled", "1", "x-user-id", "42"},
			trace:   "80f198ee56343ba864fe8b2a57d3eff7", b3Trace: "80f198ee56343ba864fe8b2a57d3eff7", parent: "e457b5a2e4d86bd1", userAttr: "42",
		},
		{
			name:    "w3c caller to b3",
			headers: []string{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "baggage", "user.id=7"},
			trace:   "4bf92f3577b34da6a3ce929d0e0e4736", b3Trace: "4bf92f3577b34da6a3ce929d0e0e4736", parent: "00f067aa0ba902b7",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			echo, resp := do(t, tc.headers...)

			// The upstream sees one trace in both formats.
			m := tp.FindStringSubmatch(echo.Header("traceparent"))
			require.NotNil(t, m, "traceparent at the upstream: %q", echo.Header("traceparent"))
			require.Equal(t, tc.trace, m[1])
			envoySpan := m[2] // Envoy's router wrote its own span as the parent
			require.Equal(t, tc.b3Trace, echo.Header("x-b3-traceid"))
			require.Equal(t, tc.parent, echo.Header("x-b3-parentspanid"))
			require.Equal(t, "1", echo.Header("x-b3-sampled"))
			ourSpan := echo.Header("x-b3-spanid")
			require.Regexp(t, `^[0-9a-f]{16}$`, ourSpan)
			require.NotEqual(t, ourSpan, envoySpan)
			require.Empty(t, echo.Header("b3"), "b3 single is not injected")
			require.Contains(t, echo.Header("baggage"), "user.id=", "user id carried in baggage")
			require.NotEmpty(t, echo.Header("x-user-id"), "baggage copied into the tag header")

			// The client gets the trace id back.
			require.Equal(t, tc.trace, resp.Header.Get("x-trace-id"))
			require.Equal(t, "00-"+tc.trace+"-"+ourSpan+"-01", resp.Header.Get("traceresponse"))

			// The collector gets our span (JSON, from the filter's tick) and Envoy's
			// (protobuf, from its tracer), same trace, Envoy's the child of ours.
			var ours, envoys *harness.ReceivedSpan
			require.Eventually(t, func() bool {
				for _, s := range otlp.Spans() {
					if s.TraceID() != tc.trace {
						continue
					}
					switch {
					case s.Service == "orders-sidecar" && s.SpanID() == ourSpan:
						ours = &s
					case s.Service == "orders-envoy" && s.SpanID() == envoySpan:
						envoys = &s
					}
				}
				return ours != nil && envoys != nil
			}, 30*time.Second, 50*time.Millisecond, "spans of trace %s not received: have %d spans, errors %v",
				tc.trace, len(otlp.Spans()), otlp.Errors())
			require.Equal(t, "json", ours.Encoding)
			require.Equal(t, tc.parent, ours.ParentSpanID(), "the filter's span continues the caller's")
			method, _ := ours.Attribute("http.request.method")
			require.Equal(t, "GET", method)
			status, _ := ours.Attribute("http.response.status_code")
			require.Equal(t, "200", status)
			reason, _ := ours.Attribute("meshwasm.sampling.reason")
			require.Equal(t, "parent", reason)
			// Header attributes are read as the request came in: the caller's
			// x-user-id, not the one the filter derived from baggage.
			userID, _ := ours.Attribute("user.id")
			require.Equal(t, tc.userAttr, userID)

			require.Equal(t, "protobuf", envoys.Encoding)
			require.Equal(t, ourSpan, envoys.ParentSpanID(), "Envoy's span is the child of the filter's")
			tag, _ := envoys.Attribute("user.id")
			require.Equal(t, echo.Header("x-user-id"), tag, "Envoy's custom tag reads the header the filter set")
		})
	}

	t.Run("counters", func(t *testing.T) {
		stat := func(name string) uint64 {
			v, _ := topo.Stat("wasmcustom." + name)
			return v
		}
		// Both workers' VMs report; all three requests were sampled and exported.
		require.Eventually(t, func() bool { return stat("meshwasm.tracing.spans_exported") >= uint64(len(tests)) },
			15*time.Second, 50*time.Millisecond, "spans exported")
		require.Equal(t, uint64(len(tests)), stat("meshwasm.tracing.default.rq_2xx"))
		require.Zero(t, stat("meshwasm.tracing.spans_dropped"))
		require.Zero(t, stat("meshwasm.tracing.export_failures"))
		require.Empty(t, otlp.Errors())
	})
}

// TestTracing_CollectorDown runs the filter with its collector cluster pointing at a
// closed port: requests still pass, traced, without delay, and the failures are
// counted.
func TestTracing_CollectorDown(t *testing.T) {
	module := harness.WasmModule(t, "tracing.wasm")
	otlp := harness.StartOTLP(t)
	dead := otlp.Addr()
	otlp.Close()
	topo := harness.Start(t, harness.Options{
		Workers: 1,
		Filters: []harness.WasmFilter{{
			Name: "tracing", RootID: "tracing", VMID: "meshwasm", Path: module,
			Config:        `{"export": {"cluster": "otel", "flushPeriod": "100ms", "timeout": "200ms", "maxAttempts": 1, "queueSize": 8, "batchSize": 2}}`,
			FailurePolicy: harness.FailOpen,
		}},
		Clusters: []harness.Cluster{{Name: "otel", Addr: dead}},
	})
	client := topo.Client()
	stat := func(name string) uint64 {
		v, _ := topo.Stat("wasmcustom." + name)
		return v
	}
	for i := 0; i < 20; i++ {
		began := time.Now()
		resp, err := client.Get(topo.URL("/orders"))
		require.NoError(t, err)
		echo := harness.ReadEcho(t, resp)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.True(t, strings.HasPrefix(echo.Header("traceparent"), "00-"), "still traced")
		require.Less(t, time.Since(began), 2*time.Second, "a dead collector never delays requests")
	}
	require.Eventually(t, func() bool { return stat("meshwasm.tracing.export_failures") > 0 },
		15*time.Second, 50*time.Millisecond, "export failures counted")
	require.Zero(t, stat("meshwasm.tracing.spans_exported"))
	require.Equal(t, uint64(20), stat("meshwasm.tracing.default.rq_2xx"))
}
