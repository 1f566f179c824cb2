package canary

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCookie(t *testing.T) {
	tests := []struct {
		name, header, cookie, want string
		found                      bool
	}{
		{name: "only", header: "v=v2", cookie: "v", want: "v2", found: true},
		{name: "middle", header: "a=1; v=v2; b=3", cookie: "v", want: "v2", found: true},
		{name: "no spaces", header: "a=1;v=v2", cookie: "v", want: "v2", found: true},
		{name: "joined by envoy", header: "a=1, v=v2", cookie: "v", want: "v2", found: true},
		{name: "first wins", header: "v=v1; v=v2", cookie: "v", want: "v1", found: true},
		{name: "quoted", header: `v="v2"`, cookie: "v", want: "v2", found: true},
		{name: "empty value", header: "v=", cookie: "v", want: "", found: true},
		{name: "name is not a prefix", header: "vv=v2", cookie: "v", found: false},
		{name: "value is not a name", header: "a=v", cookie: "v", found: false},
		{name: "no equals", header: "v", cookie: "v", found: false},
		{name: "empty header", header: "", cookie: "v", found: false},
		{name: "stray separators", header: ";; ,v=v2;", cookie: "v", want: "v2", found: true},
		{name: "spaces around", header: " v = v2 ", cookie: "v", want: "v2", found: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, found := Cookie(tc.header, tc.cookie)
			require.Equal(t, tc.found, found)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestQueryParam(t *testing.T) {
	tests := []struct {
		name, query, param, want string
		found                    bool
	}{
		{name: "only", query: "canary=1", param: "canary", want: "1", found: true},
		{name: "among others", query: "a=1&canary=yes&b=2", param: "canary", want: "yes", found: true},
		{name: "first wins", query: "canary=1&canary=2", param: "canary", want: "1", found: true},
		{name: "no value", query: "canary", param: "canary", want: "", found: true},
		{name: "empty value", query: "canary=", param: "canary", want: "", found: true},
		{name: "encoded value", query: "q=a%20b+c", param: "q", want: "a b c", found: true},
		{name: "encoded name", query: "can%61ry=1", param: "canary", want: "1", found: true},
		{name: "plus in name", query: "a+b=1", param: "a b", want: "1", found: true},
		{name: "bad escape skipped", query: "canary=%zz&canary=2", param: "canary", want: "2", found: true},
		{name: "bad name escape skipped", query: "can%zzary=1", param: "canary", found: false},
		{name: "missing", query: "a=1", param: "canary", found: false},
		{name: "prefix of name", query: "canaryx=1", param: "canary", found: false},
		{name: "empty pairs", query: "&&canary=1&", param: "canary", want: "1", found: true},
		{name: "empty query", query: "", param: "canary", found: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, found := QueryParam(tc.query, tc.param)
			require.Equal(t, tc.found, found)
			require.Equal(t, tc.want, got)
		})
	}
}

// QueryParam must agree with net/url on well-formed queries.
func TestQueryParam_AgreesWithNetURL(t *testing.T) {
	for _, q := range []string{"a=1&b=2", "a=%41&a=2", "x+y=1", "a", "a=b=c", "%61=%62"} {
		values, err := url.ParseQuery(q)
		require.NoError(t, err)
		for name, vs := range values {
			got, found := QueryParam(q, name)
			require.True(t, found, "%s in %s", name, q)
			require.Equal(t, vs[0], got, "%s in %s", name, q)
		}
	}
}

func TestSplitPath(t *testing.T) {
	tests := []struct{ name, target, path, query string }{
		{name: "plain", target: "/a/b", path: "/a/b"},
		{name: "query", target: "/a?x=1&y=2", path: "/a", query: "x=1&y=2"},
		{name: "empty query", target: "/a?", path: "/a"},
		{name: "fragment", target: "/a?x=1#frag", path: "/a", query: "x=1"},
		{name: "question mark in query", target: "/a?x=?", path: "/a", query: "x=?"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path, query := splitPath(tc.target)
			require.Equal(t, tc.path, path)
			require.Equal(t, tc.query, query)
		})
	}
}

func TestHostOf(t *testing.T) {
	tests := []struct{ name, addr, want string }{
		{name: "ipv4 with port", addr: "10.0.0.1:5123", want: "10.0.0.1"},
		{name: "ipv4 bare", addr: "10.0.0.1", want: "10.0.0.1"},
		{name: "ipv6 with port", addr: "[2001:db8::1]:443", want: "2001:db8::1"},
		{name: "ipv6 bare", addr: "2001:db8::1", want: "2001:db8::1"},
		{name: "broken bracket", addr: "[2001:db8::1", want: "[2001:db8::1"},
		{name: "empty", addr: "", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, hostOf(tc.addr))
		})
	}
}

func TestDecimalMod(t *testing.T) {
	tests := []struct {
		name, v string
		d, want uint64
		ok      bool
	}{
		{name: "even", v: "1234", d: 2, want: 0, ok: true},
		{name: "odd", v: "1235", d: 2, want: 1, ok: true},
		{name: "zero", v: "0", d: 7, want: 0, ok: true},
		{name: "leading zeros", v: "0010", d: 3, want: 1, ok: true},
		{name: "longer than 64 bits", v: "123456789012345678901234567890", d: 97, want: 123456789012345678901234567890 % 97, ok: true},
		{name: "large divisor", v: "18446744073709551615", d: 4294967295, want: 18446744073709551615 % 4294967295, ok: true},
		{name: "spaces trimmed", v: " 42 ", d: 10, want: 2, ok: true},
		{name: "negative", v: "-2", d: 2},
		{name: "plus sign", v: "+2", d: 2},
		{name: "fraction", v: "2.0", d: 2},
		{name: "hex", v: "0x10", d: 2},
		{name: "empty", v: "", d: 2},
		{name: "letters", v: "abc", d: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := decimalMod(tc.v, tc.d)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}
