package authz_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	core "github.com/meshwasm/meshwasm/authz"
)

// The shipped Envoy and Istio examples must carry configurations the filter
// accepts: a typo there would only show as a plugin that fails to start.
func TestExamples_ConfigurationsParse(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		extract func(t *testing.T, doc map[string]any) any
	}{
		{name: "envoy bootstrap", file: "../../envoy/authz/envoy.yaml", extract: func(t *testing.T, doc map[string]any) any {
			return dig(t, doc, "static_resources", "listeners", 0, "filter_chains", 0, "filters", 0, "typed_config",
				"http_filters", 0, "typed_config", "config", "configuration", "value")
		}},
		{name: "istio wasmplugin", file: "../../envoy/authz/wasmplugin.yaml", extract: func(t *testing.T, doc map[string]any) any {
			return dig(t, doc, "spec", "pluginConfig")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.FromSlash(tc.file))
			require.NoError(t, err)
			var doc map[string]any
			require.NoError(t, yaml.Unmarshal(raw, &doc))
			config := tc.extract(t, doc)
			var data []byte
			if s, ok := config.(string); ok {
				data = []byte(s) // a StringValue holding JSON
			} else {
				data, err = json.Marshal(config) // Istio turns pluginConfig into JSON
				require.NoError(t, err)
			}
			cfg, err := core.Parse(data)
			require.NoError(t, err)
			require.Equal(t, []core.PolicyInfo{
				{Name: "payment-service-policy", Action: core.ActionAllow},
				{Name: "deny-all-default", Action: core.ActionDeny},
			}, cfg.Policies())
			require.Equal(t, []string{"https://auth.example.com"}, cfg.JWTProviders())
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
