// Package canary is the proxy-wasm wiring of the canary router in
// github.com/meshwasm/meshwasm/canary: per request it asks the core for a
// version, writes it into the routing header (Envoy then re-matches the route
// table, whose header match picks the version's cluster), fires the optional
// shadow callout, and on the response sets the sticky cookie and the
// version header and reports the outcome to the canary guard, whose state
// lives in Envoy shared data so that every worker sees a trip.
//
// See ../../canary/README.md ("Running it in Envoy") for the configuration,
// the Envoy and Istio snippets and the metric names.
package canary

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	core "github.com/meshwasm/meshwasm/canary"
	"github.com/meshwasm/meshwasm/filters/internal/hostview"
	"github.com/meshwasm/meshwasm/filters/internal/registry"
)

// Name is the filter's root id and metric namespace.
const Name = "canary"

// Filter registers the canary filter. A panic in filter code lets the request
// continue (DenyStatus 0): the routing header is then whatever the route table
// falls back to, and the panic is logged and counted by the registry.
var Filter = registry.Filter{
	Name:     Name,
	NewStage: func() registry.Stage { return &plugin{} },
}

// Metric names, documented in canary/README.md. Per version v and rule r:
// meshwasm.canary.<v>.routed, .guard_diverted, .guard_trips,
// .guard_recoveries; meshwasm.canary.<r>.matched.
const (
	metricPrefix       = "meshwasm." + Name + "."
	MetricSpoofed      = metricPrefix + "spoofed_header"
	MetricStoreErrors  = metricPrefix + "guard_store_errors"
	MetricMirrored     = metricPrefix + "mirrored"
	MetricMirrorErrors = metricPrefix + "mirror_errors"
	MetricHeaderErrors = metricPrefix + "header_errors"
)

// VersionMetric is the name of a per-version counter (what: routed,
// guard_diverted, guard_trips, guard_recoveries).
func VersionMetric(version, what string) string { return metricPrefix + version + "." + what }

// RuleMetric is the name of the counter of requests a rule decided.
func RuleMetric(rule string) string { return metricPrefix + rule + ".matched" }

type plugin struct {
	router *core.Router
	store  hostview.SharedData
	m      metrics
}

type metrics struct {
	// Indexed by version.
	routed, diverted, trips, recoveries []proxywasm.MetricCounter
	// Indexed by rule.
	rules                                                []proxywasm.MetricCounter
	spoofed, storeErrors, mirrored, mirrorErrors, header proxywasm.MetricCounter
}

// Start parses the configuration and defines the metrics. The guard's
// state lives in shared data and moves on responses: no tick.
func (p *plugin) Start(config []byte) (time.Duration, error) {
	router, err := core.Parse(config)
	if err != nil {
		return 0, fmt.Errorf("configuration refused: %w", err)
	}
	p.router = router
	p.store = hostview.SharedData{}
	p.m = defineMetrics(router)
	proxywasm.LogInfof("canary: started: versions %v, default %s, route header %s",
		router.Versions(), router.Versions()[router.Default()], router.RouteHeader())
	return 0, nil
}

// OnTick is never called: Start asks for no tick.
func (p *plugin) OnTick() {}

func defineMetrics(r *core.Router) metrics {
	counters := func(names []string, name func(string) string) []proxywasm.MetricCounter {
		out := make([]proxywasm.MetricCounter, len(names))
		for i, n := range names {
			out[i] = proxywasm.DefineCounterMetric(name(n))
		}
		return out
	}
	perVersion := func(what string) []proxywasm.MetricCounter {
		return counters(r.Versions(), func(v string) string { return VersionMetric(v, what) })
	}
	return metrics{
		routed:       perVersion("routed"),
		diverted:     perVersion("guard_diverted"),
		trips:        perVersion("guard_trips"),
		recoveries:   perVersion("guard_recoveries"),
		rules:        counters(r.RuleNames(), RuleMetric),
		spoofed:      proxywasm.DefineCounterMetric(MetricSpoofed),
		storeErrors:  proxywasm.DefineCounterMetric(MetricStoreErrors),
		mirrored:     proxywasm.DefineCounterMetric(MetricMirrored),
		mirrorErrors: proxywasm.DefineCounterMetric(MetricMirrorErrors),
		header:       proxywasm.DefineCounterMetric(MetricHeaderErrors),
	}
}

func (p *plugin) NewStream(_ uint32, view *hostview.Request, _ func()) types.HttpContext {
	return &stream{p: p, req: request{view}, version: -1}
}

// request is the host's request view with the peer identity in the form the
// core's trust list is written in: the full SPIFFE id, scheme included.
type request struct{ *hostview.Request }

func (r request) Principal() string { return r.PeerURISAN() }

type stream struct {
	types.DefaultHttpContext
	p   *plugin
	req request
	// version is the index of the version the request was routed to, -1
	// until a decision was made (e.g. another filter answered first).
	version   int
	setCookie string
	// responded: response headers passed; a stream that ends without them
	// was reset or failed locally.
	responded bool
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	p := s.p
	d := p.router.Decide(s.req, core.Env{Now: s.req.Now(), Random: rand.Uint64(), Store: p.store})
	// Replace, never add: this also overwrites a spoofed client value, and
	// Envoy clears the route cache on the change, so the route table matches
	// the decision. Through the view, so that the mirror copies what goes
	// upstream.
	if err := s.req.ReplaceHeader(p.router.RouteHeader(), d.Version); err != nil {
		return s.headerFailed(err)
	}
	s.version, s.setCookie = d.VersionIndex, d.SetCookie
	p.m.routed[d.VersionIndex].Increment(1)
	if d.Rule >= 0 {
		p.m.rules[d.Rule].Increment(1)
	}
	if d.ClientHeader == core.ClientHeaderReplaced {
		p.m.spoofed.Increment(1)
	}
	if d.DivertedFrom >= 0 {
		p.m.diverted[d.DivertedFrom].Increment(1)
	}
	if d.GuardErr != nil {
		p.m.storeErrors.Increment(1)
		proxywasm.LogWarnf("canary: %v", d.GuardErr)
	}
	if d.Mirror {
		s.mirror()
	}
	return types.ActionContinue
}

// headerFailed refuses a request whose routing header could not be set: the
// client's own value could otherwise pick the version. Removing the header
// at least sends it to the route table's default.
func (s *stream) headerFailed(err error) types.Action {
	s.p.m.header.Increment(1)
	if rmErr := s.req.RemoveHeader(s.p.router.RouteHeader()); rmErr == nil {
		proxywasm.LogErrorf("canary: set %s: %v; header removed, default route", s.p.router.RouteHeader(), err)
		return types.ActionContinue
	}
	proxywasm.LogCriticalf("canary: set %s: %v; request refused", s.p.router.RouteHeader(), err)
	_ = proxywasm.SendHttpResponse(503, [][2]string{{"content-type", "text/plain"}}, []byte("canary: routing failed\n"), -1)
	return types.ActionPause
}

// mirror sends the shadow copy. The callout never pauses the stream and its
// reply is dropped; Envoy abandons it if the request ends first.
func (s *stream) mirror() {
	m := s.p.router.Mirror()
	_, err := proxywasm.DispatchHttpCall(m.Cluster, m.Headers(s.req), nil, nil,
		uint32(m.Timeout/time.Millisecond), registry.Callback(Name, nil, ignoreReply))
	if err != nil {
		s.p.m.mirrorErrors.Increment(1)
		proxywasm.LogWarnf("canary: mirror to %s: %v", m.Cluster, err)
		return
	}
	s.p.m.mirrored.Increment(1)
}

func ignoreReply(int, int, int) {}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	if s.version < 0 || s.responded {
		return types.ActionContinue
	}
	s.responded = true
	p := s.p
	if s.setCookie != "" {
		if err := proxywasm.AddHttpResponseHeader("set-cookie", s.setCookie); err != nil {
			proxywasm.LogWarnf("canary: set-cookie: %v", err)
		}
	}
	if h := p.router.ResponseHeader(); h != "" {
		if err := proxywasm.ReplaceHttpResponseHeader(h, p.router.Versions()[s.version]); err != nil {
			proxywasm.LogWarnf("canary: %s: %v", h, err)
		}
	}
	outcome := core.Failure // no readable status: the response is not a healthy one
	if status := s.req.ResponseStatus(); status > 0 {
		outcome = core.Classify(status)
	}
	s.record(outcome)
	return types.ActionContinue
}

// OnHttpStreamDone reports a stream that ended without response headers
// (client or upstream reset, local failure) as a failure of its version.
func (s *stream) OnHttpStreamDone() {
	if s.version >= 0 && !s.responded {
		s.record(core.Failure)
	}
}

func (s *stream) record(o core.Outcome) {
	p := s.p
	if g := p.router.Guard(); g == nil || !g.Guarded(s.version) {
		return
	}
	ev, err := p.router.Record(p.store, s.version, o, time.Now())
	if err != nil {
		p.m.storeErrors.Increment(1)
		proxywasm.LogWarnf("canary: %v", err)
		return
	}
	switch ev.Kind {
	case core.Tripped:
		p.m.trips[s.version].Increment(1)
		proxywasm.LogWarn(ev.String())
	case core.Recovered:
		p.m.recoveries[s.version].Increment(1)
		proxywasm.LogInfo(ev.String())
	}
}
