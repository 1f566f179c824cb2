package tracing

import (
	"errors"
	"io"
	"time"
)

// HeaderOp is one header mutation for the filter to apply: set Name to
// Value, or remove Name when Remove is true.
type HeaderOp struct {
	Name   string
	Value  string
	Remove bool
}

// Hop is the state of one request through the proxy. The filter keeps one
// per stream (and may reuse it across streams: Start resets it). Its fields
// are read-only to callers.
type Hop struct {
	// Parent is the extracted context (invalid when none came in) and
	// ParentFormat the format it came from.
	Parent       SpanContext
	ParentFormat Format
	// Context is this hop's: the parent's trace id (or a new one), a new
	// span id, the parent's span id as ParentSpanID, and the decision.
	Context  SpanContext
	Decision Decision

	Method, Path string
	// Group indexes the matching route group; len(groups) means "default".
	// Route is the matching path pattern, a low-cardinality template for
	// span names ("" when no group matched).
	Group int
	Route string
	// routePath indexes the matching pattern in its group, -1 for none.
	routePath int

	Start, End time.Time
	// Status is the response status, 0 when there was none.
	Status int

	attrs    []string
	hasAttr  []bool
	reqOps   []HeaderOp
	respOps  []HeaderOp
	buf      []byte
	ids      [24]byte
	baggage  []BaggageEntry
	finished bool
}

// Properties reads host properties (path segments as in
// proxy_get_property) when a request finishes.
type Properties interface {
	Property(path []string) (value string, ok bool)
}

var errNoRandom = errors.New("tracing: random source returned no usable ids")

// Start handles request headers: it extracts the incoming context, decides
// sampling, draws a span id (and a trace id when none came in) from rnd,
// captures header attributes, and prepares the request and response header
// mutations. now is the request's start time. Only an error from rnd fails
// it; every header problem just means "no valid incoming context".
func (t *Tracer) Start(h *Hop, req Headers, rnd io.Reader, now time.Time) error {
	h.reset()
	h.Start = now
	h.Method, _ = req.Header(":method")
	path, _ := req.Header(":path")
	h.Path = stripQuery(path)
	h.Group, h.routePath, h.Route = t.group(h.Path)

	h.Parent, h.ParentFormat = t.extractContext(req)
	if err := h.drawIDs(rnd, !h.Parent.IsValid()); err != nil {
		return err
	}
	c := &h.Context
	if h.Parent.IsValid() {
		c.TraceID = h.Parent.TraceID
		c.ParentSpanID = h.Parent.SpanID
		c.TraceState = h.Parent.TraceState
	} else {
		copy(c.TraceID[:], h.ids[8:24])
	}
	copy(c.SpanID[:], h.ids[:8])
	h.Decision = t.sampler.Decide(h.Parent, c.TraceID, req, h.Path)
	switch {
	case h.Decision.Reason == ReasonDebug:
		c.Sampling = SamplingDebug
	case h.Decision.Sampled:
		c.Sampling = SamplingAccept
	default:
		c.Sampling = SamplingDeny
	}

	if n := len(t.attrs); cap(h.attrs) < n {
		h.attrs, h.hasAttr = make([]string, n), make([]bool, n)
	} else {
		h.attrs, h.hasAttr = h.attrs[:n], h.hasAttr[:n]
		clear(h.attrs)
		clear(h.hasAttr)
	}
	for i, a := range t.attrs {
		if a.Header != "" {
			h.attrs[i], h.hasAttr[i] = req.Header(a.Header)
		}
	}
	t.buildOps(h, req)
	return nil
}

// drawIDs reads a span id and, when needed, a trace id, retrying a few times
// on the (astronomically unlikely) all-zero draw.
func (h *Hop) drawIDs(rnd io.Reader, needTrace bool) error {
	n := 8
	if needTrace {
		n = 24
	}
	for try := 0; try < 3; try++ {
		if _, err := io.ReadFull(rnd, h.ids[:n]); err != nil {
			return errors.Join(errNoRandom, err)
		}
		if SpanID(h.ids[:8]).IsValid() && (!needTrace || TraceID(h.ids[8:24]).IsValid()) {
			return nil
		}
	}
	return errNoRandom
}

func (h *Hop) reset() {
	*h = Hop{
		attrs: h.attrs[:0], hasAttr: h.hasAttr[:0], reqOps: h.reqOps[:0], respOps: h.respOps[:0],
		buf: h.buf[:0], baggage: h.baggage[:0],
	}
}

func (t *Tracer) extractContext(req Headers) (SpanContext, Format) {
	var hint SpanContext
	for _, f := range t.extract {
		var (
			c  SpanContext
			ok bool
		)
		switch f {
		case FormatW3C:
			if v, has := req.Header(HeaderTraceparent); has {
				if c, ok = ParseTraceparent(v); ok {
					if ts, has := req.Header(HeaderTracestate); has {
						c.TraceState = ParseTracestate(ts, t.stateMax)
					}
				}
			}
		case FormatB3:
			if v, has := req.Header(HeaderB3); has {
				c, ok = ParseB3(v)
			}
		case FormatB3Multi:
			c, ok = ParseB3Multi(req)
		}
		if !ok {
			continue
		}
		if c.IsValid() {
			return c, f
		}
		if hint.Sampling == SamplingUnset {
			hint = c
		}
	}
	// A lone B3 sampling state ("b3: 0", "x-b3-sampled: 1") still carries
	// the caller's decision into the new trace.
	return SpanContext{Sampling: hint.Sampling}, FormatNone
}

func (t *Tracer) group(path string) (group, pattern int, route string) {
	for i := range t.groups {
		for j, p := range t.groups[i].Paths {
			if p.Match(path) {
				return i, j, p.pattern
			}
		}
	}
	return len(t.groups), -1, ""
}

// opRef records an op whose value lives in h.buf until the single string
// conversion at the end of buildOps.
type opRef struct {
	name       string
	start, end int
	remove     bool
	resp       bool
}

func (t *Tracer) buildOps(h *Hop, req Headers) {
	var refsArr [24]opRef
	refs := refsArr[:0]
	set := func(name string, mark int, resp bool) {
		refs = append(refs, opRef{name: name, start: mark, end: len(h.buf), resp: resp})
	}
	remove := func(name string) {
		if _, has := req.Header(name); has {
			refs = append(refs, opRef{name: name, remove: true})
		}
	}
	c := h.Context
	injects := func(f Format) bool {
		for _, g := range t.inject {
			if g == f {
				return true
			}
		}
		return false
	}
	for _, f := range formatsAll {
		if !injects(f) {
			if t.removeOthers {
				for _, name := range formatHeaders[f] {
					remove(name)
				}
			}
			continue
		}
		switch f {
		case FormatW3C:
			mark := len(h.buf)
			h.buf = AppendTraceparent(h.buf, c.TraceID, c.SpanID, c.Sampled())
			set(HeaderTraceparent, mark, false)
			if c.TraceState != "" {
				mark = len(h.buf)
				h.buf = append(h.buf, c.TraceState...)
				set(HeaderTracestate, mark, false)
			} else {
				remove(HeaderTracestate)
			}
		case FormatB3:
			mark := len(h.buf)
			h.buf = AppendB3(h.buf, c)
			set(HeaderB3, mark, false)
		case FormatB3Multi:
			mark := len(h.buf)
			h.buf = appendB3TraceID(h.buf, c.TraceID)
			set(HeaderB3TraceID, mark, false)
			mark = len(h.buf)
			h.buf = appendHex(h.buf, c.SpanID[:])
			set(HeaderB3SpanID, mark, false)
			if c.ParentSpanID.IsValid() {
				mark = len(h.buf)
				h.buf = appendHex(h.buf, c.ParentSpanID[:])
				set(HeaderB3ParentSpanID, mark, false)
			} else {
				remove(HeaderB3ParentSpanID)
			}
			// B3 says debug implies accept, so X-B3-Sampled is not sent
			// alongside X-B3-Flags.
			if c.Sampling == SamplingDebug {
				mark = len(h.buf)
				h.buf = append(h.buf, '1')
				set(HeaderB3Flags, mark, false)
				remove(HeaderB3Sampled)
			} else {
				mark = len(h.buf)
				h.buf = append(h.buf, sampledDigit(c.Sampled()))
				set(HeaderB3Sampled, mark, false)
				remove(HeaderB3Flags)
			}
		}
	}
	for _, e := range t.enrich {
		var (
			v  string
			ok bool
		)
		if e.fromHeader != "" {
			v, ok = req.Header(e.fromHeader)
		} else if b, has := req.Header(HeaderBaggage); has {
			v, ok = BaggageValue(b, e.fromBaggage)
		}
		if !ok || v == "" {
			continue
		}
		// A decoded baggage value can hold any byte; a header value must not
		// carry control characters.
		if e.toHeader != "" && validHeaderValue(v) {
			mark := len(h.buf)
			h.buf = append(h.buf, v...)
			set(e.toHeader, mark, false)
		}
		if e.toBaggage != "" {
			h.baggage = append(h.baggage, BaggageEntry{Key: e.toBaggage, Value: v})
		}
	}
	if len(h.baggage) > 0 {
		existing, _ := req.Header(HeaderBaggage)
		mark := len(h.buf)
		h.buf, _ = AppendBaggage(h.buf, existing, h.baggage)
		set(HeaderBaggage, mark, false)
	}
	if t.response.traceresponse {
		mark := len(h.buf)
		h.buf = AppendTraceparent(h.buf, c.TraceID, c.SpanID, c.Sampled())
		set(HeaderTraceresponse, mark, true)
	}
	if t.response.traceIDHeader != "" {
		mark := len(h.buf)
		h.buf = appendHex(h.buf, c.TraceID[:])
		set(t.response.traceIDHeader, mark, true)
	}
	// One allocation carries every value: each op's value is a substring.
	all := string(h.buf)
	for _, r := range refs {
		op := HeaderOp{Name: r.name, Remove: r.remove}
		if !r.remove {
			op.Value = all[r.start:r.end]
		}
		if r.resp {
			h.respOps = append(h.respOps, op)
		} else {
			h.reqOps = append(h.reqOps, op)
		}
	}
}

func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func sampledDigit(b bool) byte {
	if b {
		return '1'
	}
	return '0'
}

var formatsAll = [...]Format{FormatW3C, FormatB3, FormatB3Multi}

var formatHeaders = [...][]string{
	FormatW3C:     {HeaderTraceparent, HeaderTracestate},
	FormatB3:      {HeaderB3},
	FormatB3Multi: {HeaderB3TraceID, HeaderB3SpanID, HeaderB3ParentSpanID, HeaderB3Sampled, HeaderB3Flags},
}

// RequestHeaders are the request header mutations, in order. The filter
// applies them before the request continues upstream.
func (h *Hop) RequestHeaders() []HeaderOp { return h.reqOps }

// ResponseHeaders are the headers to add to the response (traceresponse
// and/or the configured trace id header).
func (h *Hop) ResponseHeaders() []HeaderOp { return h.respOps }

// Attribute returns the value of the i-th configured attribute.
func (h *Hop) Attribute(i int) (string, bool) {
	if i < 0 || i >= len(h.attrs) {
		return "", false
	}
	return h.attrs[i], h.hasAttr[i]
}

// Finish records the end of the request: its status (0 when none was sent),
// its end time, and the property attributes read through props (which may
// be nil when no attribute names a property).
func (t *Tracer) Finish(h *Hop, status int, now time.Time, props Properties) {
	h.Status, h.End, h.finished = status, now, true
	if props == nil {
		return
	}
	for i, a := range t.attrs {
		if a.Property != nil {
			h.attrs[i], h.hasAttr[i] = props.Property(a.Property)
		}
	}
}

// Duration is End minus Start, never negative.
func (h *Hop) Duration() time.Duration {
	return max(h.End.Sub(h.Start), 0)
}

// RouteName is the matching route group's name or DefaultGroup.
func (t *Tracer) RouteName(h *Hop) string {
	if h.Group < len(t.groups) {
		return t.groups[h.Group].Name
	}
	return DefaultGroup
}
