package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"
	"gopkg.in/yaml.v3"

	"github.com/meshwasm/meshwasm/e2e/harness"
)

// These tests run without Docker and without the e2e tag: they keep the docker compose
// topology and its Envoy bootstrap equivalent to what the native tests run (the chain of
// envoy/chain/envoy-suite.yaml, e2e/chain_test.go), envoy/base/envoy.yaml equivalent to
// the harness's rendering, and the two chain bootstraps equivalent to each other, so
// the variant nobody can run in CI does not rot.

// composeFile is the subset of the compose specification the checks read.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Command     any               `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Build       *struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
	} `yaml:"services"`
}

// Where the compose Envoy finds its files; compose/envoy.yaml refers to them.
const (
	composeEnvoyConfig = "/etc/envoy/envoy.yaml"
	composeBuildDir    = "/build"
	composeCertDir     = "/etc/envoy/certs"
)

// baseBootstrap is the harness bootstrap with the addresses envoy/base/envoy.yaml
// documents.
var baseBootstrap = harness.Bootstrap{
	NodeID:       "meshwasm",
	AdminAddr:    "127.0.0.1:9901",
	ListenerAddr: "127.0.0.1:10000",
	V1Addr:       "127.0.0.1:8081",
	V2Addr:       "127.0.0.1:8082",
	Filters:      []harness.WasmFilter{conformanceFilter("build/conformance.wasm")},
}

func conformanceFilter(path string) harness.WasmFilter {
	return harness.WasmFilter{
		Name: "conformance", RootID: "conformance", VMID: "meshwasm", Path: path, Config: "{}",
		FailurePolicy: harness.FailClosed,
	}
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	raw, err := os.ReadFile("docker-compose.yaml")
	require.NoError(t, err)
	var c composeFile
	require.NoError(t, yaml.Unmarshal(raw, &c))
	return c
}

func TestCompose_Services(t *testing.T) {
	c := loadCompose(t)
	names := make([]string, 0, len(c.Services))
	for name := range c.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	require.Equal(t, []string{"echo-" + harness.ClusterV1, "echo-" + harness.ClusterV2, "envoy", "ratelimit", "redis"}, names)

	tests := []struct {
		name    string
		service string
		version string
	}{
		{name: "v1", service: "echo-v1", version: harness.ClusterV1},
		{name: "v2", service: "echo-v2", version: harness.ClusterV2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := c.Services[tc.service]
			require.Equal(t, tc.version, s.Environment["ECHO_VERSION"], "reported version = harness cluster name")
			require.Equal(t, "0.0.0.0:8080", s.Environment["ECHO_LISTEN"], "port used by compose/envoy.yaml")
			require.NotNil(t, s.Build)
			require.Equal(t, "e2e/services/Dockerfile", s.Build.Dockerfile)
			require.FileExists(t, filepath.Join(s.Build.Context, s.Build.Dockerfile))
		})
	}
}

func TestCompose_Envoy(t *testing.T) {
	envoy := loadCompose(t).Services["envoy"]

	// Same Envoy release as the native harness installs.
	script, err := os.ReadFile("../scripts/ensure-envoy.sh")
	require.NoError(t, err)
	pin := regexp.MustCompile(`(?m)^ENVOY_VERSION=(\S+)$`).FindSubmatch(script)
	require.NotNil(t, pin, "ENVOY_VERSION in scripts/ensure-envoy.sh")
	require.Equal(t, "${ENVOY_IMAGE:-envoyproxy/envoy:v"+string(pin[1])+"}", envoy.Image)

	command, ok := envoy.Command.([]any)
	require.True(t, ok, "envoy command is a list")
	require.Contains(t, command, composeEnvoyConfig)

	mounts := map[string]string{} // container path → host path
	for _, v := range envoy.Volumes {
		parts := strings.Split(v, ":")
		require.GreaterOrEqual(t, len(parts), 2, v)
		mounts[parts[1]] = parts[0]
	}
	require.Equal(t, "./compose/envoy.yaml", mounts[composeEnvoyConfig])
	require.Equal(t, "../build", mounts[composeBuildDir])
	require.Equal(t, "./.run/certs", mounts[composeCertDir], "written by `make demo DEMO=compose`")
}

func TestCompose_PinnedImages(t *testing.T) {
	for name, s := range loadCompose(t).Services {
		if s.Build != nil {
			continue
		}
		image := strings.TrimSuffix(strings.TrimPrefix(s.Image, "${ENVOY_IMAGE:-"), "}")
		_, tag, ok := strings.Cut(image, ":")
		require.True(t, ok, "%s: image %q has no tag", name, s.Image)
		require.NotContains(t, []string{"latest", "master", "main"}, tag, "%s: floating tag", name)
	}
}

// The compose file and the native topology must run the same ratelimit
// service: the image tag is the short sha of the commit ensure-ratelimit.sh
// builds.
func TestCompose_RatelimitMatchesNative(t *testing.T) {
	script, err := os.ReadFile(filepath.Join("..", "scripts", "ensure-ratelimit.sh"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^RATELIMIT_VERSION=v[0-9.]+-[0-9.]*[0-9]{14}-([0-9a-f]{12})$`).FindSubmatch(script)
	require.NotNil(t, m, "RATELIMIT_VERSION must be a pseudo-version")
	image := loadCompose(t).Services["ratelimit"].Image
	require.Equal(t, "envoyproxy/ratelimit:"+string(m[1][:8]), image)
}

func TestCompose_RatelimitConfig(t *testing.T) {
	rl := loadCompose(t).Services["ratelimit"]
	require.Len(t, rl.Volumes, 1)
	host := strings.Split(rl.Volumes[0], ":")[0]
	raw, err := os.ReadFile(filepath.Join(host, "config.yaml"))
	require.NoError(t, err)
	var cfg struct {
		Domain      string `yaml:"domain"`
		Descriptors []struct {
			Key string `yaml:"key"`
		} `yaml:"descriptors"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &cfg))
	require.Equal(t, "meshwasm", cfg.Domain)
	require.NotEmpty(t, cfg.Descriptors)

	// The chain's global rule asks exactly this domain for a remote_address
	// descriptor: the service must know both, or every answer is "no limit".
	for _, p := range wasmPlugins(t, "compose/envoy.yaml") {
		if p.RootID != "ratelimit" {
			continue
		}
		var rl struct {
			Global struct {
				Domain string `json:"domain"`
			} `json:"global"`
			Rules []struct {
				Mode string   `json:"mode"`
				Key  []string `json:"key"`
			} `json:"rules"`
		}
		require.NoError(t, json.Unmarshal([]byte(p.Config), &rl))
		require.Equal(t, cfg.Domain, rl.Global.Domain)
		var global []string
		for _, r := range rl.Rules {
			if r.Mode == "global" {
				global = append(global, r.Key...)
			}
		}
		require.Equal(t, []string{cfg.Descriptors[0].Key}, global)
		return
	}
	t.Fatal("compose/envoy.yaml has no ratelimit plugin")
}

// TestBootstraps_MatchHarness compares the hand-written bootstraps with the harness's
// rendering after parsing, so comments and formatting may differ but not content.
func TestBootstraps_MatchHarness(t *testing.T) {
	tests := []struct {
		name string
		file string
		boot harness.Bootstrap
	}{
		{name: "base", file: "../envoy/base/envoy.yaml", boot: baseBootstrap},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rendered, err := tc.boot.Render()
			require.NoError(t, err)
			written, err := os.ReadFile(tc.file)
			require.NoError(t, err)
			var want, got any
			require.NoError(t, yaml.Unmarshal(rendered, &want))
			require.NoError(t, yaml.Unmarshal(written, &got))
			require.Equal(t, want, got, "%s drifted from harness.Bootstrap.Render", tc.file)
		})
	}
}

// wasmPlugin is one envoy.filters.http.wasm entry of a bootstrap.
type wasmPlugin struct {
	Name, RootID, VMID, Module, FailurePolicy, Config string
}

// wasmPlugins lists a bootstrap's wasm HTTP filters in chain order.
func wasmPlugins(t *testing.T, file string) []wasmPlugin {
	t.Helper()
	var doc any
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, &doc))
	str := func(m map[string]any, path ...string) string {
		var v any = m
		for _, k := range path {
			mm, ok := v.(map[string]any)
			require.True(t, ok, "%s: %v is not a map", file, path)
			v = mm[k]
		}
		s, _ := v.(string)
		return s
	}
	var out []wasmPlugin
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["@type"] == "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm" {
				out = append(out, wasmPlugin{
					Name:          str(x, "config", "name"),
					RootID:        str(x, "config", "root_id"),
					VMID:          str(x, "config", "vm_config", "vm_id"),
					Module:        str(x, "config", "vm_config", "code", "local", "filename"),
					FailurePolicy: str(x, "config", "failure_policy"),
					Config:        str(x, "config", "configuration", "value"),
				})
				return
			}
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(x[k])
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
	return out
}

// chainOrder is the order of envoy/chain (RATIONALE.md, "The chain order").
var chainOrder = []string{"tracing", "authz", "ratelimit", "canary"}

// TestChain_SuiteMatchesFourModules: envoy/chain/envoy-suite.yaml is envoy.yaml with
// every module replaced by build/suite.wasm; nothing else differs.
func TestChain_SuiteMatchesFourModules(t *testing.T) {
	four := wasmPlugins(t, "../envoy/chain/envoy.yaml")
	suite := wasmPlugins(t, "../envoy/chain/envoy-suite.yaml")
	require.Len(t, four, len(chainOrder))
	require.Len(t, suite, len(chainOrder))
	for i, id := range chainOrder {
		require.Equal(t, id, four[i].RootID)
		require.Equal(t, id, four[i].Name)
		require.Equal(t, "build/"+id+".wasm", four[i].Module)
		require.Equal(t, "meshwasm", four[i].VMID)
		require.NotEmpty(t, four[i].FailurePolicy, "failure_policy is always explicit")

		want := four[i]
		want.Module = "build/suite.wasm"
		require.Equal(t, want, suite[i])
	}

	// Everything outside the plugins is identical too.
	load := func(file string, replace ...string) any {
		raw, err := os.ReadFile(file)
		require.NoError(t, err)
		text := strings.NewReplacer(replace...).Replace(string(raw))
		var doc any
		require.NoError(t, yaml.Unmarshal([]byte(text), &doc))
		return doc
	}
	var modules []string
	for _, id := range chainOrder {
		modules = append(modules, `"build/`+id+`.wasm"`, `"build/suite.wasm"`)
	}
	want := load("../envoy/chain/envoy.yaml", modules...)
	require.Equal(t, want, load("../envoy/chain/envoy-suite.yaml"))
}

// TestChain_PipelineMatchesSuite: envoy/chain/envoy-pipeline.yaml is envoy-suite.yaml
// with the four plugins folded into one pipeline plugin whose stages are the four
// plugins' configurations, in the chain's order; nothing outside the filter list
// differs.
func TestChain_PipelineMatchesSuite(t *testing.T) {
	suite := wasmPlugins(t, "../envoy/chain/envoy-suite.yaml")
	pipeline := wasmPlugins(t, "../envoy/chain/envoy-pipeline.yaml")
	require.Len(t, pipeline, 1)
	p := pipeline[0]
	require.Equal(t, "pipeline", p.RootID)
	require.Equal(t, "build/suite.wasm", p.Module)
	require.Equal(t, "meshwasm", p.VMID)
	require.Equal(t, "FAIL_CLOSED", p.FailurePolicy, "the pipeline carries authz")
	stages := gjson.Get(p.Config, "stages").Array()
	require.Len(t, stages, len(chainOrder))
	for i, id := range chainOrder {
		require.Equal(t, id, stages[i].Get("filter").String())
		require.Equal(t, id, suite[i].RootID)
		require.JSONEq(t, suite[i].Config, stages[i].Get("config").Raw, "stage %s", id)
	}

	// Outside http_filters the two bootstraps are the same document.
	withoutFilters := func(file string) any {
		raw, err := os.ReadFile(file)
		require.NoError(t, err)
		var doc map[string]any
		require.NoError(t, yaml.Unmarshal(raw, &doc))
		hcm := doc["static_resources"].(map[string]any)["listeners"].([]any)[0].(map[string]any)["filter_chains"].([]any)[0].(map[string]any)["filters"].([]any)[0].(map[string]any)["typed_config"].(map[string]any)
		filters := hcm["http_filters"].([]any)
		hcm["http_filters"] = filters[len(filters)-1:] // the router
		return doc
	}
	require.Equal(t, withoutFilters("../envoy/chain/envoy-suite.yaml"), withoutFilters("../envoy/chain/envoy-pipeline.yaml"))
}

// TestCompose_EnvoyRunsChainSuite: the compose Envoy runs envoy/chain/envoy-suite.yaml
// with compose addresses: same modules, root ids, vm ids, failure policies and plugin
// configurations in the same order, and the same listener, routes and TLS.
func TestCompose_EnvoyRunsChainSuite(t *testing.T) {
	chain := wasmPlugins(t, "../envoy/chain/envoy-suite.yaml")
	compose := wasmPlugins(t, "compose/envoy.yaml")
	require.Len(t, compose, len(chain))
	for i := range chain {
		want := chain[i]
		want.Module = composeBuildDir + "/" + filepath.Base(want.Module)
		require.Equal(t, want, compose[i])
	}

	// The whole bootstrap, once addresses and paths are mapped: loopback ports become
	// compose services, static clusters become DNS ones.
	load := func(file string, replace ...string) map[string]any {
		raw, err := os.ReadFile(file)
		require.NoError(t, err)
		var doc map[string]any
		require.NoError(t, yaml.Unmarshal([]byte(strings.NewReplacer(replace...).Replace(string(raw))), &doc))
		clusters := doc["static_resources"].(map[string]any)["clusters"].([]any)
		for _, c := range clusters {
			delete(c.(map[string]any), "type")
			delete(c.(map[string]any), "dns_lookup_family")
		}
		return doc
	}
	want := load("../envoy/chain/envoy-suite.yaml",
		harness.SocketAddress("127.0.0.1:9901"), harness.SocketAddress("0.0.0.0:9901"),
		harness.SocketAddress("127.0.0.1:10000"), harness.SocketAddress("0.0.0.0:10000"),
		harness.SocketAddress("127.0.0.1:8081"), harness.SocketAddress("echo-v1:8080"),
		harness.SocketAddress("127.0.0.1:8082"), harness.SocketAddress("echo-v2:8080"),
		harness.SocketAddress("127.0.0.1:8080"), harness.SocketAddress("ratelimit:8080"),
		`"build/suite.wasm"`, `"`+composeBuildDir+`/suite.wasm"`,
		`"e2e/.run/certs/`, `"`+composeCertDir+`/`,
	)
	require.Equal(t, want, load("compose/envoy.yaml"), "compose/envoy.yaml drifted from envoy/chain/envoy-suite.yaml")
}
