package main

import (
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshwasm/meshwasm/filters/internal/wasmhost"
)

// These tests run build/suite.wasm (built by `make build`) on the wazero host
// the way Envoy runs the chain of envoy/chain/envoy-suite.yaml: ONE VM (one
// vm_id) with four plugins, one per root id. Every request through a plugin's
// stream must be answered exactly as the single-filter module answers it,
// which the tests check by running the same request through build/<filter>.wasm.
// A missing module fails them.

const logCritical = 5

// Small configurations from the filters' READMEs.
var configs = map[string]string{
	// authz/README.md: the seeds' payment-service policy and deny-all default.
	"authz": `{"policies": [
	  {"name": "payment-service-policy", "action": "ALLOW", "rules": [{
	    "from": [{"source": {"principals": ["cluster.local/ns/production/sa/order-service"], "namespaces": ["production"]}}],
	    "to": [{"operation": {"methods": ["POST"], "paths": ["/api/payments/*"]}}]}]},
	  {"name": "deny-all-default", "action": "DENY", "rules": [{"from": [{"source": {"notPrincipals": ["cluster.local/ns/production/sa/*"]}}]}]}]}`,
	// ratelimit/README.md: a fixed window, small enough to trip in a test.
	"ratelimit": `{"response": {"headersOnAllowed": true},
	  "rules": [{"name": "per-ip", "key": ["remote_address"], "algorithm": "fixed_window", "limit": 3, "window": "1m"}]}`,
	// canary/README.md: header canary and even user ids to v2, 90/10 otherwise.
	"canary": `{"routeHeader": "x-route-version", "responseHeader": "x-served-by-version",
	  "versions": ["v1", "v2"], "default": "v1",
	  "rules": [
	    {"name": "header-canary", "match": {"headers": [{"name": "x-canary", "exact": "true"}]}, "route": "v2"},
	    {"name": "even-users", "match": {"headers": [{"name": "x-user-id", "modulo": {"divisor": 2, "remainder": 0}}]}, "route": "v2"},
	    {"name": "weighted", "split": {"weights": {"v1": 90, "v2": 10}, "hashOn": {"header": "x-user-id"}}}]}`,
	// tracing/README.md's minimal snippet, plus the response headers.
	"tracing": `{"sampling": {"ratio": 0.1, "rules": [{"header": "x-debug"}]},
	  "response": {"traceresponse": true, "traceIdHeader": "x-trace-id"}}`,
}

// rootIDs in the chain's order (envoy/chain/envoy-suite.yaml).
var rootIDs = []string{"tracing", "authz", "ratelimit", "canary"}

// peer is what Envoy reports about a plain-text client.
var peer = map[string][]byte{
	"source.address":      []byte("10.1.2.3:40000"),
	"destination.address": []byte("10.9.9.9:8080"),
	"connection.mtls":     {0},
}

// suite starts the four plugins in one VM of build/suite.wasm, for a
// plain-text peer.
func suite(t testing.TB) (*wasmhost.VM, map[string]*wasmhost.Plugin) {
	t.Helper()
	plugins := startChain(t, peer)
	return plugins[rootIDs[0]].VM(), plugins
}

// single starts build/<id>.wasm with the same plugin, in a VM of its own.
func single(t testing.TB, id string) *wasmhost.Plugin {
	t.Helper()
	p := wasmhost.Load(t, id).NewPlugin(wasmhost.VMOptions{VMID: "meshwasm"},
		wasmhost.PluginOptions{RootID: id, Config: []byte(configs[id]), Properties: peer})
	require.True(t, p.Started(), "plugin %s did not start: %v", id, p.VM().Logs())
	return p
}

// outcome is what the host can observe of one request through one plugin.
type outcome struct {
	Action          types.Action
	LocalStatus     uint32
	LocalHeaders    [][2]string
	LocalBody       string
	RequestHeaders  [][2]string
	ResponseHeaders [][2]string
}

func send(p *wasmhost.Plugin, headers [][2]string) outcome {
	s := p.NewStream()
	o := outcome{Action: s.SendRequestHeaders(headers, true)}
	if o.Action == types.ActionContinue {
		s.SendResponseHeaders([][2]string{{":status", "200"}}, true)
	}
	s.Finish()
	if s.Local != nil {
		o.LocalStatus, o.LocalHeaders, o.LocalBody = s.Local.Status, s.Local.Headers, string(s.Local.Body)
	}
	o.RequestHeaders, o.ResponseHeaders = s.RequestHeaders, s.ResponseHeaders
	return o
}

func get(path string, kv ...string) [][2]string {
	hs := [][2]string{{":method", "GET"}, {":path", path}, {":authority", "orders.example"}}
	for i := 0; i+1 < len(kv); i += 2 {
		hs = append(hs, [2]string{kv[i], kv[i+1]})
	}
	return hs
}

func header(hs [][2]string, name string) string {
	for _, h := range hs {
		if h[0] == name {
			return h[1]
		}
	}
	return ""
}

// TestSuite_BehavesLikeSingleModules sends the same requests through each
// plugin of the shared VM and through the filter's own module: local replies,
// request headers after the filter and response headers must be identical.
func TestSuite_BehavesLikeSingleModules(t *testing.T) {
	_, plugins := suite(t)
	tests := []struct {
		name     string
		rootID   string
		requests [][][2]string
		check    func(t *testing.T, last outcome)
	}{
		{
			name: "authz denies a plain-text peer", rootID: "authz",
			requests: [][][2]string{get("/api/payments/1")},
			check: func(t *testing.T, o outcome) {
				require.Equal(t, types.ActionPause, o.Action)
				require.Equal(t, uint32(403), o.LocalStatus)
				require.Equal(t, "RBAC: access denied", o.LocalBody)
			},
		},
		{
			name: "ratelimit answers the 4th request with 429", rootID: "ratelimit",
			requests: [][][2]string{get("/orders"), get("/orders"), get("/orders"), get("/orders")},
			check: func(t *testing.T, o outcome) {
				require.Equal(t, uint32(429), o.LocalStatus)
				require.Equal(t, "60", header(o.LocalHeaders, "retry-after"))
				require.Equal(t, `"per-ip";q=3;w=60`, header(o.LocalHeaders, "ratelimit-policy"))
				require.Equal(t, `"per-ip";r=0;t=60`, header(o.LocalHeaders, "ratelimit"))
			},
		},
		{
			name: "canary writes the routing header", rootID: "canary",
			requests: [][][2]string{get("/orders", "x-user-id", "42", "x-route-version", "v1")},
			check: func(t *testing.T, o outcome) {
				require.Equal(t, types.ActionContinue, o.Action)
				require.Equal(t, "v2", header(o.RequestHeaders, "x-route-version"), "even user → v2, the client's value replaced")
				require.Equal(t, "v2", header(o.ResponseHeaders, "x-served-by-version"))
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			alone := single(t, tc.rootID)
			var got, want outcome
			for _, r := range tc.requests {
				got = send(plugins[tc.rootID], r)
				want = send(alone, r)
			}
			tc.check(t, got)
			require.Equal(t, want, got, "suite plugin %s differs from %s.wasm", tc.rootID, tc.rootID)
		})
	}
}

// Trace and span ids are random, so the tracing plugin is compared by shape:
// both write a W3C context upstream and return its trace id downstream.
func TestSuite_TracingLikeSingleModule(t *testing.T) {
	_, plugins := suite(t)
	traceparent := regexp.MustCompile(`^00-([0-9a-f]{32})-[0-9a-f]{16}-01$`)
	for name, p := range map[string]*wasmhost.Plugin{"suite": plugins["tracing"], "tracing.wasm": single(t, "tracing")} {
		t.Run(name, func(t *testing.T) {
			o := send(p, get("/orders", "x-debug", "1"))
			require.Equal(t, types.ActionContinue, o.Action)
			m := traceparent.FindStringSubmatch(header(o.RequestHeaders, "traceparent"))
			require.NotNil(t, m, "traceparent upstream: %q", header(o.RequestHeaders, "traceparent"))
			require.Equal(t, m[1], header(o.ResponseHeaders, "x-trace-id"))
			require.Regexp(t, `^00-`+m[1]+`-[0-9a-f]{16}-01$`, header(o.ResponseHeaders, "traceresponse"))
		})
	}
}

// TestSuite_UnknownRootID: a plugin whose root id names no filter in the suite
// is refused at start with the registry's message, and the plugins already in
// the VM keep serving.
func TestSuite_UnknownRootID(t *testing.T) {
	vm, plugins := suite(t)
	p := vm.StartPlugin(wasmhost.PluginOptions{RootID: "rate-limit", Config: []byte(configs["ratelimit"])})
	require.False(t, p.Started())
	require.NotEmpty(t, vm.LogsContaining(logCritical,
		`meshwasm: root id "rate-limit" selects no filter in this module (want one of authz, canary, pipeline, ratelimit, tracing)`),
		"logs: %v", vm.Logs())
	require.Equal(t, uint32(403), send(plugins["authz"], get("/api/payments/1")).LocalStatus)
	require.Equal(t, "v2", header(send(plugins["canary"], get("/orders", "x-canary", "true")).RequestHeaders, "x-route-version"))
}

// TestSuite_MemoryFlat runs rounds of one request through each plugin, as the
// chain does, with the clock moving so that rate-limit windows roll over:
// after warm-up the shared VM's linear memory must not grow. Measured: the Go
// heap of the four filters settles at 177 pages (11 MiB) within 10,000 rounds
// and stays there for the next 70,000; 2,000 rounds are not enough warm-up.
func TestSuite_MemoryFlat(t *testing.T) {
	vm, plugins := suite(t)
	clock := vm.Host().Clock
	users := []string{"42", "7", "1000", "13"}
	run := func(rounds int) (allowed, limited int) {
		for i := 0; i < rounds; i++ {
			user := users[i%len(users)]
			for _, id := range rootIDs {
				o := send(plugins[id], get("/orders", "x-user-id", user))
				if id == "ratelimit" {
					if o.LocalStatus == 429 {
						limited++
					} else {
						allowed++
					}
				}
			}
			clock.Advance(5 * time.Second)
		}
		return allowed, limited
	}
	run(10_000)
	warm := vm.MemorySize()
	allowed, limited := run(20_000)
	require.Equal(t, warm, vm.MemorySize(), "linear memory grew after warm-up")
	require.Positive(t, allowed)
	require.Positive(t, limited, "the 429 path ran too")
	require.Empty(t, vm.Stderr())
}
