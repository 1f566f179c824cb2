package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FileOptions runs Envoy on a hand-written bootstrap from the repository (e.g.
// envoy/tracing/envoy.yaml) instead of the rendered one, so that e2e tests exercise the
// very file users copy. The file must name its client-facing listener ListenerName.
type FileOptions struct {
	// File is the bootstrap, relative to the repository root.
	File string
	// Replace maps strings of the file to their replacement, given the running echo
	// services ("echo-v1", "echo-v2" → host:port): fixed ports become the services'
	// ports or 0, wasm paths become absolute. Every key must occur in the file. With
	// TLS the map also holds the PEM files the harness wrote: "server.pem",
	// "server-key.pem" and "ca.pem" → absolute paths.
	Replace func(services map[string]string) map[string]string
	// TLS says what the file's listener speaks. Any mode but Plaintext makes a
	// throwaway CA and a server certificate (see Replace) and gives the topology an
	// https URL, ClientAs and PKI, as with Options.TLS; whether a client certificate
	// is required is up to the file.
	TLS TLSMode
	// Workers, LogLevel, ComponentLogLevel and StartTimeout are as in Options.
	Workers                     int
	LogLevel, ComponentLogLevel string
	StartTimeout                time.Duration
}

// StartFile launches the echo services and Envoy on o.File and waits until all are
// ready, like Start. The topology stops when the test ends.
func StartFile(t testing.TB, o FileOptions) *Topology {
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
	raw, err := os.ReadFile(filepath.Join(RepoRoot(t), o.File))
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	envoyBin := EnvoyBinary(t)
	topo := &Topology{t: t, dir: t.TempDir(), tls: o.TLS, services: map[string]string{}}
	deadline := time.Now().Add(o.StartTimeout)
	files := map[string]string{}
	if o.TLS != Plaintext {
		topo.pki = NewPKI(t)
		cert, key := topo.pki.ServerCert(t)
		files["server.pem"] = topo.writeFile("server.pem", cert)
		files["server-key.pem"] = topo.writeFile("server-key.pem", key)
		files["ca.pem"] = topo.writeFile("ca.pem", topo.pki.CAPEM())
	}

	var procs []*Process
	logOnFailure(t, &procs)
	topo.startEchoes(t, deadline, &procs)

	config := string(raw)
	if o.Replace != nil {
		services := map[string]string{}
		for k, v := range topo.services {
			services[k] = v
		}
		for k, v := range files {
			services[k] = v
		}
		for old, repl := range o.Replace(services) {
			if !strings.Contains(config, old) {
				t.Fatalf("harness: %s does not contain %q", o.File, old)
			}
			config = strings.ReplaceAll(config, old, repl)
		}
	}
	path := topo.writeFile("envoy.yaml", []byte(config))
	topo.startEnvoy(t, envoyBin, path, o.Workers, o.LogLevel, o.ComponentLogLevel, deadline, &procs)
	t.Logf("harness: envoy (%s) ready in %v (admin %s, listener %s, workers %d)", o.File,
		topo.startup.Round(time.Millisecond), topo.adminAddr, topo.listener, o.Workers)
	return topo
}

// SocketAddress is how hand-written bootstraps spell a loopback address, e.g.
// SocketAddress("127.0.0.1:8081") is `{address: "127.0.0.1", port_value: 8081}`. Use it
// for FileOptions.Replace keys and values.
func SocketAddress(addr string) string {
	return `{address: "` + hostOf(addr) + `", port_value: ` + portOf(addr) + `}`
}

func hostOf(addr string) string { h, _, _ := strings.Cut(addr, ":"); return h }
func portOf(addr string) string { _, p, _ := strings.Cut(addr, ":"); return p }
