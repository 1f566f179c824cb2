package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/e2e/harness"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(newHandler("v2"))
	t.Cleanup(srv.Close)

	tests := []struct {
		name       string
		method     string
		path       string
		header     map[string]string
		body       string
		wantStatus int
		wantPath   string
		wantQuery  string
	}{
		{name: "plain get", method: http.MethodGet, path: "/a/b?x=1&y=2", wantStatus: 200, wantPath: "/a/b", wantQuery: "x=1&y=2"},
		{name: "status by path", method: http.MethodGet, path: "/status/503", wantStatus: 503, wantPath: "/status/503"},
		{name: "status by header", method: http.MethodPost, path: "/pay", header: map[string]string{"x-echo-status": "429"}, body: "12345", wantStatus: 429, wantPath: "/pay"},
		{name: "header wins over path", method: http.MethodGet, path: "/status/500", header: map[string]string{"x-echo-status": "201"}, wantStatus: 201, wantPath: "/status/500"},
		{name: "invalid status ignored", method: http.MethodGet, path: "/status/99", header: map[string]string{"x-echo-status": "abc"}, wantStatus: 200, wantPath: "/status/99"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			require.NoError(t, err)
			req.Header.Set("x-marker", tc.name)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			require.Equal(t, tc.wantStatus, resp.StatusCode)
			require.Equal(t, "v2", resp.Header.Get("X-Served-By"))

			// harness.ReadEcho rejects unknown fields: the two structs must agree.
			got := harness.ReadEcho(t, resp)
			require.Equal(t, "v2", got.Version)
			require.Equal(t, tc.method, got.Method)
			require.Equal(t, tc.wantPath, got.Path)
			require.Equal(t, tc.wantQuery, got.Query)
			require.Equal(t, tc.name, got.Header("x-marker"))
			require.Equal(t, int64(len(tc.body)), got.BodyBytes)
		})
	}
}

func TestHealthz(t *testing.T) {
	srv := httptest.NewServer(newHandler("v1"))
	t.Cleanup(srv.Close)
	require.Zero(t, runProbe(srv.URL+"/healthz"))
	require.Equal(t, 1, runProbe(srv.URL+"/status/503"))
}
