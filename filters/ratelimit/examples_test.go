package ratelimit_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/meshwasm/meshwasm/filters/internal/wasmhost"
	core "github.com/meshwasm/meshwasm/ratelimit"
)

// The shipped Envoy and Istio examples must carry configurations the filter
// accepts: a typo there would only show as a plugin that fails to start. Each
// is parsed by the core and started in the compiled module.
func TestExamples_ConfigurationsStart(t *testing.T) {
	envoyValue := func(t *testing.T, doc map[string]any) any {
		return dig(t, doc, "static_resources", "listeners", 0, "filter_chains", 0, "filters", 0, "typed_config",
			"http_filters", 0, "typed_config", "config", "configuration", "value")
	}
	tests := []struct {
		name    string
		file    string
		extract func(t *testing.T, doc map[string]any) any
		rules   []string
	}{
		{name: "envoy local", file: "../../envoy/ratelimit/envoy.yaml", extract: envoyValue, rules: []string{"per-ip", "login", "plans", "shaped"}},
		{name: "envoy global", file: "../../envoy/ratelimit/envoy-global.yaml", extract: envoyValue, rules: []string{"shed", "per-key"}},
		{name: "istio wasmplugin", file: "../../envoy/ratelimit/wasmplugin.yaml", extract: func(t *testing.T, doc map[string]any) any {
			return dig(t, doc, "spec", "pluginConfig")
		}, rules: []string{"per-ip", "login", "plans", "shaped"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.FromSlash(tc.file))
			require.NoError(t, err)
			var doc map[string]any
			require.NoError(t, yaml.Unmarshal(raw, &doc))
			var data []byte
			if s, ok := tc.extract(t, doc).(string); ok {
				data = []byte(s) // a StringValue holding JSON
			} else {
				data, err = json.Marshal(tc.extract(t, doc)) // Istio turns pluginConfig into JSON
				require.NoError(t, err)
			}
			cfg, err := core.Parse(data)
			require.NoError(t, err)
			require.Equal(t, tc.rules, cfg.RuleNames())

			p := wasmhost.Load(t, module).NewPlugin(wasmhost.VMOptions{Clusters: []string{"ratelimit"}},
				wasmhost.PluginOptions{RootID: module, Config: data})
			require.True(t, p.Started(), "logs: %v", p.VM().Logs())
		})
	}
}

func dig(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			require.True(t, ok, "at %v: not a mapping", p)
			v = m[k]
		case int:
			s, ok := v.([]any)
			require.True(t, ok && k < len(s), "at %v: not a list", p)
			v = s[k]
		}
		require.NotNil(t, v, "missing %v", p)
	}
	return v
}
