// Package tracing is the proxy-wasm wiring of the tracing core in
// github.com/meshwasm/meshwasm/tracing: per request it extracts and injects
// W3C Trace Context and B3, decides sampling, enriches baggage and tag
// headers, returns the trace id to the client, writes one JSON access log
// line through the proxy log, bumps the per-route-group metrics and queues
// the proxy's own span; each VM (one per Envoy worker) exports its queue as
// OTLP/HTTP JSON to a collector cluster from the root context's tick.
//
// A collector that is down or slow never delays a request: requests only
// append to a bounded in-VM queue, the callout is fired from the tick and
// only one is in flight at a time.
//
// See ../../tracing/README.md ("Running it in Envoy") for the configuration,
// the Envoy and Istio snippets and the metric names.
package tracing

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshwasm/meshwasm/filters/internal/hostview"
	"github.com/meshwasm/meshwasm/filters/internal/registry"
	core "github.com/meshwasm/meshwasm/tracing"
)

// Name is the filter's root id.
const Name = "tracing"

// Filter registers the tracing filter. A panic in filter code lets the
// request continue (DenyStatus 0): losing a trace must never cost a request.
// The registry logs the panic at critical level and counts it in
// meshwasm.tracing.panics.
var Filter = registry.Filter{
	Name:     Name,
	NewStage: func() registry.Stage { return &plugin{} },
}

// Filter-level counters, next to the core's metrics (tracer.Metrics()).
const (
	// MetricStartErrors counts requests that passed untraced because no
	// random id could be drawn.
	MetricStartErrors = "meshwasm." + Name + ".start_errors"
	// MetricHeaderErrors counts header mutations the host refused.
	MetricHeaderErrors = "meshwasm." + Name + ".header_errors"
	// MetricDispatchErrors counts export callouts the host refused to
	// dispatch (unknown cluster...); the batch stays queued for a retry.
	MetricDispatchErrors = "meshwasm." + Name + ".dispatch_errors"
)

// metric is one defined metric: a counter or a histogram, as the core says.
type metric struct {
	counter   proxywasm.MetricCounter
	histogram proxywasm.MetricHistogram
}

// plugin is one root context: one Tracer (immutable) and one Exporter (this
// VM's span queue).
type plugin struct {
	tracer                           *core.Tracer
	exporter                         *core.Exporter
	metrics                          []metric
	startErr, headerErr, dispatchErr proxywasm.MetricCounter
	// free recycles hops (their buffers) across streams: the per-request
	// work then allocates only the header values' string.
	free []*core.Hop
	// logBuf is the access log line, reused.
	logBuf []byte
	// inFlight is the id of the export call the exporter waits for (0:
	// none); a reply to any other call is stale.
	inFlight uint32
}

// Start parses the configuration and defines the metrics; an exporter
// flushes from the tick.
func (p *plugin) Start(data []byte) (time.Duration, error) {
	t, err := core.Parse(data)
	if err != nil {
		return 0, fmt.Errorf("configuration refused: %w", err)
	}
	p.tracer = t
	for _, m := range t.Metrics() {
		var d metric
		switch m.Kind {
		case core.Histogram:
			d.histogram = proxywasm.DefineHistogramMetric(m.Name)
		default:
			d.counter = proxywasm.DefineCounterMetric(m.Name)
		}
		p.metrics = append(p.metrics, d)
	}
	p.startErr = proxywasm.DefineCounterMetric(MetricStartErrors)
	p.headerErr = proxywasm.DefineCounterMetric(MetricHeaderErrors)
	var tick time.Duration
	if exp := t.Export(); exp != nil {
		p.exporter = t.NewExporter()
		p.dispatchErr = proxywasm.DefineCounterMetric(MetricDispatchErrors)
		tick = exp.FlushPeriod
	}
	proxywasm.LogInfof("%v", t)
	return tick, nil
}

func (p *plugin) NewStream(_ uint32, view *hostview.Request, _ func()) types.HttpContext {
	return &stream{p: p, req: view}
}

// OnTick sends the next batch, if one is due.
func (p *plugin) OnTick() { p.flush() }

// flush dispatches the exporter's next batch from the root context (so the
// callout outlives any request) and reports the export counters.
func (p *plugin) flush() {
	if p.exporter == nil {
		return
	}
	defer p.reportExport()
	c, ok := p.exporter.Flush(time.Now())
	if !ok {
		return
	}
	timeout := uint32(max(c.Timeout/time.Millisecond, 1))
	var id uint32
	id, err := proxywasm.DispatchHttpCall(c.Cluster, c.Headers, c.Body, nil, timeout,
		registry.Callback(Name, nil, func(numHeaders, bodySize, _ int) { p.onReply(id, numHeaders, bodySize) }))
	p.inFlight = id
	if err != nil {
		// The host refused the call outright: count it as a failed attempt,
		// which bounds how often the same batch is tried.
		p.dispatchErr.Increment(1)
		res := p.exporter.Done(0)
		proxywasm.LogWarnf("tracing: dispatch to %s: %v (batch: %v)", c.Cluster, err, res)
	}
}

// onReply takes the collector's answer to call id (none: the call failed or
// timed out) and sends the next batch at once when a backlog is queued.
func (p *plugin) onReply(id uint32, numHeaders, bodySize int) {
	if id != p.inFlight {
		// The exporter gave up on this call (no answer within twice its
		// timeout) and counted it as failed; its batch may be in flight
		// again under another call.
		proxywasm.LogDebugf("tracing: late reply to abandoned export call %d", id)
		return
	}
	p.inFlight = 0
	reply, _ := hostview.ReadReply(numHeaders, bodySize, 0)
	status := reply.Status
	if res := p.exporter.Done(status); res != core.ExportOK {
		proxywasm.LogWarnf("tracing: collector answered %d: batch %v", status, res)
	}
	p.flush()
}

func (p *plugin) reportExport() {
	exported, dropped, failures := p.exporter.TakeCounts()
	p.add(core.MetricSpansExported, exported)
	p.add(core.MetricSpansDropped, dropped)
	p.add(core.MetricExportFailures, failures)
}

func (p *plugin) add(i int, n uint64) {
	if n > 0 {
		p.metrics[i].counter.Increment(n)
	}
}

func (p *plugin) hop() *core.Hop {
	if n := len(p.free); n > 0 {
		h := p.free[n-1]
		p.free = p.free[:n-1]
		return h
	}
	return &core.Hop{}
}

// maxFree bounds the recycled hops: more than the requests one worker has
// in flight at a time is just memory.
const maxFree = 256

func (p *plugin) release(h *core.Hop) {
	if len(p.free) < maxFree {
		p.free = append(p.free, h)
	}
}

// ids draws trace and span ids from the Go runtime's ChaCha8 generator,
// which each VM seeds from WASI random_get (Envoy's own CSPRNG) when it
// starts. W3C Trace Context asks for random ids, not secret ones; crypto/rand
// would cost a host call per request and 180 KiB of module for the same
// uniformity.
type ids struct{}

func (ids) Read(p []byte) (int, error) {
	var b [8]byte
	for i := 0; i < len(p); i += 8 {
		binary.LittleEndian.PutUint64(b[:], rand.Uint64())
		copy(p[i:], b[:])
	}
	return len(p), nil
}

// stream is one HTTP request.
type stream struct {
	types.DefaultHttpContext
	p   *plugin
	req *hostview.Request
	hop *core.Hop // nil: not traced (headers never seen, or no random ids)
	// status is the response status, 0 until response headers pass.
	status int
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	p := s.p
	h := p.hop()
	if err := p.tracer.Start(h, s.req, ids{}, s.req.Now()); err != nil {
		// Explicit failure mode: the request continues untraced and
		// unchanged (its incoming context, if any, passes through), counted.
		p.release(h)
		p.startErr.Increment(1)
		proxywasm.LogErrorf("tracing: %v", err)
		return types.ActionContinue
	}
	s.hop = h
	for _, op := range h.RequestHeaders() {
		var err error
		if op.Remove {
			err = s.req.RemoveHeader(op.Name)
		} else {
			err = s.req.ReplaceHeader(op.Name, op.Value)
		}
		if err != nil {
			p.headerErr.Increment(1)
			proxywasm.LogWarnf("tracing: request header %s: %v", op.Name, err)
		}
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	if s.hop == nil {
		return types.ActionContinue
	}
	s.status = s.req.ResponseStatus()
	for _, op := range s.hop.ResponseHeaders() {
		// Replace: the proxy's hop is what the client called; an upstream's
		// own traceresponse would name a span the client never saw.
		if err := proxywasm.ReplaceHttpResponseHeader(op.Name, op.Value); err != nil {
			s.p.headerErr.Increment(1)
			proxywasm.LogWarnf("tracing: response header %s: %v", op.Name, err)
		}
	}
	return types.ActionContinue
}

// properties reads host properties for attributes read at finish.
type properties struct{}

func (properties) Property(path []string) (string, bool) {
	v, err := proxywasm.GetProperty(path)
	if err != nil {
		return "", false
	}
	return string(v), true
}

func (s *stream) OnHttpStreamDone() {
	h := s.hop
	if h == nil {
		return
	}
	s.hop = nil
	p := s.p
	t := p.tracer
	// The start plus the monotonic time since: one clock read on WASI,
	// where time.Now takes two (wall and monotonic).
	t.Finish(h, s.status, h.Start.Add(time.Since(h.Start)), properties{})
	if t.LogEnabled() {
		p.logBuf = t.AppendLog(p.logBuf[:0], h)
		hostview.LogInfo(p.logBuf)
	}
	counter, histogram, ms := t.RequestMetrics(h)
	p.metrics[counter].counter.Increment(1)
	p.metrics[histogram].histogram.Record(ms)
	if p.exporter != nil {
		// A full queue drops the span; report the drop now rather than at
		// the next tick.
		p.exporter.Add(h)
		p.reportExport()
	}
	p.release(h)
}
