package canary_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshwasm/meshwasm/filters/canary"
)

// Native wiring tests on the SDK's emulator: quick feedback while editing.
// Every behaviour is also tested on the compiled module (module_test.go).

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(id uint32) types.PluginContext {
	return canary.Filter.PluginContext(id)
}

func emulate(t *testing.T, config string) (proxytest.HostEmulator, types.OnPluginStartStatus) {
	t.Helper()
	host, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption().
		WithVMContext(&vmContext{}).WithPluginConfiguration([]byte(config)))
	t.Cleanup(reset)
	return host, host.StartPlugin()
}

func TestNative_RoutesAndRecords(t *testing.T) {
	host, status := emulate(t, seedsConfig)
	require.Equal(t, types.OnPluginStartStatusOK, status)

	tests := []struct {
		name     string
		headers  [][2]string
		response bool // false: the stream ends without response headers
		want     string
	}{
		{name: "spoofed header on a canary request", headers: get("x-canary", "true", "x-route-version", "v1"), response: true, want: "v2"},
		{name: "reset before the response", headers: get("x-canary", "true"), want: "v2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := host.InitializeHttpContext()
			require.Equal(t, types.ActionContinue, host.CallOnRequestHeaders(id, tc.headers, true))
			got := host.GetCurrentRequestHeaders(id)
			require.Contains(t, got, [2]string{"x-route-version", tc.want})
			if tc.response {
				host.CallOnResponseHeaders(id, [][2]string{{":status", "503"}}, true)
				require.Contains(t, host.GetCurrentResponseHeaders(id), [2]string{"x-served-by-version", tc.want})
			}
			host.CompleteHttpContext(id)
		})
	}
	// One 503 and one reset: two consecutive errors recorded in shared data.
	trips, err := host.GetCounterMetric(canary.VersionMetric("v2", "guard_trips"))
	require.NoError(t, err)
	require.Zero(t, trips)
	id := host.InitializeHttpContext()
	host.CallOnRequestHeaders(id, get("x-canary", "true"), true)
	host.CallOnResponseHeaders(id, [][2]string{{":status", "502"}}, true)
	host.CompleteHttpContext(id)
	trips, err = host.GetCounterMetric(canary.VersionMetric("v2", "guard_trips"))
	require.NoError(t, err)
	require.Equal(t, uint64(1), trips, "the third error in a row trips")
}

func TestNative_BadConfig(t *testing.T) {
	host, status := emulate(t, `{"versions":["v1","v2"],"rules":[{"route":"v3"}]}`)
	require.Equal(t, types.OnPluginStartStatusFailed, status)
	require.Equal(t, []string{`canary: configuration refused: rules[0].route: unknown version "v3"`}, host.GetCriticalLogs())
}
