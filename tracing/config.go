package tracing

import (
	"fmt"
	"strings"
	"time"

	"github.com/meshwasm/meshwasm/internal/confjson"
)

// Tracer is the immutable, precompiled configuration. One Tracer serves every
// request of a plugin; it is never mutated after Parse, so a configuration
// reload simply swaps the pointer.
type Tracer struct {
	extract      []Format
	inject       []Format
	removeOthers bool
	stateMax     int
	sampler      Sampler
	enrich       []enrichment
	baggageKeys  int // enrichments with a baggage destination
	response     response
	attrs        []Attribute
	log          []logField // nil: no access log
	groups       []RouteGroup
	export       *ExportConfig
	metrics      []Metric
}

type enrichment struct {
	fromHeader, fromBaggage string
	toBaggage, toHeader     string
}

type response struct {
	traceresponse bool
	traceIDHeader string
}

// Attribute is a named value taken from a request header (read when the
// request starts) or a host property (read when it finishes). Spans carry
// attributes; the access log can name them as fields. Other meshwasm filters
// expose their decisions (authz policy, rate-limit outcome, canary version)
// in headers or properties, so this is also how decisions reach traces.
type Attribute struct {
	Name     string
	Header   string
	Property []string
}

// RouteGroup names a set of path patterns for metrics and span names.
type RouteGroup struct {
	Name  string
	Paths []PathPattern
}

// ExportConfig says where and how proxy spans are sent.
type ExportConfig struct {
	Cluster     string
	Authority   string
	Path        string
	BatchSize   int
	QueueSize   int
	FlushPeriod time.Duration
	Timeout     time.Duration
	// MaxAttempts bounds sends of one batch when the collector answers with a
	// retryable status; after that the batch is dropped and counted.
	MaxAttempts int
	ServiceName string
	Resource    []KeyValue
}

// KeyValue is a string attribute of the exported resource.
type KeyValue struct{ Key, Value string }

// DefaultGroup is the route group of requests no configured group matches.
const DefaultGroup = "default"

var formatNames = []string{"w3c", "b3", "b3multi"}

func formatByName(s string) Format {
	switch s {
	case "w3c":
		return FormatW3C
	case "b3":
		return FormatB3
	}
	return FormatB3Multi
}

// Parse reads the tracing filter's JSON configuration (see README.md for the
// reference). It runs once at plugin start; errors name the JSON path.
func Parse(data []byte) (*Tracer, error) {
	root, err := confjson.Parse(data)
	if err != nil {
		return nil, err
	}
	if err := root.Object("extract", "inject", "removeOtherFormats", "tracestateMaxLength", "sampling",
		"enrich", "response", "attributes", "accessLog", "routeGroups", "export"); err != nil {
		return nil, err
	}
	t := &Tracer{}
	if t.extract, err = parseFormats(root.Get("extract"), []Format{FormatW3C, FormatB3, FormatB3Multi}); err != nil {
		return nil, err
	}
	if t.inject, err = parseFormats(root.Get("inject"), []Format{FormatW3C, FormatB3Multi}); err != nil {
		return nil, err
	}
	if t.removeOthers, err = root.Get("removeOtherFormats").Bool(true); err != nil {
		return nil, err
	}
	max, err := root.Get("tracestateMaxLength").Int(TracestateMinLength, TracestateMinLength, 8192)
	if err != nil {
		return nil, err
	}
	t.stateMax = int(max)
	if t.sampler, err = parseSampling(root.Get("sampling")); err != nil {
		return nil, err
	}
	if err := t.parseEnrich(root.Get("enrich")); err != nil {
		return nil, err
	}
	if err := t.parseResponse(root.Get("response")); err != nil {
		return nil, err
	}
	if t.attrs, err = parseAttributes(root.Get("attributes")); err != nil {
		return nil, err
	}
	if err := t.parseAccessLog(root.Get("accessLog")); err != nil {
		return nil, err
	}
	if t.groups, err = parseGroups(root.Get("routeGroups")); err != nil {
		return nil, err
	}
	if t.export, err = parseExport(root.Get("export")); err != nil {
		return nil, err
	}
	t.metrics = buildMetrics(t.groups)
	return t, nil
}

func parseFormats(n confjson.Node, def []Format) ([]Format, error) {
	if !n.Exists() {
		return def, nil
	}
	elems, err := n.Array()
	if err != nil {
		return nil, err
	}
	if len(elems) == 0 {
		return nil, n.Errorf("at least one format required")
	}
	var out []Format
	for _, e := range elems {
		s, err := e.OneOf("", formatNames...)
		if err != nil {
			return nil, err
		}
		if !e.Exists() {
			return nil, e.Errorf("required")
		}
		f := formatByName(s)
		for _, prev := range out {
			if prev == f {
				return nil, e.Errorf("duplicate format %q", s)
			}
			if prev == FormatB3Multi && f == FormatB3 {
				return nil, e.Errorf(`"b3" must come before "b3multi": the single header takes precedence`)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

func parseSampling(n confjson.Node) (Sampler, error) {
	s := Sampler{Root: NewRatio(1), ParentBased: true}
	if err := n.Object("ratio", "parentBased", "rules"); err != nil {
		return s, err
	}
	r, err := n.Get("ratio").Float(1, 0, 1)
	if err != nil {
		return s, err
	}
	s.Root = NewRatio(r)
	if s.ParentBased, err = n.Get("parentBased").Bool(true); err != nil {
		return s, err
	}
	rules, err := n.Get("rules").Array()
	if err != nil {
		return s, err
	}
	for _, rn := range rules {
		if !rn.Exists() {
			return s, rn.Errorf("must be an object")
		}
		if err := rn.Object("header", "equals", "path", "ratio"); err != nil {
			return s, err
		}
		var rule Rule
		if rule.Header, err = headerName(rn.Get("header"), ""); err != nil {
			return s, err
		}
		if rule.Equals, err = rn.Get("equals").OptString(""); err != nil {
			return s, err
		}
		if rule.Equals != "" && rule.Header == "" {
			return s, rn.Get("equals").Errorf(`needs "header"`)
		}
		path, err := rn.Get("path").OptString("")
		if err != nil {
			return s, err
		}
		if path != "" && path[0] != '/' && path[0] != '*' {
			return s, rn.Get("path").Errorf(`must start with "/" or "*"`)
		}
		if rule.Header == "" && path == "" {
			return s, rn.Errorf(`needs "header" or "path"`)
		}
		if path != "" {
			rule.Path = NewPathPattern(path)
		}
		ratio, err := rn.Get("ratio").Float(1, 0, 1)
		if err != nil {
			return s, err
		}
		rule.Ratio = NewRatio(ratio)
		s.Rules = append(s.Rules, rule)
	}
	return s, nil
}

// headerName reads a header name and lowercases it, since the proxy hands
// filters lowercase names; pseudo-headers are refused as sources of
// enrichment and rule matching have no use for them except :method/:path.
func headerName(n confjson.Node, def string) (string, error) {
	s, err := n.OptString(def)
	if err != nil || s == "" {
		return s, err
	}
	if s[0] == ':' || !validToken(s) {
		return "", n.Errorf("invalid header name %q", s)
	}
	return strings.ToLower(s), nil
}

func (t *Tracer) parseEnrich(n confjson.Node) error {
	elems, err := n.Array()
	if err != nil {
		return err
	}
	for _, e := range elems {
		if !e.Exists() {
			return e.Errorf("must be an object")
		}
		if err := e.Object("fromHeader", "fromBaggage", "toBaggage", "toHeader"); err != nil {
			return err
		}
		var en enrichment
		if en.fromHeader, err = headerName(e.Get("fromHeader"), ""); err != nil {
			return err
		}
		if en.fromBaggage, err = baggageKey(e.Get("fromBaggage")); err != nil {
			return err
		}
		if (en.fromHeader == "") == (en.fromBaggage == "") {
			return e.Errorf(`needs exactly one of "fromHeader" and "fromBaggage"`)
		}
		if en.toBaggage, err = baggageKey(e.Get("toBaggage")); err != nil {
			return err
		}
		if en.toHeader, err = headerName(e.Get("toHeader"), ""); err != nil {
			return err
		}
		if en.toBaggage == "" && en.toHeader == "" {
			return e.Errorf(`needs "toBaggage" or "toHeader"`)
		}
		if en.toHeader != "" && isTraceHeader(en.toHeader) {
			return e.Get("toHeader").Errorf("%q is written by the propagation formats", en.toHeader)
		}
		if en.toBaggage != "" {
			t.baggageKeys++
		}
		t.enrich = append(t.enrich, en)
	}
	return nil
}

func baggageKey(n confjson.Node) (string, error) {
	s, err := n.OptString("")
	if err != nil || s == "" {
		return s, err
	}
	if !validToken(s) {
		return "", n.Errorf("invalid baggage key %q", s)
	}
	return s, nil
}

func isTraceHeader(h string) bool {
	switch h {
	case HeaderTraceparent, HeaderTracestate, HeaderBaggage, HeaderB3, HeaderB3TraceID, HeaderB3SpanID,
		HeaderB3ParentSpanID, HeaderB3Sampled, HeaderB3Flags:
		return true
	}
	return false
}

func (t *Tracer) parseResponse(n confjson.Node) error {
	if err := n.Object("traceresponse", "traceIdHeader"); err != nil {
		return err
	}
	var err error
	if t.response.traceresponse, err = n.Get("traceresponse").Bool(false); err != nil {
		return err
	}
	t.response.traceIDHeader, err = headerName(n.Get("traceIdHeader"), "")
	return err
}

func parseAttributes(n confjson.Node) ([]Attribute, error) {
	elems, err := n.Array()
	if err != nil {
		return nil, err
	}
	var out []Attribute
	for _, e := range elems {
		if !e.Exists() {
			return nil, e.Errorf("must be an object")
		}
		if err := e.Object("name", "header", "property"); err != nil {
			return nil, err
		}
		var a Attribute
		if a.Name, err = e.Get("name").String(); err != nil {
			return nil, err
		}
		if builtinField(a.Name) >= 0 {
			return nil, e.Get("name").Errorf("%q is a built-in access log field", a.Name)
		}
		for _, prev := range out {
			if prev.Name == a.Name {
				return nil, e.Get("name").Errorf("duplicate attribute %q", a.Name)
			}
		}
		if a.Header, err = headerName(e.Get("header"), ""); err != nil {
			return nil, err
		}
		if a.Property, err = propertyPath(e.Get("property")); err != nil {
			return nil, err
		}
		if (a.Header == "") == (a.Property == nil) {
			return nil, e.Errorf(`needs exactly one of "header" and "property"`)
		}
		out = append(out, a)
	}
	return out, nil
}

// propertyPath accepts "xds.route_name" (split at dots) or, for segments that
// contain dots themselves, an array such as ["filter_state", "a.b"].
func propertyPath(n confjson.Node) ([]string, error) {
	if !n.Exists() {
		return nil, nil
	}
	if strings.HasPrefix(n.Raw(), "[") {
		segs, err := n.Strings()
		if err == nil && len(segs) == 0 {
			err = n.Errorf("empty property path")
		}
		return segs, err
	}
	s, err := n.String()
	if err != nil {
		return nil, err
	}
	segs := strings.Split(s, ".")
	for _, seg := range segs {
		if seg == "" {
			return nil, n.Errorf("empty segment in property path %q", s)
		}
	}
	return segs, nil
}

func parseGroups(n confjson.Node) ([]RouteGroup, error) {
	elems, err := n.Array()
	if err != nil {
		return nil, err
	}
	var out []RouteGroup
	for _, e := range elems {
		if !e.Exists() {
			return nil, e.Errorf("must be an object")
		}
		if err := e.Object("name", "paths"); err != nil {
			return nil, err
		}
		var g RouteGroup
		if g.Name, err = e.Get("name").String(); err != nil {
			return nil, err
		}
		if !validMetricSegment(g.Name) || g.Name == DefaultGroup {
			return nil, e.Get("name").Errorf("invalid group name %q (want [a-z0-9_-], not %q)", g.Name, DefaultGroup)
		}
		for _, prev := range out {
			if prev.Name == g.Name {
				return nil, e.Get("name").Errorf("duplicate group %q", g.Name)
			}
		}
		paths, err := e.Get("paths").Array()
		if err != nil {
			return nil, err
		}
		if len(paths) == 0 {
			return nil, e.Get("paths").Errorf("at least one path required")
		}
		for _, pn := range paths {
			p, err := pn.String()
			if err != nil {
				return nil, err
			}
			if p[0] != '/' && p[0] != '*' {
				return nil, pn.Errorf(`must start with "/" or "*"`)
			}
			g.Paths = append(g.Paths, NewPathPattern(p))
		}
		out = append(out, g)
	}
	return out, nil
}

func validMetricSegment(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return s != ""
}

func parseExport(n confjson.Node) (*ExportConfig, error) {
	if !n.Exists() {
		return nil, nil
	}
	if err := n.Object("cluster", "authority", "path", "batchSize", "queueSize", "flushPeriod", "timeout",
		"maxAttempts", "serviceName", "resource"); err != nil {
		return nil, err
	}
	c := &ExportConfig{}
	var err error
	if c.Cluster, err = n.Get("cluster").String(); err != nil {
		return nil, err
	}
	if c.Authority, err = n.Get("authority").OptString(c.Cluster); err != nil {
		return nil, err
	}
	if c.Path, err = n.Get("path").OptString("/v1/traces"); err != nil {
		return nil, err
	}
	if c.Path[0] != '/' {
		return nil, n.Get("path").Errorf(`must start with "/"`)
	}
	batch, err := n.Get("batchSize").Int(128, 1, 4096)
	if err != nil {
		return nil, err
	}
	queue, err := n.Get("queueSize").Int(2048, 1, 1<<16)
	if err != nil {
		return nil, err
	}
	if queue < batch {
		return nil, n.Get("queueSize").Errorf("must be at least batchSize (%d)", batch)
	}
	c.BatchSize, c.QueueSize = int(batch), int(queue)
	if c.FlushPeriod, err = n.Get("flushPeriod").Duration(time.Second, 10*time.Millisecond, time.Minute); err != nil {
		return nil, err
	}
	if c.Timeout, err = n.Get("timeout").Duration(5*time.Second, 10*time.Millisecond, time.Minute); err != nil {
		return nil, err
	}
	attempts, err := n.Get("maxAttempts").Int(3, 1, 10)
	if err != nil {
		return nil, err
	}
	c.MaxAttempts = int(attempts)
	if c.ServiceName, err = n.Get("serviceName").OptString("meshwasm-proxy"); err != nil {
		return nil, err
	}
	res, err := n.Get("resource").Members()
	if err != nil {
		return nil, err
	}
	for _, m := range res {
		if m.Key == "" || m.Key == "service.name" {
			return nil, m.Value.Errorf(`invalid resource key %q (use "serviceName" for service.name)`, m.Key)
		}
		v, err := m.Value.String()
		if err != nil {
			return nil, err
		}
		c.Resource = append(c.Resource, KeyValue{Key: m.Key, Value: v})
	}
	return c, nil
}

// Export is the span export configuration, nil when spans are not exported.
func (t *Tracer) Export() *ExportConfig { return t.export }

// Attributes lists the configured attributes in order.
func (t *Tracer) Attributes() []Attribute { return t.attrs }

// String summarises the configuration for the plugin's start-up log line.
func (t *Tracer) String() string {
	return fmt.Sprintf("tracing: extract %v, inject %v, %d sampling rules, %d attributes, access log %t, export %t",
		t.extract, t.inject, len(t.sampler.Rules), len(t.attrs), t.log != nil, t.export != nil)
}
