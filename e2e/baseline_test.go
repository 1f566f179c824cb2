//go:build e2e

package e2e

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/e2e/harness"
)

// TestBaseline_Routing proves the topology without any wasm filter: the route table
// picks the upstream by x-route-version, and the echo service reports what it got.
func TestBaseline_Routing(t *testing.T) {
	topo := harness.Start(t, harness.Options{})
	client := topo.Client()

	tests := []struct {
		name       string
		path       string
		headers    map[string]string
		wantStatus int
		wantServer string
		wantPath   string
		wantQuery  string
	}{
		{name: "default goes to v1", path: "/orders?id=7", wantStatus: 200, wantServer: "v1", wantPath: "/orders", wantQuery: "id=7"},
		{name: "explicit v1", path: "/orders", headers: map[string]string{harness.RouteHeader: "v1"}, wantStatus: 200, wantServer: "v1", wantPath: "/orders"},
		{name: "v2 by header", path: "/orders", headers: map[string]string{harness.RouteHeader: "v2"}, wantStatus: 200, wantServer: "v2", wantPath: "/orders"},
		{name: "unknown version falls back to v1", path: "/", headers: map[string]string{harness.RouteHeader: "v3"}, wantStatus: 200, wantServer: "v1", wantPath: "/"},
		{name: "v2 failing by header", path: "/pay", headers: map[string]string{harness.RouteHeader: "v2", "x-echo-status": "503"}, wantStatus: 503, wantServer: "v2", wantPath: "/pay"},
		{name: "v1 status by path", path: "/status/429", wantStatus: 429, wantServer: "v1", wantPath: "/status/429"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := upstreamRequests(topo, tc.wantServer)
			req, err := http.NewRequest(http.MethodGet, topo.URL(tc.path), nil)
			require.NoError(t, err)
			req.Header.Set("x-test-marker", tc.name)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			require.NoError(t, err)
			require.Equal(t, tc.wantStatus, resp.StatusCode)
			require.Equal(t, tc.wantServer, resp.Header.Get("X-Served-By"))

			echo := harness.ReadEcho(t, resp)
			require.Equal(t, tc.wantServer, echo.Version)
			require.Equal(t, http.MethodGet, echo.Method)
			require.Equal(t, tc.wantPath, echo.Path)
			require.Equal(t, tc.wantQuery, echo.Query)
			require.Equal(t, tc.name, echo.Header("x-test-marker"), "request headers reach the upstream")
			require.NotEmpty(t, echo.Header("x-request-id"), "Envoy stamps a request id")

			require.Equal(t, before+1, upstreamRequests(topo, tc.wantServer), "cluster %s counted the request", tc.wantServer)
		})
	}
}

func upstreamRequests(topo *harness.Topology, cluster string) uint64 {
	n, _ := topo.Stat("cluster." + cluster + ".upstream_rq_total")
	return n
}
