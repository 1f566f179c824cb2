// Command echo is the upstream service of the e2e topology: it answers every request
// with a JSON description of what it received, so tests can assert on what Envoy and
// the wasm filters forwarded (headers added or removed, path rewritten, which version
// answered).
//
// Endpoints:
//
//	/healthz        200 "ok": readiness probe for the harness and docker compose
//	/status/<code>  answers with <code> (e.g. /status/503) and the usual JSON body
//	anything else   200 JSON, or the status in request header x-echo-status
//
// Every response carries X-Served-By: <version>.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// reply is the JSON body. harness.EchoReply decodes it; echo's tests keep them in sync.
type reply struct {
	Version   string              `json:"version"`
	Method    string              `json:"method"`
	Host      string              `json:"host"`
	Path      string              `json:"path"`
	Query     string              `json:"query"`
	Headers   map[string][]string `json:"headers"`
	BodyBytes int64               `json:"bodyBytes"`
}

// statusHeader lets a test pick the status without changing the path, so routes that
// match on path (authz, rate limits) see the same request.
const statusHeader = "X-Echo-Status"

func main() {
	listen := flag.String("listen", envOr("ECHO_LISTEN", "127.0.0.1:8080"), "listen address; port 0 picks a free port (env ECHO_LISTEN)")
	version := flag.String("version", envOr("ECHO_VERSION", "v1"), "version name reported in replies (env ECHO_VERSION)")
	addrFile := flag.String("addr-file", "", "write the bound address to this file once listening (for port 0)")
	probe := flag.String("probe", "", "GET this URL, exit 0 on 200: a health check for images without curl")
	flag.Parse()

	if *probe != "" {
		os.Exit(runProbe(*probe))
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("echo: listen %s: %v", *listen, err)
	}
	if *addrFile != "" {
		if err := writeAtomic(*addrFile, ln.Addr().String()); err != nil {
			log.Fatalf("echo: %v", err)
		}
	}
	log.Printf("echo %s listening on %s", *version, ln.Addr())

	srv := &http.Server{Handler: newHandler(*version), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("echo: %v", err)
	}
}

func newHandler(version string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Served-By", version)
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		status := http.StatusOK
		if s, ok := strings.CutPrefix(r.URL.Path, "/status/"); ok {
			status = parseStatus(s, status)
		}
		if s := r.Header.Get(statusHeader); s != "" {
			status = parseStatus(s, status)
		}
		n, _ := io.Copy(io.Discard, r.Body)
		body, err := json.Marshal(reply{
			Version:   version,
			Method:    r.Method,
			Host:      r.Host,
			Path:      r.URL.Path,
			Query:     r.URL.RawQuery,
			Headers:   r.Header,
			BodyBytes: n,
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("X-Served-By", version)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	})
	return mux
}

// parseStatus keeps def for anything that is not a valid HTTP status, so a typo in a
// test shows up as an unexpected 200 rather than a panic inside WriteHeader.
func parseStatus(s string, def int) int {
	code, err := strconv.Atoi(s)
	if err != nil || code < 100 || code > 599 {
		return def
	}
	return code
}

// writeAtomic renames into place so a poller never reads a half-written address.
func writeAtomic(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".addr-*")
	if err != nil {
		return fmt.Errorf("addr file: %w", err)
	}
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return fmt.Errorf("addr file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("addr file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("addr file: %w", err)
	}
	return nil
}

func runProbe(url string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "probe: status", resp.StatusCode)
		return 1
	}
	return 0
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
