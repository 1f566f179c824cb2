// Package benchconf holds the filter configurations `make bench` loads into
// Envoy: each filter doing a realistic job on the benchmark's request
// (GET /orders/1 with x-user-id from loopback), the same job its native twin
// does. Module tests run them too, so that what the load test measures is
// also what they check.
package benchconf

const (
	// Authz: DENY /admin, ALLOW GET/POST on /orders from loopback with an
	// x-user-id header (Istio's `when` on a request header).
	Authz = `{"policies": [
  {"name": "deny-admin", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/admin", "/admin/*"]}}]}]},
  {"name": "orders", "rules": [{"from": [{"source": {"ipBlocks": ["127.0.0.0/8"]}}],
    "to": [{"operation": {"methods": ["GET", "POST"], "paths": ["/orders", "/orders/*"]}}],
    "when": [{"key": "request.headers[x-user-id]", "values": ["*"]}]}]}
]}`
	// Ratelimit: a per-client token bucket that is never exhausted, exact
	// across workers (shared data read-modify-write per request).
	Ratelimit = `{"rules": [{"name": "per-ip", "key": ["remote_address"], "algorithm": "token_bucket", "rate": "1000000000/s"}]}`
	// Canary: the seeds' rules (header, even users, 90/10 split hashed on the
	// user), sticky cookie, version response header, guard on v2.
	Canary = `{"routeHeader": "x-route-version", "responseHeader": "x-served-by-version", "versions": ["v1", "v2"],
  "rules": [
    {"name": "header-canary", "match": {"headers": [{"name": "x-canary", "exact": "true"}]}, "route": "v2"},
    {"name": "even-users", "match": {"headers": [{"name": "x-user-id", "modulo": {"divisor": 2, "remainder": 0}}]}, "route": "v2"},
    {"name": "weighted", "split": {"weights": {"v1": 90, "v2": 10}, "hashOn": {"header": "x-user-id"}}}],
  "sticky": {"cookie": "order-version"},
  "guard": {"consecutive5xx": 3}}`
	// Tracing: what Envoy's OpenTelemetry tracer does here: W3C in and out,
	// every request sampled, spans exported over OTLP/HTTP.
	Tracing = `{"inject": ["w3c"], "sampling": {"ratio": 1},
  "routeGroups": [{"name": "orders", "paths": ["/orders", "/orders/*"]}],
  "export": {"cluster": "otlp"}}`
)
