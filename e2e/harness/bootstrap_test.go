package harness

import (
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func validBootstrap() Bootstrap {
	return Bootstrap{
		AdminAddr:    "127.0.0.1:0",
		ListenerAddr: "127.0.0.1:0",
		V1Addr:       "127.0.0.1:8081",
		V2Addr:       "127.0.0.1:8082",
	}
}

// wasmConfig walks to the first wasm filter's PluginConfig of a rendered bootstrap.
func wasmConfig(t *testing.T, rendered []byte, index int) map[string]any {
	t.Helper()
	var doc struct {
		StaticResources struct {
			Listeners []struct {
				FilterChains []struct {
					Filters []struct {
						TypedConfig struct {
							HTTPFilters []struct {
								Name        string `yaml:"name"`
								TypedConfig struct {
									Config map[string]any `yaml:"config"`
								} `yaml:"typed_config"`
							} `yaml:"http_filters"`
						} `yaml:"typed_config"`
					} `yaml:"filters"`
				} `yaml:"filter_chains"`
			} `yaml:"listeners"`
		} `yaml:"static_resources"`
	}
	require.NoError(t, yaml.Unmarshal(rendered, &doc))
	return doc.StaticResources.Listeners[0].FilterChains[0].Filters[0].TypedConfig.HTTPFilters[index].TypedConfig.Config
}

func TestBootstrap_Render(t *testing.T) {
	b := validBootstrap()
	b.Filters = []WasmFilter{
		{Name: "authz", RootID: "authz", VMID: "meshwasm", Path: "/b/authz.wasm", Config: `{"policies":[{"name":"a \"quoted\" \\ value"}]}`},
		{Name: "canary", RootID: "canary", VMID: "meshwasm", Path: "/b/canary.wasm", Config: "{}", FailurePolicy: FailOpen},
	}
	b.Clusters = []Cluster{{Name: "otlp", Addr: "127.0.0.1:4317", HTTP2: true}, {Name: "jwks", Addr: "jwks.local:8443"}}
	b.TLS = &ServerTLS{CertFile: "/c.pem", KeyFile: "/k.pem", CAFile: "/ca.pem", RequireClientCert: true}

	out, err := b.Render()
	require.NoError(t, err)

	authz := wasmConfig(t, out, 0)
	require.Equal(t, "FAIL_CLOSED", authz["failure_policy"], "default is explicit")
	require.Equal(t, `{"policies":[{"name":"a \"quoted\" \\ value"}]}`, authz["configuration"].(map[string]any)["value"], "JSON survives YAML quoting")
	require.Equal(t, "FAIL_OPEN", wasmConfig(t, out, 1)["failure_policy"])

	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(out, &doc))
	clusters := doc["static_resources"].(map[string]any)["clusters"].([]any)
	types := map[string]string{}
	for _, c := range clusters {
		c := c.(map[string]any)
		types[c["name"].(string)] = c["type"].(string)
	}
	require.Equal(t, map[string]string{"v1": "STATIC", "v2": "STATIC", "otlp": "STATIC", "jwks": "STRICT_DNS"}, types)
	require.Contains(t, string(out), "http2_protocol_options")
	require.Contains(t, string(out), "require_client_certificate: true")
}

func TestBootstrap_Render_Errors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Bootstrap)
		want   string
	}{
		{name: "bad listener", modify: func(b *Bootstrap) { b.ListenerAddr = "127.0.0.1" }, want: `bootstrap listener: address "127.0.0.1": address 127.0.0.1: missing port in address`},
		{name: "empty v2 host", modify: func(b *Bootstrap) { b.V2Addr = ":80" }, want: `bootstrap v2: address ":80": empty host`},
		{name: "bad port", modify: func(b *Bootstrap) { b.AdminAddr = "127.0.0.1:99999" }, want: `bootstrap admin: address "127.0.0.1:99999": bad port`},
		{name: "cluster without name", modify: func(b *Bootstrap) { b.Clusters = []Cluster{{Addr: "127.0.0.1:1"}} }, want: `bootstrap clusters[0]: empty name`},
		{name: "cluster shadows v1", modify: func(b *Bootstrap) { b.Clusters = []Cluster{{Name: "v1", Addr: "127.0.0.1:1"}} }, want: `bootstrap clusters[0]: duplicate name "v1"`},
		{name: "filter without path", modify: func(b *Bootstrap) { b.Filters = []WasmFilter{{Name: "a"}} }, want: `bootstrap filters[0]: empty path`},
		{name: "duplicate filter", modify: func(b *Bootstrap) { b.Filters = []WasmFilter{{Name: "a", Path: "x"}, {Name: "a", Path: "y"}} }, want: `bootstrap filters[1]: duplicate name "a"`},
		{name: "unknown failure policy", modify: func(b *Bootstrap) { b.Filters = []WasmFilter{{Name: "a", Path: "x", FailurePolicy: "fail_closed"}} }, want: `bootstrap filters[0]: unknown failure policy "fail_closed"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := validBootstrap()
			tc.modify(&b)
			_, err := b.Render()
			require.EqualError(t, err, tc.want)
		})
	}
}

func TestPKI_ClientCert(t *testing.T) {
	p := NewPKI(t)
	cert := p.ClientCert(t, "spiffe://cluster.local/ns/orders/sa/order-service")
	require.Len(t, cert.Certificate, 1)
	leaf, err := parseLeaf(cert)
	require.NoError(t, err)
	require.Len(t, leaf.URIs, 1)
	require.Equal(t, "spiffe://cluster.local/ns/orders/sa/order-service", leaf.URIs[0].String())
	_, err = leaf.Verify(verifyClientOpts(p))
	require.NoError(t, err)
	_, err = leaf.Verify(verifyClientOpts(NewPKI(t)))
	require.Error(t, err, "another PKI does not trust it")
}

func TestBootstrap_RawPaths(t *testing.T) {
	hcm := func(b Bootstrap) map[string]any {
		out, err := b.Render()
		require.NoError(t, err)
		var doc struct {
			StaticResources struct {
				Listeners []struct {
					FilterChains []struct {
						Filters []struct {
							TypedConfig map[string]any `yaml:"typed_config"`
						} `yaml:"filters"`
					} `yaml:"filter_chains"`
				} `yaml:"listeners"`
			} `yaml:"static_resources"`
		}
		require.NoError(t, yaml.Unmarshal(out, &doc))
		return doc.StaticResources.Listeners[0].FilterChains[0].Filters[0].TypedConfig
	}
	b := validBootstrap()
	recommended := hcm(b)
	require.Equal(t, true, recommended["normalize_path"])
	require.Equal(t, true, recommended["merge_slashes"])
	require.Equal(t, "REJECT_REQUEST", recommended["path_with_escaped_slashes_action"])
	require.Equal(t, true, recommended["use_remote_address"])
	b.RawPaths = true
	raw := hcm(b)
	for _, k := range []string{"normalize_path", "merge_slashes", "path_with_escaped_slashes_action"} {
		require.NotContains(t, raw, k)
	}
	require.Equal(t, true, raw["use_remote_address"], "never from a client header")
}
