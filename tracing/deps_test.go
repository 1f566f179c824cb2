package tracing

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The core must stay pure: no proxy-wasm SDK, nothing from filters/.
func TestNoHostDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	require.NoError(t, err)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/meshwasm/meshwasm/internal/confjson")
	for _, d := range deps {
		require.NotContains(t, d, "proxy-wasm", d)
		require.False(t, strings.HasPrefix(d, "github.com/meshwasm/meshwasm/filters"), d)
		require.NotContains(t, d, "opentelemetry", "OTLP types are for tests only: %s", d)
	}
}
