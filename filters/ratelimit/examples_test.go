package ratelimit_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/filters/internal/wasmhost"
	"github.com/meshwasm/meshwasm/internal/exampleconf"
	core "github.com/meshwasm/meshwasm/ratelimit"
)

// The shipped Envoy and Istio examples must carry configurations the filter
// accepts: a typo there would only show as a plugin that fails to start. Each
// is parsed by the core and started in the compiled module.
func TestExamples_ConfigurationsStart(t *testing.T) {
	tests := []struct {
		file  string
		rules []string
	}{
		{file: "../../envoy/ratelimit/envoy.yaml", rules: []string{"per-ip", "login", "plans", "shaped"}},
		{file: "../../envoy/ratelimit/envoy-global.yaml", rules: []string{"shed", "per-key"}},
		{file: "../../envoy/ratelimit/wasmplugin.yaml", rules: []string{"per-ip", "login", "plans", "shaped"}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			data := exampleconf.Load(t, tc.file)
			cfg, err := core.Parse(data)
			require.NoError(t, err)
			require.Equal(t, tc.rules, cfg.RuleNames())
			p := wasmhost.Load(t, module).NewPlugin(wasmhost.VMOptions{Clusters: []string{"ratelimit"}},
				wasmhost.PluginOptions{RootID: module, Config: data})
			require.True(t, p.Started(), "logs: %v", p.VM().Logs())
		})
	}
}
