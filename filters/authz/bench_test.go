package authz_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	core "github.com/meshwasm/meshwasm/authz"
	"github.com/meshwasm/meshwasm/filters/authz"
	"github.com/meshwasm/meshwasm/filters/internal/wasmhost"

	"github.com/meshwasm/meshwasm/authz/authztest"
)

// BenchmarkModule_AllowedRequest is one allowed request (context creation,
// request and response headers, end of stream) through build/noop.wasm and
// build/authz.wasm on the 20-policy configuration, in the same run, so the
// filter's cost reads as a difference to the bare ABI round trips.
func BenchmarkModule_AllowedRequest(b *testing.B) {
	headers := req("POST", "/api/payments/42", "x-user-role", "admin")
	resp := [][2]string{{":status", "200"}}
	for _, bc := range []struct {
		name, module, config string
	}{
		{name: "noop", module: "noop"},
		{name: "authz-20-policies", module: module, config: authztest.TwentyPolicies()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := wasmhost.Load(b, bc.module)
			props := orderMTLS.properties()
			props["connection.requested_server_name"] = []byte("outbound_.8080_._.payment-service.production.svc.cluster.local")
			p := h.NewPlugin(wasmhost.VMOptions{}, wasmhost.PluginOptions{RootID: bc.module, Config: []byte(bc.config), Properties: props})
			require.True(b, p.Started(), "%v", p.VM().Logs())
			b.ReportAllocs()
			b.ResetTimer()
			request := func() {
				s := p.NewStream()
				if s.SendRequestHeaders(headers, true) != types.ActionContinue {
					b.Fatal("request not allowed")
				}
				s.SendResponseHeaders(resp, true)
				s.Finish()
			}
			for i := 0; i < b.N; i++ {
				request()
			}
			b.StopTimer()
			if bc.module == module {
				allowed, _ := h.Metric(authz.PolicyMetric("payment-service-policy", core.OutcomeAllowed))
				require.Equal(b, uint64(b.N), allowed)
			}
			wasmhost.ReportCrossings(b, p.VM(), request)
		})
	}
}
