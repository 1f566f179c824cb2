package hostview

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestJoinHeader(t *testing.T) {
	pairs := [][2]string{{":path", "/a"}, {"x-user-role", "admin"}, {"x-other", "1"}, {"X-User-Role", "guest"}, {"x-empty", ""}}
	tests := []struct {
		name, header, want string
		ok                 bool
	}{
		{name: "repeated header joined in order", header: "x-user-role", want: "admin,guest", ok: true},
		{name: "single value", header: "x-other", want: "1", ok: true},
		{name: "empty value is present", header: "x-empty", want: "", ok: true},
		{name: "absent", header: "x-missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := joinHeader(pairs, tc.header)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
	require.Zero(t, testing.AllocsPerRun(100, func() { _, _ = joinHeader(pairs, "x-other") }), "a single value does not allocate")
}

// FuzzJoinHeader: the joined value holds every value of the header in order,
// and nothing else.
func FuzzJoinHeader(f *testing.F) {
	f.Add("x-a", "1", "X-A", "2", "x-b", "3")
	f.Add("x-a", "", "x-a", "", "x-a", ",")
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2, n3, v3 string) {
		pairs := [][2]string{{n1, v1}, {n2, v2}, {n3, v3}}
		got, ok := joinHeader(pairs, "x-a")
		var want []string
		for _, p := range pairs {
			if strings.EqualFold(p[0], "x-a") {
				want = append(want, p[1])
			}
		}
		require.Equal(t, len(want) > 0, ok)
		require.Equal(t, strings.Join(want, ","), got)
	})
}

func TestSameName(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"x-user-id", "x-user-id", true},
		{"X-User-ID", "x-user-id", true},
		{"x-user-id", "x-user-ix", false},
		{"x-user-id", "x-user-i", false},
		{"", "", true},
		{"@", "`", false}, // neighbours of the letters do not fold
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, sameName(tc.a, tc.b), "%q %q", tc.a, tc.b)
	}
}

// FuzzHeaders_Lookup: the name filter never hides a header. Every lookup
// answers what a scan of every pair answers, before and after the filter's
// own replace and remove.
func FuzzHeaders_Lookup(f *testing.F) {
	f.Add("x-a", "1", "X-A", "2", "traceparent", "3", "x-a", "x-b")
	f.Add("B3", "", "b3", "", "x-b3-sampled", "1", "b3", "x-b3-flags")
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2, n3, v3, set, look string) {
		var h Headers
		h.load([][2]string{{n1, v1}, {n2, v2}, {n3, v3}})
		for _, name := range []string{n1, n2, n3, set, look, strings.ToUpper(look)} {
			got, ok := h.Header(name)
			want, wantOK := joinHeader(h.pairs, name)
			require.Equal(t, wantOK, ok, name)
			require.Equal(t, want, got, name)
		}
		h.replace(set, "v")
		h.remove(n1)
		for _, name := range []string{n1, n2, n3, set, look} {
			got, ok := h.Header(name)
			want, wantOK := joinHeader(h.pairs, name)
			require.Equal(t, wantOK, ok, name)
			require.Equal(t, want, got, name)
		}
	})
}

func TestHeaders_MissNeedsNoScan(t *testing.T) {
	var h Headers
	h.load([][2]string{{":method", "GET"}, {":path", "/orders/1"}, {":authority", "orders"}, {":scheme", "http"}, {"x-user-id", "12345"},
		{"user-agent", "fortio"}, {"x-forwarded-proto", "http"}, {"x-request-id", "0c7e..."}, {"x-envoy-expected-rq-timeout-ms", "15000"}})
	// The tracing filter's propagation headers, absent here: each must be
	// answered by the name filter, not by a scan.
	for _, name := range []string{"traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags", "baggage"} {
		require.False(t, h.names.has(name), name)
	}
	v, ok := h.Header("X-User-Id")
	require.True(t, ok)
	require.Equal(t, "12345", v)
}
