package authz_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	core "github.com/meshwasm/meshwasm/authz"
	"github.com/meshwasm/meshwasm/internal/exampleconf"
)

// The shipped Envoy and Istio examples must carry configurations the filter
// accepts: a typo there would only show as a plugin that fails to start.
func TestExamples_ConfigurationsParse(t *testing.T) {
	for _, file := range []string{"../../envoy/authz/envoy.yaml", "../../envoy/authz/wasmplugin.yaml"} {
		t.Run(file, func(t *testing.T) {
			cfg, err := core.Parse(exampleconf.Load(t, file))
			require.NoError(t, err)
			require.Equal(t, []core.PolicyInfo{
				{Name: "payment-service-policy", Action: core.ActionAllow},
				{Name: "deny-all-default", Action: core.ActionDeny},
			}, cfg.Policies())
			require.Equal(t, []string{"https://auth.example.com"}, cfg.JWTProviders())
		})
	}
}
