package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/meshwasm/meshwasm/authz"
	"github.com/meshwasm/meshwasm/canary"
	"github.com/meshwasm/meshwasm/e2e/harness"
	"github.com/meshwasm/meshwasm/ratelimit"
	"github.com/meshwasm/meshwasm/tracing"
)

// These tests need no cluster: they read the Istio WasmPlugin manifests under envoy/
// with the fields of extensions.istio.io/v1alpha1 WasmPlugin (unknown fields are
// errors, as istiod's validation makes them), check the values Istio accepts, and hand
// each pluginConfig, as the JSON istiod passes to the plugin, to the filter's own
// parser. A manifest that a filter would refuse at plugin start fails here.
// See https://istio.io/latest/docs/reference/config/proxy_extensions/wasm-plugin/

// wasmPluginResource is an Istio WasmPlugin, every field of the v1alpha1 API.
type wasmPluginResource struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec struct {
		Selector *struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		TargetRef  map[string]string   `yaml:"targetRef"`
		TargetRefs []map[string]string `yaml:"targetRefs"`
		URL        string              `yaml:"url"`
		Sha256     string              `yaml:"sha256"`
		// ImagePullPolicy is IfNotPresent or Always.
		ImagePullPolicy string         `yaml:"imagePullPolicy"`
		ImagePullSecret string         `yaml:"imagePullSecret"`
		PluginConfig    map[string]any `yaml:"pluginConfig"`
		PluginName      string         `yaml:"pluginName"`
		Phase           string         `yaml:"phase"`
		Priority        *int           `yaml:"priority"`
		FailStrategy    string         `yaml:"failStrategy"`
		VMConfig        *struct {
			Env []struct {
				Name      string `yaml:"name"`
				Value     string `yaml:"value"`
				ValueFrom string `yaml:"valueFrom"`
			} `yaml:"env"`
		} `yaml:"vmConfig"`
		Match []struct {
			Mode  string `yaml:"mode"`
			Ports []struct {
				Number int `yaml:"number"`
			} `yaml:"ports"`
		} `yaml:"match"`
		Type string `yaml:"type"`
	} `yaml:"spec"`
}

// loadWasmPlugins decodes every document of a manifest strictly.
func loadWasmPlugins(t *testing.T, file string) []wasmPluginResource {
	t.Helper()
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var out []wasmPluginResource
	for {
		var r wasmPluginResource
		err := dec.Decode(&r)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "%s document %d", file, len(out))
		out = append(out, r)
	}
	require.NotEmpty(t, out, file)
	return out
}

// parsers are the filters' own configuration parsers, by root id.
var parsers = map[string]func([]byte) error{
	"authz":     func(b []byte) error { _, err := authz.Parse(b); return err },
	"ratelimit": func(b []byte) error { _, err := ratelimit.Parse(b); return err },
	"canary":    func(b []byte) error { _, err := canary.Parse(b); return err },
	"tracing":   func(b []byte) error { _, err := tracing.Parse(b); return err },
}

// phases in the order Istio inserts them into the HTTP filter chain.
var phases = map[string]int{"AUTHN": 0, "AUTHZ": 1, "STATS": 2}

// failStrategies maps Envoy's failure_policy to Istio's failStrategy.
var failStrategies = map[string]string{string(harness.FailClosed): "FAIL_CLOSE", string(harness.FailOpen): "FAIL_OPEN"}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// checkWasmPlugin checks one resource as istiod would accept it and as the filter
// would start with it, and returns its pluginConfig as the JSON the plugin gets.
func checkWasmPlugin(t *testing.T, r wasmPluginResource) string {
	t.Helper()
	require.Equal(t, "extensions.istio.io/v1alpha1", r.APIVersion)
	require.Equal(t, "WasmPlugin", r.Kind)
	require.Regexp(t, dnsLabel, r.Metadata.Name)
	require.Regexp(t, dnsLabel, r.Metadata.Namespace)
	s := r.Spec
	require.True(t, strings.HasPrefix(s.URL, "oci://"), "url %q: an OCI image", s.URL)
	_, tag, ok := strings.Cut(strings.TrimPrefix(s.URL, "oci://"), ":")
	require.True(t, ok && tag != "" && tag != "latest", "url %q: pinned tag", s.URL)
	require.Contains(t, []string{"", "IfNotPresent", "Always"}, s.ImagePullPolicy)
	require.Contains(t, parsers, s.PluginName, "pluginName selects a filter in the suite module")
	require.Contains(t, phases, s.Phase, "phase set explicitly")
	require.NotNil(t, s.Priority, "priority set explicitly")
	require.Contains(t, []string{"FAIL_CLOSE", "FAIL_OPEN"}, s.FailStrategy, "failStrategy set explicitly")
	require.Empty(t, s.Type, "HTTP is the default type")
	require.NotEmpty(t, s.PluginConfig)
	config, err := json.Marshal(s.PluginConfig)
	require.NoError(t, err)
	require.NoError(t, parsers[s.PluginName](config), "%s refuses pluginConfig of %s", s.PluginName, r.Metadata.Name)
	return string(config)
}

// TestIstio_WasmPluginPerFilter: envoy/<filter>/wasmplugin.yaml is one WasmPlugin for
// that filter, whose failStrategy says what the filter's Envoy bootstrap says.
func TestIstio_WasmPluginPerFilter(t *testing.T) {
	files, err := filepath.Glob("../envoy/*/wasmplugin.yaml")
	require.NoError(t, err)
	var filters []string
	for _, f := range files {
		filters = append(filters, filepath.Base(filepath.Dir(f)))
	}
	sort.Strings(filters)
	require.Equal(t, []string{"authz", "canary", "ratelimit", "tracing"}, filters, "a manifest per filter")

	for _, f := range files {
		filter := filepath.Base(filepath.Dir(f))
		t.Run(filter, func(t *testing.T) {
			rs := loadWasmPlugins(t, f)
			require.Len(t, rs, 1)
			checkWasmPlugin(t, rs[0])
			require.Equal(t, filter, rs[0].Spec.PluginName)
			require.Contains(t, rs[0].Spec.URL, "/meshwasm/"+filter+":", "the filter's own image")

			envoy := wasmPlugins(t, filepath.Join(filepath.Dir(f), "envoy.yaml"))
			require.Len(t, envoy, 1)
			require.Equal(t, failStrategies[envoy[0].FailurePolicy], rs[0].Spec.FailStrategy,
				"Istio and plain Envoy fail the same way")
		})
	}
}

// TestIstio_ChainWasmPlugins: envoy/chain/wasmplugins.yaml is the chain of
// envoy/chain/envoy-suite.yaml for Istio: four plugins from the suite image, in the
// same order, with the same configurations, agreeing on everything that decides VM
// sharing.
func TestIstio_ChainWasmPlugins(t *testing.T) {
	rs := loadWasmPlugins(t, "../envoy/chain/wasmplugins.yaml")
	require.Len(t, rs, len(chainOrder))

	configs := map[string]string{}
	for _, r := range rs {
		configs[r.Spec.PluginName] = checkWasmPlugin(t, r)
		require.True(t, strings.HasPrefix(r.Spec.URL, "oci://"), r.Spec.URL)
		require.Contains(t, r.Spec.URL, "/meshwasm/suite:", "the suite image")
		first := rs[0].Spec
		require.Equal(t, first.URL, r.Spec.URL, "one image")
		require.Equal(t, first.Sha256, r.Spec.Sha256)
		require.Equal(t, first.ImagePullPolicy, r.Spec.ImagePullPolicy)
		require.Equal(t, first.VMConfig, r.Spec.VMConfig, "one VM configuration")
		require.Equal(t, first.Selector, r.Spec.Selector, "the same proxies")
	}

	// Istio orders by phase, then by priority (higher first).
	ordered := append([]wasmPluginResource(nil), rs...)
	sort.SliceStable(ordered, func(i, j int) bool {
		a, b := ordered[i].Spec, ordered[j].Spec
		if phases[a.Phase] != phases[b.Phase] {
			return phases[a.Phase] < phases[b.Phase]
		}
		return *a.Priority > *b.Priority
	})
	var order []string
	for _, r := range ordered {
		order = append(order, r.Spec.PluginName)
	}
	require.Equal(t, chainOrder, order, "the order of envoy/chain")

	// The configurations and failure policies of envoy-suite.yaml; only the ratelimit
	// service's cluster is named the Istio way.
	for _, p := range wasmPlugins(t, "../envoy/chain/envoy-suite.yaml") {
		r := rs[slices.IndexFunc(rs, func(r wasmPluginResource) bool { return r.Spec.PluginName == p.RootID })]
		require.Equal(t, failStrategies[p.FailurePolicy], r.Spec.FailStrategy, p.RootID)
		var want, got map[string]any
		require.NoError(t, json.Unmarshal([]byte(p.Config), &want))
		require.NoError(t, json.Unmarshal([]byte(configs[p.RootID]), &got))
		if p.RootID == "ratelimit" {
			for _, m := range []map[string]any{want, got} {
				global := m["global"].(map[string]any)
				delete(global, "cluster")
				delete(global, "authority")
			}
		}
		require.Equal(t, want, got, "%s: pluginConfig differs from envoy-suite.yaml", p.RootID)
	}
}
