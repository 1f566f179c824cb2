package tracing

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// headers is the test request: a map of lowercase names.
type headers map[string]string

func (h headers) Header(name string) (string, bool) {
	v, ok := h[name]
	return v, ok
}

func mustTraceID(t testing.TB, s string) TraceID {
	t.Helper()
	id, ok := parseTraceID(s, true)
	require.True(t, ok, s)
	return id
}

func mustSpanID(t testing.TB, s string) SpanID {
	t.Helper()
	id, ok := parseSpanID(s)
	require.True(t, ok, s)
	return id
}

const (
	w3cTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	w3cSpan  = "00f067aa0ba902b7"
)

func TestParseTraceparent(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		sampling Sampling
	}{
		{name: "sampled", in: "00-" + w3cTrace + "-" + w3cSpan + "-01", sampling: SamplingAccept},
		{name: "not sampled", in: "00-" + w3cTrace + "-" + w3cSpan + "-00", sampling: SamplingDeny},
		{name: "unknown flag bits ignored", in: "00-" + w3cTrace + "-" + w3cSpan + "-fe", sampling: SamplingDeny},
		{name: "unknown flag bits with sampled", in: "00-" + w3cTrace + "-" + w3cSpan + "-ff", sampling: SamplingAccept},
		{name: "future version exact length", in: "cc-" + w3cTrace + "-" + w3cSpan + "-01", sampling: SamplingAccept},
		{name: "future version with more fields", in: "cc-" + w3cTrace + "-" + w3cSpan + "-01-what-the-future-holds", sampling: SamplingAccept},
		{name: "future version trailing dash", in: "01-" + w3cTrace + "-" + w3cSpan + "-00-", sampling: SamplingDeny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := ParseTraceparent(tc.in)
			require.True(t, ok)
			require.Equal(t, w3cTrace, c.TraceID.String())
			require.Equal(t, w3cSpan, c.SpanID.String())
			require.Equal(t, tc.sampling, c.Sampling)
			require.False(t, c.ParentSpanID.IsValid())
		})
	}
}

func TestParseTraceparent_Errors(t *testing.T) {
	valid := "00-" + w3cTrace + "-" + w3cSpan + "-01"
	tests := []struct {
		name string
		in   string
	}{
		{name: "empty", in: ""},
		{name: "short", in: valid[:54]},
		{name: "version 00 too long", in: valid + "-"},
		{name: "version 00 extra chars", in: valid + "00"},
		{name: "version ff", in: "ff" + valid[2:]},
		{name: "uppercase version", in: "0A" + valid[2:]},
		{name: "non-hex version", in: "0g" + valid[2:]},
		{name: "future version no dash after flags", in: "cc" + valid[2:] + "x"},
		{name: "uppercase trace id", in: "00-" + strings.ToUpper(w3cTrace) + "-" + w3cSpan + "-01"},
		{name: "uppercase span id", in: "00-" + w3cTrace + "-00F067AA0BA902B7-01"},
		{name: "uppercase flags", in: "00-" + w3cTrace + "-" + w3cSpan + "-0A"},
		{name: "zero trace id", in: "00-00000000000000000000000000000000-" + w3cSpan + "-01"},
		{name: "zero span id", in: "00-" + w3cTrace + "-0000000000000000-01"},
		{name: "non-hex trace id", in: "00-" + w3cTrace[:31] + "z-" + w3cSpan + "-01"},
		{name: "non-hex span id", in: "00-" + w3cTrace + "-" + w3cSpan[:15] + "x-01"},
		{name: "non-hex flags", in: "00-" + w3cTrace + "-" + w3cSpan + "-0x"},
		{name: "wrong separator 1", in: "00_" + w3cTrace + "-" + w3cSpan + "-01"},
		{name: "wrong separator 2", in: "00-" + w3cTrace + "_" + w3cSpan + "-01"},
		{name: "wrong separator 3", in: "00-" + w3cTrace + "-" + w3cSpan + "_01"},
		{name: "short trace id", in: "00-" + w3cTrace[:30] + "-" + w3cSpan + "-01-"},
		{name: "leading space", in: " " + valid[:54]},
		{name: "repeated header joined by proxy", in: valid + "," + valid},
		{name: "64-bit trace id", in: "00-a3ce929d0e0e4736-" + w3cSpan + "-01-0000000000000000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ok := ParseTraceparent(tc.in)
			require.False(t, ok)
		})
	}
}

func TestAppendTraceparent_RoundTrip(t *testing.T) {
	for _, sampled := range []bool{true, false} {
		tid, sid := mustTraceID(t, w3cTrace), mustSpanID(t, w3cSpan)
		out := string(AppendTraceparent(nil, tid, sid, sampled))
		c, ok := ParseTraceparent(out)
		require.True(t, ok)
		require.Equal(t, tid, c.TraceID)
		require.Equal(t, sid, c.SpanID)
		require.Equal(t, sampled, c.Sampled())
		if sampled {
			require.Equal(t, "00-"+w3cTrace+"-"+w3cSpan+"-01", out)
		} else {
			require.Equal(t, "00-"+w3cTrace+"-"+w3cSpan+"-00", out)
		}
	}
}

func TestParseTracestate(t *testing.T) {
	long := func(key string, n int) string { return key + "=" + strings.Repeat("v", n-len(key)-1) }
	var many []string
	for i := 0; i < 40; i++ {
		many = append(many, "k"+string(rune('a'+i%26))+string(rune('a'+i/26))+"=v")
	}
	tests := []struct {
		name   string
		in     string
		maxLen int
		want   string
	}{
		{name: "single", in: "congo=t61rcWkgMzE", want: "congo=t61rcWkgMzE"},
		{name: "two", in: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", want: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"},
		{name: "ows normalised", in: " rojo=1 ,\tcongo=2\t", want: "rojo=1,congo=2"},
		{name: "empty members skipped", in: "rojo=1,,  ,congo=2", want: "rojo=1,congo=2"},
		{name: "multi-tenant key", in: "fw529a3039@dt=abc,0tenant@sys-1=x", want: "fw529a3039@dt=abc,0tenant@sys-1=x"},
		{name: "key chars", in: "a_b-c*d/e9=x", want: "a_b-c*d/e9=x"},
		{name: "value with inner space", in: "k=a b", want: "k=a b"},
		{name: "value printable", in: "k=!\"#$%&'()*+-./:;<>?@[\\]^_`{|}~", want: "k=!\"#$%&'()*+-./:;<>?@[\\]^_`{|}~"},
		{name: "empty", in: "", want: ""},
		{name: "only commas", in: " , ,", want: ""},
		{name: "32 members kept", in: strings.Join(many[:32], ","), want: strings.Join(many[:32], ",")},
		{name: "more than 32 truncated from the end", in: strings.Join(many, ","), want: strings.Join(many[:32], ",")},
		{
			name: "long entries removed first", maxLen: 512,
			in:   strings.Join([]string{long("a", 100), long("big", 200), long("b", 100), long("c", 100), long("d", 100)}, ","),
			want: strings.Join([]string{long("a", 100), long("b", 100), long("c", 100), long("d", 100)}, ","),
		},
		{
			name: "then from the end", maxLen: 512,
			in:   strings.Join([]string{long("a", 120), long("b", 120), long("c", 120), long("d", 120), long("e", 120)}, ","),
			want: strings.Join([]string{long("a", 120), long("b", 120), long("c", 120), long("d", 120)}, ","),
		},
		{
			name: "only as many long entries as needed", maxLen: 600,
			in:   strings.Join([]string{long("a", 200), long("b", 200), long("c", 200)}, ","),
			want: strings.Join([]string{long("a", 200), long("b", 200)}, ","),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.maxLen == 0 {
				tc.maxLen = 8192
			}
			got := ParseTracestate(tc.in, tc.maxLen)
			require.Equal(t, tc.want, got)
			require.LessOrEqual(t, len(got), tc.maxLen)
		})
	}
}

func TestParseTracestate_Invalid(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "no equals", in: "rojo"},
		{name: "empty key", in: "=v"},
		{name: "empty value", in: "k="},
		{name: "uppercase key", in: "Rojo=1"},
		{name: "key starts with digit", in: "1abc=1"},
		{name: "key bad char", in: "ro.jo=1"},
		{name: "key too long", in: "a" + strings.Repeat("b", 256) + "=1"},
		{name: "tenant too long", in: strings.Repeat("t", 242) + "@sys=1"},
		{name: "system too long", in: "t@" + strings.Repeat("s", 15) + "=1"},
		{name: "system starts with digit", in: "t@1s=1"},
		{name: "empty tenant", in: "@sys=1"},
		{name: "two at signs", in: "a@b@c=1"},
		{name: "value with equals", in: "k=a=b"},
		{name: "value with control char", in: "k=a\x01b"},
		{name: "value non-ascii", in: "k=é"},
		{name: "value too long", in: "k=" + strings.Repeat("v", 257)},
		{name: "space around equals", in: "k = v"},
		{name: "duplicate key", in: "rojo=1,congo=2,rojo=3"},
		{name: "one bad member spoils all", in: "rojo=1,BAD=2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, "", ParseTracestate(tc.in, 8192))
		})
	}
}
