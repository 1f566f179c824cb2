package exampleconf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{name: "envoy bootstrap", want: `{"a":1}`, body: `
static_resources:
  listeners:
  - filter_chains:
    - filters:
      - typed_config:
          http_filters:
          - typed_config:
              config:
                root_id: x
                configuration: {value: '{"a":1}'}
                vm_config: {vm_id: m}
`},
		{name: "wasmplugin", want: `{"rules":[{"name":"r"}]}`, body: `
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
spec:
  pluginConfig:
    rules: [{name: r}]
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, string(Load(t, write(t, tc.body))))
		})
	}
}

func TestLoad_Shipped(t *testing.T) {
	for _, f := range []string{"../../envoy/authz/envoy.yaml", "../../envoy/canary/wasmplugin.yaml"} {
		require.NotEmpty(t, Load(t, f), f)
	}
}
