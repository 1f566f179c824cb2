package authz

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		name, in string
		mode     SlashAction
		want     string
	}{
		{name: "plain", in: "/a/b", want: "/a/b"},
		{name: "root", in: "/", want: "/"},
		{name: "empty (CONNECT)", in: "", want: ""},
		{name: "asterisk (OPTIONS)", in: "*", want: "*"},
		{name: "query stripped", in: "/a?b=/../c", want: "/a"},
		{name: "merge slashes", in: "//a///b//", want: "/a/b/"},
		{name: "dot segments", in: "/a/./b/../c", want: "/a/c"},
		{name: "dot-dot above root", in: "/../../a", want: "/a"},
		{name: "trailing dot-dot", in: "/a/b/..", want: "/a/"},
		{name: "trailing dot", in: "/a/.", want: "/a/"},
		{name: "dots in names kept", in: "/a/..b/.c/d..", want: "/a/..b/.c/d.."},
		{name: "backslash", in: "/a\\b\\..\\c", want: "/a/c"},
		{name: "unreserved decoded", in: "/%61%2D%2e%5F%7E%30", want: "/a-._~0"},
		{name: "encoded dots resolved", in: "/a/%2e%2E/b", want: "/b"},
		{name: "reserved kept uppercase", in: "/a%3fb%20c", want: "/a%3Fb%20c"},
		{name: "percent kept", in: "/100%25", want: "/100%25"},
		{name: "encoded percent kept when not a second layer", in: "/a%2541", want: "/a%2541"},
		{name: "path parameters stripped", in: "/a;x=y/b;c", want: "/a/b"},
		{name: "parameter on a dot-dot segment", in: "/a/b/..;x=y/c", want: "/a/c"},
		{name: "parameter-only segment merged", in: "/a/;x/b", want: "/a/b"},
		{name: "encoded semicolon is data", in: "/a%3Bx/b", want: "/a%3Bx/b"},
		{name: "valid UTF-8 kept encoded", in: "/caf%c3%a9", want: "/caf%C3%A9"},
		{name: "escaped slash kept", in: "/a%2fb", mode: SlashKeep, want: "/a%2Fb"},
		{name: "escaped backslash kept", in: "/a%5cb", mode: SlashKeep, want: "/a%5Cb"},
		{name: "escaped slash decoded", in: "/a%2F%2Fb", mode: SlashDecode, want: "/a/b"},
		{name: "escaped backslash decoded then resolved", in: "/a/..%5Cb", mode: SlashDecode, want: "/b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := NormalizePath(tc.in, tc.mode)
			require.Empty(t, reason)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestNormalizePath_Errors(t *testing.T) {
	tests := []struct {
		name, in string
		mode     SlashAction
		want     string
	}{
		{name: "encoded nul", in: "/a%00b", want: "nul byte in path"},
		{name: "raw nul", in: "/a\x00%41", want: "nul byte in path"},
		{name: "raw nul on fast path", in: "/a\x00", want: "nul byte in path"},
		{name: "escaped slash rejected by default", in: "/a%2Fb", want: "escaped slash in path"},
		{name: "escaped backslash rejected by default", in: "/a%5cb", want: "escaped slash in path"},
		{name: "nul even when decoding slashes", in: "/%00", mode: SlashDecode, want: "nul byte in path"},
		{name: "truncated escape", in: "/a%4", want: "invalid percent-encoding in path"},
		{name: "bad hex", in: "/a%zz", want: "invalid percent-encoding in path"},
		{name: "relative", in: "a/b", want: "path must start with '/'"},
		{name: "absolute form", in: "http://x/a", want: "path must start with '/'"},
		{name: "query only", in: "?/a", want: "path must start with '/'"},
		{name: "fragment", in: "/a#x", want: "fragment in path"},
		{name: "fragment after the query", in: "/a?b#c", want: "fragment in path"},
		{name: "raw space", in: "/a b", want: "invalid character in path"},
		{name: "raw tab", in: "/a\tb", want: "invalid character in path"},
		{name: "raw DEL", in: "/a\x7f", want: "invalid character in path"},
		{name: "raw non-ASCII", in: "/caf\xc3\xa9", want: "invalid character in path"},
		{name: "double-encoded dot", in: "/%252e%252e/a", want: "double-encoded character in path"},
		{name: "double-encoded slash", in: "/a%252fb", want: "double-encoded character in path"},
		{name: "double encoding built from escapes", in: "/%25%32%65", want: "double-encoded character in path"},
		{name: "overlong dot", in: "/%c0%ae%c0%ae/a", want: "invalid UTF-8 in path"},
		{name: "overlong slash three bytes", in: "/a%e0%80%afb", want: "invalid UTF-8 in path"},
		{name: "surrogate", in: "/%ed%a0%80", want: "invalid UTF-8 in path"},
		{name: "stray continuation byte", in: "/%80", want: "invalid UTF-8 in path"},
		{name: "truncated sequence", in: "/%c3", want: "invalid UTF-8 in path"},
		{name: "sequence split by a literal", in: "/%c3x%a9", want: "invalid UTF-8 in path"},
		{name: "fullwidth dots", in: "/%ef%bc%8e%ef%bc%8e/a", want: "look-alike of '.', '/' or '\\' in path"},
		{name: "division slash", in: "/a%e2%88%95b", want: "look-alike of '.', '/' or '\\' in path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := NormalizePath(tc.in, tc.mode)
			require.Equal(t, tc.want, reason)
			require.Empty(t, got)
		})
	}
}

func TestNormalizePath_NoAllocsWhenNormal(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		p, _ := NormalizePath("/api/payments/42?x=1", SlashReject)
		if p != "/api/payments/42" {
			panic(p)
		}
	})
	require.Zero(t, allocs)
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/a/b", "/a/../b", "//a%2f%2e%2E/./", "/%00", "/a\\b?x#y", "/%zz", "*", "",
		"/api/..;a=b/admin", "/%c0%ae", "/%252e", "/caf%c3%a9", "/%ef%bc%8e"} {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, in string, m uint8) {
		mode := SlashAction(m % 3)
		out, reason := NormalizePath(in, mode)
		if reason != "" {
			require.Empty(t, out)
			return
		}
		if out == "" || out == "*" {
			return
		}
		// Normalized paths are absolute, have no dot segments, no empty
		// segments, no NUL and no raw backslash, and are a fixed point.
		require.True(t, strings.HasPrefix(out, "/"), out)
		require.NotContains(t, out, "//")
		require.NotContains(t, out, "\\")
		require.NotContains(t, out, "\x00")
		require.False(t, strings.Contains(out+"/", "/./") || strings.Contains(out+"/", "/../"), out)
		// No path parameters, fragments, controls or raw non-ASCII survive.
		require.NotContains(t, out, ";")
		require.NotContains(t, out, "#")
		for i := 0; i < len(out); i++ {
			require.True(t, out[i] > 0x20 && out[i] < 0x7f, "byte %#x in %q", out[i], out)
		}
		again, reason := NormalizePath(out, mode)
		require.Empty(t, reason)
		require.Equal(t, out, again)
	})
}
