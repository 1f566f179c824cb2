package tracing_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshwasm/meshwasm/filters/tracing"
)

// Native wiring tests on the SDK's emulator: quick feedback while editing.
// Every behaviour is also tested on the compiled module (module_test.go).

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(id uint32) types.PluginContext {
	return tracing.Filter.PluginContext(id)
}

func TestNative_PropagatesAndExports(t *testing.T) {
	host, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption().
		WithVMContext(&vmContext{}).WithPluginConfiguration([]byte(`{
		  "response": {"traceresponse": true},
		  "export": {"cluster": "otel", "batchSize": 1}
		}`)))
	defer reset()
	require.Equal(t, types.OnPluginStartStatusOK, host.StartPlugin())

	id := host.InitializeHttpContext()
	require.Equal(t, types.ActionContinue, host.CallOnRequestHeaders(id,
		[][2]string{{":method", "GET"}, {":path", "/"}, {"b3", inTrace + "-" + inSpan + "-1"}}, true))
	got := host.GetCurrentRequestHeaders(id)
	tp := ""
	for _, h := range got {
		if h[0] == "traceparent" {
			tp = h[1]
		}
		require.NotEqual(t, "b3", h[0], "b3 single is not injected by default")
	}
	trace, span, flags := traceparent(t, tp)
	require.Equal(t, inTrace, trace)
	require.Equal(t, "01", flags)
	require.Contains(t, got, [2]string{"x-b3-parentspanid", inSpan})

	host.CallOnResponseHeaders(id, [][2]string{{":status", "200"}}, true)
	require.Contains(t, host.GetCurrentResponseHeaders(id), [2]string{"traceresponse", "00-" + trace + "-" + span + "-01"})
	host.CompleteHttpContext(id)

	host.Tick()
	attrs := host.GetCalloutAttributesFromContext(proxytest.PluginContextID)
	require.Len(t, attrs, 1, "the span went out from the root context")
	spans := spansOf(decodeOTLP(t, attrs[0].Body))
	require.Len(t, spans, 1)
	host.CallOnHttpCallResponse(attrs[0].CalloutID, [][2]string{{":status", "200"}}, nil, nil)
	n, err := host.GetCounterMetric("meshwasm.tracing.spans_exported")
	require.NoError(t, err)
	require.Equal(t, uint64(1), n)
}
