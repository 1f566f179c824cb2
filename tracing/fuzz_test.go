package tracing

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte(seedConfig))
	f.Add([]byte(benchConfig))
	f.Add([]byte(`{"inject":["b3"],"sampling":{"rules":[{"header":"x","equals":"1","path":"/a/*/b"}]}}`))
	f.Add([]byte(`{"export":{"cluster":"c","resource":{"a":"b"}},"accessLog":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := Parse(data)
		if (tr == nil) == (err == nil) {
			t.Fatalf("want exactly one of tracer and error, got %v, %v", tr, err)
		}
		if err != nil {
			// Errors start with the JSON path, which comes from the input, so
			// only the presence of a path separator is checked.
			if !strings.Contains(err.Error(), ": ") {
				t.Fatalf("error without a path: %q", err)
			}
			return
		}
		// Any accepted configuration handles a request.
		var h Hop
		if err := tr.Start(&h, benchHeaders, &loopRand{}, t0); err != nil {
			t.Fatal(err)
		}
		tr.Finish(&h, 200, t0.Add(time.Millisecond), props{})
		if line := tr.AppendLog(nil, &h); tr.LogEnabled() && !json.Valid(line) {
			t.Fatalf("invalid log line %s", line)
		}
		if e := tr.NewExporter(); e != nil {
			h.Decision.Sampled = true
			e.Add(&h)
			if c, ok := e.Flush(t0.Add(time.Hour)); !ok || !json.Valid(c.Body) {
				t.Fatalf("flush %v, body %s", ok, c.Body)
			}
		}
	})
}

func FuzzParseTraceparent(f *testing.F) {
	f.Add("00-" + w3cTrace + "-" + w3cSpan + "-01")
	f.Add("cc-" + w3cTrace + "-" + w3cSpan + "-01-future")
	f.Add("ff-" + w3cTrace + "-" + w3cSpan + "-01")
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := ParseTraceparent(s)
		if !ok {
			return
		}
		if !c.IsValid() || c.Sampling == SamplingUnset || c.Sampling == SamplingDebug {
			t.Fatalf("accepted %q as %+v", s, c)
		}
		// Only the 55-character prefix is read; a future version's tail is
		// opaque.
		if s[:traceparentLen] != strings.ToLower(s[:traceparentLen]) {
			t.Fatalf("accepted upper case %q", s)
		}
		out := string(AppendTraceparent(nil, c.TraceID, c.SpanID, c.Sampled()))
		if again, ok := ParseTraceparent(out); !ok || again != c {
			t.Fatalf("round trip of %q gave %q", s, out)
		}
	})
}

func FuzzParseTracestate(f *testing.F) {
	f.Add("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", 512)
	f.Add(" a@b=1 ,, c=2", 512)
	f.Add(strings.Repeat("k=v,", 40), 600)
	f.Fuzz(func(t *testing.T, s string, maxLen int) {
		maxLen = TracestateMinLength + abs(maxLen)%8192
		out := ParseTracestate(s, maxLen)
		if len(out) > maxLen || strings.Count(out, ",") >= TracestateMaxMembers {
			t.Fatalf("limits broken: %q", out)
		}
		if out != "" && ParseTracestate(out, maxLen) != out {
			t.Fatalf("not stable: %q", out)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		if n == -n {
			return 0
		}
		return -n
	}
	return n
}

func FuzzParseB3(f *testing.F) {
	f.Add(b3Trace128 + "-" + b3Span + "-1-" + b3Parent)
	f.Add(b3Trace64 + "-" + b3Span + "-d")
	f.Add("0")
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := ParseB3(s)
		if !ok {
			return
		}
		if !c.IsValid() {
			if c.Sampling == SamplingUnset || len(s) != 1 {
				t.Fatalf("accepted %q as %+v", s, c)
			}
			return
		}
		// Equal ids, not equal text: a 128-bit id whose high half is zero is
		// written back 64 bits wide.
		out := string(AppendB3(nil, c))
		if again, ok := ParseB3(out); !ok || again != c {
			t.Fatalf("round trip of %q gave %q", s, out)
		}
	})
}

func FuzzParseB3Multi(f *testing.F) {
	f.Add(b3Trace128, b3Span, b3Parent, "1", "")
	f.Add("", "", "", "true", "1")
	f.Fuzz(func(t *testing.T, tid, sid, pid, sampled, flags string) {
		h := headers{}
		for k, v := range map[string]string{HeaderB3TraceID: tid, HeaderB3SpanID: sid, HeaderB3ParentSpanID: pid,
			HeaderB3Sampled: sampled, HeaderB3Flags: flags} {
			if v != "" {
				h[k] = v
			}
		}
		c, ok := ParseB3Multi(h)
		if ok && !c.IsValid() && c.Sampling == SamplingUnset {
			t.Fatalf("accepted nothing as %+v", c)
		}
	})
}

func FuzzBaggage(f *testing.F) {
	f.Add("tenant=acme,user.id=1;p", "user.id", "a b%")
	f.Add("", "k", "")
	f.Fuzz(func(t *testing.T, existing, key, value string) {
		if !validToken(key) {
			return
		}
		out, skipped := AppendBaggage(nil, existing, []BaggageEntry{{key, value}})
		if len(out) > BaggageMaxBytes || strings.Count(string(out), ",") >= BaggageMaxMembers {
			t.Fatalf("limits broken: %d bytes", len(out))
		}
		got, ok := BaggageValue(string(out), key)
		if skipped == 0 && (!ok || got != value) {
			t.Fatalf("value %q came back as %q, %v", value, got, ok)
		}
	})
}

// FuzzStart feeds arbitrary trace headers to a full configuration: the hop
// must always end with a valid context and a definite decision, and every
// header value it writes must be a valid header value.
func FuzzStart(f *testing.F) {
	tr, err := Parse([]byte(seedConfig))
	if err != nil {
		f.Fatal(err)
	}
	f.Add("00-"+w3cTrace+"-"+w3cSpan+"-01", "rojo=1", "", "", "", "u1", "a=1", "/api/payments/1")
	f.Add("", "", b3Trace64+"-"+b3Span+"-d", b3Trace128, "1", "", "user.id=%FF", "/")
	f.Add("", "", "", "", "", "a\r\nb", "user.id=x%0D%0Ay", "/")
	f.Fuzz(func(t *testing.T, tp, ts, b3, b3tid, b3sampled, user, baggage, path string) {
		in := headers{":path": path}
		for k, v := range map[string]string{HeaderTraceparent: tp, HeaderTracestate: ts, HeaderB3: b3,
			HeaderB3TraceID: b3tid, HeaderB3SpanID: b3Span, HeaderB3Sampled: b3sampled, "x-user-id": user, HeaderBaggage: baggage} {
			if v != "" {
				in[k] = v
			}
		}
		var h Hop
		if err := tr.Start(&h, in, bytes.NewReader(bytes.Repeat([]byte{7}, 24)), t0); err != nil {
			t.Fatal(err)
		}
		if !h.Context.IsValid() || h.Context.Sampling == SamplingUnset || h.Context.Sampled() != h.Decision.Sampled {
			t.Fatalf("indefinite hop %+v", h)
		}
		for _, op := range append(h.RequestHeaders(), h.ResponseHeaders()...) {
			if strings.ContainsAny(op.Value, "\r\n\x00") {
				t.Fatalf("header %s gained a forbidden byte: %q", op.Name, op.Value)
			}
		}
	})
}
