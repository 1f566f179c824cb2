//go:build bench

package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/meshwasm/meshwasm/bench/benchconf"
)

// The request every load run sends: GET /orders/1 with x-user-id 12345. It is
// allowed by authz, admitted by ratelimit, split by canary (odd user: the
// weighted rule) and traced.
const (
	requestPath   = "/orders/1"
	requestHeader = "x-user-id: 12345"
)

// Native twins, as http_filters entries.
const (
	rbacFilters = `- name: rbac-deny
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
    rules:
      action: DENY
      policies:
        deny-admin:
          permissions:
          - or_rules: {rules: [{url_path: {path: {exact: /admin}}}, {url_path: {path: {prefix: /admin/}}}]}
          principals: [{any: true}]
- name: rbac-allow
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
    rules:
      action: ALLOW
      policies:
        orders:
          permissions:
          - and_rules:
              rules:
              - or_rules: {rules: [{header: {name: ":method", string_match: {exact: GET}}}, {header: {name: ":method", string_match: {exact: POST}}}]}
              - or_rules: {rules: [{url_path: {path: {exact: /orders}}}, {url_path: {path: {prefix: /orders/}}}]}
          principals:
          - and_ids:
              ids:
              - direct_remote_ip: {address_prefix: 127.0.0.0, prefix_len: 8}
              - header: {name: x-user-id, present_match: true}`
	localRatelimitFilter = `- name: local-ratelimit
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
    stat_prefix: bench
    token_bucket: {max_tokens: 1000000000, tokens_per_fill: 1000000000, fill_interval: 1s}
    filter_enabled: {default_value: {numerator: 100, denominator: HUNDRED}, runtime_key: rl_enabled}
    filter_enforced: {default_value: {numerator: 100, denominator: HUNDRED}, runtime_key: rl_enforced}`
	headerMutationFilter = `- name: header-mutation
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation
    mutations:
      request_mutations:
      - append: {header: {key: x-route-version, value: v1}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
      response_mutations:
      - append: {header: {key: x-served-by-version, value: v1}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}`
)

// wasmFilter renders one wasm plugin.
func wasmFilter(name, rootID, vmID, module, config string) string {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	return fmt.Sprintf(`- name: %s
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
    config:
      name: %s
      root_id: %s
      failure_policy: FAIL_CLOSED
      configuration:
        "@type": type.googleapis.com/google.protobuf.StringValue
        value: %s
      vm_config:
        vm_id: %s
        runtime: envoy.wasm.runtime.v8
        code: {local: {filename: %s}}`, name, q(name), q(rootID), q(config), q(vmID), q(module))
}

var moduleConfigs = map[string]string{
	"authz": benchconf.Authz, "ratelimit": benchconf.Ratelimit, "canary": benchconf.Canary, "tracing": benchconf.Tracing,
}

// chainOrder is envoy/chain's: tracing sees every request, canary routes last.
var chainOrder = []string{"tracing", "authz", "ratelimit", "canary"}

// scenarioDef is a Scenario with its Envoy configuration.
type scenarioDef struct {
	Scenario
	filters []string
	tracing bool
}

// scenarios lists what the load test runs, in the report's order.
func scenarios(build string) []scenarioDef {
	mod := func(name string) string { return filepath.Join(build, name+".wasm") }
	alone := func(name string) []string {
		return []string{wasmFilter(name, name, name, mod(name), moduleConfigs[name])}
	}
	var chain4, suite, noop4 []string
	for i, f := range chainOrder {
		noop4 = append(noop4, wasmFilter(fmt.Sprintf("noop%d", i+1), "noop", "noop", mod("noop"), ""))
		chain4 = append(chain4, wasmFilter(f, f, f, mod(f), moduleConfigs[f]))
		suite = append(suite, wasmFilter(f, f, "meshwasm", mod("suite"), moduleConfigs[f]))
	}
	defs := []scenarioDef{
		{Scenario: Scenario{Name: "baseline", Kind: KindBaseline}},
		{Scenario: Scenario{Name: "native-authz", Kind: KindNative}, filters: []string{rbacFilters}},
		{Scenario: Scenario{Name: "native-ratelimit", Kind: KindNative}, filters: []string{localRatelimitFilter}},
		{Scenario: Scenario{Name: "native-canary", Kind: KindNative}, filters: []string{headerMutationFilter}},
		{Scenario: Scenario{Name: "native-tracing", Kind: KindNative}, tracing: true},
		{Scenario: Scenario{Name: "native-chain", Kind: KindNative}, tracing: true,
			filters: []string{rbacFilters, localRatelimitFilter, headerMutationFilter}},
		{Scenario: Scenario{Name: "authz", Kind: KindOurs, Twin: "native-authz"}, filters: alone("authz")},
		{Scenario: Scenario{Name: "ratelimit", Kind: KindOurs, Twin: "native-ratelimit"}, filters: alone("ratelimit")},
		{Scenario: Scenario{Name: "canary", Kind: KindOurs, Twin: "native-canary"}, filters: alone("canary")},
		{Scenario: Scenario{Name: "tracing", Kind: KindOurs, Twin: "native-tracing"}, filters: alone("tracing")},
		{Scenario: Scenario{Name: chainScenario, Kind: KindOurs, Twin: "native-chain"}, filters: chain4},
		{Scenario: Scenario{Name: suiteScenario, Kind: KindOurs, Twin: "native-chain"}, filters: suite},
		{Scenario: Scenario{Name: pipelineScenario, Kind: KindOurs, Twin: "native-chain"}, filters: pipelinePlugin(mod("suite"))},
		{Scenario: Scenario{Name: "noop", Kind: KindFloor}, filters: []string{wasmFilter("noop", "noop", "noop", mod("noop"), "")}},
		{Scenario: Scenario{Name: "noop4", Kind: KindFloor}, filters: noop4},
	}
	if _, err := os.Stat(mod(floorModule)); err == nil {
		var floor4 []string
		for i := range chainOrder {
			floor4 = append(floor4, wasmFilter(fmt.Sprintf("floor%d", i+1), "", floorModule, mod(floorModule), ""))
		}
		defs = append(defs,
			scenarioDef{Scenario: Scenario{Name: "floor", Kind: KindEnvoyFloor}, filters: floor4[:1]},
			scenarioDef{Scenario: Scenario{Name: "floor4", Kind: KindEnvoyFloor}, filters: floor4})
	}
	return defs
}

// floorModule is bench/floor/floor.wat, assembled into the run's modules.
const floorModule = "floor"

// assembleFloor builds the floor scenario's module with binaryen's wasm-as;
// without it the scenario is left out and the report says so.
func assembleFloor(root, build string) (note string) {
	wasmAs, err := exec.LookPath("wasm-as")
	if err != nil {
		return "wasm-as not installed (apt-get install -y binaryen): no envoy wasm floor scenario."
	}
	out, err := exec.Command(wasmAs, filepath.Join(root, "bench", "floor", "floor.wat"), "-o", filepath.Join(build, floorModule+".wasm")).CombinedOutput()
	if err != nil {
		return "wasm-as failed on bench/floor/floor.wat, no envoy wasm floor scenario: " + strings.TrimSpace(string(out))
	}
	return ""
}

// oneModule is Envoy with one module's plugin, for startup and wasm-opt checks.
func oneModule(name, path string) []string {
	return []string{wasmFilter(name, name, name, path, moduleConfigs[name])}
}

// suiteChain is the four plugins on one module file.
func suiteChain(path string) []string {
	var out []string
	for _, f := range chainOrder {
		out = append(out, wasmFilter(f, f, "meshwasm", path, moduleConfigs[f]))
	}
	return out
}

// pipelinePlugin is the four filters as one pipeline plugin of the suite
// module, with the same configurations in the same order.
func pipelinePlugin(path string) []string {
	var stages []string
	for _, f := range chainOrder {
		stages = append(stages, `{"filter": "`+f+`", "config": `+moduleConfigs[f]+`}`)
	}
	return []string{wasmFilter("meshwasm", "pipeline", "meshwasm", path, `{"stages": [`+strings.Join(stages, ", ")+`]}`)}
}

func fourModules(build string) []string {
	var out []string
	for _, f := range chainOrder {
		out = append(out, wasmFilter(f, f, f, filepath.Join(build, f+".wasm"), moduleConfigs[f]))
	}
	return out
}

func describe(d scenarioDef) string {
	if len(d.filters) == 0 && !d.tracing {
		return "router only"
	}
	var parts []string
	if d.tracing {
		parts = append(parts, "OpenTelemetry tracer")
	}
	for _, f := range d.filters {
		parts = append(parts, strings.TrimPrefix(strings.SplitN(f, "\n", 2)[0], "- name: "))
	}
	return strings.Join(parts, " + ")
}
