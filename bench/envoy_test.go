//go:build bench

package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/meshwasm/meshwasm/e2e/harness"
)

// proc is a child process in its own process group, killed with the group
// (the e2e harness's), with the readings the bench takes of it.
type proc struct{ *harness.Process }

func startProc(name, dir, bin string, args ...string) (*proc, error) {
	p, err := harness.StartProcess(name, filepath.Join(dir, name+".log"), nil, bin, args...)
	if err != nil {
		return nil, err
	}
	return &proc{p}, nil
}

func (p *proc) exited() bool {
	gone, _ := p.Exited()
	return gone
}

func (p *proc) tail() string { return p.Tail(4000) }

// cpuNanos is the CPU time the process's threads have run, from the
// scheduler's per-thread accounting (nanoseconds, unlike /proc/pid/stat's
// clock ticks).
func (p *proc) cpuNanos() uint64 {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", p.Pid()))
	var sum uint64
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended
		}
		if fields := strings.Fields(string(b)); len(fields) > 0 {
			n, _ := strconv.ParseUint(fields[0], 10, 64)
			sum += n
		}
	}
	return sum
}

// rss is the process's resident set (VmRSS).
func (p *proc) rss() uint64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// startUpstream runs a fortio echo server on a kernel-picked loopback port.
func startUpstream(fortio, dir string) (*proc, string, error) {
	p, err := startProc("upstream", dir, fortio, "server", "-http-port", "127.0.0.1:0",
		"-grpc-port", "disabled", "-redirect-port", "disabled", "-tcp-port", "disabled", "-udp-port", "disabled",
		"-loglevel", "warning")
	if err != nil {
		return nil, "", err
	}
	re := regexp.MustCompile(`listening on tcp (127\.0\.0\.1:\d+)`)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(p.tail()); m != nil {
			return p, m[1], nil
		}
		if p.exited() {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling a log file for the port: no event to wait on
	}
	p.Stop()
	return nil, "", fmt.Errorf("fortio server did not report its port: %s", p.tail())
}

// envoy is one running Envoy.
type envoy struct {
	*proc
	admin, listener string
	ready           time.Duration // start to /ready
}

type bootstrapParams struct {
	Upstream string
	Filters  []string // rendered http_filters entries, router excluded
	Tracing  bool     // Envoy's OpenTelemetry tracer on the connection manager
}

var bootstrapTmpl = template.Must(template.New("envoy").Funcs(template.FuncMap{
	"host":   func(a string) string { h, _, _ := net.SplitHostPort(a); return h },
	"port":   func(a string) string { _, p, _ := net.SplitHostPort(a); return p },
	"indent": func(n int, s string) string { return indent(s, n) },
	"list":   func(s ...string) []string { return s },
}).Parse(`# Rendered by github.com/meshwasm/meshwasm/bench for one scenario.
node: {id: meshwasm-bench, cluster: meshwasm-bench}
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
layered_runtime:
  layers:
  - name: static
    static_layer:
      tracing.opentelemetry.flush_interval_ms: 1000
static_resources:
  listeners:
  - name: bench
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          codec_type: AUTO
          normalize_path: true
          merge_slashes: true
          path_with_escaped_slashes_action: REJECT_REQUEST
{{- if .Tracing}}
          tracing:
            random_sampling: {value: 100}
            provider:
              name: envoy.tracers.opentelemetry
              typed_config:
                "@type": type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig
                service_name: bench-envoy
                http_service:
                  http_uri: {uri: "http://otlp/v1/traces", cluster: otlp, timeout: 2s}
{{- end}}
          route_config:
            name: orders
            virtual_hosts:
            - name: orders
              domains: ["*"]
              # The same table in every scenario: the canary module's routing
              # header, the native twin's client header match, and a weighted
              # default.
              routes:
              - match: {prefix: /, headers: [{name: x-route-version, string_match: {exact: v2}}]}
                route: {cluster: v2}
              - match: {prefix: /, headers: [{name: x-route-version, string_match: {exact: v1}}]}
                route: {cluster: v1}
              - match: {prefix: /, headers: [{name: x-canary, string_match: {exact: "true"}}]}
                route: {cluster: v2}
              - match: {prefix: /}
                route:
                  weighted_clusters:
                    clusters:
                    - {name: v1, weight: 90}
                    - {name: v2, weight: 10}
          http_filters:
{{- range .Filters}}
{{indent 10 .}}
{{- end}}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
{{- range $name := (list "v1" "v2" "otlp")}}
  - name: {{$name}}
    connect_timeout: 2s
    type: STATIC
    load_assignment:
      cluster_name: {{$name}}
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: {{host $.Upstream}}, port_value: {{port $.Upstream}}}}}
{{- end}}
`))

func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n")
}

func renderBootstrap(p bootstrapParams) ([]byte, error) {
	var b bytes.Buffer
	err := bootstrapTmpl.Execute(&b, p)
	return b.Bytes(), err
}

// startEnvoy writes the bootstrap and waits for /ready and the listener.
func startEnvoy(bin, dir, name string, workers int, config []byte) (*envoy, error) {
	dir = filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "envoy.yaml")
	if err := os.WriteFile(cfg, config, 0o644); err != nil {
		return nil, err
	}
	adminFile := filepath.Join(dir, "admin.addr")
	began := time.Now()
	p, err := startProc("envoy", dir, bin, "--config-path", cfg, "--concurrency", strconv.Itoa(workers),
		"--log-level", "warn", "--admin-address-path", adminFile, "--disable-hot-restart")
	if err != nil {
		return nil, err
	}
	e := &envoy{proc: p}
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := began.Add(180 * time.Second)
	for {
		if e.admin == "" {
			if b, err := os.ReadFile(adminFile); err == nil && len(bytes.TrimSpace(b)) > 0 {
				e.admin = string(bytes.TrimSpace(b))
			}
		}
		if e.admin != "" {
			if resp, err := client.Get("http://" + e.admin + "/ready"); err == nil {
				ok := resp.StatusCode == 200
				resp.Body.Close()
				if ok {
					e.ready = time.Since(began)
					break
				}
			}
		}
		if p.exited() {
			return nil, fmt.Errorf("envoy %s exited: %s", name, p.tail())
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("envoy %s not ready after %v: %s", name, time.Since(began), p.tail())
		}
		// /ready has no push notification; poll it tightly so that the startup
		// figure is precise to a few milliseconds.
		time.Sleep(5 * time.Millisecond)
	}
	if e.listener, err = e.listenerAddr(client); err != nil {
		p.Stop()
		return nil, err
	}
	return e, nil
}

func (e *envoy) listenerAddr(c *http.Client) (string, error) {
	resp, err := c.Get("http://" + e.admin + "/listeners?format=json")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var dump struct {
		ListenerStatuses []struct {
			LocalAddress struct {
				SocketAddress struct {
					Address   string `json:"address"`
					PortValue int    `json:"port_value"`
				} `json:"socket_address"`
			} `json:"local_address"`
		} `json:"listener_statuses"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&dump); err != nil {
		return "", err
	}
	for _, l := range dump.ListenerStatuses {
		if sa := l.LocalAddress.SocketAddress; sa.PortValue != 0 {
			return net.JoinHostPort(sa.Address, strconv.Itoa(sa.PortValue)), nil
		}
	}
	return "", errors.New("envoy listener not bound")
}

// stat reads one counter or gauge from /stats (text format).
func (e *envoy) stat(name string) (uint64, bool) {
	resp, err := http.Get("http://" + e.admin + "/stats?filter=" + regexp.QuoteMeta(name) + "$")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+": "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
