package authz

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseSPIFFE(t *testing.T) {
	tests := []struct {
		name, san, principal, namespace string
	}{
		{name: "istio identity", san: "spiffe://cluster.local/ns/production/sa/order-service", principal: "cluster.local/ns/production/sa/order-service", namespace: "production"},
		{name: "other trust domain", san: "spiffe://td.example/ns/a/sa/b", principal: "td.example/ns/a/sa/b", namespace: "a"},
		{name: "non-istio path has no namespace", san: "spiffe://td/workload/x", principal: "td/workload/x"},
		{name: "ns without sa", san: "spiffe://td/ns/a", principal: "td/ns/a"},
		{name: "trust domain only", san: "spiffe://td", principal: "td"},
		{name: "not spiffe", san: "https://td/ns/a/sa/b"},
		{name: "uppercase scheme is not spiffe", san: "SPIFFE://td/ns/a/sa/b"},
		{name: "empty", san: ""},
		{name: "empty trust domain", san: "spiffe:///ns/a/sa/b"},
		{name: "uppercase trust domain", san: "spiffe://Cluster.Local/ns/a/sa/b"},
		{name: "port in trust domain", san: "spiffe://td:443/ns/a/sa/b"},
		{name: "user info", san: "spiffe://admin@td/ns/a/sa/b"},
		{name: "dot-dot segment", san: "spiffe://td/ns/a/../b/sa/c"},
		{name: "dot segment", san: "spiffe://td/ns/./sa/c"},
		{name: "empty segment", san: "spiffe://td/ns//sa/c"},
		{name: "trailing slash", san: "spiffe://td/ns/a/sa/b/"},
		{name: "wildcard namespace", san: "spiffe://td/ns/*/sa/b"},
		{name: "percent-encoded", san: "spiffe://td/ns/a%2Fb/sa/c"},
		{name: "query", san: "spiffe://td/ns/a/sa/b?x"},
		{name: "extra segments name no namespace", san: "spiffe://td/ns/a/sa/b/ns/c", principal: "td/ns/a/sa/b/ns/c"},
		{name: "dots inside names are fine", san: "spiffe://td.example/ns/a.b/sa/c.d", principal: "td.example/ns/a.b/sa/c.d", namespace: "a.b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, ns := parseSPIFFE(tc.san)
			require.Equal(t, tc.principal, p)
			require.Equal(t, tc.namespace, ns)
		})
	}
}

func TestRemoteIP(t *testing.T) {
	src := netip.MustParseAddr("10.0.0.1")
	tests := []struct {
		name, xff string
		hops      int
		want      string
	}{
		{name: "one hop takes the rightmost", xff: "1.1.1.1, 2.2.2.2", hops: 1, want: "2.2.2.2"},
		{name: "two hops", xff: "1.1.1.1,2.2.2.2 , 3.3.3.3", hops: 2, want: "2.2.2.2"},
		{name: "spoofed left entries ignored", xff: "6.6.6.6, 7.7.7.7, 2.2.2.2", hops: 1, want: "2.2.2.2"},
		{name: "too few entries fall back to the connection", xff: "2.2.2.2", hops: 2, want: "10.0.0.1"},
		{name: "ipv6", xff: "2001:db8::1", hops: 1, want: "2001:db8::1"},
		{name: "mapped ipv4 unmapped", xff: "::ffff:1.2.3.4", hops: 1, want: "1.2.3.4"},
		{name: "garbage is refused", xff: "1.1.1.1, evil", hops: 1, want: "invalid IP"},
		{name: "port is not an address", xff: "1.1.1.1:80", hops: 1, want: "invalid IP"},
		{name: "empty entry", xff: "1.1.1.1,", hops: 1, want: "invalid IP"},
		{name: "zone is not an address", xff: "fe80::1%eth0", hops: 1, want: "invalid IP"},
		{name: "garbage beyond the trusted hops is ignored", xff: "evil, 2.2.2.2", hops: 1, want: "2.2.2.2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, ok := remoteIP(tc.xff, tc.hops, src)
			require.Equal(t, tc.want, a.String())
			require.Equal(t, a.IsValid(), ok)
		})
	}
}

func TestStripPort(t *testing.T) {
	for in, want := range map[string]string{
		"a.example:8080": "a.example", "a.example": "a.example", "[::1]:80": "[::1]", "[::1]": "[::1]", "1.2.3.4:5": "1.2.3.4",
	} {
		require.Equal(t, want, stripPort(in), in)
	}
}

func FuzzRequest(f *testing.F) {
	f.Add("spiffe://cluster.local/ns/a/sa/b", "1.1.1.1, 2.2.2.2", "10.0.0.1:1", "a.example:80", uint8(1))
	f.Add("spiffe://", ",,,", "[::1]:80", "[::1", uint8(3))
	e := mustEngine(f, seedConfig)
	f.Fuzz(func(t *testing.T, san, xff, src, authority string, hops uint8) {
		h := int(hops%4) + 1
		a, ok := remoteIP(xff, h, netip.MustParseAddr("10.0.0.1"))
		require.False(t, a.Is4In6())
		require.Equal(t, ok, a.IsValid())
		p, ns := parseSPIFFE(san)
		if p != "" {
			require.True(t, strings.HasPrefix(san, "spiffe://"))
			require.True(t, strings.HasSuffix(san, p))
		}
		if ns != "" {
			require.Contains(t, p, "/ns/"+ns+"/sa/")
		}
		d := check(e, &Request{Method: "POST", Path: "/api/payments/1", Authority: authority, PeerURISAN: san, MTLS: true,
			SourceAddress: src, Headers: hdrs{"x-forwarded-for": xff}})
		require.Contains(t, []Verdict{Allow, Deny, BadRequest}, d.Verdict)
		if !validAuthority(authority) {
			require.Equal(t, BadRequest, d.Verdict, d.Reason)
		}
	})
}

// TestNoProxyDependencies enforces that the core stays pure Go: no
// proxy-wasm SDK and nothing under filters/.
func TestNoProxyDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	require.NoError(t, err, "the go tool must be on PATH to check dependencies")
	out, err := exec.Command(gobin, "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, dep := range strings.Fields(string(out)) {
		require.NotContains(t, dep, "proxy-wasm", dep)
		require.False(t, strings.HasPrefix(dep, "github.com/meshwasm/meshwasm/filters"), dep)
	}
	require.Contains(t, string(out), "github.com/go-jose/go-jose/v4")
}
