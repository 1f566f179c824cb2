package tracing_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/internal/exampleconf"
	core "github.com/meshwasm/meshwasm/tracing"
)

// The shipped Envoy and Istio examples must carry configurations the filter
// accepts: a typo there would only show as a plugin that fails to start.
func TestExamples_ConfigurationsParse(t *testing.T) {
	tests := []struct {
		file, cluster string
	}{
		{file: "../../envoy/tracing/envoy.yaml", cluster: "otel-collector"},
		{file: "../../envoy/tracing/wasmplugin.yaml", cluster: "outbound|4318||otel-collector.observability.svc.cluster.local"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			tr, err := core.Parse(exampleconf.Load(t, tc.file))
			require.NoError(t, err)
			require.True(t, tr.LogEnabled())
			require.NotNil(t, tr.Export())
			require.Equal(t, tc.cluster, tr.Export().Cluster)
		})
	}
}
