package canary_test

import (
	"testing"

	"github.com/meshwasm/meshwasm/filters/internal/wasmhost"
)

// BenchmarkModule_Request is one request through build/canary.wasm with the
// seeds' configuration (rules, hashed split, sticky cookie, guard) next to
// the same request through build/noop.wasm: the difference is the filter's
// own cost on the wazero host. The mirror is left out (a callout per request
// measures the host's bookkeeping, not the filter).
func BenchmarkModule_Request(b *testing.B) {
	config := `{
	  "responseHeader": "x-served-by-version",
	  "versions": ["v1", "v2"],
	  "rules": [
	    {"name": "header-canary", "match": {"headers": [{"name": "x-canary", "exact": "true"}]}, "route": "v2"},
	    {"name": "even-users", "match": {"headers": [{"name": "x-user-id", "modulo": {"divisor": 2, "remainder": 0}}]}, "route": "v2"},
	    {"name": "weighted", "split": {"weights": {"v1": 90, "v2": 10}, "hashOn": {"header": "x-user-id"}}}
	  ],
	  "sticky": {"cookie": "order-version"},
	  "guard": {"consecutive5xx": 3}
	}`
	modules := []struct {
		name, module, rootID, config string
	}{
		{name: "noop", module: "noop", rootID: "noop"},
		{name: "canary", module: "canary", rootID: "canary", config: config},
	}
	req := [][2]string{{":method", "GET"}, {":path", "/orders"}, {":authority", "orders.example"},
		{"x-user-id", "12345"}, {"cookie", "session=abc"}}
	resp := [][2]string{{":status", "200"}}
	for _, m := range modules {
		b.Run(m.name, func(b *testing.B) {
			p := wasmhost.Load(b, m.module).NewPlugin(wasmhost.VMOptions{},
				wasmhost.PluginOptions{RootID: m.rootID, Config: []byte(m.config)})
			if !p.Started() {
				b.Fatalf("%s did not start: %v", m.name, p.VM().Logs())
			}
			b.ReportAllocs()
			b.ResetTimer()
			request := func() {
				s := p.NewStream()
				s.SendRequestHeaders(req, true)
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
