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
	"fmt"
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
	Name:       Name,
	NewStage:   func() registry.Stage { return &plugin{} },
	DenyStatus: 503,
}

// MetricPrefix starts every metric name: meshwasm.ratelimit.<rule>.<metric>.
const MetricPrefix = "meshwasm." + Name + "."

// AbandonedMetric counts shaped requests whose client went away before the
// tick resumed them.
const AbandonedMetric = MetricPrefix + "shaping_abandoned"

// plugin is one root context: one Limiter and one shaping queue per VM
// (per Envoy worker); the workers meet only in shared data.
type plugin struct {
	limiter *core.Limiter
	queue   *core.Queue
	// waiting resumes each shaped stream, by context id.
	waiting   map[uint32]func()
	counters  []proxywasm.MetricCounter
	abandoned proxywasm.MetricCounter
	due       []uint32
}

// Start parses the configuration and defines the metrics; shaping rules
// need the tick.
func (p *plugin) Start(data []byte) (time.Duration, error) {
	cfg, err := core.Parse(data)
	if err != nil {
		return 0, fmt.Errorf("configuration refused: %w", err)
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
		return 0, err
	}
	tick := cfg.TickPeriod()
	if tick > 0 {
		p.queue = core.NewQueue()
		p.waiting = map[uint32]func(){}
		p.abandoned = proxywasm.DefineCounterMetric(AbandonedMetric)
	}
	proxywasm.LogInfof("ratelimit: started with %d rules (tick %v)", len(cfg.RuleNames()), tick)
	return tick, nil
}

func (p *plugin) NewStream(contextID uint32, view *hostview.Request, resume func()) types.HttpContext {
	return &stream{plugin: p, id: contextID, req: view, resume: resume}
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
		resume := p.waiting[id]
		delete(p.waiting, id)
		if resume != nil {
			resume()
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
