package authz

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEngine_Check_Policies covers every source and operation field, every
// not* list, every `when` key and Istio's action semantics.
func TestEngine_Check_Policies(t *testing.T) {
	allowRule := func(rule string) string {
		return `{"policies":[{"name":"p","action":"ALLOW","rules":[` + rule + `]}]}`
	}
	plain := func(r *Request) { r.MTLS = false }
	tests := []struct {
		name    string
		cfg     string
		mutate  func(*Request)
		verdict Verdict
		policy  string
		rule    int
		marks   []Mark
	}{
		// Action semantics.
		{name: "no policies allows", cfg: `{}`, verdict: Allow, rule: -1},
		{name: "allow without rules matches nothing: default deny", cfg: `{"policies":[{"name":"p"}]}`,
			verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "allow with empty rule matches all", cfg: allowRule(`{}`),
			verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "deny without rules matches nothing", cfg: `{"policies":[{"name":"d","action":"DENY"}]}`, verdict: Allow, rule: -1},
		{name: "deny with empty rule denies all", cfg: `{"policies":[{"name":"d","action":"DENY","rules":[{}]}]}`,
			verdict: Deny, policy: "d", rule: 0, marks: []Mark{{0, OutcomeDenied}}},
		{name: "deny wins over allow", cfg: `{"policies":[{"name":"a","rules":[{}]},{"name":"d","action":"DENY","rules":[{"to":[{"operation":{"methods":["POST"]}}]}]}]}`,
			verdict: Deny, policy: "d", rule: 0, marks: []Mark{{1, OutcomeDenied}}},
		{name: "second rule matches", cfg: allowRule(`{"to":[{"operation":{"methods":["GET"]}}]},{"to":[{"operation":{"methods":["POST"]}}]}`),
			verdict: Allow, policy: "p", rule: 1, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "audit only marks", cfg: `{"policies":[{"name":"au","action":"AUDIT","rules":[{}]}]}`,
			verdict: Allow, rule: -1, marks: []Mark{{0, OutcomeAudited}}},
		{name: "dry-run deny lets through", cfg: `{"policies":[{"name":"d","action":"DENY","dryRun":true,"rules":[{}]}]}`,
			verdict: Allow, rule: -1, marks: []Mark{{0, OutcomeDryRunDenied}}},
		{name: "dry-run allow not matching would deny", cfg: `{"policies":[{"name":"a","dryRun":true,"rules":[{"to":[{"operation":{"methods":["GET"]}}]}]}]}`,
			verdict: Allow, rule: -1, marks: []Mark{{0, OutcomeDryRunDenied}}},
		{name: "dry-run allow matching is silent", cfg: `{"policies":[{"name":"a","dryRun":true,"rules":[{}]}]}`,
			verdict: Allow, rule: -1},
		{name: "dry-run allow beside enforced allow is moot", cfg: `{"policies":[{"name":"a","dryRun":true,"rules":[]},{"name":"b","rules":[{}]}]}`,
			verdict: Allow, policy: "b", rule: 0, marks: []Mark{{1, OutcomeAllowed}}},

		// Source fields.
		{name: "principals exact", cfg: allowRule(`{"from":[{"source":{"principals":["cluster.local/ns/production/sa/order-service"]}}]}`), verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "principals prefix", cfg: allowRule(`{"from":[{"source":{"principals":["cluster.local/ns/production/*"]}}]}`), verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "principals suffix", cfg: allowRule(`{"from":[{"source":{"principals":["*/sa/order-service"]}}]}`), verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "principals miss", cfg: allowRule(`{"from":[{"source":{"principals":["cluster.local/ns/production/sa/other"]}}]}`), verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "principals presence fails on plain text", cfg: allowRule(`{"from":[{"source":{"principals":["*"]}}]}`), mutate: plain, verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "non-spiffe SAN is no principal", cfg: allowRule(`{"from":[{"source":{"principals":["*"]}}]}`), mutate: func(r *Request) { r.PeerURISAN = "https://evil/ns/x/sa/y" }, verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "notPrincipals excludes", cfg: allowRule(`{"from":[{"source":{"notPrincipals":["*/sa/order-service"]}}]}`), verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "notPrincipals admits others", cfg: allowRule(`{"from":[{"source":{"notPrincipals":["*/sa/other"]}}]}`), verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "allow notPrincipals not satisfied by plain text (ISTIO-SECURITY-2021-004)", cfg: allowRule(`{"from":[{"source":{"notPrincipals":["*/sa/other"]}}]}`), mutate: plain, verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "deny notPrincipals denies plain text", cfg: `{"policies":[{"name":"d","action":"DENY","rules":[{"from":[{"source":{"notPrincipals":["cluster.local/ns/production/sa/*"]}}]}]}]}`, mutate: plain, verdict: Deny, policy: "d", rule: 0, marks: []Mark{{0, OutcomeDenied}}},
		{name: "namespaces", cfg: allowRule(`{"from":[{"source":{"namespaces":["production"]}}]}`), verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "namespaces miss", cfg: allowRule(`{"from":[{"source":{"namespaces":["staging"]}}]}`), verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "notNamespaces excludes", cfg: allowRule(`{"from":[{"source":{"notNamespaces":["production"]}}]}`), verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "allow notNamespaces not satisfied by plain text", cfg: allowRule(`{"from":[{"source":{"notNamespaces":["foo"]}}]}`), mutate: plain, verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "ipBlocks cidr", cfg: allowRule(`{"from":[{"source":{"ipBlocks":["10.1.0.0/16"]}}]}`), verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "ipBlocks single address", cfg: allowRule(`{"from":[{"source":{"ipBlocks":["10.1.2.3"]}}]}`), verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "ipBlocks ipv6", cfg: allowRule(`{"from":[{"source":{"ipBlocks":["2001:db8::/32"]}}]}`), mutate: func(r *Request) { r.SourceAddress = "[2001:db8::1]:443" }, verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "notIpBlocks excludes", cfg: allowRule(`{"from":[{"source":{"notIpBlocks":["10.0.0.0/8"]}}]}`), verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "remoteIpBlocks ignores xff without trusted hops", cfg: allowRule(`{"from":[{"source":{"remoteIpBlocks":["203.0.113.0/24"]}}]}`), mutate: func(r *Request) { r.Headers = hdrs{"x-forwarded-for": "203.0.113.7"} }, verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "remoteIpBlocks with a trusted hop", cfg: `{"trustedHops":1,"policies":[{"name":"p","rules":[{"from":[{"source":{"remoteIpBlocks":["203.0.113.0/24"]}}]}]}]}`, mutate: func(r *Request) { r.Headers = hdrs{"x-forwarded-for": "1.1.1.1, 203.0.113.7"} }, verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "notRemoteIpBlocks", cfg: `{"trustedHops":1,"policies":[{"name":"p","rules":[{"from":[{"source":{"notRemoteIpBlocks":["203.0.113.0/24"]}}]}]}]}`, mutate: func(r *Request) { r.Headers = hdrs{"x-forwarded-for": "203.0.113.7"} }, verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "sources are ORed", cfg: allowRule(`{"from":[{"source":{"namespaces":["x"]}},{"source":{"namespaces":["production"]}}]}`), verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "fields in a source are ANDed", cfg: allowRule(`{"from":[{"source":{"namespaces":["production"],"ipBlocks":["192.168.0.0/16"]}}]}`), verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},

		// Operation fields.
		{name: "hosts case-insensitive, port ignored", cfg: allowRule(`{"to":[{"operation":{"hosts":["Payment-Service"]}}]}`), verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "hosts with port", cfg: allowRule(`{"to":[{"operation":{"hosts":["payment-service:8080"]}}]}`), verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "hosts wrong port", cfg: allowRule(`{"to":[{"operation":{"hosts":["payment-service:9090"]}}]}`), verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "hosts suffix", cfg: allowRule(`{"to":[{"operation":{"hosts":["*.example.com"]}}]}`), mutate: func(r *Request) { r.Authority = "API.Example.com" }, verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "notHosts", cfg: allowRule(`{"to":[{"operation":{"notHosts":["payment-service"]}}]}`), verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "ports", cfg: allowRule(`{"to":[{"operation":{"ports":["8080"]}}]}`), verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "notPorts", cfg: allowRule(`{"to":[{"operation":{"notPorts":["8080"]}}]}`), verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "methods", cfg: allowRule(`{"to":[{"operation":{"methods":["GET","POST"]}}]}`), verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "methods are case-sensitive", cfg: allowRule(`{"to":[{"operation":{"methods":["post"]}}]}`), verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "notMethods", cfg: allowRule(`{"to":[{"operation":{"notMethods":["POST"]}}]}`), verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "paths prefix", cfg: allowRule(`{"to":[{"operation":{"paths":["/api/payments/*"]}}]}`), verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "paths match after normalization", cfg: allowRule(`{"to":[{"operation":{"paths":["/api/payments/*"]}}]}`), mutate: func(r *Request) { r.Path = "/api/x/../payments//%34%32?q=1" }, verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "paths exact ignores query", cfg: allowRule(`{"to":[{"operation":{"paths":["/api/payments/42"]}}]}`), mutate: func(r *Request) { r.Path = "/api/payments/42?a=b" }, verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "paths suffix", cfg: allowRule(`{"to":[{"operation":{"paths":["*/42"]}}]}`), verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "notPaths", cfg: allowRule(`{"to":[{"operation":{"notPaths":["/api/*"]}}]}`), verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "operations are ORed", cfg: allowRule(`{"to":[{"operation":{"methods":["GET"]}},{"operation":{"paths":["/api/*"]}}]}`), verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},

		// when keys.
		{name: "when header values", cfg: allowRule(`{"when":[{"key":"request.headers[X-User-Role]","values":["admin"]}]}`), verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "when header notValues", cfg: allowRule(`{"when":[{"key":"request.headers[x-user-role]","notValues":["admin"]}]}`), verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "when absent header satisfies notValues", cfg: allowRule(`{"when":[{"key":"request.headers[x-absent]","notValues":["guest"]}]}`), verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "when header presence needs the header", cfg: allowRule(`{"when":[{"key":"request.headers[x-absent]","values":["*"]}]}`), verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "when source.ip", cfg: allowRule(`{"when":[{"key":"source.ip","values":["10.1.2.0/24"]}]}`), verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "when remote.ip", cfg: `{"trustedHops":2,"policies":[{"name":"p","rules":[{"when":[{"key":"remote.ip","values":["198.51.100.1"]}]}]}]}`, mutate: func(r *Request) { r.Headers = hdrs{"x-forwarded-for": "6.6.6.6,198.51.100.1, 10.0.0.1"} }, verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "when source.namespace", cfg: allowRule(`{"when":[{"key":"source.namespace","values":["production"]}]}`), verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "when source.principal notValues", cfg: allowRule(`{"when":[{"key":"source.principal","notValues":["*/sa/order-service"]}]}`), verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "when destination.ip", cfg: allowRule(`{"when":[{"key":"destination.ip","values":["10.9.9.9"]}]}`), verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "when destination.port", cfg: allowRule(`{"when":[{"key":"destination.port","notValues":["8080"]}]}`), verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "when connection.sni", cfg: allowRule(`{"when":[{"key":"connection.sni","values":["*.svc.cluster.local"]}]}`), verdict: Allow, policy: "p", rule: 0, marks: []Mark{{0, OutcomeAllowed}}},
		{name: "when request.auth.principal without token", cfg: allowRule(`{"when":[{"key":"request.auth.principal","values":["*"]}]}`), verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "when conditions are ANDed", cfg: allowRule(`{"when":[{"key":"source.namespace","values":["production"]},{"key":"connection.sni","values":["x"]}]}`), verdict: Deny, rule: -1, marks: []Mark{{-1, OutcomeDenied}}},
		{name: "notRequestPrincipals star denies requests without token", cfg: `{"policies":[{"name":"d","action":"DENY","rules":[{"from":[{"source":{"notRequestPrincipals":["*"]}}]}]}]}`, verdict: Deny, policy: "d", rule: 0, marks: []Mark{{0, OutcomeDenied}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := mustEngine(t, tc.cfg)
			r := mtlsReq()
			if tc.mutate != nil {
				tc.mutate(r)
			}
			d := check(e, r)
			require.Equal(t, d, checkReadingOnly(t, e, r), "with only the properties the policies read")
			require.Equal(t, tc.verdict, d.Verdict, d.Reason)
			require.Equal(t, tc.policy, d.Policy)
			require.Equal(t, tc.rule, d.Rule)
			if len(tc.marks) == 0 {
				require.Empty(t, d.Marks)
			} else {
				require.Equal(t, tc.marks, d.Marks)
			}
			if d.Verdict == Deny {
				require.Equal(t, 403, d.Status)
				require.Equal(t, "RBAC: access denied", d.Body)
			}
		})
	}
}

// TestEngine_Check_Seed mirrors the payment-service policy and the deny-all
// default of shared/seeds/002 (also the README example).
func TestEngine_Check_Seed(t *testing.T) {
	e := mustEngine(t, seedConfig)
	tests := []struct {
		name    string
		mutate  func(*Request)
		verdict Verdict
		policy  string
	}{
		{name: "order-service POST payments", verdict: Allow, policy: "payment-service-policy"},
		{name: "guest refused", mutate: func(r *Request) { r.Headers = hdrs{"x-user-role": "guest"} }, verdict: Deny},
		{name: "GET refused", mutate: func(r *Request) { r.Method = "GET" }, verdict: Deny},
		{name: "other path refused", mutate: func(r *Request) { r.Path = "/api/refunds/1" }, verdict: Deny},
		{name: "dot-dot escape refused", mutate: func(r *Request) { r.Path = "/api/payments/../admin" }, verdict: Deny},
		{name: "other namespace denied by deny-all", mutate: func(r *Request) { r.PeerURISAN = "spiffe://cluster.local/ns/staging/sa/order-service" }, verdict: Deny, policy: "deny-all-default"},
		{name: "other sa in production not matched by allow", mutate: func(r *Request) { r.PeerURISAN = "spiffe://cluster.local/ns/production/sa/cart" }, verdict: Deny},
		{name: "plain text denied by deny-all", mutate: func(r *Request) { r.MTLS = false }, verdict: Deny, policy: "deny-all-default"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mtlsReq()
			if tc.mutate != nil {
				tc.mutate(r)
			}
			d := check(e, r)
			require.Equal(t, tc.verdict, d.Verdict)
			require.Equal(t, tc.policy, d.Policy)
		})
	}
}

const seedConfig = `{
  "policies": [
    {
      "name": "payment-service-policy",
      "action": "ALLOW",
      "rules": [{
        "from": [{"source": {"principals": ["cluster.local/ns/production/sa/order-service"], "namespaces": ["production"]}}],
        "to": [{"operation": {"methods": ["POST"], "paths": ["/api/payments/*"]}}],
        "when": [{"key": "request.headers[x-user-role]", "notValues": ["guest"]}]
      }]
    },
    {
      "name": "deny-all-default",
      "action": "DENY",
      "rules": [{"from": [{"source": {"notPrincipals": ["cluster.local/ns/production/sa/*"]}}]}]
    }
  ]
}`
