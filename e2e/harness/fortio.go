package harness

import "testing"

// FortioBinary returns the fortio load generator, installed at its pinned release by
// scripts/ensure-fortio.sh (go install into <repo>/.tools/bin, never into go.mod) on
// first use; $FORTIO_BIN overrides it.
func FortioBinary(t testing.TB) string {
	t.Helper()
	return ensureTool(t, "fortio", "ensure-fortio.sh")
}
