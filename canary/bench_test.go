package canary

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/internal/casstore"
)

// seedsConfig is the README's example without the guard, whose store is the
// host's cost rather than the decision's.
const seedsConfig = `{"versions":["v1","v2"],"responseHeader":"x-served-by-version",
	"rules":[
		{"name":"header-canary","match":{"headers":[{"name":"x-canary","exact":"true"}]},"route":"v2"},
		{"name":"even-users","match":{"headers":[{"name":"x-user-id","modulo":{"divisor":2,"remainder":0}}]},"route":"v2"},
		{"name":"weighted","split":{"weights":{"v1":90,"v2":10},"hashOn":{"header":"x-user-id"}}}],
	"sticky":{"cookie":"order-version"},
	"mirror":{"cluster":"shadow","percent":1}}`

var hotPaths = []struct {
	name   string
	config string
	req    *fakeRequest
}{
	{name: "header canary", config: seedsConfig, req: get("/api/orders", "x-canary", "true")},
	{name: "even user", config: seedsConfig, req: get("/api/orders", "x-user-id", "123456")},
	{name: "split", config: seedsConfig, req: get("/api/orders", "x-user-id", "123457")},
	{name: "sticky cookie", config: seedsConfig, req: get("/api/orders", "x-user-id", "123457", "cookie", "a=1; order-version=v2")},
	{name: "spoofed header", config: seedsConfig, req: get("/api/orders", "x-route-version", "v2")},
	{name: "path query cookie", config: `{"versions":["v1","v2"],"rules":[{"match":{"methods":["GET"],"path":{"regex":"/api/[a-z]+"},
		"query":[{"name":"beta","exact":"1"}],"cookies":[{"name":"tier","prefix":"gold"}]},"route":"v2"}]}`,
		req: get("/api/orders?x=2&beta=1", "cookie", "sid=9; tier=gold-plus")},
}

func TestDecide_ZeroAllocs(t *testing.T) {
	for _, hp := range hotPaths {
		t.Run(hp.name, func(t *testing.T) {
			r := mustParse(t, hp.config)
			env := Env{Now: epoch, Random: 42}
			d := r.Decide(hp.req, env)
			require.NotEqual(t, ReasonDefault, d.Reason, "the benchmark must exercise a rule")
			allocs := testing.AllocsPerRun(1000, func() { r.Decide(hp.req, env) })
			require.Zero(t, allocs)
		})
	}
}

func BenchmarkDecide(b *testing.B) {
	for _, hp := range hotPaths {
		b.Run(hp.name, func(b *testing.B) {
			r := mustParse(b, hp.config)
			env := Env{Now: epoch}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				env.Random = uint64(i)
				r.Decide(hp.req, env)
			}
		})
	}
}

// BenchmarkDecide_Guarded includes reading and decoding the guard's state from
// an in-memory store, which copies the value as the host's shared data does.
func BenchmarkDecide_Guarded(b *testing.B) {
	r := mustParse(b, guardConfig)
	store := casstore.NewMemory()
	_, err := r.Record(store, 1, Success, epoch)
	require.NoError(b, err)
	req := get("/")
	env := Env{Now: epoch, Store: store}
	b.ReportAllocs()
	for b.Loop() {
		r.Decide(req, env)
	}
}

func BenchmarkRecord(b *testing.B) {
	r := mustParse(b, guardConfig)
	store := casstore.NewMemory()
	b.ReportAllocs()
	for b.Loop() {
		_, err := r.Record(store, 1, Success, epoch)
		if err != nil {
			b.Fatal(err)
		}
	}
}
