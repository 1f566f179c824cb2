package authz

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
)

type testKeys struct {
	rsa   *rsa.PrivateKey
	ec256 *ecdsa.PrivateKey
	ec384 *ecdsa.PrivateKey
	ed    ed25519.PrivateKey
	other *rsa.PrivateKey // not in the JWKS
}

var (
	keysOnce sync.Once
	keys     testKeys
)

func getKeys(t testing.TB) testKeys {
	keysOnce.Do(func() {
		var err error
		keys.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
		if err == nil {
			keys.other, err = rsa.GenerateKey(rand.Reader, 2048)
		}
		if err == nil {
			keys.ec256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		}
		if err == nil {
			keys.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		}
		if err == nil {
			_, keys.ed, err = ed25519.GenerateKey(rand.Reader)
		}
		if err != nil {
			panic(err)
		}
	})
	return keys
}

// testJWKS is the public key set: kid "rsa" (any RSA alg), "rs256-only"
// (same key, alg pinned), "ec256", "ec384", "ed".
func testJWKS(t testing.TB) string {
	k := getKeys(t)
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &k.rsa.PublicKey, KeyID: "rsa", Use: "sig"},
		{Key: &k.rsa.PublicKey, KeyID: "rs256-only", Algorithm: "RS256"},
		{Key: &k.ec256.PublicKey, KeyID: "ec256"},
		{Key: &k.ec384.PublicKey, KeyID: "ec384"},
		{Key: k.ed.Public(), KeyID: "ed"},
	}}
	b, err := json.Marshal(set)
	require.NoError(t, err)
	return string(b)
}

const testIssuer = "https://issuer.example"

func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	require.NoError(t, err)
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	obj, err := s.Sign(payload)
	require.NoError(t, err)
	tok, err := obj.CompactSerialize()
	require.NoError(t, err)
	return tok
}

func goodClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss": testIssuer, "sub": "alice", "aud": "payments", "azp": "web",
		"exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"groups": []string{"dev", "ops"}, "org": map[string]any{"team": "pay"},
	}
}

func with(c map[string]any, kv ...any) map[string]any {
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

func jwtConfigJSON(t testing.TB, extra string) string {
	return `{"jwt":{"providers":[{"issuer":"` + testIssuer + `","audiences":["payments","billing"],"jwks":` + jsonString(testJWKS(t)) +
		`,"outputClaimToHeaders":[{"header":"x-jwt-sub","claim":"sub"},{"header":"x-jwt-groups","claim":"groups"}]` + extra + `}]}}`
}

func bearer(tok string) *Request {
	r := mtlsReq()
	r.Headers = hdrs{"authorization": "Bearer " + tok, "x-jwt-sub": "spoofed"}
	return r
}

func TestEngine_Check_JWT(t *testing.T) {
	k := getKeys(t)
	clk := newFakeClock()
	now := clk.now
	rsaDER, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	require.NoError(t, err)
	b64 := base64.RawURLEncoding.EncodeToString
	noneTok := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64(mustJSON(t, goodClaims(now))) + "."

	tests := []struct {
		name  string
		token string
		fail  JWTFailure
	}{
		{name: "RS256", token: sign(t, jose.RS256, k.rsa, "rsa", goodClaims(now))},
		{name: "RS384", token: sign(t, jose.RS384, k.rsa, "rsa", goodClaims(now))},
		{name: "RS512", token: sign(t, jose.RS512, k.rsa, "rsa", goodClaims(now))},
		{name: "PS256", token: sign(t, jose.PS256, k.rsa, "rsa", goodClaims(now))},
		{name: "ES256", token: sign(t, jose.ES256, k.ec256, "ec256", goodClaims(now))},
		{name: "ES384", token: sign(t, jose.ES384, k.ec384, "ec384", goodClaims(now))},
		{name: "EdDSA", token: sign(t, jose.EdDSA, k.ed, "ed", goodClaims(now))},
		{name: "no kid tries compatible keys", token: sign(t, jose.ES256, k.ec256, "", goodClaims(now))},
		{name: "aud array", token: sign(t, jose.RS256, k.rsa, "rsa", with(goodClaims(now), "aud", []string{"other", "billing"}))},
		{name: "within clock skew after exp", token: sign(t, jose.RS256, k.rsa, "rsa", with(goodClaims(now), "exp", now.Add(-30*time.Second).Unix()))},
		{name: "no exp is accepted by default", token: sign(t, jose.RS256, k.rsa, "rsa", with(goodClaims(now), "exp", nil))},
		{name: "expired", token: sign(t, jose.RS256, k.rsa, "rsa", with(goodClaims(now), "exp", now.Add(-2*time.Minute).Unix())), fail: JWTExpired},
		{name: "not yet valid", token: sign(t, jose.RS256, k.rsa, "rsa", with(goodClaims(now), "nbf", now.Add(2*time.Minute).Unix())), fail: JWTNotYetValid},
		{name: "exp wrong type", token: sign(t, jose.RS256, k.rsa, "rsa", with(goodClaims(now), "exp", "tomorrow")), fail: JWTMalformed},
		{name: "wrong issuer", token: sign(t, jose.RS256, k.rsa, "rsa", with(goodClaims(now), "iss", "https://evil.example")), fail: JWTUnknownIssuer},
		{name: "wrong audience", token: sign(t, jose.RS256, k.rsa, "rsa", with(goodClaims(now), "aud", "other")), fail: JWTAudience},
		{name: "wrong audience array", token: sign(t, jose.RS256, k.rsa, "rsa", with(goodClaims(now), "aud", []string{"a", "b"})), fail: JWTAudience},
		{name: "missing audience", token: sign(t, jose.RS256, k.rsa, "rsa", with(goodClaims(now), "aud", nil)), fail: JWTAudience},
		{name: "alg none", token: noneTok, fail: JWTAlgorithm},
		{name: "HS256 with the RSA public key as secret", token: sign(t, jose.HS256, rsaDER, "rsa", goodClaims(now)), fail: JWTAlgorithm},
		{name: "alg not allowed by the key", token: sign(t, jose.PS256, k.rsa, "rs256-only", goodClaims(now)), fail: JWTAlgorithm},
		{name: "RSA alg with EC key", token: sign(t, jose.RS256, k.rsa, "ec256", goodClaims(now)), fail: JWTAlgorithm},
		{name: "unknown kid", token: sign(t, jose.RS256, k.other, "rotated", goodClaims(now)), fail: JWTUnknownKID},
		{name: "signed by another key", token: sign(t, jose.RS256, k.other, "rsa", goodClaims(now)), fail: JWTSignature},
		{name: "tampered payload", token: tamper(sign(t, jose.RS256, k.rsa, "rsa", goodClaims(now))), fail: JWTSignature},
		{name: "garbage", token: "not.a.jwt", fail: JWTMalformed},
		{name: "json serialization", token: `{"payload":"e30","signatures":[]}`, fail: JWTMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := New(mustParse(t, jwtConfigJSON(t, "")), Options{Clock: clk.Now})
			d := check(e, bearer(tc.token))
			if tc.fail != JWTOK {
				require.Equal(t, Unauthenticated, d.Verdict)
				require.Equal(t, 401, d.Status)
				require.Equal(t, tc.fail, d.JWTFailure)
				require.Equal(t, []Header{{"www-authenticate", `Bearer realm="meshwasm", error="invalid_token"`}}, d.ResponseHeaders)
				require.Equal(t, "jwt "+tc.fail.String(), d.Reason)
				return
			}
			require.Equal(t, Allow, d.Verdict, d.Reason)
			require.Equal(t, 0, d.JWTProvider)
			// Client copies go first, the token is not forwarded, claims are added.
			require.Equal(t, []string{"x-jwt-sub", "x-jwt-groups", "authorization"}, d.RemoveRequestHeaders)
			require.Equal(t, []Header{{"x-jwt-sub", "alice"}, {"x-jwt-groups", "dev,ops"}}, d.SetRequestHeaders)
		})
	}
}

func mustJSON(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// tamper flips the subject in the payload, keeping the signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	raw = []byte(strings.Replace(string(raw), `"alice"`, `"admin"`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

func TestEngine_Check_JWTPolicies(t *testing.T) {
	k := getKeys(t)
	clk := newFakeClock()
	tok := sign(t, jose.RS256, k.rsa, "rsa", goodClaims(clk.now))
	rule := func(r string) string {
		return strings.TrimSuffix(jwtConfigJSON(t, ""), "}") + `,"policies":[{"name":"p","rules":[` + r + `]}]}`
	}
	tests := []struct {
		name  string
		rule  string
		token bool
		want  Verdict
	}{
		{name: "requestPrincipals", rule: `{"from":[{"source":{"requestPrincipals":["https://issuer.example/alice"]}}]}`, token: true, want: Allow},
		{name: "requestPrincipals without token", rule: `{"from":[{"source":{"requestPrincipals":["*"]}}]}`, want: Deny},
		{name: "notRequestPrincipals", rule: `{"from":[{"source":{"notRequestPrincipals":["*/alice"]}}]}`, token: true, want: Deny},
		{name: "auth.principal", rule: `{"when":[{"key":"request.auth.principal","values":["https://issuer.example/*"]}]}`, token: true, want: Allow},
		{name: "auth.audiences", rule: `{"when":[{"key":"request.auth.audiences","values":["payments"]}]}`, token: true, want: Allow},
		{name: "auth.audiences notValues", rule: `{"when":[{"key":"request.auth.audiences","notValues":["payments"]}]}`, token: true, want: Deny},
		{name: "auth.presenter", rule: `{"when":[{"key":"request.auth.presenter","values":["web"]}]}`, token: true, want: Allow},
		{name: "auth.presenter miss", rule: `{"when":[{"key":"request.auth.presenter","values":["cli"]}]}`, token: true, want: Deny},
		{name: "claims list element", rule: `{"when":[{"key":"request.auth.claims[groups]","values":["ops"]}]}`, token: true, want: Allow},
		{name: "claims nested", rule: `{"when":[{"key":"request.auth.claims[org][team]","values":["pay"]}]}`, token: true, want: Allow},
		{name: "claims nested notValues", rule: `{"when":[{"key":"request.auth.claims[org][team]","notValues":["pay"]}]}`, token: true, want: Deny},
		{name: "claims missing", rule: `{"when":[{"key":"request.auth.claims[missing]","values":["*"]}]}`, token: true, want: Deny},
		{name: "claims without token", rule: `{"when":[{"key":"request.auth.claims[groups]","values":["ops"]}]}`, want: Deny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := New(mustParse(t, rule(tc.rule)), Options{Clock: clk.Now})
			r := mtlsReq()
			if tc.token {
				r = bearer(tok)
			}
			d := check(e, r)
			require.Equal(t, tc.want, d.Verdict, d.Reason)
			// Spoofed claim headers are removed with or without a token.
			require.Contains(t, d.RemoveRequestHeaders, "x-jwt-sub")
		})
	}
}

func TestEngine_Check_JWTLocationsAndCache(t *testing.T) {
	k := getKeys(t)
	clk := newFakeClock()
	tok := sign(t, jose.ES256, k.ec256, "ec256", goodClaims(clk.now))

	t.Run("query parameter by default", func(t *testing.T) {
		e := New(mustParse(t, jwtConfigJSON(t, "")), Options{Clock: clk.Now})
		r := mtlsReq()
		r.Path = "/api/payments/1?a=b&access_token=" + tok
		d := check(e, r)
		require.Equal(t, Allow, d.Verdict)
		require.Equal(t, []string{"x-jwt-sub", "x-jwt-groups"}, d.RemoveRequestHeaders)
	})
	t.Run("configured header with prefix, forwarded", func(t *testing.T) {
		e := New(mustParse(t, jwtConfigJSON(t, `,"fromHeaders":[{"name":"X-Token","prefix":"Tok "}],"forwardOriginalToken":true`)), Options{Clock: clk.Now})
		r := mtlsReq()
		r.Headers = hdrs{"x-token": "Tok " + tok, "authorization": "Bearer garbage"}
		d := check(e, r)
		require.Equal(t, Allow, d.Verdict, d.Reason)
		require.Equal(t, []string{"x-jwt-sub", "x-jwt-groups"}, d.RemoveRequestHeaders)
		// The default location is not read once locations are configured.
		r.Headers = hdrs{"authorization": "Bearer " + tok}
		require.Equal(t, Allow, check(e, r).Verdict)
	})
	t.Run("bearer prefix is case-insensitive", func(t *testing.T) {
		e := New(mustParse(t, jwtConfigJSON(t, "")), Options{Clock: clk.Now})
		r := mtlsReq()
		r.Headers = hdrs{"authorization": "bearer " + tok}
		require.Equal(t, Allow, check(e, r).Verdict)
	})
	t.Run("cached until expiry", func(t *testing.T) {
		c := newFakeClock()
		e := New(mustParse(t, jwtConfigJSON(t, "")), Options{Clock: c.Now})
		short := sign(t, jose.ES256, k.ec256, "ec256", with(goodClaims(c.now), "exp", c.now.Add(time.Minute).Unix()))
		require.Equal(t, Allow, check(e, bearer(short)).Verdict)
		require.Equal(t, 1, e.tokens.len())
		require.Equal(t, Allow, check(e, bearer(short)).Verdict)
		require.Equal(t, 1, e.tokens.len())
		c.Advance(time.Minute + 61*time.Second) // past exp + skew
		d := check(e, bearer(short))
		require.Equal(t, Unauthenticated, d.Verdict)
		require.Equal(t, JWTExpired, d.JWTFailure)
	})
	t.Run("cache is bounded", func(t *testing.T) {
		e := New(mustParse(t, strings.Replace(jwtConfigJSON(t, ""), `"jwt":{`, `"jwt":{"cacheSize":2,`, 1)), Options{Clock: clk.Now})
		for i := 0; i < 5; i++ {
			tk := sign(t, jose.ES256, k.ec256, "ec256", with(goodClaims(clk.now), "jti", i))
			require.Equal(t, Allow, check(e, bearer(tk)).Verdict)
		}
		require.Equal(t, 2, e.tokens.len())
	})
	t.Run("cache disabled", func(t *testing.T) {
		e := New(mustParse(t, strings.Replace(jwtConfigJSON(t, ""), `"jwt":{`, `"jwt":{"cacheSize":0,`, 1)), Options{Clock: clk.Now})
		require.Equal(t, Allow, check(e, bearer(tok)).Verdict)
		require.Equal(t, 0, e.tokens.len())
	})
	t.Run("claim header with control characters is dropped", func(t *testing.T) {
		e := New(mustParse(t, jwtConfigJSON(t, "")), Options{Clock: clk.Now})
		evil := sign(t, jose.ES256, k.ec256, "ec256", with(goodClaims(clk.now), "sub", "a\r\nx-admin: 1"))
		d := check(e, bearer(evil))
		require.Equal(t, Allow, d.Verdict)
		require.Equal(t, []Header{{"x-jwt-groups", "dev,ops"}}, d.SetRequestHeaders)
	})
	t.Run("requireExpiration", func(t *testing.T) {
		e := New(mustParse(t, jwtConfigJSON(t, `,"requireExpiration":true`)), Options{Clock: clk.Now})
		d := check(e, bearer(sign(t, jose.ES256, k.ec256, "ec256", with(goodClaims(clk.now), "exp", nil))))
		require.Equal(t, JWTMissingExp, d.JWTFailure)
	})
}

func TestJWTFailure_String(t *testing.T) {
	var names []string
	for _, f := range JWTFailureReasons() {
		names = append(names, f.String())
	}
	require.Equal(t, []string{"malformed", "algorithm", "unknown_issuer", "unknown_kid", "no_keys", "signature",
		"expired", "not_yet_valid", "missing_exp", "audience"}, names)
	require.Equal(t, "unknown", JWTFailure(200).String())
}

// FuzzEngine_Token feeds arbitrary bearer tokens: the verdict is always
// Allow (verified) or Unauthenticated with a reason, never a panic.
func FuzzEngine_Token(f *testing.F) {
	k := getKeys(f)
	clk := newFakeClock()
	f.Add(sign(f, jose.RS256, k.rsa, "rsa", goodClaims(clk.now)))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Add("....")
	e := New(mustParse(f, jwtConfigJSON(f, "")), Options{Clock: clk.Now})
	f.Fuzz(func(t *testing.T, tok string) {
		d := check(e, bearer(tok))
		switch d.Verdict {
		case Allow:
		case Unauthenticated:
			require.NotEqual(t, JWTOK, d.JWTFailure)
		default:
			t.Fatalf("verdict %v", d.Verdict)
		}
	})
}
