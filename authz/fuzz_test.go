package authz

import (
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
)

// FuzzEngine_Request drives the adversarial corpus configuration with
// arbitrary request text. Besides a definite verdict, it checks the corpus's
// promise for every spelling the fuzzer finds: no request for a path that is
// `/admin` or under `/admin/` or `/api/internal/` (in any case, with or
// without a trailing slash, however encoded) is ever allowed, and no
// request on `/role/` with a `guest` element in x-user-role is either.
func FuzzEngine_Request(f *testing.F) {
	for _, c := range []struct{ method, path, authority, role, xff, auth string }{
		{"GET", "/api/x", "payment-service:8080", "", "", ""},
		{"GET", "/api/..;a=b/admin", "payment-service", "", "", ""},
		{"DELETE", "/api/INTERNAL/x", "Httpbin.Foo.", "admin, Guest", "1.1.1.1, 203.0.113.9", "Bearer a.b.c"},
		{"GET", "/role/x", "a", "admin,\tguest", "[::1]", "bearer x"},
		{"GET", "/api/%c0%ae%c0%ae/admin", "a@b", "", "0203.0.113.9", ""},
		{"get", "/%61pi/%2e%2e/%41DMIN/", "", "GUEST ", "", ""},
	} {
		f.Add(c.method, c.path, c.authority, c.role, c.xff, c.auth, true)
	}
	e := New(mustParse(f, strings.TrimSuffix(jwtConfigJSON(f, ""), "}")+","+securityPolicies+"}"), Options{Clock: newFakeClock().Now})
	f.Fuzz(func(t *testing.T, method, path, authority, role, xff, auth string, mtls bool) {
		r := mtlsReq()
		r.Method, r.Path, r.Authority, r.MTLS = method, path, authority, mtls
		h := hdrs{}
		for k, v := range map[string]string{"x-user-role": role, "x-forwarded-for": xff, "authorization": auth} {
			if v != "" {
				h[k] = v
			}
		}
		r.Headers = h
		d := check(e, r)
		want := map[Verdict]int{Allow: 0, Deny: 403, Unauthenticated: 401, BadRequest: 400}
		status, ok := want[d.Verdict]
		require.True(t, ok, "verdict %v", d.Verdict)
		require.Equal(t, status, d.Status)
		require.Contains(t, d.RemoveRequestHeaders, "x-jwt-sub")
		if d.Verdict != Allow {
			return
		}
		norm, reason := NormalizePath(path, SlashReject)
		require.Empty(t, reason, "an allowed path normalizes")
		require.True(t, validAuthority(authority))
		p := strings.TrimSuffix(strings.ToLower(norm), "/")
		for _, denied := range []string{"/admin", "/api/internal", "/api/secret"} {
			require.False(t, p == denied || strings.HasPrefix(p, "/admin/") || strings.HasPrefix(p, "/api/internal/"),
				"%q (normalized %q) reached a denied path %s", path, norm, denied)
		}
		if strings.HasPrefix(norm, "/role/") {
			for _, el := range strings.Split(role, ",") {
				require.NotEqual(t, "guest", strings.ToLower(strings.Trim(el, " \t")), "guest role %q allowed", role)
			}
		}
	})
}

// FuzzEngine_JWKSReply feeds arbitrary remote key-set replies. A reply is
// either installed or refused with an error; the engine keeps deciding, and
// a token signed by a key the reply cannot contain is never accepted.
func FuzzEngine_JWKSReply(f *testing.F) {
	k := getKeys(f)
	f.Add("200", []byte(testJWKS(f)))
	f.Add("200", []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	f.Add("200", []byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"rsa"}]}`))
	f.Add("503", []byte(`oops`))
	f.Add("200", []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"","y":"","kid":"ec256"}]}`))
	f.Add("2x0", []byte(`{}`))
	clk := newFakeClock()
	foreign := sign(f, jose.RS256, k.other, "rsa", goodClaims(clk.now))
	f.Fuzz(func(t *testing.T, status string, body []byte) {
		e := New(mustParse(t, remoteCfg), Options{Clock: clk.Now})
		if fetches := e.Tick(nil); len(fetches) == 1 {
			_ = e.JWKSReply(0, Reply{Headers: [][2]string{{":status", status}}, Body: body})
		}
		d := check(e, bearer(foreign))
		require.Equal(t, Unauthenticated, d.Verdict, "a token from a key outside every set")
		require.NotEqual(t, JWTOK, d.JWTFailure)
	})
}
