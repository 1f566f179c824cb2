package tracing

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	b3Trace128 = "80f198ee56343ba864fe8b2a57d3eff7"
	b3Trace64  = "64fe8b2a57d3eff7"
	b3Span     = "e457b5a2e4d86bd1"
	b3Parent   = "05e3ac9a4f6e3b90"
)

func TestParseB3(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		trace    string
		span     string
		parent   string
		sampling Sampling
	}{
		{name: "ids only", in: b3Trace128 + "-" + b3Span, trace: b3Trace128, span: b3Span},
		{name: "accept", in: b3Trace128 + "-" + b3Span + "-1", trace: b3Trace128, span: b3Span, sampling: SamplingAccept},
		{name: "deny", in: b3Trace128 + "-" + b3Span + "-0", trace: b3Trace128, span: b3Span, sampling: SamplingDeny},
		{name: "debug", in: b3Trace128 + "-" + b3Span + "-d", trace: b3Trace128, span: b3Span, sampling: SamplingDebug},
		{name: "with parent", in: b3Trace128 + "-" + b3Span + "-1-" + b3Parent, trace: b3Trace128, span: b3Span, parent: b3Parent, sampling: SamplingAccept},
		{name: "64-bit trace id widened", in: b3Trace64 + "-" + b3Span + "-1", trace: "0000000000000000" + b3Trace64, span: b3Span, sampling: SamplingAccept},
		{name: "deny only", in: "0", sampling: SamplingDeny},
		{name: "accept only", in: "1", sampling: SamplingAccept},
		{name: "debug only", in: "d", sampling: SamplingDebug},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := ParseB3(tc.in)
			require.True(t, ok)
			require.Equal(t, tc.sampling, c.Sampling)
			if tc.trace == "" {
				require.False(t, c.IsValid())
				return
			}
			require.Equal(t, tc.trace, c.TraceID.String())
			require.Equal(t, tc.span, c.SpanID.String())
			if tc.parent != "" {
				require.Equal(t, tc.parent, c.ParentSpanID.String())
			} else {
				require.False(t, c.ParentSpanID.IsValid())
			}
		})
	}
}

func TestParseB3_Errors(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "empty", in: ""},
		{name: "bad state only", in: "2"},
		{name: "true is not a single-header state", in: "true"},
		{name: "no span", in: b3Trace128},
		{name: "empty span", in: b3Trace128 + "-"},
		{name: "short span", in: b3Trace128 + "-" + b3Span[:15]},
		{name: "long span", in: b3Trace128 + "-" + b3Span + "0"},
		{name: "uppercase trace", in: strings.ToUpper(b3Trace128) + "-" + b3Span},
		{name: "uppercase span", in: b3Trace128 + "-" + strings.ToUpper(b3Span)},
		{name: "48-bit trace", in: b3Trace64[:12] + "-" + b3Span},
		{name: "zero trace", in: strings.Repeat("0", 32) + "-" + b3Span},
		{name: "zero 64-bit trace", in: strings.Repeat("0", 16) + "-" + b3Span},
		{name: "zero span", in: b3Trace128 + "-" + strings.Repeat("0", 16)},
		{name: "bad state", in: b3Trace128 + "-" + b3Span + "-x"},
		{name: "state too long", in: b3Trace128 + "-" + b3Span + "-11"},
		{name: "dangling dash", in: b3Trace128 + "-" + b3Span + "-"},
		{name: "dangling dash after state", in: b3Trace128 + "-" + b3Span + "-1-"},
		{name: "zero parent", in: b3Trace128 + "-" + b3Span + "-1-" + strings.Repeat("0", 16)},
		{name: "short parent", in: b3Trace128 + "-" + b3Span + "-1-" + b3Parent[:15]},
		{name: "trailing field", in: b3Trace128 + "-" + b3Span + "-1-" + b3Parent + "-x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ok := ParseB3(tc.in)
			require.False(t, ok)
		})
	}
}

func TestParseB3Multi(t *testing.T) {
	tests := []struct {
		name     string
		in       headers
		trace    string
		parent   string
		sampling Sampling
	}{
		{name: "ids", in: headers{HeaderB3TraceID: b3Trace128, HeaderB3SpanID: b3Span}, trace: b3Trace128},
		{name: "64-bit", in: headers{HeaderB3TraceID: b3Trace64, HeaderB3SpanID: b3Span, HeaderB3Sampled: "1"}, trace: "0000000000000000" + b3Trace64, sampling: SamplingAccept},
		{name: "parent and deny", in: headers{HeaderB3TraceID: b3Trace128, HeaderB3SpanID: b3Span, HeaderB3ParentSpanID: b3Parent, HeaderB3Sampled: "0"}, trace: b3Trace128, parent: b3Parent, sampling: SamplingDeny},
		{name: "true", in: headers{HeaderB3TraceID: b3Trace128, HeaderB3SpanID: b3Span, HeaderB3Sampled: "true"}, trace: b3Trace128, sampling: SamplingAccept},
		{name: "false", in: headers{HeaderB3TraceID: b3Trace128, HeaderB3SpanID: b3Span, HeaderB3Sampled: "false"}, trace: b3Trace128, sampling: SamplingDeny},
		{name: "flags debug", in: headers{HeaderB3TraceID: b3Trace128, HeaderB3SpanID: b3Span, HeaderB3Flags: "1"}, trace: b3Trace128, sampling: SamplingDebug},
		{name: "debug wins over deny", in: headers{HeaderB3TraceID: b3Trace128, HeaderB3SpanID: b3Span, HeaderB3Flags: "1", HeaderB3Sampled: "0"}, trace: b3Trace128, sampling: SamplingDebug},
		{name: "flags 0", in: headers{HeaderB3TraceID: b3Trace128, HeaderB3SpanID: b3Span, HeaderB3Flags: "0"}, trace: b3Trace128},
		{name: "sampled only", in: headers{HeaderB3Sampled: "1"}, sampling: SamplingAccept},
		{name: "flags only", in: headers{HeaderB3Flags: "1"}, sampling: SamplingDebug},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := ParseB3Multi(tc.in)
			require.True(t, ok)
			require.Equal(t, tc.sampling, c.Sampling)
			if tc.trace == "" {
				require.False(t, c.IsValid())
				return
			}
			require.Equal(t, tc.trace, c.TraceID.String())
			require.Equal(t, b3Span, c.SpanID.String())
			if tc.parent != "" {
				require.Equal(t, tc.parent, c.ParentSpanID.String())
			}
		})
	}
}

func TestParseB3Multi_Errors(t *testing.T) {
	tests := []struct {
		name string
		in   headers
	}{
		{name: "nothing", in: headers{}},
		{name: "trace without span", in: headers{HeaderB3TraceID: b3Trace128}},
		{name: "span without trace", in: headers{HeaderB3SpanID: b3Span}},
		{name: "bad trace", in: headers{HeaderB3TraceID: "xyz", HeaderB3SpanID: b3Span}},
		{name: "uppercase trace", in: headers{HeaderB3TraceID: strings.ToUpper(b3Trace128), HeaderB3SpanID: b3Span}},
		{name: "zero span", in: headers{HeaderB3TraceID: b3Trace128, HeaderB3SpanID: strings.Repeat("0", 16)}},
		{name: "bad parent", in: headers{HeaderB3TraceID: b3Trace128, HeaderB3SpanID: b3Span, HeaderB3ParentSpanID: "1"}},
		{name: "bad sampled", in: headers{HeaderB3TraceID: b3Trace128, HeaderB3SpanID: b3Span, HeaderB3Sampled: "yes"}},
		{name: "bad flags", in: headers{HeaderB3TraceID: b3Trace128, HeaderB3SpanID: b3Span, HeaderB3Flags: "2"}},
		{name: "flags 0 only", in: headers{HeaderB3Flags: "0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ok := ParseB3Multi(tc.in)
			require.False(t, ok)
		})
	}
}

func TestAppendB3_RoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "128-bit accept parent", in: b3Trace128 + "-" + b3Span + "-1-" + b3Parent},
		{name: "64-bit kept 64-bit", in: b3Trace64 + "-" + b3Span + "-0"},
		{name: "debug", in: b3Trace128 + "-" + b3Span + "-d"},
		{name: "defer", in: b3Trace128 + "-" + b3Span},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := ParseB3(tc.in)
			require.True(t, ok)
			require.Equal(t, tc.in, string(AppendB3(nil, c)))
		})
	}
}

// A 64-bit B3 trace id written as W3C is left-padded with zeros, and the W3C
// id read back and written as B3 is the original 64-bit id again.
func TestB3W3CTranslation(t *testing.T) {
	c, ok := ParseB3(b3Trace64 + "-" + b3Span + "-1")
	require.True(t, ok)
	tp := string(AppendTraceparent(nil, c.TraceID, c.SpanID, c.Sampled()))
	require.Equal(t, "00-0000000000000000"+b3Trace64+"-"+b3Span+"-01", tp)
	back, ok := ParseTraceparent(tp)
	require.True(t, ok)
	require.Equal(t, b3Trace64+"-"+b3Span+"-1", string(AppendB3(nil, back)))

	w, ok := ParseTraceparent("00-" + w3cTrace + "-" + w3cSpan + "-00")
	require.True(t, ok)
	require.Equal(t, w3cTrace+"-"+w3cSpan+"-0", string(AppendB3(nil, w)))
}
