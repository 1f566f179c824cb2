//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/e2e/harness"
)

// TestBootstraps_EnvoyValidates runs the real Envoy in --mode validate on the
// hand-written bootstraps, so a field Envoy 1.40 rejects never reaches users. Validation
// loads the wasm modules (build/conformance.wasm, build/suite.wasm) and the compose
// certificates, made here.
func TestBootstraps_EnvoyValidates(t *testing.T) {
	envoy := harness.EnvoyBinary(t)
	module := harness.WasmModule(t, "conformance.wasm")
	suite := harness.WasmModule(t, "suite.wasm")
	root := harness.RepoRoot(t)
	certs := t.TempDir()
	pki := harness.NewPKI(t)
	cert, key := pki.ServerCert(t)
	for name, pem := range map[string][]byte{"server.pem": cert, "server-key.pem": key, "ca.pem": pki.CAPEM()} {
		require.NoError(t, os.WriteFile(filepath.Join(certs, name), pem, 0o600))
	}

	tests := []struct {
		name string
		file string
		// compose paths point into the container; map them onto this machine.
		replace map[string]string
	}{
		{name: "base", file: "envoy/base/envoy.yaml", replace: map[string]string{`"build/conformance.wasm"`: `"` + module + `"`}},
		{name: "compose", file: "e2e/compose/envoy.yaml", replace: map[string]string{
			`"/build/suite.wasm"`: `"` + suite + `"`, `"/etc/envoy/certs/`: `"` + certs + `/`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(root, tc.file))
			require.NoError(t, err)
			config := string(raw)
			for old, repl := range tc.replace {
				require.Contains(t, config, old)
				config = strings.ReplaceAll(config, old, repl)
			}
			path := filepath.Join(t.TempDir(), "envoy.yaml")
			require.NoError(t, os.WriteFile(path, []byte(config), 0o600))
			out, err := exec.Command(envoy, "--mode", "validate", "--disable-hot-restart", "--config-path", path).CombinedOutput()
			require.NoError(t, err, "%s", out)
			require.Contains(t, string(out), "OK")
		})
	}
}
