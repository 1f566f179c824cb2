package authz_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	core "github.com/meshwasm/meshwasm/authz"
	"github.com/meshwasm/meshwasm/filters/authz"
	"github.com/meshwasm/meshwasm/filters/internal/wasmhost"
)

// twentyPolicies mirrors the core's benchmark configuration: 8 DENY and 12
// ALLOW policies of header, path, principal, host, method and IP rules; the
// benchmark request is allowed by the last one, after all others ran.
func twentyPolicies() string {
	var ps []string
	for i := 0; i < 8; i++ {
		ps = append(ps, fmt.Sprintf(`{"name":"deny-%d","action":"DENY","rules":[{"from":[{"source":{"principals":["cluster.local/ns/evil-%d/sa/*"]}}]},
  {"to":[{"operation":{"paths":["/admin-%d/*"],"methods":["DELETE"]}}],"when":[{"key":"request.headers[x-debug-%d]","values":["1"]}]}]}`, i, i, i, i))
	}
	for i := 0; i < 11; i++ {
		ps = append(ps, fmt.Sprintf(`{"name":"allow-%d","rules":[{"from":[{"source":{"principals":["cluster.local/ns/team-%d/sa/*"],"ipBlocks":["10.%d.0.0/16"]}}],
  "to":[{"operation":{"hosts":["svc-%d.example.com"],"paths":["/v%d/*"],"methods":["GET","POST"]}}]}]}`, i, i, i, i, i))
	}
	ps = append(ps, `{"name":"payment-service-policy","rules":[{
  "from":[{"source":{"principals":["cluster.local/ns/production/sa/order-service"],"namespaces":["production"],"notIpBlocks":["192.168.0.0/16"]}}],
  "to":[{"operation":{"hosts":["payment-service"],"methods":["POST"],"paths":["/api/payments/*"],"ports":["8080"]}}],
  "when":[{"key":"request.headers[x-user-role]","notValues":["guest"]},{"key":"connection.sni","values":["*.cluster.local"]}]}]}`)
	return `{"policies":[` + strings.Join(ps, ",") + `]}`
}

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
		{name: "authz-20-policies", module: module, config: twentyPolicies()},
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
