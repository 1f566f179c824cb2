// Package harness owns the native end-to-end topology: stock Envoy (from PyPI, see
// scripts/ensure-envoy.sh) in front of two echo services (v1, v2), optionally with
// downstream mTLS and a chain of meshwasm wasm filters, all as local processes on
// loopback ports that the kernel picks.
//
// A test calls Start, talks to Envoy through Topology.URL and Topology.Client, and
// asserts on effects: status, headers, the echo version that answered (EchoReply),
// admin counters (Topology.Stat). Envoy's and the services' logs are printed when the
// test fails; every process is stopped when the test ends.
//
// The rendered bootstrap mirrors envoy/base/envoy.yaml and e2e/compose/envoy.yaml.
// See https://www.envoyproxy.io/docs/envoy/v1.40.0/configuration/overview/bootstrap
package harness

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TLSMode selects what the Envoy listener speaks downstream.
type TLSMode int

const (
	// Plaintext is HTTP/1.1 or h2c without TLS.
	Plaintext TLSMode = iota
	// TLSOptionalClientCert serves TLS and validates a client certificate when one is
	// presented; requests without one reach the filters (to test authz denials).
	TLSOptionalClientCert
	// TLSRequireClientCert refuses handshakes without a valid client certificate.
	TLSRequireClientCert
)

// Options configures a topology. The zero value is plaintext Envoy, two workers, no
// wasm filters.
type Options struct {
	// Workers is Envoy's --concurrency; each worker runs its own wasm VM. Default 2.
	Workers int
	TLS     TLSMode
	// Filters are chained in order before the router.
	Filters []WasmFilter
	// Clusters are extra upstreams for filter callouts.
	Clusters []Cluster
	// LogLevel is Envoy's --log-level (default "info"); ComponentLogLevel is passed as
	// --component-log-level when set, e.g. "wasm:debug".
	LogLevel, ComponentLogLevel string
	// RawPaths turns off Envoy's path normalization; see Bootstrap.RawPaths.
	RawPaths bool
	// StartTimeout bounds readiness of all processes. Default 90s: V8 compiles each
	// Go module once per VM (main thread + each worker): 3 s on an idle 2-core
	// machine, 18 s seen on a loaded one.
	StartTimeout time.Duration
}

// Topology is a running Envoy with its upstreams. Methods fail the test on errors.
type Topology struct {
	t         testing.TB
	dir       string
	tls       TLSMode
	pki       *PKI
	adminAddr string
	listener  string
	services  map[string]string // echo-v1 → 127.0.0.1:port
	envoy     *Process
	startup   time.Duration
}

// Start launches the echo services and Envoy and waits until all are ready. The
// topology stops when the test ends.
func Start(t testing.TB, o Options) *Topology {
	t.Helper()
	if o.Workers == 0 {
		o.Workers = 2
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 90 * time.Second
	}
	envoyBin := EnvoyBinary(t)
	topo := &Topology{t: t, dir: t.TempDir(), tls: o.TLS, services: map[string]string{}}
	deadline := time.Now().Add(o.StartTimeout)

	var procs []*Process
	logOnFailure(t, &procs)
	topo.startEchoes(t, deadline, &procs)

	boot := Bootstrap{
		AdminAddr:    "127.0.0.1:0",
		ListenerAddr: "127.0.0.1:0",
		V1Addr:       topo.services["echo-v1"],
		V2Addr:       topo.services["echo-v2"],
		Clusters:     o.Clusters,
		Filters:      o.Filters,
		RawPaths:     o.RawPaths,
	}
	if o.TLS != Plaintext {
		topo.pki = NewPKI(t)
		cert, key := topo.pki.ServerCert(t)
		boot.TLS = &ServerTLS{
			CertFile:          topo.writeFile("server.pem", cert),
			KeyFile:           topo.writeFile("server-key.pem", key),
			CAFile:            topo.writeFile("ca.pem", topo.pki.CAPEM()),
			RequireClientCert: o.TLS == TLSRequireClientCert,
		}
	}
	yaml, err := boot.Render()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	config := topo.writeFile("envoy.yaml", yaml)

	topo.startEnvoy(t, envoyBin, config, o.Workers, o.LogLevel, o.ComponentLogLevel, deadline, &procs)
	t.Logf("harness: envoy ready in %v (admin %s, listener %s, workers %d)", topo.startup.Round(time.Millisecond), topo.adminAddr, topo.listener, o.Workers)
	return topo
}

func (topo *Topology) waitReady(deadline time.Time, adminFile string, procs []*Process) error {
	if err := poll(deadline, "envoy admin address", procs, func() (err error) {
		topo.adminAddr, err = readAddr(adminFile)
		return err
	}); err != nil {
		return err
	}
	admin := &http.Client{Timeout: 2 * time.Second}
	// /ready turns 200 once the static listeners and clusters (and the wasm VMs they
	// need) are initialized.
	if err := poll(deadline, "envoy /ready", procs, func() error {
		_, err := get(admin, "http://"+topo.adminAddr+"/ready")
		return err
	}); err != nil {
		return err
	}
	if err := poll(deadline, "envoy listener address", procs, func() (err error) {
		topo.listener, err = topo.listenerAddr(admin)
		return err
	}); err != nil {
		return err
	}
	for name, addr := range topo.services {
		if err := poll(deadline, name+" /healthz", procs, func() error {
			_, err := get(admin, "http://"+addr+"/healthz")
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// listenerAddr reads the port Envoy bound for port 0 from the admin listener dump.
func (topo *Topology) listenerAddr(c *http.Client) (string, error) {
	body, err := get(c, "http://"+topo.adminAddr+"/listeners?format=json")
	if err != nil {
		return "", err
	}
	var dump struct {
		ListenerStatuses []struct {
			Name         string `json:"name"`
			LocalAddress struct {
				SocketAddress struct {
					Address   string `json:"address"`
					PortValue int    `json:"port_value"`
				} `json:"socket_address"`
			} `json:"local_address"`
		} `json:"listener_statuses"`
	}
	if err := json.Unmarshal(body, &dump); err != nil {
		return "", fmt.Errorf("listeners: %w", err)
	}
	for _, l := range dump.ListenerStatuses {
		if l.Name == ListenerName && l.LocalAddress.SocketAddress.PortValue != 0 {
			sa := l.LocalAddress.SocketAddress
			return net.JoinHostPort(sa.Address, strconv.Itoa(sa.PortValue)), nil
		}
	}
	return "", fmt.Errorf("listeners: %s not bound yet: %s", ListenerName, body)
}

// URL returns Envoy's listener URL for path, e.g. URL("/orders?id=1").
func (topo *Topology) URL(path string) string {
	scheme := "http"
	if topo.tls != Plaintext {
		scheme = "https"
	}
	return scheme + "://" + topo.listener + path
}

// AdminURL returns the URL of an Envoy admin endpoint, e.g. AdminURL("/stats").
func (topo *Topology) AdminURL(path string) string { return "http://" + topo.adminAddr + path }

// ServiceAddr returns the host:port of a service ("echo-v1", "echo-v2"), to call it
// without Envoy in between.
func (topo *Topology) ServiceAddr(name string) string {
	addr, ok := topo.services[name]
	if !ok {
		topo.t.Fatalf("harness: no service %q", name)
	}
	return addr
}

// EnvoyLog returns what Envoy has logged so far. Tests assert on effects; the log is
// for what only the log says, such as why Envoy refused a configuration.
func (topo *Topology) EnvoyLog() string {
	b, err := os.ReadFile(topo.envoy.logPath)
	if err != nil {
		topo.t.Fatalf("harness: envoy log: %v", err)
	}
	return string(b)
}

// StartupTime is how long Envoy took from exec to ready.
func (topo *Topology) StartupTime() time.Duration { return topo.startup }

// PKI returns the CA behind the TLS listener, or nil for Plaintext.
func (topo *Topology) PKI() *PKI { return topo.pki }

// Client returns an HTTP client for URL that presents no client certificate. With TLS
// it trusts the topology's CA.
func (topo *Topology) Client() *http.Client { return topo.client(nil) }

// ClientAs returns an HTTP client presenting a certificate for spiffeID signed by the
// topology's CA. It needs a TLS topology.
func (topo *Topology) ClientAs(spiffeID string) *http.Client {
	topo.t.Helper()
	if topo.pki == nil {
		topo.t.Fatalf("harness: ClientAs(%q) needs Options.TLS", spiffeID)
	}
	cert := topo.pki.ClientCert(topo.t, spiffeID)
	return topo.client(&cert)
}

// ClientWith returns an HTTP client presenting cert, e.g. one from another PKI.
func (topo *Topology) ClientWith(cert tls.Certificate) *http.Client { return topo.client(&cert) }

func (topo *Topology) client(cert *tls.Certificate) *http.Client {
	tr := &http.Transport{
		// Each client owns its connections, so a client's identity never leaks into
		// another client's requests through a pooled connection.
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	if topo.pki != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: topo.pki.CertPool(), MinVersion: tls.VersionTLS12}
		if cert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
		}
	}
	topo.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

// Stat returns the value of an admin counter or gauge by its exact name, e.g.
// "cluster.v2.upstream_rq_total"; ok is false when Envoy has no such stat (yet).
func (topo *Topology) Stat(name string) (value uint64, ok bool) {
	topo.t.Helper()
	q := url.Values{"filter": {"^" + regexp.QuoteMeta(name) + "$"}}
	body, err := get(&http.Client{Timeout: 5 * time.Second}, topo.AdminURL("/stats?"+q.Encode()))
	if err != nil {
		topo.t.Fatalf("harness: stat %s: %v", name, err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		k, v, found := strings.Cut(line, ": ")
		if !found || k != name {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			topo.t.Fatalf("harness: stat %s is not a counter or gauge: %q", name, v)
		}
		return n, true
	}
	return 0, false
}

// EchoReply is the JSON body of the echo service.
type EchoReply struct {
	Version   string              `json:"version"`
	Method    string              `json:"method"`
	Host      string              `json:"host"`
	Path      string              `json:"path"`
	Query     string              `json:"query"`
	Headers   map[string][]string `json:"headers"`
	BodyBytes int64               `json:"bodyBytes"`
}

// Header returns the first value of a request header the upstream received.
func (r EchoReply) Header(name string) string { return http.Header(r.Headers).Get(name) }

// ReadEcho decodes and closes a response body produced by the echo service.
func ReadEcho(t testing.TB, resp *http.Response) EchoReply {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("harness: read echo reply: %v", err)
	}
	var r EchoReply
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("harness: decode echo reply (status %d): %v: %s", resp.StatusCode, err, body)
	}
	return r
}

func (topo *Topology) writeFile(name string, content []byte) string {
	path := filepath.Join(topo.dir, name)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		topo.t.Fatalf("harness: %v", err)
	}
	return path
}

func readAddr(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	addr := strings.TrimSpace(string(b))
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return addr, nil
}

func get(c *http.Client, u string) ([]byte, error) {
	resp, err := c.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d: %s", u, resp.StatusCode, bytes.TrimSpace(body))
	}
	return body, nil
}

// logOnFailure prints every process's log if the test fails. Registered before
// any process starts, it runs after they are all stopped and their logs are
// complete (cleanups run last-in first-out); procs may grow after the call.
func logOnFailure(t testing.TB, procs *[]*Process) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, p := range *procs {
			t.Logf("---- %s log (%s) ----\n%s", p.name, p.logPath, p.Tail(256<<10))
		}
	})
}

// startEchoes starts the v1 and v2 upstreams. Port 0 everywhere: the processes
// bind and report their ports, so there is no window in which another worker
// on the machine can take a port we picked.
func (topo *Topology) startEchoes(t testing.TB, deadline time.Time, procs *[]*Process) {
	echoBin := serviceBinary(t, "echo")
	for _, version := range []string{ClusterV1, ClusterV2} {
		name := "echo-" + version
		addrFile := filepath.Join(topo.dir, name+".addr")
		p := startProcess(t, name, filepath.Join(topo.dir, name+".log"), nil, echoBin,
			"-listen", "127.0.0.1:0", "-version", version, "-addr-file", addrFile)
		*procs = append(*procs, p)
		var addr string
		if err := poll(deadline, name+" address", []*Process{p}, func() (err error) {
			addr, err = readAddr(addrFile)
			return err
		}); err != nil {
			t.Fatalf("harness: %v", err)
		}
		topo.services[name] = addr
	}
}

// startEnvoy runs Envoy on a rendered bootstrap and waits until it and every
// process in procs are ready, adding itself to procs; it records the
// startup time.
func (topo *Topology) startEnvoy(t testing.TB, envoyBin, config string, workers int, logLevel, componentLogLevel string, deadline time.Time, procs *[]*Process) {
	adminFile := filepath.Join(topo.dir, "admin.addr")
	args := []string{
		"--config-path", config,
		"--concurrency", strconv.Itoa(workers),
		"--log-level", logLevel,
		"--admin-address-path", adminFile,
		// Hot restart uses shared memory keyed by base id: several Envoys on one
		// machine (parallel tests, other workers) would collide.
		"--disable-hot-restart",
	}
	if componentLogLevel != "" {
		args = append(args, "--component-log-level", componentLogLevel)
	}
	began := time.Now()
	topo.envoy = startProcess(t, "envoy", filepath.Join(topo.dir, "envoy.log"), nil, envoyBin, args...)
	*procs = append(*procs, topo.envoy) // its log, too, is dumped on failure
	if err := topo.waitReady(deadline, adminFile, *procs); err != nil {
		t.Fatalf("harness: %v", err)
	}
	topo.startup = time.Since(began)
}
