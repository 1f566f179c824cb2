package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/meshwasm/meshwasm/e2e/harness"
)

// These tests run without Docker and without the e2e tag: they keep the docker compose
// topology, its Envoy bootstrap and envoy/base/envoy.yaml equivalent to what the native
// harness runs, so the variant nobody can run in CI does not rot.

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
)

// composeBootstrap is the harness bootstrap with the compose addresses.
var composeBootstrap = harness.Bootstrap{
	NodeID:       "meshwasm",
	AdminAddr:    "0.0.0.0:9901",
	ListenerAddr: "0.0.0.0:10000",
	V1Addr:       "echo-v1:8080",
	V2Addr:       "echo-v2:8080",
	Clusters:     []harness.Cluster{{Name: "ratelimit", Addr: "ratelimit:8080"}},
	Filters:      []harness.WasmFilter{conformanceFilter(composeBuildDir + "/conformance.wasm")},
}

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
		Descriptors []any  `yaml:"descriptors"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &cfg))
	require.Equal(t, "meshwasm", cfg.Domain)
	require.NotEmpty(t, cfg.Descriptors)
}

// TestBootstraps_MatchHarness compares the hand-written bootstraps with the harness's
// rendering after parsing, so comments and formatting may differ but not content.
func TestBootstraps_MatchHarness(t *testing.T) {
	tests := []struct {
		name string
		file string
		boot harness.Bootstrap
	}{
		{name: "compose", file: "compose/envoy.yaml", boot: composeBootstrap},
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
