package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"text/template"
)

// Cluster names the echo services get in every bootstrap. Canary routing selects them
// through RouteHeader; docker compose and envoy/base/envoy.yaml use the same names.
const (
	ClusterV1 = "v1"
	ClusterV2 = "v2"
	// RouteHeader picks the upstream version: "v2" routes to ClusterV2, anything else
	// (or no header) to ClusterV1.
	RouteHeader = "x-route-version"
	// ListenerName is also the listener's stat prefix, so listener counters have a
	// stable name (listener.ingress.*) even when Envoy picks the port.
	ListenerName = "ingress"
)

// FailurePolicy is Envoy's PluginConfig.failure_policy. Envoy's default has changed
// between releases, so the bootstrap always spells it out.
type FailurePolicy string

// Failure policies Envoy 1.40 accepts.
const (
	FailClosed FailurePolicy = "FAIL_CLOSED" // a broken VM answers 503 (the default here)
	FailOpen   FailurePolicy = "FAIL_OPEN"   // a broken VM is skipped
	FailReload FailurePolicy = "FAIL_RELOAD" // a broken VM is replaced for new requests
)

// WasmFilter is one envoy.filters.http.wasm entry of the HTTP filter chain. Filters run
// in slice order, before the router.
type WasmFilter struct {
	Name   string // plugin name; also the HTTP filter name, must be unique
	RootID string // root context the module registered (plugin_root_id)
	VMID   string // filters with equal VMID and Path share one VM per worker
	Path   string // .wasm file; absolute, or relative to Envoy's working directory
	Config string // plugin configuration, usually JSON; passed as a StringValue
	// FailurePolicy defaults to FailClosed.
	FailurePolicy FailurePolicy
}

// Cluster is an extra upstream a filter calls out to (jwks, ext-authz, ratelimit,
// otlp...). Addr is host:port; an IP gives a STATIC cluster, a name a STRICT_DNS one.
type Cluster struct {
	Name  string
	Addr  string
	HTTP2 bool // for gRPC upstreams (ext_authz gRPC, OTLP/gRPC)
}

// ServerTLS turns the listener into a TLS listener. Files are PEM.
type ServerTLS struct {
	CertFile, KeyFile string
	// CAFile validates client certificates. Envoy rejects a presented certificate that
	// does not chain to it even when RequireClientCert is false.
	CAFile            string
	RequireClientCert bool
}

// Bootstrap is everything that varies in the rendered Envoy configuration. Start fills
// it from Options; the compose consistency test fills it with the compose addresses.
type Bootstrap struct {
	NodeID       string // node id and cluster; "meshwasm-e2e" if empty
	AdminAddr    string // host:port; port 0 lets Envoy pick (see --admin-address-path)
	ListenerAddr string // host:port; port 0 lets Envoy pick (see Topology.URL)
	V1Addr       string // echo v1 host:port
	V2Addr       string // echo v2 host:port
	Clusters     []Cluster
	Filters      []WasmFilter
	TLS          *ServerTLS
	// RawPaths turns off Envoy's path normalization (normalize_path, merge_slashes,
	// path_with_escaped_slashes_action: REJECT_REQUEST), which every bootstrap sets
	// as authz/SECURITY.md recommends (with use_remote_address: true, always set).
	// Only tests that prove what a filter does on its own, behind a misconfigured
	// Envoy, set it.
	RawPaths bool
}

// Render returns the bootstrap as YAML.
func (b Bootstrap) Render() ([]byte, error) {
	if b.NodeID == "" {
		b.NodeID = "meshwasm-e2e"
	}
	names := map[string]bool{}
	for _, addr := range []struct{ what, addr string }{
		{"admin", b.AdminAddr}, {"listener", b.ListenerAddr}, {ClusterV1, b.V1Addr}, {ClusterV2, b.V2Addr},
	} {
		if err := checkAddr(addr.addr); err != nil {
			return nil, fmt.Errorf("bootstrap %s: %w", addr.what, err)
		}
	}
	names[ClusterV1], names[ClusterV2] = true, true
	for i, c := range b.Clusters {
		if c.Name == "" {
			return nil, fmt.Errorf("bootstrap clusters[%d]: empty name", i)
		}
		if names[c.Name] {
			return nil, fmt.Errorf("bootstrap clusters[%d]: duplicate name %q", i, c.Name)
		}
		names[c.Name] = true
		if err := checkAddr(c.Addr); err != nil {
			return nil, fmt.Errorf("bootstrap clusters[%d]: %w", i, err)
		}
	}
	filters := map[string]bool{}
	b.Filters = append([]WasmFilter(nil), b.Filters...)
	for i := range b.Filters {
		f := &b.Filters[i]
		switch {
		case f.Name == "":
			return nil, fmt.Errorf("bootstrap filters[%d]: empty name", i)
		case filters[f.Name]:
			return nil, fmt.Errorf("bootstrap filters[%d]: duplicate name %q", i, f.Name)
		case f.Path == "":
			return nil, fmt.Errorf("bootstrap filters[%d]: empty path", i)
		}
		filters[f.Name] = true
		switch f.FailurePolicy {
		case "":
			f.FailurePolicy = FailClosed
		case FailClosed, FailOpen, FailReload:
		default:
			return nil, fmt.Errorf("bootstrap filters[%d]: unknown failure policy %q", i, f.FailurePolicy)
		}
	}
	var out bytes.Buffer
	if err := bootstrapTemplate.Execute(&out, b); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return out.Bytes(), nil
}

func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("address %q: empty host", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("address %q: bad port", addr)
	}
	return nil
}

var bootstrapTemplate = template.Must(template.New("bootstrap").Funcs(template.FuncMap{
	// quote emits a JSON string, which is also a valid YAML double-quoted scalar: the
	// plugin configuration is JSON full of quotes and braces.
	"quote": func(s string) (string, error) {
		b, err := json.Marshal(s)
		return string(b), err
	},
	"host": func(addr string) string { h, _, _ := net.SplitHostPort(addr); return h },
	"port": func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p },
	"isIP": func(addr string) bool { h, _, _ := net.SplitHostPort(addr); return net.ParseIP(h) != nil },
	"clusters": func(b Bootstrap) []Cluster {
		return append([]Cluster{{Name: ClusterV1, Addr: b.V1Addr}, {Name: ClusterV2, Addr: b.V2Addr}}, b.Clusters...)
	},
}).Parse(bootstrapYAML))

// bootstrapYAML mirrors envoy/base/envoy.yaml, which explains each block; the compose
// test checks that the two stay equivalent.
const bootstrapYAML = `# Rendered by github.com/meshwasm/meshwasm/e2e/harness. Commented twin: envoy/base/envoy.yaml.
node:
  id: {{quote .NodeID}}
  cluster: {{quote .NodeID}}
admin:
  address:
    socket_address: {address: {{quote (host .AdminAddr)}}, port_value: {{port .AdminAddr}}}
static_resources:
  listeners:
  - name: ` + ListenerName + `
    stat_prefix: ` + ListenerName + `
    address:
      socket_address: {address: {{quote (host .ListenerAddr)}}, port_value: {{port .ListenerAddr}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ` + ListenerName + `
          codec_type: AUTO
          use_remote_address: true
{{- if not .RawPaths}}
          normalize_path: true
          merge_slashes: true
          path_with_escaped_slashes_action: REJECT_REQUEST
{{- end}}
{{- if .TLS}}
          forward_client_cert_details: SANITIZE_SET
          set_current_client_cert_details: {uri: true}
{{- end}}
          access_log:
          - name: envoy.access_loggers.stderr
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog
          route_config:
            name: local
            virtual_hosts:
            - name: echo
              domains: ["*"]
              routes:
              - match:
                  prefix: /
                  headers:
                  - name: ` + RouteHeader + `
                    string_match: {exact: ` + ClusterV2 + `}
                route: {cluster: ` + ClusterV2 + `}
              - match:
                  prefix: /
                  headers:
                  - name: ` + RouteHeader + `
                    string_match: {exact: ` + ClusterV1 + `}
                route: {cluster: ` + ClusterV1 + `}
              - match: {prefix: /}
                route: {cluster: ` + ClusterV1 + `}
          http_filters:
{{- range .Filters}}
          - name: {{quote .Name}}
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: {{quote .Name}}
                root_id: {{quote .RootID}}
                failure_policy: {{.FailurePolicy}}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {{quote .Config}}
                vm_config:
                  vm_id: {{quote .VMID}}
                  runtime: envoy.wasm.runtime.v8
                  code:
                    local:
                      filename: {{quote .Path}}
{{- end}}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
{{- with .TLS}}
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: {{.RequireClientCert}}
          common_tls_context:
            tls_certificates:
            - certificate_chain: {filename: {{quote .CertFile}}}
              private_key: {filename: {{quote .KeyFile}}}
            validation_context:
              trusted_ca: {filename: {{quote .CAFile}}}
{{- end}}
  clusters:
{{- range clusters .}}
  - name: {{quote .Name}}
    connect_timeout: 2s
{{- if isIP .Addr}}
    type: STATIC
{{- else}}
    type: STRICT_DNS
    dns_lookup_family: V4_ONLY
{{- end}}
{{- if .HTTP2}}
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {}
{{- end}}
    load_assignment:
      cluster_name: {{quote .Name}}
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {address: {{quote (host .Addr)}}, port_value: {{port .Addr}}}
{{- end}}
`
