// Command demo runs the meshwasm chain on this machine and shows what each filter
// does: stock Envoy with envoy/chain/envoy-suite.yaml (tracing → authz → ratelimit →
// canary from build/suite.wasm, one VM per worker), echo v1 and v2 behind it,
// envoyproxy/ratelimit with Redis, and a throwaway CA for SPIFFE client certificates.
// It sends a short script of requests, prints a table of what came back and the
// filters' counters, and stops everything.
//
//	make demo                 # go run ./e2e/cmd/demo
//	make demo KEEP=1          # --keep: leave it running for curl, stop on Ctrl-C
//	make demo DEMO=compose    # --compose: the same with e2e/docker-compose.yaml,
//	                          # or the commands to run it where Docker is missing
//	go run ./e2e/cmd/demo --certs DIR   # only write a CA, server and client certificates
//
// The native topology is the e2e harness's (e2e/harness): the same processes, ports
// picked by the kernel, readiness by polling, logs printed on failure.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/meshwasm/meshwasm/e2e/harness"
)

// The chain bootstrap and what it names; e2e/chain_test.go runs the same file.
const (
	chainFile     = "envoy/chain/envoy-suite.yaml"
	composeFile   = "e2e/docker-compose.yaml"
	composeCerts  = "e2e/.run/certs"
	limitsFile    = "e2e/compose/ratelimit/config.yaml"
	workers       = 2
	composeListen = "127.0.0.1:10000"
	composeAdmin  = "127.0.0.1:9901"
)

// Client identities: authz lets namespace "shop" in. The script uses frontend, batch
// and intruder; shell is left for curl, with its quota untouched.
var identities = map[string]string{
	"frontend": "spiffe://cluster.local/ns/shop/sa/frontend",
	"batch":    "spiffe://cluster.local/ns/shop/sa/batch",
	"intruder": "spiffe://cluster.local/ns/guest/sa/intruder",
	"shell":    "spiffe://cluster.local/ns/shop/sa/shell",
}

func main() {
	keep := flag.Bool("keep", false, "leave the topology running for curl; Ctrl-C stops it")
	compose := flag.Bool("compose", os.Getenv("DEMO") == "compose", "use docker compose (e2e/docker-compose.yaml); default from DEMO=compose")
	certs := flag.String("certs", "", "write a throwaway CA, a server certificate and client certificates into this directory, then exit")
	verbose := flag.Bool("v", false, "print the harness's progress lines")
	flag.Parse()

	t := &tb{verbose: *verbose}
	code := t.run(func() {
		root := harness.RepoRoot(t)
		switch {
		case *certs != "":
			writePKI(t, harness.NewPKI(t), *certs)
			fmt.Printf("certificates written to %s\n", *certs)
		case *compose:
			runCompose(t, root, *keep)
		default:
			runNative(t, root, *keep)
		}
	})
	harness.RemoveBinaries()
	os.Exit(code)
}

// runNative starts the chain from the harness and runs the script.
func runNative(t *tb, root string, keep bool) {
	fmt.Println("meshwasm demo: starting envoyproxy/ratelimit + Redis, echo v1/v2 and Envoy with", chainFile)
	limits, err := os.ReadFile(filepath.Join(root, limitsFile))
	if err != nil {
		t.Fatalf("%v", err)
	}
	rl := harness.StartRateLimit(t, string(limits))
	suite := `"` + harness.WasmModule(t, "suite.wasm") + `"`
	topo := harness.StartFile(t, harness.FileOptions{
		File:    chainFile,
		Workers: workers,
		TLS:     harness.TLSOptionalClientCert,
		Replace: func(services map[string]string) map[string]string {
			m := map[string]string{
				`"build/suite.wasm"`:                     suite,
				harness.SocketAddress("127.0.0.1:10000"): harness.SocketAddress("127.0.0.1:0"),
				harness.SocketAddress("127.0.0.1:9901"):  harness.SocketAddress("127.0.0.1:0"),
				harness.SocketAddress("127.0.0.1:8081"):  harness.SocketAddress(services["echo-v1"]),
				harness.SocketAddress("127.0.0.1:8082"):  harness.SocketAddress(services["echo-v2"]),
				harness.SocketAddress("127.0.0.1:8080"):  harness.SocketAddress(rl.HTTPAddr()),
			}
			for _, name := range []string{"server.pem", "server-key.pem", "ca.pem"} {
				m[`"`+composeCerts+`/`+name+`"`] = `"` + services[name] + `"`
			}
			return m
		},
	})
	fmt.Printf("Envoy ready in %v (2 workers)\n\n", topo.StartupTime().Round(time.Millisecond))

	target := &target{
		url:   topo.URL,
		admin: topo.AdminURL(""),
		client: func(who string) *http.Client {
			if who == "" {
				return topo.Client()
			}
			return topo.ClientAs(identities[who])
		},
	}
	runScript(t, target)
	if !keep {
		fmt.Println("\nStopping (make demo KEEP=1 leaves it running).")
		return
	}
	dir := t.TempDir()
	writeClientCerts(t, topo.PKI(), dir)
	printCurl("The chain is running:", topo.URL(""), topo.AdminURL(""), dir)
	fmt.Println("\nPress Ctrl-C to stop.")
	t.waitForInterrupt()
	fmt.Println("\nStopping.")
}

// runCompose runs the script against e2e/docker-compose.yaml, or prints how to.
func runCompose(t *tb, root string, keep bool) {
	certDir := filepath.Join(root, composeCerts)
	pki := harness.NewPKI(t)
	writePKI(t, pki, certDir)
	up := []string{"docker", "compose", "-f", composeFile, "up", "--build", "--detach"}
	down := []string{"docker", "compose", "-f", composeFile, "down"}
	if !dockerAvailable() {
		fmt.Printf("Docker is not available here. Certificates are in %s; with Docker, run from %s:\n\n", composeCerts, root)
		fmt.Println("  make build")
		fmt.Println("  " + strings.Join(up[:len(up)-1], " "))
		printCurl("Once it is up:", "https://"+composeListen, "http://"+composeAdmin, composeCerts)
		fmt.Println("\nStop it with:\n  " + strings.Join(down, " "))
		return
	}
	fmt.Println("meshwasm demo: " + strings.Join(up, " "))
	sh(t, root, up...)
	t.Cleanup(func() {
		if !keep {
			fmt.Println("\n" + strings.Join(down, " "))
			sh(t, root, down...)
		}
	})
	admin := "http://" + composeAdmin
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		resp, err := c.Get(admin + "/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("compose Envoy not ready at %s/ready: %v", admin, err)
		}
		time.Sleep(250 * time.Millisecond) // polling interval
	}
	target := &target{
		url:   func(path string) string { return "https://" + composeListen + path },
		admin: admin,
		client: func(who string) *http.Client {
			cfg := &tls.Config{RootCAs: pki.CertPool(), MinVersion: tls.VersionTLS12}
			if who != "" {
				cfg.Certificates = []tls.Certificate{pki.ClientCert(t, identities[who])}
			}
			return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		},
	}
	runScript(t, target)
	if keep {
		printCurl("The chain is running:", "https://"+composeListen, admin, certDir)
		fmt.Println("The compose project keeps running; stop it with: " + strings.Join(down, " "))
	}
}

func dockerAvailable() bool {
	if _, err := exec.LookPath("docker"); err != nil {
		return false
	}
	return exec.Command("docker", "info").Run() == nil && exec.Command("docker", "compose", "version").Run() == nil
}

func sh(t *tb, dir string, args ...string) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
}

// target is a running chain, native or compose.
type target struct {
	url    func(path string) string
	admin  string
	client func(identity string) *http.Client // "" presents no certificate

	mu      sync.Mutex
	clients map[string]*http.Client
}

func (tg *target) clientFor(who string) *http.Client {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if tg.clients == nil {
		tg.clients = map[string]*http.Client{}
	}
	c, ok := tg.clients[who]
	if !ok {
		c = tg.client(who)
		tg.clients[who] = c
	}
	return c
}

// step is one scripted request.
type step struct {
	who     string // identity; "" for no client certificate
	method  string
	path    string
	headers []string
	shows   string // what the step demonstrates
	trace   bool   // show the trace context the upstream received
}

const (
	callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerB3    = "463ac35c9f6413ad"
)

var script = []step{
	{who: "frontend", method: "GET", path: "/orders", headers: []string{"x-user-id", "42"}, shows: "even user id → v2"},
	{who: "frontend", method: "GET", path: "/orders", headers: []string{"x-canary", "true"}, shows: "x-canary: true → v2"},
	{who: "frontend", method: "GET", path: "/orders", headers: []string{"x-user-id", "7", "x-route-version", "v2"}, shows: "odd user → 90/10 split; client's x-route-version replaced"},
	{who: "frontend", method: "GET", path: "/orders", headers: []string{"traceparent", "00-" + callerTrace + "-00f067aa0ba902b7-01"}, shows: "W3C caller: trace continues", trace: true},
	{who: "frontend", method: "GET", path: "/orders", headers: []string{"b3", callerB3 + "-a2fb4a1d1a96d312-1"}, shows: "B3 caller: same trace", trace: true},
	{who: "", method: "GET", path: "/orders", shows: "no client certificate, no identity"},
	{who: "intruder", method: "GET", path: "/orders", shows: "namespace guest is not allowed"},
	{who: "batch", method: "GET", path: "/admin", shows: "DENY policy on /admin; no quota spent"},
	{who: "batch", method: "GET", path: "/orders/1", shows: "5 per minute per identity"},
	{who: "batch", method: "GET", path: "/orders/2"},
	{who: "batch", method: "GET", path: "/orders/3"},
	{who: "batch", method: "GET", path: "/orders/4"},
	{who: "batch", method: "GET", path: "/orders/5", shows: "the 5th"},
	{who: "batch", method: "GET", path: "/orders/6", shows: "the 6th is refused"},
}

var rateLimitRemaining = regexp.MustCompile(`;r=(\d+);`)

func runScript(t *tb, tg *target) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "#\tCLIENT\tREQUEST\tSTATUS\tSERVED BY\tTRACE ID\tQUOTA\tWHAT IT SHOWS")
	for i, s := range script {
		req, err := http.NewRequest(s.method, tg.url(s.path), nil)
		if err != nil {
			t.Fatalf("%v", err)
		}
		var hs []string
		for j := 0; j+1 < len(s.headers); j += 2 {
			req.Header.Set(s.headers[j], s.headers[j+1])
			hs = append(hs, s.headers[j]+": "+abbreviate(s.headers[j+1], 20))
		}
		resp, err := tg.clientFor(s.who).Do(req)
		if err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
		who := s.who
		if who == "" {
			who = "(no cert)"
		}
		request := s.method + " " + s.path
		if len(hs) > 0 {
			request += " " + strings.Join(hs, ", ")
		}
		served, quota, notes := explain(resp, body)
		if s.shows != "" {
			notes = append([]string{s.shows}, notes...)
		}
		if s.trace {
			notes = append(notes, upstreamTrace(resp, body))
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", i+1, who, request, resp.StatusCode, served,
			resp.Header.Get("x-trace-id"), quota, strings.Join(notes, "; "))
	}
	_ = w.Flush()
	printStats(t, tg)
}

// explain reads what each filter did to one request from what came back: the
// upstream that answered (canary), the quota left (ratelimit), why it was refused
// (authz, ratelimit) and, for a caller's trace context, what the upstream received
// (tracing).
func explain(resp *http.Response, body []byte) (served, quota string, notes []string) {
	served, quota = "-", "-"
	var echo harness.EchoReply
	if resp.Header.Get("X-Served-By") != "" && json.Unmarshal(body, &echo) == nil {
		served = echo.Version
	}
	if m := rateLimitRemaining.FindStringSubmatch(resp.Header.Get("RateLimit")); m != nil {
		quota = m[1] + " left"
	}
	switch resp.StatusCode {
	case http.StatusForbidden:
		notes = append(notes, "authz: "+strings.TrimSpace(string(body)))
	case http.StatusTooManyRequests:
		quota = "429"
		notes = append(notes, "ratelimit: Retry-After "+resp.Header.Get("Retry-After")+"s")
	}
	return served, quota, notes
}

// upstreamTrace says what the upstream received from tracing: the trace id of the
// response in both formats (a 64-bit B3 id stays 64-bit in B3).
func upstreamTrace(resp *http.Response, body []byte) string {
	var echo harness.EchoReply
	if json.Unmarshal(body, &echo) != nil {
		return "no upstream"
	}
	up := http.Header(echo.Headers)
	parts := strings.Split(up.Get("traceparent"), "-")
	trace, b3 := resp.Header.Get("x-trace-id"), up.Get("x-b3-traceid")
	if len(parts) != 4 || parts[1] != trace || !strings.HasSuffix(trace, b3) || b3 == "" {
		return fmt.Sprintf("upstream got traceparent %q, x-b3-traceid %q", up.Get("traceparent"), b3)
	}
	return "upstream got it in traceparent and as X-B3-TraceId " + b3
}

func abbreviate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// printStats shows the counters behind the table, from Envoy's admin /stats.
func printStats(t *tb, tg *target) {
	resp, err := http.Get(tg.admin + "/stats?filter=" + url.QueryEscape(`^(wasmcustom\.meshwasm|wasm\.envoy\.wasm\.runtime|cluster\.v[12]\.upstream_rq_total$)`))
	if err != nil {
		t.Fatalf("admin /stats: %v", err)
	}
	raw, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatalf("admin /stats: %v", err)
	}
	stats := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			stats[k] = v
		}
	}
	get := func(name string) string {
		if v, ok := stats[name]; ok {
			return v
		}
		return "?"
	}
	m := "wasmcustom.meshwasm."
	fmt.Println("\nCounters (Envoy admin /stats):")
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	rows := [][2]string{
		{"wasm VMs", get("wasm.envoy.wasm.runtime.v8.active") + " active = 1 per worker × " + strconv.Itoa(workers) + " + main thread + base VM: one Go runtime per worker for all four filters"},
		{"tracing", "orders: " + get(m+"tracing.orders.rq_2xx") + " 2xx, " + get(m+"tracing.orders.rq_4xx") + " 4xx; other paths: " + get(m+"tracing.default.rq_4xx") + " 4xx"},
		{"authz", "shop-orders allowed " + get(m+"authz.shop-orders.allowed") + ", deny-admin denied " + get(m+"authz.deny-admin.denied") + ", denied by default " + get(m+"authz.default.denied")},
		{"ratelimit", "per-client allowed " + get(m+"ratelimit.per-client.allowed") + ", limited " + get(m+"ratelimit.per-client.limited") +
			"; global-per-ip (envoyproxy/ratelimit) allowed " + get(m+"ratelimit.global-per-ip.allowed") + ", errors " + get(m+"ratelimit.global-per-ip.global_errors")},
		{"canary", "v1 " + get(m+"canary.v1.routed") + ", v2 " + get(m+"canary.v2.routed") + " (rules: header-canary " + get(m+"canary.header-canary.matched") +
			", even-users " + get(m+"canary.even-users.matched") + ", weighted " + get(m+"canary.weighted.matched") + "); spoofed headers replaced " + get(m+"canary.spoofed_header")},
		{"upstreams", "v1 " + get("cluster.v1.upstream_rq_total") + ", v2 " + get("cluster.v2.upstream_rq_total") + " requests"},
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %s\t%s\n", r[0], r[1])
	}
	_ = w.Flush()
}

// printCurl prints how to talk to a running chain by hand.
func printCurl(heading, listener, admin, certDir string) {
	listener = strings.TrimSuffix(listener, "/")
	fmt.Printf(`
%[4]s
  listener  %[1]s   (TLS; optional client certificates)
  admin     %[2]s/stats, %[2]s/config_dump
  certs     %[3]s: ca.pem, and <name>.pem + <name>-key.pem for
            shell, frontend, batch (namespace shop) and intruder (namespace guest)

Try (shell's quota is untouched: 5 requests per minute):
  D=%[3]s
  curl -si --cacert $D/ca.pem --cert $D/shell.pem --key $D/shell-key.pem -H 'x-user-id: 42' %[1]s/orders
  curl -si --cacert $D/ca.pem --cert $D/shell.pem --key $D/shell-key.pem -H 'b3: 463ac35c9f6413ad-a2fb4a1d1a96d312-1' %[1]s/orders
  curl -si --cacert $D/ca.pem --cert $D/intruder.pem --key $D/intruder-key.pem %[1]s/orders   # 403
  curl -si --cacert $D/ca.pem %[1]s/orders                                                   # 403: no identity
  for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w '%%{http_code} ' --cacert $D/ca.pem --cert $D/shell.pem --key $D/shell-key.pem %[1]s/orders; done; echo
  curl -s %[2]s/stats | grep -e wasmcustom.meshwasm -e wasm.envoy.wasm.runtime
`, listener, admin, certDir, heading)
}

// writePKI writes the CA, a server certificate for 127.0.0.1/localhost and the
// clients' certificates: what the chain bootstraps and curl need.
func writePKI(t *tb, pki *harness.PKI, dir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("%v", err)
	}
	cert, key := pki.ServerCert(t)
	// Readable by the Envoy container's user (docker compose mounts this directory):
	// a throwaway key for a local demo, made again on every run.
	writeFile(t, filepath.Join(dir, "server.pem"), cert, 0o644)
	writeFile(t, filepath.Join(dir, "server-key.pem"), key, 0o644)
	writeClientCerts(t, pki, dir)
}

func writeClientCerts(t *tb, pki *harness.PKI, dir string) {
	writeFile(t, filepath.Join(dir, "ca.pem"), pki.CAPEM(), 0o644)
	names := make([]string, 0, len(identities))
	for name := range identities {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c := pki.ClientCert(t, identities[name])
		key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
		if err != nil {
			t.Fatalf("%v", err)
		}
		writeFile(t, filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o644)
		writeFile(t, filepath.Join(dir, name+"-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600)
	}
}

func writeFile(t *tb, path string, data []byte, mode os.FileMode) {
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatalf("%v", err)
	}
	if err := os.Chmod(path, mode); err != nil { // an older file keeps its mode otherwise
		t.Fatalf("%v", err)
	}
}

// tb lets the e2e harness, written for tests, run in a program. It implements the
// methods the harness calls (Helper, Logf, Fatalf, Cleanup, TempDir, Failed); the
// embedded interface is nil, so any other method would panic.
type tb struct {
	testing.TB
	verbose bool

	mu        sync.Mutex
	cleanups  []func()
	failed    bool
	waiting   bool          // an interrupt is expected (--keep) rather than fatal
	interrupt chan struct{} // closed on SIGINT/SIGTERM while waiting
	cleaned   sync.Once
}

// waitForInterrupt blocks until Ctrl-C (or SIGTERM).
func (t *tb) waitForInterrupt() {
	t.mu.Lock()
	t.waiting = true
	t.mu.Unlock()
	<-t.interrupt
}

// errFatal unwinds the program from Fatalf to run, as t.FailNow unwinds a test.
var errFatal = errors.New("demo: fatal")

func (t *tb) Helper()      {}
func (t *tb) Name() string { return "demo" }

func (t *tb) Logf(format string, args ...any) {
	t.mu.Lock()
	failed := t.failed
	t.mu.Unlock()
	// The harness logs its progress, and every process's log when something failed.
	if t.verbose || failed {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

func (t *tb) Fatalf(format string, args ...any) {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
	fmt.Fprintf(os.Stderr, "demo: "+format+"\n", args...)
	panic(errFatal)
}

func (t *tb) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

func (t *tb) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *tb) TempDir() string {
	dir, err := os.MkdirTemp("", "meshwasm-demo-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// cleanup stops everything, last registered first, once.
func (t *tb) cleanup() {
	t.cleaned.Do(func() {
		for {
			t.mu.Lock()
			n := len(t.cleanups)
			if n == 0 {
				t.mu.Unlock()
				return
			}
			f := t.cleanups[n-1]
			t.cleanups = t.cleanups[:n-1]
			t.mu.Unlock()
			f()
		}
	})
}

// run calls f and then the cleanups, also when f fails or the user interrupts, and
// returns the exit code.
func (t *tb) run(f func()) (code int) {
	t.interrupt = make(chan struct{})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		t.mu.Lock()
		waiting := t.waiting
		t.mu.Unlock()
		if waiting {
			close(t.interrupt)
			return
		}
		// Interrupted while starting or running the script: stop what runs.
		fmt.Fprintln(os.Stderr, "\ninterrupted: stopping")
		t.cleanup()
		harness.RemoveBinaries()
		os.Exit(130)
	}()
	defer func() {
		if r := recover(); r != nil {
			if r != errFatal {
				t.mu.Lock()
				t.failed = true
				t.mu.Unlock()
				fmt.Fprintf(os.Stderr, "demo: %v\n", r)
			}
			code = 1
		}
		signal.Stop(sig)
		t.cleanup()
	}()
	f()
	return 0
}
