package tracing

import (
	"strconv"
	"time"

	"github.com/meshwasm/meshwasm/internal/confjson"
)

// Built-in access log fields; any configured attribute name is a field too.
var builtinFields = []string{
	"trace_id", "span_id", "parent_span_id", "sampled", "sampling_reason",
	"method", "path", "route", "status", "duration_ms", "start_time",
}

const (
	fieldTraceID = iota
	fieldSpanID
	fieldParentSpanID
	fieldSampled
	fieldReason
	fieldMethod
	fieldPath
	fieldRoute
	fieldStatus
	fieldDuration
	fieldStartTime
)

var defaultFields = []string{"trace_id", "span_id", "method", "path", "status", "duration_ms"}

func builtinField(name string) int {
	for i, f := range builtinFields {
		if f == name {
			return i
		}
	}
	return -1
}

// logField is a built-in (builtin >= 0) or the attribute at index attr.
type logField struct {
	name    string
	builtin int
	attr    int
}

func (t *Tracer) parseAccessLog(n confjson.Node) error {
	if !n.Exists() {
		return nil
	}
	if err := n.Object("fields"); err != nil {
		return err
	}
	fn := n.Get("fields")
	elems, err := fn.Array()
	if err != nil {
		return err
	}
	if fn.Exists() && len(elems) == 0 {
		return fn.Errorf("at least one field required")
	}
	type named struct {
		name string
		node confjson.Node
	}
	var names []named
	for _, e := range elems {
		s, err := e.String()
		if err != nil {
			return err
		}
		names = append(names, named{s, e})
	}
	if !fn.Exists() {
		for _, d := range defaultFields {
			names = append(names, named{name: d})
		}
		for _, a := range t.attrs {
			names = append(names, named{name: a.Name})
		}
	}
	t.log = make([]logField, 0, len(names))
	for _, nm := range names {
		f := logField{name: nm.name, builtin: builtinField(nm.name), attr: -1}
		if f.builtin < 0 {
			for j, a := range t.attrs {
				if a.Name == nm.name {
					f.attr = j
				}
			}
			if f.attr < 0 {
				return nm.node.Errorf("unknown field %q (not built in, not an attribute)", nm.name)
			}
		}
		for _, prev := range t.log {
			if prev.name == nm.name {
				return nm.node.Errorf("duplicate field %q", nm.name)
			}
		}
		t.log = append(t.log, f)
	}
	return nil
}

// LogEnabled reports whether an access log line is configured.
func (t *Tracer) LogEnabled() bool { return t.log != nil }

// AppendLog appends the finished hop's access log line (one JSON object, no
// newline) to dst and returns it; dst is meant to be a buffer the filter
// reuses. Absent attributes are left out; it appends nothing when the access
// log is disabled.
func (t *Tracer) AppendLog(dst []byte, h *Hop) []byte {
	if t.log == nil {
		return dst
	}
	dst = append(dst, '{')
	first := true
	c := &h.Context
	for _, f := range t.log {
		if f.attr >= 0 {
			v, ok := h.Attribute(f.attr)
			if !ok {
				continue
			}
			dst = appendJSONKey(dst, first, f.name)
			first = false
			dst = appendJSONString(dst, v)
			continue
		}
		dst = appendJSONKey(dst, first, f.name)
		first = false
		switch f.builtin {
		case fieldTraceID:
			dst = append(dst, '"')
			dst = appendHex(dst, c.TraceID[:])
			dst = append(dst, '"')
		case fieldSpanID:
			dst = append(dst, '"')
			dst = appendHex(dst, c.SpanID[:])
			dst = append(dst, '"')
		case fieldParentSpanID:
			if c.ParentSpanID.IsValid() {
				dst = append(dst, '"')
				dst = appendHex(dst, c.ParentSpanID[:])
				dst = append(dst, '"')
			} else {
				dst = append(dst, "null"...)
			}
		case fieldSampled:
			dst = strconv.AppendBool(dst, h.Decision.Sampled)
		case fieldReason:
			dst = appendJSONString(dst, h.Decision.Reason.String())
		case fieldMethod:
			dst = appendJSONString(dst, h.Method)
		case fieldPath:
			dst = appendJSONString(dst, h.Path)
		case fieldRoute:
			dst = appendJSONString(dst, t.RouteName(h))
		case fieldStatus:
			dst = strconv.AppendInt(dst, int64(h.Status), 10)
		case fieldDuration:
			dst = appendMillis(dst, int64(h.Duration()))
		case fieldStartTime:
			dst = append(dst, '"')
			dst = h.Start.UTC().AppendFormat(dst, time.RFC3339Nano)
			dst = append(dst, '"')
		}
	}
	return append(dst, '}')
}
