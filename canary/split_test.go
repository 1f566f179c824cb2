package canary

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

const splitKeys = 100_000

func splitConfig(weights string) string {
	return `{"versions":["v1","v2","v3"],"rules":[{"split":{"weights":` + weights + `,"hashOn":{"header":"x-user-id"}}}]}`
}

// assign decides every key 0..splitKeys-1 and returns the version index each
// got.
func assign(t testing.TB, r *Router) []int {
	out := make([]int, splitKeys)
	req := get("/", "x-user-id", "")
	for i := range out {
		req.headers["x-user-id"] = "user-" + strconv.Itoa(i)
		d := r.Decide(req, Env{Now: epoch})
		require.Equal(t, ReasonSplit, d.Reason)
		out[i] = d.VersionIndex
	}
	return out
}

func TestSplit_Accuracy(t *testing.T) {
	tests := []struct {
		name    string
		weights string
		want    []float64
	}{
		{name: "90/10", weights: `{"v1":90,"v2":10}`, want: []float64{0.9, 0.1, 0}},
		{name: "50/30/20", weights: `{"v1":50,"v2":30,"v3":20}`, want: []float64{0.5, 0.3, 0.2}},
		{name: "99/1", weights: `{"v1":99,"v2":1}`, want: []float64{0.99, 0.01, 0}},
		{name: "zero weight gets nothing", weights: `{"v1":1,"v2":0,"v3":1}`, want: []float64{0.5, 0, 0.5}},
		{name: "single", weights: `{"v2":5}`, want: []float64{0, 1, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := assign(t, mustParse(t, splitConfig(tc.weights)))
			counts := make([]float64, 3)
			for _, v := range got {
				counts[v]++
			}
			for v, want := range tc.want {
				require.InDelta(t, want, counts[v]/splitKeys, 0.01, "version %d", v)
				if want == 0 {
					require.Zero(t, counts[v], "version %d", v)
				}
			}
		})
	}
}

func TestSplit_ConsistentWhenWeightRaised(t *testing.T) {
	tests := []struct {
		name          string
		before, after string
		raised        int
		moved         float64 // expected share of keys that move
	}{
		// v2 from 10/100 to 20/110: its share goes from 10% to 18.2%.
		{name: "canary 10 to 20", before: `{"v1":90,"v2":10}`, after: `{"v1":90,"v2":20}`, raised: 1, moved: 20.0/110 - 0.1},
		{name: "canary from zero", before: `{"v1":90,"v2":10,"v3":0}`, after: `{"v1":90,"v2":10,"v3":5}`, raised: 2, moved: 5.0 / 105},
		{name: "stable raised", before: `{"v1":50,"v2":30,"v3":20}`, after: `{"v1":80,"v2":30,"v3":20}`, raised: 0, moved: 80.0/130 - 0.5},
		{name: "full rollout", before: `{"v1":90,"v2":10}`, after: `{"v1":90,"v2":1000000}`, raised: 1, moved: 1000000.0/1000090 - 0.1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := assign(t, mustParse(t, splitConfig(tc.before)))
			after := assign(t, mustParse(t, splitConfig(tc.after)))
			moved := 0
			for i := range before {
				if before[i] != after[i] {
					require.Equal(t, tc.raised, after[i], "key %d moved from %d to %d", i, before[i], after[i])
					moved++
				}
			}
			require.InDelta(t, tc.moved, float64(moved)/splitKeys, 0.01)
		})
	}
}

// Two independently parsed routers stand for two workers' VMs (or two Envoy
// replicas): they must agree on every key.
func TestSplit_SameAcrossInstances(t *testing.T) {
	a := mustParse(t, splitConfig(`{"v1":70,"v2":20,"v3":10}`))
	b := mustParse(t, splitConfig(`{"v3":10,"v1":70,"v2":20}`))
	require.Equal(t, assign(t, a), assign(t, b))
}

func TestSplit_HashOn(t *testing.T) {
	tests := []struct {
		name   string
		hashOn string
		a, b   *fakeRequest // must land on the same version
	}{
		{name: "header", hashOn: `{"header":"x-user-id"}`, a: get("/", "x-user-id", "42"), b: get("/x", "x-user-id", "42")},
		{name: "cookie", hashOn: `{"cookie":"session"}`, a: get("/", "cookie", "session=abc; x=1"), b: get("/", "cookie", "y=2; session=abc")},
		{name: "source address ignores port", hashOn: `{"sourceAddress":true}`,
			a: &fakeRequest{headers: map[string]string{}, source: "10.1.2.3:50000"},
			b: &fakeRequest{headers: map[string]string{}, source: "10.1.2.3:50001"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustParse(t, `{"versions":["v1","v2"],"rules":[{"split":{"weights":{"v1":50,"v2":50},"hashOn":`+tc.hashOn+`}}]}`)
			for i := range 50 {
				// Different random numbers: a keyed split must ignore them.
				da := r.Decide(tc.a, Env{Now: epoch, Random: mix64(uint64(i))})
				db := r.Decide(tc.b, Env{Now: epoch, Random: mix64(uint64(i) + 1000)})
				require.Equal(t, da.Version, db.Version)
			}
		})
	}
}

func TestSplit_SourceAddressSpreads(t *testing.T) {
	r := mustParse(t, `{"versions":["v1","v2"],"rules":[{"split":{"weights":{"v1":50,"v2":50},"hashOn":{"sourceAddress":true}}}]}`)
	n := 0
	for i := range 10000 {
		req := &fakeRequest{source: "10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256) + ":443"}
		if r.Decide(req, Env{Now: epoch}).Version == "v2" {
			n++
		}
		require.Equal(t, 1, req.sourceCalls)
	}
	require.InDelta(t, 5000, n, 200)
}

// A missing key, and hashOn random, fall back to the injected random number:
// the split is then per request but still weighted.
func TestSplit_RandomFallback(t *testing.T) {
	tests := []struct {
		name, hashOn string
	}{
		{name: "random", hashOn: `{"random":true}`},
		{name: "default is random", hashOn: `null`},
		{name: "missing header", hashOn: `{"header":"x-user-id"}`},
		{name: "missing cookie", hashOn: `{"cookie":"session"}`},
		{name: "missing source address", hashOn: `{"sourceAddress":true}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustParse(t, `{"versions":["v1","v2"],"rules":[{"split":{"weights":{"v1":80,"v2":20},"hashOn":`+tc.hashOn+`}}]}`)
			n := 0
			for i := range splitKeys {
				if r.Decide(get("/"), Env{Now: epoch, Random: mix64(uint64(i))}).Version == "v2" {
					n++
				}
			}
			require.InDelta(t, 0.2, float64(n)/splitKeys, 0.01)
		})
	}
}
