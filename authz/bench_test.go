package authz

import (
	"fmt"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
)

// twentyPolicies is a 20-policy configuration of header, path, principal,
// host, method and IP rules; the request below is allowed by the last one
// after every DENY and the other ALLOW policies were evaluated.
func twentyPolicies() string {
	var ps []string
	for i := 0; i < 8; i++ {
		ps = append(ps, fmt.Sprintf(`{"name":"deny-%d","action":"DENY","rules":[{"from":[{"source":{"principals":["cluster.local/ns/evil-%d/sa/*"]}}]},
  {"to":[{"operation":{"paths":["/admin-%d/*"],"methods":["DELETE"]}}],"when":[{"key":"request.headers[x-debug-%d]","values":["1"]}]}]}`, i, i, i, i))
	}
	for i := 0; i < 11; i++ {
		ps = append(ps, fmt.Sprintf(`{"name":"allow-%d","rules":[{"from":[{"source":{"principals":["cluster.local/ns/team-%d/sa/*"],"ipBlocks":["10.%d.0.0/16"]}}],
  "to":[{"operation":{"hosts":["svc-%d.example.com"],"paths":["/v%d/*"],"methods":["GET","POST"]}}]}]}`, i, i, i, i, i))
	}
	ps = append(ps, `{"name":"payment-service-policy","rules":[{
  "from":[{"source":{"principals":["cluster.local/ns/production/sa/order-service"],"namespaces":["production"],"notIpBlocks":["192.168.0.0/16"]}}],
  "to":[{"operation":{"hosts":["payment-service"],"methods":["POST"],"paths":["/api/payments/*"],"ports":["8080"]}}],
  "when":[{"key":"request.headers[x-user-role]","notValues":["guest"]},{"key":"connection.sni","values":["*.cluster.local"]}]}]}`)
	return `{"policies":[` + strings.Join(ps, ",") + `]}`
}

func TestEngine_Check_TwentyPoliciesNoAllocs(t *testing.T) {
	e := mustEngine(t, twentyPolicies())
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
	e := mustEngine(b, twentyPolicies())
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
	e := mustEngine(b, twentyPolicies())
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
