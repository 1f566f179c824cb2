package tracing_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshwasm/meshwasm/filters/internal/wasmhost"
)

// benchConfig is tracing/README.md's seeds example without the access log
// and the export (a log line and a queued span per request would measure
// the test host's bookkeeping): extraction, sampling rules, both injected
// formats, baggage and tag-header enrichment, traceresponse, attributes and
// route-group metrics.
const benchConfig = `{
  "sampling": {"ratio": 0.1, "rules": [{"header": "x-debug"}, {"path": "/api/payments/*", "ratio": 1}]},
  "enrich": [
    {"fromHeader": "x-user-id", "toBaggage": "user.id"},
    {"fromBaggage": "user.id", "toHeader": "x-user-id"}
  ],
  "response": {"traceresponse": true, "traceIdHeader": "x-trace-id"},
  "attributes": [{"name": "user.id", "header": "x-user-id"}],
  "routeGroups": [{"name": "payments", "paths": ["/api/payments/*"]}]
}`

// BenchmarkModule_Request is one request (context creation, request and
// response headers, end of stream) through build/noop.wasm and
// build/tracing.wasm in the same run: the difference is the filter's own
// cost on the wazero host.
func BenchmarkModule_Request(b *testing.B) {
	req := get("/api/payments/7", "traceparent", "00-"+inTrace+"-"+inSpan+"-01", "x-user-id", "u-7")
	resp := [][2]string{{":status", "200"}}
	for _, bc := range []struct{ name, module, config string }{
		{name: "noop", module: "noop"},
		{name: "tracing", module: "tracing", config: benchConfig},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := wasmhost.Load(b, bc.module).NewPlugin(wasmhost.VMOptions{},
				wasmhost.PluginOptions{RootID: bc.name, Config: []byte(bc.config)})
			require.True(b, p.Started(), "%v", p.VM().Logs())
			b.ReportAllocs()
			b.ResetTimer()
			request := func() {
				s := p.NewStream()
				if s.SendRequestHeaders(req, true) != types.ActionContinue {
					b.Fatal("request paused")
				}
				s.SendResponseHeaders(resp, true)
				s.Finish()
			}
			for range b.N {
				request()
			}
			wasmhost.ReportCrossings(b, p.VM(), request)
		})
	}
}
