package authz

import (
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/internal/casstore"
)

const remoteCfg = `{"jwt":{"minRefetchInterval":"30s","providers":[{"name":"idp","issuer":"https://issuer.example",
  "jwksUri":"https://idp.example:8443/keys?v=1","cluster":"outbound|443||idp","timeout":"2s","refreshInterval":"10m"}]}}`

func ok200(body string) Reply {
	return Reply{Headers: [][2]string{{":status", "200"}, {"content-type", "application/json"}}, Body: []byte(body)}
}

func TestEngine_RemoteJWKS(t *testing.T) {
	k := getKeys(t)
	clk := newFakeClock()
	shared := casstore.NewMemory()
	cfg := mustParse(t, remoteCfg)
	w1 := New(cfg, Options{Clock: clk.Now, Shared: shared})
	w2 := New(cfg, Options{Clock: clk.Now, Shared: shared})
	tok := sign(t, jose.RS256, k.rsa, "rsa", goodClaims(clk.now))

	// No keys yet: fail closed.
	d := check(w1, bearer(tok))
	require.Equal(t, Unauthenticated, d.Verdict)
	require.Equal(t, JWTNoKeys, d.JWTFailure)
	require.Equal(t, 0, d.JWTProvider)

	// One worker takes the lease; the other waits.
	fetches := w1.Tick(nil)
	require.Equal(t, []JWKSFetch{{Provider: 0, Cluster: "outbound|443||idp", Timeout: 2 * time.Second,
		Headers: [][2]string{{":method", "GET"}, {":path", "/keys?v=1"}, {":authority", "idp.example:8443"}, {"accept", "application/json"}}}}, fetches)
	require.Empty(t, w2.Tick(nil))
	require.Empty(t, w1.Tick(nil), "outstanding fetch is not repeated")

	require.NoError(t, w1.JWKSReply(0, ok200(testJWKS(t))))
	require.Equal(t, Allow, check(w1, bearer(tok)).Verdict)

	// The other worker adopts the shared keys on its next tick, without fetching.
	require.Equal(t, JWTNoKeys, check(w2, bearer(tok)).JWTFailure)
	require.Empty(t, w2.Tick(nil))
	require.Equal(t, Allow, check(w2, bearer(tok)).Verdict)

	// Unknown kid: at most one refetch per minRefetchInterval.
	rotated := sign(t, jose.RS256, k.other, "rotated", goodClaims(clk.now))
	require.Equal(t, JWTUnknownKID, check(w1, bearer(rotated)).JWTFailure)
	require.Empty(t, w1.Tick(nil), "too soon after the last fetch")
	clk.Advance(31 * time.Second)
	fetches = w1.Tick(nil)
	require.Len(t, fetches, 1)
	newSet := `{"keys":[` + jwkJSON(t, jose.JSONWebKey{Key: &k.other.PublicKey, KeyID: "rotated"}) + `]}`
	require.NoError(t, w1.JWKSReply(0, ok200(newSet)))
	require.Equal(t, Allow, check(w1, bearer(rotated)).Verdict)
	// Tokens cached under the old key set are verified again, and fail.
	require.Equal(t, JWTUnknownKID, check(w1, bearer(tok)).JWTFailure)

	// A bad refresh keeps the current keys and backs off.
	clk.Advance(11 * time.Minute)
	require.Len(t, w1.Tick(nil), 1)
	require.EqualError(t, w1.JWKSReply(0, Reply{Headers: [][2]string{{":status", "503"}}}), "jwks idp: status 503")
	require.Equal(t, Allow, check(w1, bearer(rotated)).Verdict)
	require.Empty(t, w1.Tick(nil), "backing off")
	require.Empty(t, w2.Tick(nil), "backing off on every worker")
	clk.Advance(31 * time.Second)
	require.Len(t, w2.Tick(nil), 1)
	require.EqualError(t, w2.JWKSReply(0, ok200(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)), "jwks idp: invalid JWKS: keys[0]: not a public key")
	require.Equal(t, 1, shared.Len(), "one shared key per remote provider")
}

func jwkJSON(t testing.TB, k jose.JSONWebKey) string {
	b, err := k.MarshalJSON()
	require.NoError(t, err)
	return string(b)
}

func TestEngine_JWKSReply_Errors(t *testing.T) {
	e := New(mustParse(t, remoteCfg), Options{Clock: newFakeClock().Now})
	tests := []struct {
		name     string
		provider int
		reply    Reply
		want     string
	}{
		{name: "no such provider", provider: 3, reply: ok200("{}"), want: "jwks: no remote provider 3"},
		{name: "callout failed", reply: Reply{Failed: true}, want: "jwks idp: callout failed"},
		{name: "no status", reply: Reply{Body: []byte("{}")}, want: "jwks idp: reply without a valid :status"},
		{name: "garbage status", reply: Reply{Headers: [][2]string{{":status", "2x0"}}}, want: "jwks idp: reply without a valid :status"},
		{name: "not json", reply: ok200("<html>"), want: "jwks idp: invalid JWKS: invalid character '<' looking for beginning of value"},
		{name: "empty set", reply: ok200(`{"keys":[]}`), want: "jwks idp: invalid JWKS: no keys"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.EqualError(t, e.JWKSReply(tc.provider, tc.reply), tc.want)
		})
	}
}

func TestEngine_Tick_InlineNeverFetches(t *testing.T) {
	e := New(mustParse(t, jwtConfigJSON(t, "")), Options{})
	require.Empty(t, e.Tick(nil))
	require.EqualError(t, e.JWKSReply(0, ok200(testJWKS(t))), "jwks: no remote provider 0")
}

// FuzzReply_Status checks the callout status parser used for JWKS and
// ext-authz replies.
func FuzzReply_Status(f *testing.F) {
	for _, s := range []string{"200", "403", "099", "600", "20", "2000", "-20", "+20", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, ok := Reply{Headers: [][2]string{{":status", s}}}.Status()
		if ok {
			require.GreaterOrEqual(t, st, 100)
			require.LessOrEqual(t, st, 599)
		} else {
			require.Zero(t, st)
		}
	})
}
