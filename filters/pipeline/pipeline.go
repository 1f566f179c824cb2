// Package pipeline runs several meshwasm filters as ONE Envoy plugin: one
// root context, one HTTP context per request, one set of callbacks and one
// read of the request headers and connection properties shared by every
// filter, where a chain of plugins pays each of those once per filter.
//
// The configuration lists the stages in the order they see the request:
//
//	{"stages": [
//	  {"filter": "tracing",   "config": {...}},
//	  {"filter": "authz",     "config": {...}},
//	  {"filter": "ratelimit", "config": {...}},
//	  {"filter": "canary",    "config": {...}}
//	]}
//
// Each config is exactly what the filter takes as its own plugin, and each
// filter keeps its metric names, its shared-data keys and its declared
// failure outcome: a panic in authz still answers 403 while one in tracing
// lets the request through. Semantics are those of the same filters chained
// in Envoy: a stage that answers the request (a 403, a 429) stops the later
// stages, a stage awaiting a callout or a shaping delay holds them until it
// resumes, and responses pass through every stage in reverse order, local
// replies included.
package pipeline

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshwasm/meshwasm/filters/internal/hostview"
	"github.com/meshwasm/meshwasm/filters/internal/registry"
	"github.com/meshwasm/meshwasm/internal/confjson"
)

// Name is the pipeline's root id.
const Name = "pipeline"

// Filter registers the pipeline. Each stage's panics are contained with the
// stage's own outcome; DenyStatus covers the pipeline's own code, and fails
// closed because the pipeline may be carrying authz.
var Filter = registry.Filter{
	Name:             Name,
	NewPluginContext: func(uint32) types.PluginContext { return &plugin{} },
	DenyStatus:       403,
}

type plugin struct {
	types.DefaultPluginContext
	stages []stage
}

// stage is one filter of the pipeline with its tick bookkeeping.
type stage struct {
	name  string
	impl  registry.Stage
	guard *registry.Guard
	tick  time.Duration
	due   time.Time
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
		proxywasm.LogCriticalf("pipeline: read configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	tick, err := p.start(data)
	if err != nil {
		proxywasm.LogCriticalf("pipeline: configuration refused: %v", err)
		return types.OnPluginStartStatusFailed
	}
	if tick > 0 {
		if err := proxywasm.SetTickPeriodMilliSeconds(registry.TickMillis(tick)); err != nil {
			proxywasm.LogCriticalf("pipeline: set tick period: %v", err)
			return types.OnPluginStartStatusFailed
		}
	}
	names := make([]string, len(p.stages))
	for i, s := range p.stages {
		names[i] = s.name
	}
	proxywasm.LogInfof("pipeline: started: %s", strings.Join(names, " -> "))
	return types.OnPluginStartStatusOK
}

// start reads the stage list and starts every stage; it returns the tick
// period the pipeline needs: the shortest any stage asked for.
func (p *plugin) start(data []byte) (time.Duration, error) {
	root, err := confjson.Parse(data)
	if err != nil {
		return 0, err
	}
	if err := root.Object("stages"); err != nil {
		return 0, err
	}
	list, err := root.Get("stages").Array()
	if err != nil {
		return 0, err
	}
	if len(list) == 0 {
		return 0, root.Get("stages").Errorf("required: at least one stage")
	}
	var tick time.Duration
	seen := map[string]bool{}
	for _, n := range list {
		if err := n.Object("filter", "config"); err != nil {
			return 0, err
		}
		if !n.Exists() {
			return 0, n.Errorf("must be an object")
		}
		name, err := n.Get("filter").String()
		if err != nil {
			return 0, err
		}
		f, ok := registry.LookupStage(name)
		if !ok {
			return 0, n.Get("filter").Errorf("unknown filter %q (want one of %s)", name, strings.Join(registry.StageNames(), ", "))
		}
		if seen[name] {
			return 0, n.Get("filter").Errorf("filter %q appears twice", name)
		}
		seen[name] = true
		cfg := n.Get("config")
		var raw []byte
		if cfg.Exists() {
			if !isObject(cfg) {
				return 0, cfg.Errorf("must be an object")
			}
			raw = []byte(cfg.Raw())
		}
		impl := f.NewStage()
		t, err := impl.Start(raw)
		if err != nil {
			return 0, fmt.Errorf("%s (%s): %w", cfg.Path(), name, err)
		}
		p.stages = append(p.stages, stage{name: name, impl: impl, guard: registry.NewGuard(f), tick: t})
		if t > 0 && (tick == 0 || t < tick) {
			tick = t
		}
	}
	return tick, nil
}

// isObject reports whether a present value is a JSON object.
func isObject(n confjson.Node) bool {
	raw := strings.TrimSpace(n.Raw())
	return strings.HasPrefix(raw, "{")
}

// OnTick gives each stage its tick at the stage's own period.
func (p *plugin) OnTick() {
	now := time.Now()
	for i := range p.stages {
		s := &p.stages[i]
		if s.tick == 0 || now.Before(s.due) {
			continue
		}
		s.due = now.Add(s.tick)
		s.guard.Do("OnTick", s.impl.OnTick)
	}
}

func (p *plugin) NewHttpContext(contextID uint32) types.HttpContext {
	st := &stream{p: p}
	st.stages, st.failed = st.inline[:0], st.inlineFailed[:0]
	if len(p.stages) > inlineStages {
		st.stages, st.failed = make([]types.HttpContext, 0, len(p.stages)), make([]bool, 0, len(p.stages))
	}
	resume := st.resume // one closure for every stage
	for _, s := range p.stages {
		st.stages = append(st.stages, s.impl.NewStream(contextID, &st.view, resume))
		st.failed = append(st.failed, false)
	}
	return st
}

// inlineStages is how many stages a stream holds without allocating for
// them: every filter once, as a pipeline names each at most once.
const inlineStages = 4

// stream is one request through every stage.
type stream struct {
	types.DefaultHttpContext
	p      *plugin
	view   hostview.Request
	stages []types.HttpContext
	// failed marks the stages that panicked during this stream: their state
	// is suspect, so the stream's later callbacks skip them.
	failed       []bool
	inline       [inlineStages]types.HttpContext
	inlineFailed [inlineStages]bool
	// next is the first stage that has not seen the request headers.
	next        int
	numHeaders  int
	endOfStream bool
}

// hook is one of the stream callbacks the pipeline passes on to its stages.
type hook uint8

const (
	requestHeaders hook = iota
	requestBody
	requestTrailers
	responseHeaders
	responseBody
	responseTrailers
	streamDone
)

var hookNames = [...]string{"OnHttpRequestHeaders", "OnHttpRequestBody", "OnHttpRequestTrailers",
	"OnHttpResponseHeaders", "OnHttpResponseBody", "OnHttpResponseTrailers", "OnHttpStreamDone"}

func (h hook) request() bool  { return h <= requestTrailers }
func (h hook) response() bool { return h >= responseHeaders && h <= responseTrailers }

// run passes one callback to the stages [lo, hi): in order for the request
// and the end of the stream, in reverse for the response, as through Envoy's
// decoder and encoder chains. It stops at the first stage that does not
// continue, except at the end of the stream, which every stage sees.
//
// A stage's panic is recovered here, once for the whole callback rather than
// once per stage: on Wasm each deferred recover is paid on every request,
// and a request crosses up to four stages in each of three callbacks. The
// stage gets its filter's declared outcome (registry.Guard.Panicked) and is
// skipped by the stream's later callbacks; when that outcome lets the
// request go on, the stages after it still run.
func (s *stream) run(h hook, lo, hi, n int, eos bool) types.Action {
	for k := 0; ; k++ {
		a, finished := s.runFrom(h, lo, hi, &k, n, eos)
		if finished {
			return a
		}
	}
}

// runFrom runs the stages from position *k of the callback's order; on a
// panic, *k is the stage that panicked and finished is false unless the
// stage's outcome stops the request.
func (s *stream) runFrom(h hook, lo, hi int, k *int, n int, eos bool) (action types.Action, finished bool) {
	defer func() {
		if r := recover(); r != nil {
			i := stageAt(h, lo, hi, *k)
			s.failed[i] = true
			action = s.p.stages[i].guard.Panicked(hookNames[h], r, h.request())
			finished = action != types.ActionContinue
		}
	}()
	for ; *k < hi-lo; *k++ {
		i := stageAt(h, lo, hi, *k)
		if h == requestHeaders {
			s.next = i + 1
		}
		if s.failed[i] {
			if h == requestHeaders {
				if a := s.p.stages[i].guard.FailRequest(); a != types.ActionContinue {
					return a, true
				}
			}
			continue
		}
		if a := s.call(i, h, n, eos); a != types.ActionContinue {
			return a, true
		}
	}
	return types.ActionContinue, true
}

// stageAt is the stage at position k of the callback's order over [lo, hi).
func stageAt(h hook, lo, hi, k int) int {
	if h.response() {
		return hi - 1 - k
	}
	return lo + k
}

func (s *stream) call(i int, h hook, n int, eos bool) types.Action {
	st := s.stages[i]
	switch h {
	case requestHeaders:
		return st.OnHttpRequestHeaders(n, eos)
	case requestBody:
		return st.OnHttpRequestBody(n, eos)
	case requestTrailers:
		return st.OnHttpRequestTrailers(n)
	case responseHeaders:
		return st.OnHttpResponseHeaders(n, eos)
	case responseBody:
		return st.OnHttpResponseBody(n, eos)
	case responseTrailers:
		return st.OnHttpResponseTrailers(n)
	default:
		st.OnHttpStreamDone()
		return types.ActionContinue
	}
}

func (s *stream) OnHttpRequestHeaders(numHeaders int, endOfStream bool) types.Action {
	s.numHeaders, s.endOfStream = numHeaders, endOfStream
	return s.run(requestHeaders, 0, len(s.stages), numHeaders, endOfStream)
}

// resume is every stage's resume hook: the stage that paused is done with
// the request, so the stages after it see it now, and Envoy gets the request
// back once the last one continues.
func (s *stream) resume() {
	if s.run(requestHeaders, s.next, len(s.stages), s.numHeaders, s.endOfStream) == types.ActionContinue {
		registry.ResumeRequest()
	}
}

// Request bodies and trailers go to the stages that have seen the headers.
func (s *stream) OnHttpRequestBody(bodySize int, endOfStream bool) types.Action {
	return s.run(requestBody, 0, s.next, bodySize, endOfStream)
}

func (s *stream) OnHttpRequestTrailers(numTrailers int) types.Action {
	return s.run(requestTrailers, 0, s.next, numTrailers, false)
}

// Responses pass every stage in reverse order, as through Envoy's encoder
// chain: a local reply too, which Envoy also hands to the filter that sent it.
func (s *stream) OnHttpResponseHeaders(numHeaders int, endOfStream bool) types.Action {
	return s.run(responseHeaders, 0, len(s.stages), numHeaders, endOfStream)
}

func (s *stream) OnHttpResponseBody(bodySize int, endOfStream bool) types.Action {
	return s.run(responseBody, 0, len(s.stages), bodySize, endOfStream)
}

func (s *stream) OnHttpResponseTrailers(numTrailers int) types.Action {
	return s.run(responseTrailers, 0, len(s.stages), numTrailers, false)
}

func (s *stream) OnHttpStreamDone() {
	s.run(streamDone, 0, len(s.stages), 0, false)
}
