package authz_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	core "github.com/meshwasm/meshwasm/authz"
	"github.com/meshwasm/meshwasm/filters/authz"
)

// The native tests run the filter on the SDK's proxytest host: quick wiring
// checks of the plugin and stream contexts. Every behaviour is also tested on
// the compiled module (module_test.go).

type vmContext struct{ types.DefaultVMContext }

func (*vmContext) NewPluginContext(id uint32) types.PluginContext {
	return authz.Filter.PluginContext(id)
}

func TestNative_SeedDecisions(t *testing.T) {
	tests := []struct {
		name       string
		conn       conn
		wantStatus uint32 // 0: continued
		wantMetric string
	}{
		{name: "order-service over mTLS", conn: orderMTLS, wantMetric: authz.PolicyMetric("payment-service-policy", core.OutcomeAllowed)},
		{name: "plain text", conn: plainText, wantStatus: 403, wantMetric: authz.PolicyMetric("deny-all-default", core.OutcomeDenied)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opt := proxytest.NewEmulatorOption().WithVMContext(&vmContext{}).WithPluginConfiguration([]byte(seedConfig))
			for k, v := range tc.conn.properties() {
				opt = opt.WithProperty(strings.Split(k, "."), v)
			}
			host, reset := proxytest.NewHostEmulator(opt)
			defer reset()
			require.Equal(t, types.OnPluginStartStatusOK, host.StartPlugin())
			id := host.InitializeHttpContext()
			action := host.CallOnRequestHeaders(id, req("POST", "/api/payments/1"), true)
			local := host.GetSentLocalResponse(id)
			if tc.wantStatus == 0 {
				require.Equal(t, types.ActionContinue, action)
				require.Nil(t, local)
			} else {
				require.Equal(t, types.ActionPause, action)
				require.NotNil(t, local)
				require.Equal(t, tc.wantStatus, local.StatusCode)
			}
			n, err := host.GetCounterMetric(tc.wantMetric)
			require.NoError(t, err)
			require.Equal(t, uint64(1), n)
		})
	}
}

func TestNative_BadConfigFailsStart(t *testing.T) {
	host, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption().WithVMContext(&vmContext{}).
		WithPluginConfiguration([]byte(`{"policies": [{"name": "a", "rules": [{"to": [{"operation": {"paths": [""]}}]}]}]}`)))
	defer reset()
	require.Equal(t, types.OnPluginStartStatusFailed, host.StartPlugin())
	require.Contains(t, lines(host.GetCriticalLogs()), "policies[0].rules[0].to[0].operation.paths[0]: empty string")
}
