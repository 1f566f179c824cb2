package harness

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RateLimitService is a running envoyproxy/ratelimit (the real service, built from a
// pinned commit by scripts/ensure-ratelimit.sh) backed by its own Debian redis-server
// (scripts/ensure-redis.sh). Both are local processes stopped when the test ends;
// their logs are printed when it fails.
//
// Redis listens on a unix socket only and the service's gRPC port is a unix socket
// too, so the one TCP port to pick is the HTTP JSON API that filters call.
// See https://github.com/envoyproxy/ratelimit#http-port
type RateLimitService struct {
	httpAddr string
}

// HTTPAddr is the loopback host:port of the service's HTTP port (POST /json,
// GET /healthcheck).
func (s *RateLimitService) HTTPAddr() string { return s.httpAddr }

// Cluster is the Envoy cluster for the service's HTTP port, named name.
func (s *RateLimitService) Cluster(name string) Cluster {
	return Cluster{Name: name, Addr: s.httpAddr}
}

// StartRateLimit starts redis-server and the ratelimit service with one limits file
// (the YAML of envoyproxy/ratelimit: domain, descriptors) and waits until the service
// answers /healthcheck.
func StartRateLimit(t testing.TB, configYAML string) *RateLimitService {
	t.Helper()
	redisBin := ensureTool(t, "redis", "ensure-redis.sh")
	serviceBin := ensureTool(t, "ratelimit", "ensure-ratelimit.sh")
	// Unix socket paths are limited to 108 bytes: t.TempDir() can be longer.
	dir, err := os.MkdirTemp("", "meshwasm-rl-")
	if err != nil {
		t.Fatalf("ratelimit: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	deadline := time.Now().Add(60 * time.Second)

	var procs []*Process
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, p := range procs {
			t.Logf("---- %s log (%s) ----\n%s", p.name, p.logPath, p.Tail(64<<10))
		}
	})

	sock := filepath.Join(dir, "redis.sock")
	redis := startProcess(t, "redis", filepath.Join(dir, "redis.log"), nil, redisBin,
		"--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", dir)
	procs = append(procs, redis)
	if err := poll(deadline, "redis PING", procs, func() error { return redisPing(sock) }); err != nil {
		t.Fatalf("ratelimit: %v", err)
	}

	// Layout: $RUNTIME_ROOT/$RUNTIME_SUBDIRECTORY/$RUNTIME_APPDIRECTORY/*.yaml.
	configDir := filepath.Join(dir, "runtime", "ratelimit", "config")
	if err := os.MkdirAll(configDir, 0o700); err != nil {
		t.Fatalf("ratelimit: %v", err)
	}
	if err := os.WriteFile(filepath.Join(configDir, "limits.yaml"), []byte(configYAML), 0o600); err != nil {
		t.Fatalf("ratelimit: %v", err)
	}

	// The service takes fixed ports from its environment and binds them with
	// SO_REUSEPORT, so pick a free port and retry with another if it is taken.
	client := &http.Client{Timeout: 2 * time.Second}
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("ratelimit: %v", err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		env := []string{
			"USE_STATSD=false",
			"LOG_LEVEL=info",
			"REDIS_SOCKET_TYPE=unix",
			"REDIS_URL=" + sock,
			"RUNTIME_ROOT=" + filepath.Join(dir, "runtime"),
			"RUNTIME_SUBDIRECTORY=ratelimit",
			"RUNTIME_APPDIRECTORY=config",
			"RUNTIME_WATCH_ROOT=false",
			"HOST=127.0.0.1",
			"PORT=" + strconv.Itoa(port),
			"GRPC_UDS=" + filepath.Join(dir, "grpc.sock"),
			"DEBUG_HOST=127.0.0.1",
			"DEBUG_PORT=0",
		}
		svc := startProcess(t, "ratelimit", filepath.Join(dir, fmt.Sprintf("ratelimit-%d.log", attempt)), env, serviceBin)
		procs = append(procs, svc)
		err = poll(deadline, "ratelimit /healthcheck", []*Process{redis, svc}, func() error {
			_, err := get(client, "http://"+addr+"/healthcheck")
			return err
		})
		if err == nil {
			t.Logf("harness: ratelimit ready on %s (redis %s)", addr, sock)
			return &RateLimitService{httpAddr: addr}
		}
		if gone, _ := svc.Exited(); !gone || attempt == 3 {
			t.Fatalf("ratelimit: %v", err)
		}
		_ = os.Remove(filepath.Join(dir, "grpc.sock"))
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func redisPing(sock string) error {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("redis PING: %q", line)
	}
	return nil
}

var (
	toolMu    sync.Mutex
	toolPaths = map[string]string{}
)

// ensureTool runs scripts/<script> once per test binary (it installs the tool when
// missing and prints its path; the script honours an override variable such as
// RATELIMIT_BIN or REDIS_BIN).
func ensureTool(t testing.TB, name, script string) string {
	t.Helper()
	toolMu.Lock()
	defer toolMu.Unlock()
	if p, ok := toolPaths[name]; ok {
		return p
	}
	var stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(RepoRoot(t), "scripts", script))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/%s: %v: %s", script, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	path := lines[len(lines)-1]
	if err := executable(path); err != nil {
		t.Fatalf("scripts/%s: %v", script, err)
	}
	toolPaths[name] = path
	return path
}
