package authz

import (
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/authz/authztest"
)

func TestEngine_Check_TwentyPoliciesNoAllocs(t *testing.T) {
	e := mustEngine(t, authztest.TwentyPolicies())
	r := mtlsReq()
	var d Decision
	e.Check(r, &d)
	require.Equal(t, Allow, d.Verdict)
	require.Equal(t, "payment-service-policy", d.Policy)
	allocs := testing.AllocsPerRun(200, func() { e.Check(r, &d) })
	require.Zero(t, allocs)
	require.Zero(t, testing.Benchmark(BenchmarkEngine_Check).AllocsPerOp())
}

func BenchmarkEngine_Check(b *testing.B) {
	e := mustEngine(b, authztest.TwentyPolicies())
	r := mtlsReq()
	var d Decision
	b.ReportAllocs()
	for b.Loop() {
		e.Check(r, &d)
	}
	if d.Verdict != Allow {
		b.Fatal(d.Verdict)
	}
}

func BenchmarkEngine_Check_Denied(b *testing.B) {
	e := mustEngine(b, authztest.TwentyPolicies())
	r := mtlsReq()
	r.Path = "/api/refunds/1"
	var d Decision
	b.ReportAllocs()
	for b.Loop() {
		e.Check(r, &d)
	}
	if d.Verdict != Deny {
		b.Fatal(d.Verdict)
	}
}

// BenchmarkEngine_Check_JWTCached is a repeated token: a hash, a compare.
func BenchmarkEngine_Check_JWTCached(b *testing.B) {
	k := getKeys(b)
	clk := newFakeClock()
	e := New(mustParse(b, jwtConfigJSON(b, "")), Options{Clock: clk.Now})
	r := bearer(sign(b, jose.RS256, k.rsa, "rsa", goodClaims(clk.now)))
	var d Decision
	b.ReportAllocs()
	for b.Loop() {
		e.Check(r, &d)
	}
	if d.Verdict != Allow {
		b.Fatal(d.Verdict)
	}
}

func TestEngine_Check_JWTCachedNoAllocs(t *testing.T) {
	k := getKeys(t)
	clk := newFakeClock()
	e := New(mustParse(t, jwtConfigJSON(t, "")), Options{Clock: clk.Now})
	r := bearer(sign(t, jose.RS256, k.rsa, "rsa", goodClaims(clk.now)))
	var d Decision
	e.Check(r, &d)
	require.Equal(t, Allow, d.Verdict)
	require.Zero(t, testing.AllocsPerRun(100, func() { e.Check(r, &d) }))
}

// BenchmarkEngine_Check_JWTVerify is the uncached cost: one RS256 check.
func BenchmarkEngine_Check_JWTVerify(b *testing.B) {
	k := getKeys(b)
	clk := newFakeClock()
	e := New(mustParse(b, strings.Replace(jwtConfigJSON(b, ""), `"jwt":{`, `"jwt":{"cacheSize":0,`, 1)), Options{Clock: clk.Now})
	r := bearer(sign(b, jose.RS256, k.rsa, "rsa", goodClaims(clk.now)))
	var d Decision
	b.ReportAllocs()
	for b.Loop() {
		e.Check(r, &d)
	}
	if d.Verdict != Allow {
		b.Fatal(d.Verdict)
	}
}
