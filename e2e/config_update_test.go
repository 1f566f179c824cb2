//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/e2e/harness"
)

// TestConfigUpdate_Envoy changes the authz plugin's configuration while Envoy serves
// traffic, the way a control plane does: a listener update, here from a file
// (e2e/testdata/lds/bootstrap.yaml, LDS from path_config_source, replaced by an atomic
// rename). Three listeners run the same plugin with each failure_policy. It proves:
//
//   - a good new configuration is applied without dropping a request: a client
//     looping on fresh and on kept-alive connections sees only 200s throughout, and
//     new connections get the new policy (an in-place filter chain update);
//   - a configuration the plugin refuses is rejected by Envoy for every
//     failure_policy (listener_manager.lds.update_rejected), the previous
//     configuration keeps serving unchanged, and Envoy's log names the JSON path.
func TestConfigUpdate_Envoy(t *testing.T) {
	module := harness.WasmModule(t, "authz.wasm")
	dir := t.TempDir()
	ldsFile := filepath.Join(dir, "listeners.yaml")
	policies := []harness.FailurePolicy{harness.FailClosed, harness.FailOpen, harness.FailReload}
	ports := make([]int, len(policies))
	for i := range ports {
		ports[i] = freeLoopbackPort(t)
	}
	deny := func(prefix string) string {
		return `{"policies": [{"name": "deny", "action": "DENY", "rules": [{"to": [{"operation": {"paths": ["` + prefix + `*"]}}]}]}]}`
	}
	const bad = `{"policies": [{"name": "deny", "action": "DENY", "rules": [{"to": [{"operation": {"paths": [""]}}]}]}]}`
	write := func(config string) {
		var b strings.Builder
		b.WriteString("resources:\n")
		for i, p := range policies {
			name := harness.ListenerName
			if i > 0 {
				name += "-" + strings.ToLower(strings.TrimPrefix(string(p), "FAIL_"))
			}
			b.WriteString(ldsListener(name, ports[i], p, config, module))
		}
		tmp := filepath.Join(dir, ".listeners.tmp")
		require.NoError(t, os.WriteFile(tmp, []byte(b.String()), 0o600))
		require.NoError(t, os.Rename(tmp, ldsFile))
	}
	topo := harness.StartFile(t, harness.FileOptions{
		File:    "e2e/testdata/lds/bootstrap.yaml",
		Workers: 2,
		Replace: func(services map[string]string) map[string]string {
			write(deny("/a/")) // the listeners Envoy starts with
			return map[string]string{
				`"LDS_FILE"`:                            strconv.Quote(ldsFile),
				`"LDS_DIR"`:                             strconv.Quote(dir),
				harness.SocketAddress("127.0.0.1:9901"): harness.SocketAddress("127.0.0.1:0"),
				harness.SocketAddress("127.0.0.1:8081"): harness.SocketAddress(services["echo-v1"]),
			}
		},
	})
	stat := func(name string) uint64 {
		v, _ := topo.Stat(name)
		return v
	}
	// status asks on a fresh connection, so it meets the listener's current filter chain.
	// It answers -1 when the request fails, so that it can run inside Eventually.
	status := func(port int, path string) int {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
		resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(port) + path)
		if err != nil {
			return -1
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, port := range ports {
		require.Equal(t, 403, status(port, "/a/x"))
		require.Equal(t, 200, status(port, "/b/x"))
	}

	// Traffic that must never notice: one kept-alive connection and fresh ones.
	var sent, failed atomic.Int64
	var failures sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, keepAlive := range []bool{true, false} {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 1}, Timeout: 5 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(ports[0]) + "/ok")
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					failures.Store(err.Error(), true)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					failures.Store(fmt.Sprintf("status %d", resp.StatusCode), true)
				}
			}
		}()
	}

	require.Eventually(t, func() bool { return sent.Load() >= 50 }, 30*time.Second, 10*time.Millisecond, "traffic before the updates")
	// A connection opened before the update: Envoy drains, it does not cut.
	old := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 5 * time.Second}
	oldStatus := func(path string) int {
		resp, err := old.Get("http://127.0.0.1:" + strconv.Itoa(ports[0]) + path)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 403, oldStatus("/a/x"))

	t.Run("good configuration applied without dropping a request", func(t *testing.T) {
		successes, inPlace := stat("listener_manager.lds.update_success"), stat("listener_manager.listener_in_place_updated")
		write(deny("/b/"))
		for _, port := range ports {
			require.Eventually(t, func() bool { return status(port, "/b/x") == 403 }, 30*time.Second, 20*time.Millisecond,
				"port %d: new policy on new connections", port)
			require.Equal(t, 200, status(port, "/a/x"), "port %d: old policy gone", port)
		}
		require.Greater(t, stat("listener_manager.lds.update_success"), successes)
		require.Equal(t, inPlace+uint64(len(ports)), stat("listener_manager.listener_in_place_updated"),
			"only the filter chains changed: each listener keeps its socket")
		// Envoy drains the old filter chain's connections gradually over
		// --drain-time-s (600 s by default): until then they keep the old policy.
		require.Equal(t, 403, oldStatus("/a/x"), "a kept-alive connection keeps the old configuration while draining")
		require.Equal(t, 200, oldStatus("/b/x"), "a kept-alive connection keeps the old configuration while draining")
	})

	t.Run("refused configuration rejected for every failure policy", func(t *testing.T) {
		rejected := stat("listener_manager.lds.update_rejected")
		write(bad)
		require.Eventually(t, func() bool { return stat("listener_manager.lds.update_rejected") > rejected },
			30*time.Second, 20*time.Millisecond, "Envoy rejects the update")
		for i, port := range ports {
			require.Equal(t, 403, status(port, "/b/x"), "%s: the previous configuration keeps serving", policies[i])
			require.Equal(t, 200, status(port, "/a/x"), "%s", policies[i])
		}
		log := topo.EnvoyLog()
		require.Contains(t, log, "authz: configuration refused: policies[0].rules[0].to[0].operation.paths[0]: empty string")
		for i := range policies {
			name := harness.ListenerName
			if i > 0 {
				name += "-" + strings.ToLower(strings.TrimPrefix(string(policies[i]), "FAIL_"))
			}
			require.Contains(t, log, "lds: listener '"+name+"' config rejected", "%s", policies[i])
		}
	})

	after := sent.Load()
	require.Eventually(t, func() bool { return sent.Load() >= after+50 }, 30*time.Second, 10*time.Millisecond, "traffic after the updates")
	close(stop)
	wg.Wait()
	var errs []string
	failures.Range(func(k, _ any) bool { errs = append(errs, k.(string)); return true })
	t.Logf("config updates: %d requests during two updates, %d failed %v", sent.Load(), failed.Load(), errs)
	require.Positive(t, sent.Load())
	require.Zero(t, failed.Load(), "requests failed during the updates: %v", errs)
}

// ldsListener renders one listener resource of the LDS file: the harness's routes
// (everything to v1) behind one authz plugin.
func ldsListener(name string, port int, policy harness.FailurePolicy, config, module string) string {
	return `- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: ` + name + `
  address: {socket_address: {address: "127.0.0.1", port_value: ` + strconv.Itoa(port) + `}}
  filter_chains:
  - filters:
    - name: envoy.filters.network.http_connection_manager
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
        stat_prefix: ` + name + `
        use_remote_address: true
        normalize_path: true
        merge_slashes: true
        path_with_escaped_slashes_action: REJECT_REQUEST
        route_config:
          virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: v1}}]}]
        http_filters:
        - name: authz
          typed_config:
            "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
            config:
              name: authz
              root_id: authz
              failure_policy: ` + string(policy) + `
              configuration: {"@type": type.googleapis.com/google.protobuf.StringValue, value: ` + strconv.Quote(config) + `}
              vm_config: {vm_id: meshwasm, runtime: envoy.wasm.runtime.v8, code: {local: {filename: ` + strconv.Quote(module) + `}}}
        - name: envoy.filters.http.router
          typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
`
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
