package tracing

import (
	"encoding/binary"
	"strings"
)

// Reason says why a hop was or was not sampled; the access log and the span
// carry it so an operator can tell a forced trace from a lucky one.
type Reason uint8

const (
	// ReasonRatio is the root ratio applied to the trace id.
	ReasonRatio Reason = iota
	// ReasonParent follows the upstream decision (parent-based sampling).
	ReasonParent
	// ReasonDebug is a B3 debug flag.
	ReasonDebug
	// ReasonRule is a forced sampling rule; Decision.Rule says which.
	ReasonRule
)

// String is the name used in logs.
func (r Reason) String() string {
	switch r {
	case ReasonParent:
		return "parent"
	case ReasonDebug:
		return "debug"
	case ReasonRule:
		return "rule"
	}
	return "ratio"
}

// Ratio is a precompiled sampling probability. It decides exactly like
// OpenTelemetry's TraceIdRatioBased sampler (as OpenTelemetry-Go implements
// it): the last 8 bytes of the trace id, read big-endian and shifted right by
// one, must be below ratio*2^63. Proxy and SDKs configured with the same
// ratio therefore keep the same traces, and 64-bit B3 ids (which live in
// those 8 bytes) sample as well as 128-bit ones.
type Ratio struct {
	bound  uint64
	always bool
}

// NewRatio precompiles r; r >= 1 always samples, r <= 0 never does.
func NewRatio(r float64) Ratio {
	if r >= 1 {
		return Ratio{always: true}
	}
	if !(r > 0) {
		return Ratio{}
	}
	return Ratio{bound: uint64(r * (1 << 63))}
}

// Sample reports whether the trace id falls within the ratio.
func (r Ratio) Sample(tid TraceID) bool {
	if r.always {
		return true
	}
	return binary.BigEndian.Uint64(tid[8:16])>>1 < r.bound
}

// Rule forces a sampling decision for matching requests, overriding the
// upstream decision: a critical path is kept even when the caller said no,
// and a health check can be dropped even when it said yes.
type Rule struct {
	// Header must be present (and equal Equals when that is set).
	Header string
	Equals string
	// Path is a pattern (see PathPattern) the request path, without its
	// query, must match.
	Path  PathPattern
	Ratio Ratio
}

func (r *Rule) matches(h Headers, path string) bool {
	if r.Header != "" {
		v, ok := h.Header(r.Header)
		if !ok || r.Equals != "" && v != r.Equals {
			return false
		}
	}
	return r.Path.pattern == "" || r.Path.Match(path)
}

// Sampler makes the per-hop decision.
type Sampler struct {
	Root        Ratio
	ParentBased bool
	Rules       []Rule
}

// Decision is the outcome of Sampler.Decide.
type Decision struct {
	Sampled bool
	Reason  Reason
	// Rule is the index of the matching rule for ReasonRule, else -1.
	Rule int
}

// Decide chooses, in order: a B3 debug flag samples; the first matching rule
// applies its ratio; with ParentBased an upstream accept or deny is followed;
// otherwise the root ratio applies to the trace id.
func (s *Sampler) Decide(parent SpanContext, tid TraceID, h Headers, path string) Decision {
	if parent.Sampling == SamplingDebug {
		return Decision{Sampled: true, Reason: ReasonDebug, Rule: -1}
	}
	for i := range s.Rules {
		if s.Rules[i].matches(h, path) {
			return Decision{Sampled: s.Rules[i].Ratio.Sample(tid), Reason: ReasonRule, Rule: i}
		}
	}
	if s.ParentBased && parent.Sampling != SamplingUnset {
		return Decision{Sampled: parent.Sampling == SamplingAccept, Reason: ReasonParent, Rule: -1}
	}
	return Decision{Sampled: s.Root.Sample(tid), Reason: ReasonRatio, Rule: -1}
}

// PathPattern matches request paths: an exact path, or a pattern where each
// "*" stands for any run of characters (including "/"), so "/api/payments/*"
// covers everything under /api/payments/.
type PathPattern struct {
	pattern string
	parts   []string
}

// NewPathPattern precompiles p.
func NewPathPattern(p string) PathPattern {
	pp := PathPattern{pattern: p}
	if strings.Contains(p, "*") {
		pp.parts = strings.Split(p, "*")
	}
	return pp
}

// String is the pattern as configured; spans use it as the route template.
func (p PathPattern) String() string { return p.pattern }

// Match reports whether path (query already removed) matches.
func (p PathPattern) Match(path string) bool {
	if p.parts == nil {
		return path == p.pattern
	}
	first, last := p.parts[0], p.parts[len(p.parts)-1]
	if !strings.HasPrefix(path, first) {
		return false
	}
	rest := path[len(first):]
	for _, mid := range p.parts[1 : len(p.parts)-1] {
		i := strings.Index(rest, mid)
		if i < 0 {
			return false
		}
		rest = rest[i+len(mid):]
	}
	return len(rest) >= len(last) && strings.HasSuffix(rest, last)
}

// stripQuery removes the query and fragment, which never take part in
// matching.
func stripQuery(path string) string {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		return path[:i]
	}
	return path
}
