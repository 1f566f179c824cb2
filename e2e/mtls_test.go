//go:build e2e

package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/e2e/harness"
)

const orderService = "spiffe://cluster.local/ns/orders/sa/order-service"

// TestMTLS_ClientCertificates proves downstream mTLS: only clients holding a
// certificate from the topology's CA get through, and their SPIFFE id reaches the
// upstream (XFCC), which is the identity authz filters will read.
func TestMTLS_ClientCertificates(t *testing.T) {
	topo := harness.Start(t, harness.Options{TLS: harness.TLSRequireClientCert})
	foreign := harness.NewPKI(t).ClientCert(t, orderService)

	tests := []struct {
		name     string
		client   *http.Client
		wantErr  bool
		wantStat string // listener counter that must grow
	}{
		{name: "spiffe client cert", client: topo.ClientAs(orderService), wantStat: "listener.ingress.downstream_cx_total"},
		{name: "no client cert", client: topo.Client(), wantErr: true, wantStat: "listener.ingress.ssl.fail_verify_no_cert"},
		{name: "cert from another CA", client: topo.ClientWith(foreign), wantErr: true, wantStat: "listener.ingress.ssl.fail_verify_error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := topo.Stat(tc.wantStat)
			resp, err := tc.client.Get(topo.URL("/orders"))
			if tc.wantErr {
				require.Error(t, err, "TLS must refuse the connection")
			} else {
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, resp.StatusCode)
				echo := harness.ReadEcho(t, resp)
				require.Equal(t, "v1", echo.Version)
				require.Contains(t, echo.Header("x-forwarded-client-cert"), "URI="+orderService)
			}
			// With TLS 1.3 the client can see the refusal before the worker has
			// counted it: poll the counter.
			require.Eventually(t, func() bool {
				after, ok := topo.Stat(tc.wantStat)
				return ok && after > before
			}, 5*time.Second, 10*time.Millisecond, "stat %s grew", tc.wantStat)
		})
	}
}

// TestMTLS_OptionalClientCert: with optional client certificates a request without a
// certificate still reaches the filter chain (so authz can deny it with a reason).
func TestMTLS_OptionalClientCert(t *testing.T) {
	topo := harness.Start(t, harness.Options{TLS: harness.TLSOptionalClientCert})

	tests := []struct {
		name     string
		client   *http.Client
		wantXFCC string
	}{
		{name: "with spiffe cert", client: topo.ClientAs(orderService), wantXFCC: "URI=" + orderService},
		{name: "without cert", client: topo.Client()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.client.Get(topo.URL("/"))
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			echo := harness.ReadEcho(t, resp)
			if tc.wantXFCC == "" {
				require.Empty(t, echo.Header("x-forwarded-client-cert"))
			} else {
				require.Contains(t, echo.Header("x-forwarded-client-cert"), tc.wantXFCC)
			}
		})
	}
}
