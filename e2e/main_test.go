//go:build e2e

package e2e

import (
	"testing"

	"github.com/meshwasm/meshwasm/e2e/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }
