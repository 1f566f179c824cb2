package canary_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	core "github.com/meshwasm/meshwasm/canary"
	"github.com/meshwasm/meshwasm/internal/exampleconf"
)

// The shipped Envoy and Istio examples must carry configurations the filter
// accepts: a typo there would only show as a plugin that fails to start.
func TestExamples_ConfigurationsParse(t *testing.T) {
	for _, file := range []string{"../../envoy/canary/envoy.yaml", "../../envoy/canary/wasmplugin.yaml"} {
		t.Run(file, func(t *testing.T) {
			r, err := core.Parse(exampleconf.Load(t, file))
			require.NoError(t, err)
			require.Equal(t, []string{"v1", "v2"}, r.Versions())
			require.Equal(t, []string{"header-canary", "even-users", "weighted"}, r.RuleNames())
		})
	}
}
