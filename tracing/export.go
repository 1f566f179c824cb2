package tracing

import (
	"strconv"
	"time"
	"unsafe"
)

// ExportResult is what a collector reply means for the batch it answered.
type ExportResult uint8

const (
	// ExportOK: the collector accepted the batch.
	ExportOK ExportResult = iota
	// ExportRetry: try the same batch again later (bounded by maxAttempts).
	ExportRetry
	// ExportDrop: the batch will never be accepted; drop it.
	ExportDrop
)

// String names the result for logs.
func (r ExportResult) String() string {
	switch r {
	case ExportOK:
		return "ok"
	case ExportRetry:
		return "retry"
	}
	return "drop"
}

// ClassifyReply interprets an OTLP/HTTP collector's status. Per the OTLP
// specification only 429, 502, 503 and 504 are retryable; every other 4xx
// and 5xx must not be retried. Status 0 (no reply: connection failure or
// callout timeout) is retryable too.
func ClassifyReply(status int) ExportResult {
	switch {
	case status >= 200 && status < 300:
		return ExportOK
	case status == 0, status == 429, status == 502, status == 503, status == 504:
		return ExportRetry
	}
	return ExportDrop
}

// Callout is an HTTP request for the filter to dispatch
// (proxy_dispatch_http_call). Body is owned by the Exporter and valid until
// the next Flush; the host copies it on dispatch.
type Callout struct {
	Cluster string
	Headers [][2]string
	Body    []byte
	Timeout time.Duration
}

// spanRecord is one queued span. It holds no pointer, so the collector
// never scans the queue (2,048 spans by default: scanning it was most of the
// GC's work on a tracing VM). Its strings are copied into the exporter's
// text arena: on Wasm a request's strings are views of the block the host
// wrote the request into, and a queued view would keep that block alive for
// as long as the span waits.
type spanRecord struct {
	traceID          TraceID
	spanID, parentID SpanID
	reason           Reason
	method           uint8 // index into spanMethods
	group, routePath int32 // routePath -1: no route template
	status           int32
	start, end       int64
	traceState, path textRef // in the record's text (its slot, or overflow)
}

// textRef locates a string in a record's text.
type textRef struct{ off, n int32 }

// textSlot is each queued span's room in the text arena for its path,
// tracestate and header attributes; a span needing more keeps its text in
// Exporter.overflow instead.
const textSlot = 192

// Exporter queues finished sampled hops and turns them into OTLP/HTTP JSON
// batches. It is mutable, single-threaded state: each wasm VM (one per Envoy
// worker) owns one, driven from the root context's tick. The queue is a
// fixed ring allocated up front: when it is full new spans are dropped and
// counted, and a slow or dead collector costs requests nothing.
type Exporter struct {
	t        *Tracer
	cfg      *ExportConfig
	ring     []spanRecord
	head, n  int
	inFlight int
	sentAt   time.Time
	lastSend time.Time
	attempts int
	body     []byte
	headers  [][2]string

	// text holds textSlot bytes per record; attrs and has len(t.attrs)
	// entries per record. None holds a pointer.
	text  []byte
	attrs []textRef
	has   []bool
	// overflow is the text of the rare span that outgrew its slot, by ring
	// index.
	overflow map[int][]byte

	exported, dropped, failures uint64
}

// NewExporter returns the span queue for one VM, or nil when the
// configuration has no "export" section.
func (t *Tracer) NewExporter() *Exporter {
	if t.export == nil {
		return nil
	}
	n := t.export.QueueSize
	e := &Exporter{t: t, cfg: t.export, ring: make([]spanRecord, n),
		text: make([]byte, n*textSlot), attrs: make([]textRef, n*len(t.attrs)), has: make([]bool, n*len(t.attrs)),
		overflow: map[int][]byte{}}
	e.headers = [][2]string{
		{":method", "POST"},
		{":path", t.export.Path},
		{":authority", t.export.Authority},
		{"content-type", "application/json"},
	}
	return e
}

// Len is the number of queued spans, including any batch in flight.
func (e *Exporter) Len() int { return e.n }

// Add queues a finished hop as a span if it was sampled. It reports whether
// the span was queued; a sampled hop that finds the queue full is dropped
// and counted.
func (e *Exporter) Add(h *Hop) bool {
	if !h.Decision.Sampled {
		return false
	}
	if e.n == len(e.ring) {
		e.dropped++
		return false
	}
	i := (e.head + e.n) % len(e.ring)
	e.n++
	c := &h.Context
	r := &e.ring[i]
	*r = spanRecord{traceID: c.TraceID, spanID: c.SpanID, parentID: c.ParentSpanID, reason: h.Decision.Reason,
		method: methodIndex(h.Method), group: int32(h.Group), routePath: int32(h.routePath), status: int32(h.Status),
		start: h.Start.UnixNano(), end: h.End.UnixNano()}
	na := len(e.t.attrs)
	attrs, has := e.attrs[i*na:(i+1)*na], e.has[i*na:(i+1)*na]
	size := len(c.TraceState) + len(h.Path)
	for k := range attrs {
		size += len(h.attrs[k])
	}
	var buf []byte
	if size <= textSlot {
		buf = e.text[i*textSlot : i*textSlot : (i+1)*textSlot]
	} else {
		buf = make([]byte, 0, size)
	}
	keep := func(s string) textRef {
		ref := textRef{off: int32(len(buf)), n: int32(len(s))}
		buf = append(buf, s...)
		return ref
	}
	r.traceState = keep(c.TraceState)
	r.path = keep(h.Path)
	for k := range attrs {
		attrs[k] = keep(h.attrs[k])
	}
	copy(has, h.hasAttr)
	if size > textSlot {
		e.overflow[i] = buf
	}
	return true
}

// str is a view of a queued span's kept string, valid until the record is
// popped; it is only read while a batch is encoded.
func (e *Exporter) str(i int, ref textRef) string {
	if ref.n == 0 {
		return ""
	}
	buf := e.text[i*textSlot : (i+1)*textSlot]
	if o, ok := e.overflow[i]; ok {
		buf = o
	}
	return unsafe.String(&buf[ref.off], int(ref.n))
}

// Flush returns the next batch to send, if it is time: when no batch is in
// flight (one callout at a time, so a slow collector never piles them up)
// and either a full batch is queued or the flush period has passed since the
// last send. Call it from every tick and right after Done, so a backlog
// drains faster than one batch per tick. A callout that got no answer within
// twice the timeout counts as failed.
func (e *Exporter) Flush(now time.Time) (Callout, bool) {
	if e.inFlight > 0 {
		if now.Sub(e.sentAt) < 2*e.cfg.Timeout {
			return Callout{}, false
		}
		e.Done(0)
	}
	if e.n == 0 || e.n < e.cfg.BatchSize && now.Sub(e.lastSend) < e.cfg.FlushPeriod {
		return Callout{}, false
	}
	e.inFlight = min(e.n, e.cfg.BatchSize)
	e.sentAt, e.lastSend = now, now
	e.body = e.appendBatch(e.body[:0], e.inFlight)
	return Callout{Cluster: e.cfg.Cluster, Headers: e.headers, Body: e.body, Timeout: e.cfg.Timeout}, true
}

// Done takes the collector's reply status to the batch in flight (0 when the
// callout failed or timed out) and returns what it meant. A retryable batch
// stays at the head of the queue until it has been tried maxAttempts times.
func (e *Exporter) Done(status int) ExportResult {
	if e.inFlight == 0 {
		return ClassifyReply(status)
	}
	res := ClassifyReply(status)
	switch res {
	case ExportOK:
		e.exported += uint64(e.inFlight)
		e.pop(e.inFlight)
	case ExportRetry:
		e.failures++
		e.attempts++
		if e.attempts < e.cfg.MaxAttempts {
			e.inFlight = 0
			return res
		}
		e.dropped += uint64(e.inFlight)
		e.pop(e.inFlight)
	default:
		e.failures++
		e.dropped += uint64(e.inFlight)
		e.pop(e.inFlight)
	}
	e.attempts, e.inFlight = 0, 0
	return res
}

func (e *Exporter) pop(k int) {
	if len(e.overflow) > 0 {
		for i := 0; i < k; i++ {
			delete(e.overflow, (e.head+i)%len(e.ring))
		}
	}
	e.head = (e.head + k) % len(e.ring)
	e.n -= k
}

// TakeCounts returns the spans exported, spans dropped and failed exports
// since the last call, for the filter to add to the Metric* counters.
func (e *Exporter) TakeCounts() (exported, dropped, failures uint64) {
	exported, dropped, failures = e.exported, e.dropped, e.failures
	e.exported, e.dropped, e.failures = 0, 0, 0
	return
}

// scopeName identifies this instrumentation in the exported spans.
const scopeName = "github.com/meshwasm/meshwasm/tracing"

// OTLP enum values (opentelemetry/proto/trace/v1/trace.proto).
const (
	otlpKindServer  = 2
	otlpStatusError = 2
)

// appendBatch encodes the first k queued spans as an OTLP/HTTP JSON
// ExportTraceServiceRequest: ids as lowercase hex, times as decimal strings,
// enums as numbers, per the OTLP JSON mapping.
func (e *Exporter) appendBatch(dst []byte, k int) []byte {
	dst = append(dst, `{"resourceSpans":[{"resource":{"attributes":[`...)
	dst = appendStringAttr(dst, true, "service.name", e.cfg.ServiceName)
	for _, kv := range e.cfg.Resource {
		dst = appendStringAttr(dst, false, kv.Key, kv.Value)
	}
	dst = append(dst, `]},"scopeSpans":[{"scope":{"name":"`+scopeName+`"},"spans":[`...)
	for i := 0; i < k; i++ {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = e.appendSpan(dst, (e.head+i)%len(e.ring))
	}
	return append(dst, "]}]}]}"...)
}

func (e *Exporter) appendSpan(dst []byte, i int) []byte {
	r := &e.ring[i]
	dst = append(dst, `{"traceId":"`...)
	dst = appendHex(dst, r.traceID[:])
	dst = append(dst, `","spanId":"`...)
	dst = appendHex(dst, r.spanID[:])
	dst = append(dst, '"')
	if r.parentID.IsValid() {
		dst = append(dst, `,"parentSpanId":"`...)
		dst = appendHex(dst, r.parentID[:])
		dst = append(dst, '"')
	}
	if r.traceState.n > 0 {
		dst = append(dst, `,"traceState":`...)
		dst = appendJSONString(dst, e.str(i, r.traceState))
	}
	// Span names follow the HTTP semantic conventions: "{method} {route}",
	// or the method alone when no route template is known, never the raw
	// path (unbounded cardinality).
	method := spanMethods[r.method]
	route := ""
	if r.routePath >= 0 {
		route = e.t.groups[r.group].Paths[r.routePath].pattern
	}
	dst = append(dst, `,"name":"`...)
	dst = append(dst, method...)
	if route != "" {
		dst = append(dst, ' ')
		dst = appendJSONChars(dst, route)
	}
	dst = append(dst, `","kind":`...)
	dst = strconv.AppendInt(dst, otlpKindServer, 10)
	dst = append(dst, `,"startTimeUnixNano":"`...)
	dst = strconv.AppendInt(dst, r.start, 10)
	dst = append(dst, `","endTimeUnixNano":"`...)
	dst = strconv.AppendInt(dst, r.end, 10)
	dst = append(dst, `","attributes":[`...)
	dst = appendStringAttr(dst, true, "http.request.method", method)
	dst = appendStringAttr(dst, false, "url.path", e.str(i, r.path))
	if route != "" {
		dst = appendStringAttr(dst, false, "http.route", route)
	}
	if r.status > 0 {
		dst = append(dst, `,{"key":"http.response.status_code","value":{"intValue":"`...)
		dst = strconv.AppendInt(dst, int64(r.status), 10)
		dst = append(dst, `"}}`...)
	}
	dst = appendStringAttr(dst, false, "meshwasm.sampling.reason", r.reason.String())
	na := len(e.t.attrs)
	for k, a := range e.t.attrs {
		if e.has[i*na+k] {
			dst = appendStringAttr(dst, false, a.Name, e.str(i, e.attrs[i*na+k]))
		}
	}
	dst = append(dst, ']')
	// Server spans are errors on 5xx only; a request that never got a
	// response is an error too.
	if r.status == 0 || r.status >= 500 {
		dst = append(dst, `,"status":{"code":`...)
		dst = strconv.AppendInt(dst, otlpStatusError, 10)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

func appendStringAttr(dst []byte, first bool, k, v string) []byte {
	if !first {
		dst = append(dst, ',')
	}
	dst = append(dst, `{"key":`...)
	dst = appendJSONString(dst, k)
	dst = append(dst, `,"value":{"stringValue":`...)
	dst = appendJSONString(dst, v)
	return append(dst, "}}"...)
}

// spanMethods are the span-name methods: the known HTTP methods, and "HTTP"
// for any other, as the semantic conventions suggest, so that span names
// stay low-cardinality.
var spanMethods = [...]string{"HTTP", "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}

func methodIndex(m string) uint8 {
	for i, known := range spanMethods[1:] {
		if m == known {
			return uint8(i + 1)
		}
	}
	return 0
}
