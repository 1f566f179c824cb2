//go:build e2e

package e2e

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/e2e/harness"
)

// TestWasmSmoke_Conformance loads build/conformance.wasm (root id "conformance") into
// stock Envoy. The module adds "x-conformance: ok" to responses and answers 418 itself
// when the request carries "x-conformance-local: 1". A missing module fails the test:
// run `make build` first, or point MESHWASM_BUILD at the build directory.
func TestWasmSmoke_Conformance(t *testing.T) {
	module := harness.WasmModule(t, "conformance.wasm")
	topo := harness.Start(t, harness.Options{
		Workers: 2,
		Filters: []harness.WasmFilter{{
			Name:          "conformance",
			RootID:        "conformance",
			VMID:          "meshwasm",
			Path:          module,
			Config:        `{}`,
			FailurePolicy: harness.FailClosed,
		}},
	})
	client := topo.Client()

	tests := []struct {
		name         string
		headers      map[string]string
		wantStatus   int
		wantUpstream string // "" when the filter answers locally
	}{
		{name: "proxied to v1", wantStatus: http.StatusOK, wantUpstream: "v1"},
		{name: "proxied to v2", headers: map[string]string{harness.RouteHeader: "v2"}, wantStatus: http.StatusOK, wantUpstream: "v2"},
		{name: "local response", headers: map[string]string{"x-conformance-local": "1"}, wantStatus: http.StatusTeapot},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v1Before := upstreamRequests(topo, "v1")
			req, err := http.NewRequest(http.MethodGet, topo.URL("/smoke"), nil)
			require.NoError(t, err)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			require.NoError(t, err)
			require.Equal(t, tc.wantStatus, resp.StatusCode)
			if tc.wantUpstream == "" {
				resp.Body.Close()
				require.Empty(t, resp.Header.Get("X-Served-By"), "no upstream answered")
				require.Equal(t, v1Before, upstreamRequests(topo, "v1"), "the request never left Envoy")
				return
			}
			require.Equal(t, "ok", resp.Header.Get("x-conformance"))
			require.Equal(t, tc.wantUpstream, harness.ReadEcho(t, resp).Version)
		})
	}
	// The module really ran in V8 (not skipped by a failure policy) and no VM had to
	// be reloaded after a trap.
	active, ok := topo.Stat("wasm.envoy.wasm.runtime.v8.active")
	require.True(t, ok)
	require.NotZero(t, active, "wasm VMs alive")
	reloadFailures, ok := topo.Stat("wasm.conformance.vm_reload_failure")
	require.True(t, ok)
	require.Zero(t, reloadFailures)
}
