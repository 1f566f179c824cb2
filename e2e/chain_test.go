//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	core "github.com/meshwasm/meshwasm/canary"
	"github.com/meshwasm/meshwasm/e2e/harness"
)

// The whole chain at once, in real Envoy: envoy/chain/envoy.yaml (four modules) and
// envoy/chain/envoy-suite.yaml (build/suite.wasm, one VM per worker) run as written,
// with only ports, module paths and certificate paths replaced, behind a TLS listener
// with SPIFFE client certificates, in front of echo v1/v2 and the real
// envoyproxy/ratelimit with Redis (configured with the compose file's limits). A third
// variant shows what Istio's per-resource VM environment does to VM sharing.

// Client identities; authz lets namespace "shop" in.
const (
	chainFrontend = "spiffe://cluster.local/ns/shop/sa/frontend"
	chainBatch    = "spiffe://cluster.local/ns/shop/sa/batch"
	chainIntruder = "spiffe://cluster.local/ns/guest/sa/intruder"
)

// chainReplace maps a chain bootstrap's fixed addresses, modules and certificates onto
// the running processes; module, when set, replaces every module of the file, and
// envPerPlugin adds a VM environment variable whose value differs per plugin (the file
// must name a different module in each). e2e/cmd/demo does the same for `make demo`.
func chainReplace(t *testing.T, file, ratelimitAddr, module string, envPerPlugin bool) func(map[string]string) map[string]string {
	t.Helper()
	modules := map[string]string{}
	for i, p := range wasmPlugins(t, filepath.Join("..", file)) {
		m := filepath.Base(p.Module)
		if module != "" {
			m = module
		}
		path := `"` + harness.WasmModule(t, m) + `"`
		if !envPerPlugin {
			modules[`"`+p.Module+`"`] = path
			continue
		}
		// vm_config's code block, with environment_variables inserted before it at the
		// same indentation.
		const indent = "\n                  "
		code := "code:" + indent + "  local:" + indent + "    filename: "
		modules[code+`"`+p.Module+`"`] = fmt.Sprintf(`environment_variables: {key_values: {ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION: "%d"}}`, 1000+i) +
			indent + code + path
	}
	return func(services map[string]string) map[string]string {
		m := map[string]string{
			harness.SocketAddress("127.0.0.1:10000"): harness.SocketAddress("127.0.0.1:0"),
			harness.SocketAddress("127.0.0.1:9901"):  harness.SocketAddress("127.0.0.1:0"),
			harness.SocketAddress("127.0.0.1:8081"):  harness.SocketAddress(services["echo-v1"]),
			harness.SocketAddress("127.0.0.1:8082"):  harness.SocketAddress(services["echo-v2"]),
			harness.SocketAddress("127.0.0.1:8080"):  harness.SocketAddress(ratelimitAddr),
		}
		for _, name := range []string{"server.pem", "server-key.pem", "ca.pem"} {
			m[`"e2e/.run/certs/`+name+`"`] = `"` + services[name] + `"`
		}
		for k, v := range modules {
			m[k] = v
		}
		return m
	}
}

type chainResult struct {
	status int
	header http.Header
	body   string
	echo   *harness.EchoReply // set when an upstream answered
}

func chainDo(t *testing.T, c *http.Client, method, url string, headers ...string) chainResult {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	r := chainResult{status: resp.StatusCode, header: resp.Header}
	if resp.Header.Get("X-Served-By") != "" {
		echo := harness.ReadEcho(t, resp)
		r.echo = &echo
		return r
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	r.body = string(body)
	return r
}

// TestChain_Envoy runs both variants of the chain with two workers each and checks
// what every filter does to the same requests, then counts the VMs.
func TestChain_Envoy(t *testing.T) {
	limits, err := os.ReadFile("compose/ratelimit/config.yaml")
	require.NoError(t, err)
	rl := harness.StartRateLimit(t, string(limits))

	variants := []struct {
		name   string
		file   string
		module string // replaces every module of the file when set
		// envPerPlugin gives each plugin its own vm_config.environment_variables.
		envPerPlugin bool
		// vmsPerThread is how many wasm VMs each Envoy thread runs.
		vmsPerThread uint64
	}{
		{name: "four modules", file: "envoy/chain/envoy.yaml", vmsPerThread: 4},
		{name: "suite module", file: "envoy/chain/envoy-suite.yaml", vmsPerThread: 1},
		// The four filters as one plugin: the pipeline in build/suite.wasm.
		{name: "pipeline", file: "envoy/chain/envoy-pipeline.yaml", vmsPerThread: 1},
		// The suite module with a different VM environment in each plugin, as istiod
		// writes it (ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION, each WasmPlugin's own
		// resource version): Envoy keys VMs by environment variables too, so one module
		// and one vm_id still make four VMs per thread (envoy/chain/wasmplugins.yaml).
		{name: "suite module with an environment per plugin", file: "envoy/chain/envoy.yaml", module: "suite.wasm", envPerPlugin: true, vmsPerThread: 4},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			const workers = 2
			topo := harness.StartFile(t, harness.FileOptions{
				File:    v.file,
				Workers: workers,
				TLS:     harness.TLSOptionalClientCert,
				Replace: chainReplace(t, v.file, rl.HTTPAddr(), v.module, v.envPerPlugin),
				// V8 compiles each module once per VM: four modules took 60 s to
				// ready on a loaded 2-core machine.
				StartTimeout: 3 * time.Minute,
			})
			runChain(t, topo, v.file, workers, v.vmsPerThread)
		})
	}
}

func runChain(t *testing.T, topo *harness.Topology, file string, workers int, vmsPerThread uint64) {
	stat := func(name string) uint64 {
		t.Helper()
		v, ok := topo.Stat(name)
		require.True(t, ok, "stat %s missing", name)
		return v
	}
	upstream := func() uint64 {
		return stat("cluster.v1.upstream_rq_total") + stat("cluster.v2.upstream_rq_total")
	}
	const rl = "wasmcustom.meshwasm.ratelimit."
	traceID := regexp.MustCompile(`^[0-9a-f]{32}$`)

	// Sub-tests share the topology and run in order: the counters add up.
	t.Run("wasm VMs per thread", func(t *testing.T) {
		// Envoy runs a base VM and one per thread (main thread and each worker) for
		// every distinct VM key: active = VMs per thread × (workers + 2), as measured
		// with 1, 2 and 3 workers. The four-module chain has four keys, the suite one.
		want := vmsPerThread * uint64(workers+2)
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := stat("wasm.envoy.wasm.runtime.v8.active")
			if got == want || time.Now().After(deadline) {
				require.Equal(t, want, got, "wasm.envoy.wasm.runtime.v8.active")
				break
			}
			time.Sleep(50 * time.Millisecond) // polling interval
		}
		require.Equal(t, want, stat("wasm.wasm_vm_count"))
	})

	t.Run("denied by authz: 403, upstream never reached, no token spent", func(t *testing.T) {
		before := upstream()
		allowed, limited := stat(rl+"per-client.allowed"), stat(rl+"per-client.limited")
		tests := []struct {
			name   string
			client *http.Client
			method string
			path   string
		}{
			{name: "no client certificate", client: topo.Client(), method: http.MethodGet, path: "/orders"},
			{name: "namespace not allowed", client: topo.ClientAs(chainIntruder), method: http.MethodGet, path: "/orders"},
			{name: "method not allowed", client: topo.ClientAs(chainFrontend), method: http.MethodDelete, path: "/orders/1"},
			// batch's quota is counted below: this denial must not have used it.
			{name: "deny policy wins", client: topo.ClientAs(chainBatch), method: http.MethodGet, path: "/admin"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := chainDo(t, tc.client, tc.method, topo.URL(tc.path))
				require.Equal(t, http.StatusForbidden, r.status)
				require.Nil(t, r.echo, "no upstream answered")
				require.Equal(t, "RBAC: access denied", r.body)
				require.Empty(t, r.header.Get("RateLimit-Policy"), "ratelimit never saw the request")
				// tracing runs first: a denied request has a trace id to report.
				require.Regexp(t, traceID, r.header.Get("x-trace-id"))
			})
		}
		require.Equal(t, before, upstream(), "no request reached an upstream")
		require.Equal(t, allowed, stat(rl+"per-client.allowed"))
		require.Equal(t, limited, stat(rl+"per-client.limited"))
		require.Equal(t, uint64(3), stat("wasmcustom.meshwasm.authz.default.denied"))
		require.Equal(t, uint64(1), stat("wasmcustom.meshwasm.authz.deny-admin.denied"))
	})

	t.Run("allowed: canary routes, tracing propagates", func(t *testing.T) {
		c := topo.ClientAs(chainFrontend)
		v1Before, v2Before := stat("cluster.v1.upstream_rq_total"), stat("cluster.v2.upstream_rq_total")

		const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
		r := chainDo(t, c, http.MethodGet, topo.URL("/orders"),
			"x-user-id", "42", "traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
		require.Equal(t, http.StatusOK, r.status)
		require.NotNil(t, r.echo)
		// canary: an even user id goes to v2, through the route table.
		require.Equal(t, "v2", r.echo.Version)
		require.Equal(t, "v2", r.echo.Header("x-route-version"))
		require.Equal(t, "v2", r.header.Get("x-served-by-version"))
		// tracing: the caller's trace continues upstream in W3C and B3 with the
		// proxy's span, which traceresponse returns.
		m := regexp.MustCompile(`^00-` + callerTrace + `-([0-9a-f]{16})-01$`).FindStringSubmatch(r.echo.Header("traceparent"))
		require.NotNil(t, m, "traceparent upstream: %q", r.echo.Header("traceparent"))
		proxySpan := m[1]
		require.NotEqual(t, callerSpan, proxySpan)
		require.Equal(t, callerTrace, r.echo.Header("x-b3-traceid"))
		require.Equal(t, proxySpan, r.echo.Header("x-b3-spanid"))
		require.Equal(t, callerSpan, r.echo.Header("x-b3-parentspanid"))
		require.Contains(t, r.echo.Header("baggage"), "user.id=42")
		require.Equal(t, callerTrace, r.header.Get("x-trace-id"))
		require.Equal(t, "00-"+callerTrace+"-"+proxySpan+"-01", r.header.Get("traceresponse"))
		// authz saw this identity, and the upstream gets it in XFCC.
		require.Contains(t, r.echo.Header("x-forwarded-client-cert"), "URI="+chainFrontend)
		// ratelimit: first of five this minute for this identity.
		require.Equal(t, `"per-client";q=5;w=60`, r.header.Get("RateLimit-Policy"))
		require.Regexp(t, `^"per-client";r=4;t=\d+$`, r.header.Get("RateLimit"))

		// x-canary: true, and a new trace (no caller context).
		r = chainDo(t, c, http.MethodGet, topo.URL("/orders"), "x-canary", "true")
		require.Equal(t, http.StatusOK, r.status)
		require.Equal(t, "v2", r.echo.Version)
		trace := r.header.Get("x-trace-id")
		require.Regexp(t, traceID, trace)
		require.Regexp(t, `^00-`+trace+`-[0-9a-f]{16}-0[01]$`, r.echo.Header("traceparent"))

		// A client's own x-route-version is replaced by the canary's decision.
		v1User := chainV1User(t, file)
		r = chainDo(t, c, http.MethodPost, topo.URL("/orders"), "x-user-id", v1User, "x-route-version", "v2")
		require.Equal(t, http.StatusOK, r.status)
		require.Equal(t, "v1", r.echo.Version, "user %s is in the 90%%", v1User)
		require.Equal(t, "v1", r.echo.Header("x-route-version"))

		require.Equal(t, v1Before+1, stat("cluster.v1.upstream_rq_total"))
		require.Equal(t, v2Before+2, stat("cluster.v2.upstream_rq_total"))
	})

	t.Run("rate limited after 5 per identity", func(t *testing.T) {
		c := topo.ClientAs(chainBatch)
		before := upstream()
		for i := 0; i < 5; i++ {
			r := chainDo(t, c, http.MethodGet, topo.URL("/orders/"+strconv.Itoa(i)), "x-user-id", "7")
			require.Equal(t, http.StatusOK, r.status, "request %d", i)
			require.Regexp(t, `^"per-client";r=`+strconv.Itoa(4-i)+`;t=\d+$`, r.header.Get("RateLimit"))
		}
		r := chainDo(t, c, http.MethodGet, topo.URL("/orders/5"), "x-user-id", "7")
		require.Equal(t, http.StatusTooManyRequests, r.status)
		require.Nil(t, r.echo, "no upstream answered")
		secs, err := strconv.Atoi(r.header.Get("Retry-After"))
		require.NoError(t, err, "Retry-After %q", r.header.Get("Retry-After"))
		require.Positive(t, secs)
		// A sliding window of 5 per 60 s admits the next request once the estimate
		// prev×(60−elapsed)/60 + cur + 1 ≤ 5: at worst the window ends full and 12 s
		// of the next one must pass.
		require.LessOrEqual(t, secs, 60+60/5)
		require.Equal(t, `"per-client";q=5;w=60`, r.header.Get("RateLimit-Policy"))
		require.Regexp(t, `^"per-client";r=0;t=\d+$`, r.header.Get("RateLimit"))
		require.Regexp(t, traceID, r.header.Get("x-trace-id"), "a 429 is traced too")
		require.Equal(t, before+5, upstream())

		// Another identity has its own quota (frontend used 3 of 5).
		require.Equal(t, http.StatusOK, chainDo(t, topo.ClientAs(chainFrontend), http.MethodGet, topo.URL("/orders")).status)

		// Exact counts: 3 + 5 + 1 admitted, 1 refused; every admitted request also
		// passed the global rule, answered by envoyproxy/ratelimit (no errors).
		require.Equal(t, uint64(9), stat(rl+"per-client.allowed"))
		require.Equal(t, uint64(1), stat(rl+"per-client.limited"))
		require.Equal(t, uint64(9), stat(rl+"global-per-ip.allowed"))
		require.Zero(t, stat(rl+"global-per-ip.global_errors"))
	})

	t.Run("tracing counted every answer", func(t *testing.T) {
		// 9 upstream answers and the 429 in group "orders", the denials by status.
		// The filter counts when the stream ends, which may be just after the client
		// got its response: poll.
		for name, want := range map[string]uint64{
			"wasmcustom.meshwasm.tracing.orders.rq_2xx":  9,
			"wasmcustom.meshwasm.tracing.orders.rq_4xx":  3 + 1,
			"wasmcustom.meshwasm.tracing.default.rq_4xx": 1, // /admin
		} {
			deadline := time.Now().Add(5 * time.Second)
			for stat(name) != want && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond) // polling interval
			}
			require.Equal(t, want, stat(name), name)
		}
	})
}

// chainV1User is an odd user id that the chain's canary split sends to v1, asked of
// the canary core with the plugin configuration in the file.
func chainV1User(t *testing.T, file string) string {
	t.Helper()
	for _, p := range wasmPlugins(t, filepath.Join("..", file)) {
		config := p.Config
		if p.RootID == "pipeline" {
			config = stageConfig(t, p.Config, "canary")
		} else if p.RootID != "canary" {
			continue
		}
		router, err := core.Parse([]byte(config))
		require.NoError(t, err)
		for id := 1; id < 10_000; id += 2 {
			if router.Decide(canaryReq{"x-user-id": strconv.Itoa(id)}, core.Env{}).Version == "v1" {
				return strconv.Itoa(id)
			}
		}
	}
	t.Fatalf("%s: no canary plugin or no odd user routed to v1", file)
	return ""
}

// stageConfig is the configuration of the named stage in a pipeline
// configuration.
func stageConfig(t *testing.T, pipeline, filter string) string {
	t.Helper()
	for _, st := range gjson.Get(pipeline, "stages").Array() {
		if st.Get("filter").String() == filter {
			return st.Get("config").Raw
		}
	}
	t.Fatalf("pipeline has no %s stage: %s", filter, pipeline)
	return ""
}
