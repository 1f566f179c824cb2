// Package authztest holds the authz benchmark configuration shared by the
// core's benchmarks and the module benchmarks, so both measure the same
// policies.
package authztest

import (
	"fmt"
	"strings"
)

// TwentyPolicies is a 20-policy configuration of header, path, principal,
// host, method and IP rules; the benchmark request (POST /api/payments/x from
// production/order-service) is allowed by the last one
// after every DENY and the other ALLOW policies were evaluated.
func TwentyPolicies() string {
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
