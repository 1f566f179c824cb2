package canary

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/internal/casstore"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte(guardConfig))
	f.Add([]byte(`{"versions":["v1","v2"],"rules":[{"match":{"headers":[{"name":"x-user-id","modulo":{"divisor":2}}]},"route":"v2"}]}`))
	f.Add([]byte(`{"versions":["v1","v2"],"sticky":{"cookie":"c"},"mirror":{"cluster":"s"},"rules":[{"split":{"weights":{"v1":9,"v2":1},"hashOn":{"cookie":"sid"}}}]}`))
	f.Add([]byte(`{"versions":["a"],"rules":[{"match":{"path":{"regex":"/x[0-9]+"},"query":[{"name":"q","regex":"a|b"}]},"route":"a"}]}`))
	f.Add([]byte(`{"versions":[]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			require.Nil(t, r)
			require.NotEmpty(t, err.Error())
			return
		}
		// Every parsed configuration decides every request.
		store := casstore.NewMemory()
		for i, req := range []*fakeRequest{
			get("/"),
			get("/x1?q=a", "x-user-id", "12", "cookie", "sid=1; c=v2", "x-route-version", "v2"),
			{headers: map[string]string{}, source: "[::1]:1"},
		} {
			d := r.Decide(req, Env{Now: epoch, Random: uint64(i), Store: store})
			require.GreaterOrEqual(t, d.VersionIndex, 0)
			require.Equal(t, r.Versions()[d.VersionIndex], d.Version)
			require.Less(t, d.Rule, len(r.RuleNames()))
			_, err := r.Record(store, d.VersionIndex, ServerError, epoch)
			require.NoError(t, err)
		}
	})
}

func FuzzCookie(f *testing.F) {
	f.Add("a=1; b=2", "b")
	f.Add(`v="x", w=y`, "v")
	f.Add(";;=;", "")
	f.Fuzz(func(t *testing.T, header, name string) {
		v, ok := Cookie(header, name)
		if !ok {
			require.Empty(t, v)
			return
		}
		require.Contains(t, header, v)
		require.False(t, strings.ContainsAny(v, ";,"))
	})
}

func FuzzQueryParam(f *testing.F) {
	f.Add("a=1&b=2", "b")
	f.Add("a%20b=c+d", "a b")
	f.Add("x=%zz&x=1", "x")
	f.Fuzz(func(t *testing.T, query, name string) {
		v, ok := QueryParam(query, name)
		if !ok {
			require.Empty(t, v)
		}
		// On queries net/url accepts whole, both must agree.
		values, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		want, has := values[name]
		require.Equal(t, has, ok)
		if has {
			require.Equal(t, want[0], v)
		}
	})
}

func FuzzDecide(f *testing.F) {
	r := mustParse(f, `{"versions":["v1","v2","v3"],"trust":{"headers":[{"name":"x-t","value":"k"}]},
		"sticky":{"cookie":"cv"},"mirror":{"cluster":"s","percent":50},
		"rules":[
			{"match":{"headers":[{"name":"x-user-id","modulo":{"divisor":3,"remainder":1}}],"query":[{"name":"q","prefix":"a"}]},"route":"v3"},
			{"match":{"cookies":[{"name":"beta","regex":"y.*"}],"path":{"prefix":"/api"}},"route":"v2"},
			{"split":{"weights":{"v1":90,"v2":10},"hashOn":{"cookie":"sid"}}}],
		"guard":{"consecutive5xx":2}}`)
	f.Add("/api?q=abc", "4", "beta=yes; cv=v2", "", uint64(1), true)
	f.Add("/?q=%zz", "x", "sid=1", "v3", uint64(2), false)
	f.Fuzz(func(t *testing.T, path, user, cookie, route string, rnd uint64, fail bool) {
		store := casstore.NewMemory()
		if fail {
			for range 2 {
				_, err := r.Record(store, 1, ServerError, epoch)
				require.NoError(t, err)
			}
		}
		req := get(path, "x-user-id", user, "cookie", cookie, "x-route-version", route)
		d := r.Decide(req, Env{Now: epoch.Add(time.Duration(rnd % 100)), Random: rnd, Store: store})
		require.Contains(t, r.Versions(), d.Version)
		require.NoError(t, d.GuardErr)
		if d.SetCookie != "" {
			require.True(t, strings.HasPrefix(d.SetCookie, "cv="+d.Version+";"))
		}
		if d.DivertedFrom >= 0 {
			require.Equal(t, "v1", d.Version)
		}
	})
}

func FuzzDecodeState(f *testing.F) {
	g := mustParse(f, guardConfig).Guard()
	s, _ := record(g, State{}, epoch, ".x.x..x")
	f.Add(s.AppendBinary(nil))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeState(b)
		if err != nil {
			require.ErrorIs(t, err, ErrBadState)
			return
		}
		require.Equal(t, b, s.AppendBinary(nil))
		// Any decodable state can be recorded into.
		next, _ := g.Record(s, ServerError, epoch)
		_, err = DecodeState(next.AppendBinary(nil))
		require.NoError(t, err)
	})
}
