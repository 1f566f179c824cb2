// Package exampleconf reads the plugin configuration out of the Envoy
// bootstraps and Istio WasmPlugin manifests shipped under envoy/, so that
// each filter's tests can prove its examples parse and start: a typo there
// would otherwise only show as a plugin that fails to start for a user.
package exampleconf

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"gopkg.in/yaml.v3"
)

// Load returns the configuration of the first Wasm plugin in file: the
// StringValue of an Envoy wasm filter's `configuration`, or an Istio
// WasmPlugin's `spec.pluginConfig` turned into JSON, as Istio does.
func Load(t testing.TB, file string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.FromSlash(file))
	if err != nil {
		t.Fatalf("exampleconf: %v", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("exampleconf: %s: %v", file, err)
	}
	if doc["kind"] == "WasmPlugin" {
		spec, _ := doc["spec"].(map[string]any)
		cfg, ok := spec["pluginConfig"]
		if !ok {
			t.Fatalf("exampleconf: %s: no spec.pluginConfig", file)
		}
		data, err := json.Marshal(cfg)
		if err != nil {
			t.Fatalf("exampleconf: %s: %v", file, err)
		}
		return data
	}
	if v, ok := findWasmConfig(doc); ok {
		return []byte(v)
	}
	t.Fatalf("exampleconf: %s: no wasm filter configuration", file)
	return nil
}

// findWasmConfig walks a bootstrap depth-first, in document order, for the
// `config` of a Wasm filter: a mapping with vm_config and a StringValue
// configuration.
func findWasmConfig(v any) (string, bool) {
	switch n := v.(type) {
	case map[string]any:
		if _, ok := n["vm_config"]; ok {
			if c, ok := n["configuration"].(map[string]any); ok {
				if s, ok := c["value"].(string); ok {
					return s, true
				}
			}
		}
		// Map iteration order is random: walk keys in a fixed order so the
		// "first" plugin is the same on every run.
		for _, k := range sortedKeys(n) {
			if s, ok := findWasmConfig(n[k]); ok {
				return s, true
			}
		}
	case []any:
		for _, e := range n {
			if s, ok := findWasmConfig(e); ok {
				return s, true
			}
		}
	}
	return "", false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
