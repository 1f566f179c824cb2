package canary

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/internal/casstore"
)

// TestREADME_SeedsExample keeps the README's configuration honest: it parses
// and routes the way the seeds' VirtualService does.
func TestREADME_SeedsExample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(readme), "```json\n")
	require.True(t, ok, "README has a json block")
	config, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	r := mustParse(t, config)

	tests := []struct {
		name, rule, version string
		req                 *fakeRequest
	}{
		{name: "header canary", req: get("/api/orders", "x-canary", "true", "x-user-id", "7"), rule: "header-canary", version: "v2"},
		{name: "even user", req: get("/api/orders", "x-user-id", "1234"), rule: "even-users", version: "v2"},
		{name: "odd user", req: get("/api/orders", "x-user-id", "1235"), rule: "weighted"},
	}
	store := casstore.NewMemory()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := r.Decide(tc.req, Env{Now: epoch, Store: store})
			require.NoError(t, d.GuardErr)
			require.Equal(t, tc.rule, r.RuleNames()[d.Rule])
			if tc.version != "" {
				require.Equal(t, tc.version, d.Version)
			}
		})
	}

	// Odd users split 90/10.
	canary := 0
	req := get("/")
	const n = 20000
	for i := range n {
		req.headers["x-user-id"] = strconv.Itoa(2*i + 1)
		if r.Decide(req, Env{Now: epoch, Store: store}).Version == "v2" {
			canary++
		}
	}
	require.InDelta(t, 0.1, float64(canary)/n, 0.01)
}

// TestDeps keeps the core pure: no proxy-wasm SDK, nothing from filters/.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, dep := range strings.Fields(string(out)) {
		require.NotContains(t, dep, "proxy-wasm", dep)
		require.False(t, strings.HasPrefix(dep, "github.com/meshwasm/meshwasm/filters"), dep)
	}
}
