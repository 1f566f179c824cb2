// Package ratelimit is the proxy-wasm wiring of the meshwasm rate limiter: it
// parses the configuration once at plugin start, decides each request with
// the pure core in github.com/meshwasm/meshwasm/ratelimit over Envoy shared
// data, answers 429 locally, pauses shaped requests and resumes them from the
// plugin's tick, and asks envoyproxy/ratelimit through an HTTP callout for
// global rules.
//
// See ../../ratelimit/README.md for the configuration reference.
package ratelimit

import (
	"errors"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshwasm/meshwasm/filters/internal/hostview"
	"github.com/meshwasm/meshwasm/filters/internal/registry"
	core "github.com/meshwasm/meshwasm/ratelimit"
)

// Name is the filter's root id.
const Name = "ratelimit"

// Filter registers the rate limiter. A panic in its code answers 503: a rate
// limiter that cannot judge a request must not wave it through unseen (the
// panic is logged at critical level and counted in meshwasm.ratelimit.panics).
var Filter = registry.Filter{
	Name:             Name,
	NewPluginContext: func(uint32) types.PluginContext { return &plugin{} },
	DenyStatus:       503,
}

// MetricPrefix starts every metric name: meshwasm.ratelimit.<rule>.<metric>.
const MetricPrefix = "meshwasm." + Name + "."

// AbandonedMetric counts shaped requests whose client went away before the
// tick resumed them.
const AbandonedMetric = MetricPrefix + "shaping_abandoned"

// plugin is one root context: one Limiter and one shaping queue per VM
// (per Envoy worker); the workers meet only in shared data.
type plugin struct {
	types.DefaultPluginContext
	limiter   *core.Limiter
	queue     *core.Queue
	counters  []proxywasm.MetricCounter
	abandoned proxywasm.MetricCounter
	due       []uint32
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	data, err := proxywasm.GetPluginConfiguration()
	if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
		proxywasm.LogCriticalf("ratelimit: read configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	cfg, err := core.Parse(data)
	if err != nil {
		proxywasm.LogCriticalf("ratelimit: configuration refused: %v", err)
		return types.OnPluginStartStatusFailed
	}
	metrics := core.Metrics()
	for _, rule := range cfg.RuleNames() {
		for _, m := range metrics {
			p.counters = append(p.counters, proxywasm.DefineCounterMetric(MetricPrefix+rule+"."+m.String()))
		}
	}
	p.limiter, err = core.New(cfg, core.Options{
		Store:    hostview.SharedData{},
		Clock:    time.Now, // the VM's WASI clock: Envoy's wall clock
		Recorder: recorder{counters: p.counters, perRule: len(metrics)},
	})
	if err != nil {
		proxywasm.LogCriticalf("ratelimit: %v", err)
		return types.OnPluginStartStatusFailed
	}
	if tick := cfg.TickPeriod(); tick > 0 {
		p.queue = core.NewQueue()
		p.abandoned = proxywasm.DefineCounterMetric(AbandonedMetric)
		if err := proxywasm.SetTickPeriodMilliSeconds(uint32(tick / time.Millisecond)); err != nil {
			proxywasm.LogCriticalf("ratelimit: set tick period: %v", err)
			return types.OnPluginStartStatusFailed
		}
	}
	proxywasm.LogInfof("ratelimit: started with %d rules (tick %v)", len(cfg.RuleNames()), cfg.TickPeriod())
	return types.OnPluginStartStatusOK
}

func (p *plugin) NewHttpContext(contextID uint32) types.HttpContext {
	return &stream{plugin: p, id: contextID}
}

// OnTick resumes the shaped requests whose delay has passed. Each worker
// ticks its own root context and resumes only its own streams.
func (p *plugin) OnTick() {
	if p.queue == nil || p.queue.Len() == 0 {
		return
	}
	p.due = p.queue.Due(time.Now(), p.due[:0])
	for _, id := range p.due {
		// A stream that ended was removed from the queue in
		// OnHttpStreamDone; an error here means the host lost it anyway.
		if err := proxywasm.SetEffectiveContext(id); err != nil {
			proxywasm.LogWarnf("ratelimit: resume stream %d: %v", id, err)
			continue
		}
		if err := proxywasm.ResumeHttpRequest(); err != nil {
			proxywasm.LogWarnf("ratelimit: resume stream %d: %v", id, err)
		}
	}
}

// recorder turns the core's per-rule metric increments into Envoy counters
// defined at plugin start.
type recorder struct {
	counters []proxywasm.MetricCounter
	perRule  int
}

func (r recorder) Count(rule int, m core.Metric, n uint64) {
	if i := rule*r.perRule + int(m); rule >= 0 && i < len(r.counters) {
		r.counters[i].Increment(n)
	}
}
