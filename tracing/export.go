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

// spanRecord is one queued span. It owns its bytes: a request's strings
// (path, tracestate, header attributes) are copied into text, because on Wasm
// they are views of the memory the host wrote the request into, and a queued
// view would keep that whole block alive for as long as the span waits. A
// full queue of 2048 spans used to hold about 15 MiB that way. text is reused
// from span to span, so a warm queue allocates nothing.
type spanRecord struct {
	ctx        SpanContext // TraceState unset: see traceState
	reason     Reason
	method     string // spanMethod's constant
	route      string // from the configuration
	status     int
	start, end int64
	text       []byte
	traceState textRef
	path       textRef
	attrs      []textRef
	has        []bool
}

// maxKeptText is the buffer a queued span keeps for reuse once it has been
// sent; longer ones are freed.
const maxKeptText = 4 << 10

// initialText is each queued span's room for its strings at start.
const initialText = 128

// textRef locates a string in spanRecord.text.
type textRef struct{ off, n int }

func (r *spanRecord) keep(s string) textRef {
	ref := textRef{off: len(r.text), n: len(s)}
	r.text = append(r.text, s...)
	return ref
}

// str is a view of a kept string, valid until the record is reused; it is
// only read while a batch is encoded.
func (r *spanRecord) str(ref textRef) string {
	if ref.n == 0 {
		return ""
	}
	return unsafe.String(&r.text[ref.off], ref.n)
}

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

	exported, dropped, failures uint64
}

// NewExporter returns the span queue for one VM, or nil when the
// configuration has no "export" section.
func (t *Tracer) NewExporter() *Exporter {
	if t.export == nil {
		return nil
	}
	e := &Exporter{t: t, cfg: t.export, ring: make([]spanRecord, t.export.QueueSize)}
	// Each record starts with room for a typical path and tracestate, carved
	// from one block; a longer value grows that record alone.
	text := make([]byte, len(e.ring)*initialText)
	for i := range e.ring {
		e.ring[i].text = text[i*initialText : i*initialText : (i+1)*initialText]
		e.ring[i].attrs = make([]textRef, len(t.attrs))
		e.ring[i].has = make([]bool, len(t.attrs))
	}
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
	r := &e.ring[(e.head+e.n)%len(e.ring)]
	e.n++
	r.ctx, r.reason = h.Context, h.Decision.Reason
	r.ctx.TraceState = ""
	r.method, r.route, r.status = spanMethod(h.Method), h.Route, h.Status
	r.start, r.end = h.Start.UnixNano(), h.End.UnixNano()
	r.text = r.text[:0]
	r.traceState = r.keep(h.Context.TraceState)
	r.path = r.keep(h.Path)
	for i := range r.attrs {
		r.attrs[i] = r.keep(h.attrs[i])
	}
	copy(r.has, h.hasAttr)
	return true
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
	for i := 0; i < k; i++ {
		r := &e.ring[(e.head+i)%len(e.ring)]
		r.text = r.text[:0]
		// A record that once kept a very long value gives its buffer back.
		if cap(r.text) > maxKeptText {
			r.text = nil
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
		dst = e.appendSpan(dst, &e.ring[(e.head+i)%len(e.ring)])
	}
	return append(dst, "]}]}]}"...)
}

func (e *Exporter) appendSpan(dst []byte, r *spanRecord) []byte {
	dst = append(dst, `{"traceId":"`...)
	dst = appendHex(dst, r.ctx.TraceID[:])
	dst = append(dst, `","spanId":"`...)
	dst = appendHex(dst, r.ctx.SpanID[:])
	dst = append(dst, '"')
	if r.ctx.ParentSpanID.IsValid() {
		dst = append(dst, `,"parentSpanId":"`...)
		dst = appendHex(dst, r.ctx.ParentSpanID[:])
		dst = append(dst, '"')
	}
	if r.traceState.n > 0 {
		dst = append(dst, `,"traceState":`...)
		dst = appendJSONString(dst, r.str(r.traceState))
	}
	// Span names follow the HTTP semantic conventions: "{method} {route}",
	// or the method alone when no route template is known, never the raw
	// path (unbounded cardinality).
	method := r.method
	dst = append(dst, `,"name":"`...)
	dst = append(dst, method...)
	if r.route != "" {
		dst = append(dst, ' ')
		dst = appendJSONChars(dst, r.route)
	}
	dst = append(dst, `","kind":`...)
	dst = strconv.AppendInt(dst, otlpKindServer, 10)
	dst = append(dst, `,"startTimeUnixNano":"`...)
	dst = strconv.AppendInt(dst, r.start, 10)
	dst = append(dst, `","endTimeUnixNano":"`...)
	dst = strconv.AppendInt(dst, r.end, 10)
	dst = append(dst, `","attributes":[`...)
	dst = appendStringAttr(dst, true, "http.request.method", method)
	dst = appendStringAttr(dst, false, "url.path", r.str(r.path))
	if r.route != "" {
		dst = appendStringAttr(dst, false, "http.route", r.route)
	}
	if r.status > 0 {
		dst = append(dst, `,{"key":"http.response.status_code","value":{"intValue":"`...)
		dst = strconv.AppendInt(dst, int64(r.status), 10)
		dst = append(dst, `"}}`...)
	}
	dst = appendStringAttr(dst, false, "meshwasm.sampling.reason", r.reason.String())
	for i, a := range e.t.attrs {
		if r.has[i] {
			dst = appendStringAttr(dst, false, a.Name, r.str(r.attrs[i]))
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

// spanMethod keeps span names low-cardinality: a method outside the known
// set is reported as "HTTP", as the semantic conventions suggest.
func spanMethod(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH":
		return m
	}
	return "HTTP"
}
