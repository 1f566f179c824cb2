package tracing

// Sampling is the sampling state a context carries. B3 has four states
// (defer, deny, accept, debug); W3C's sampled flag maps onto deny and accept.
type Sampling uint8

const (
	// SamplingUnset defers the decision to this hop (B3 "defer").
	SamplingUnset Sampling = iota
	// SamplingDeny is an upstream decision not to sample.
	SamplingDeny
	// SamplingAccept is an upstream decision to sample.
	SamplingAccept
	// SamplingDebug forces sampling (B3 "d" or X-B3-Flags: 1).
	SamplingDebug
)

// String names the state as the access log and tests print it.
func (s Sampling) String() string {
	switch s {
	case SamplingDeny:
		return "deny"
	case SamplingAccept:
		return "accept"
	case SamplingDebug:
		return "debug"
	}
	return "unset"
}

// Format is a propagation format.
type Format uint8

const (
	// FormatNone marks a context that was started here, not extracted.
	FormatNone Format = iota
	// FormatW3C is traceparent and tracestate.
	FormatW3C
	// FormatB3 is the single b3 header.
	FormatB3
	// FormatB3Multi is the X-B3-* headers.
	FormatB3Multi
)

// String is the configuration name of the format.
func (f Format) String() string {
	switch f {
	case FormatW3C:
		return "w3c"
	case FormatB3:
		return "b3"
	case FormatB3Multi:
		return "b3multi"
	}
	return "none"
}

// SpanContext is trace context as read from or written to headers.
type SpanContext struct {
	TraceID TraceID
	SpanID  SpanID
	// ParentSpanID is only carried by B3; W3C has no such field.
	ParentSpanID SpanID
	Sampling     Sampling
	// TraceState is the validated, possibly truncated W3C tracestate; it is
	// only set when the context came from a valid traceparent.
	TraceState string
}

// IsValid reports whether both ids are present. A B3 header may carry only a
// sampling state, which yields an invalid context with Sampling set.
func (c SpanContext) IsValid() bool { return c.TraceID.IsValid() && c.SpanID.IsValid() }

// Sampled reports whether the state means "record this trace".
func (c SpanContext) Sampled() bool {
	return c.Sampling == SamplingAccept || c.Sampling == SamplingDebug
}

// Headers is the read side of a request's headers. Names are lowercase; the
// filter layer reads them from the proxy (Envoy joins repeated headers with a
// comma, which makes a repeated traceparent invalid, as it should be).
type Headers interface {
	Header(name string) (value string, ok bool)
}
