package wasmhost

import (
	"os"
	"path/filepath"
	"testing"
)

// ModulePath is where `make build` puts module name: $MESHWASM_BUILD/<name>.wasm,
// or build/<name>.wasm at the repository root.
func ModulePath(t testing.TB, name string) string {
	t.Helper()
	if dir := os.Getenv("MESHWASM_BUILD"); dir != "" {
		return filepath.Join(dir, name+".wasm")
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "build", name+".wasm")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("wasmhost: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Load is New(t, ModulePath(t, name)).
func Load(t testing.TB, name string) *Host {
	t.Helper()
	return New(t, ModulePath(t, name))
}
