package registry

import (
	"errors"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshwasm/meshwasm/filters/internal/hostview"
)

// Stage is a filter written so that it can run either as its own Envoy
// plugin or as one step of the pipeline filter, which runs several filters
// in one plugin (one set of callbacks and one header read per request
// instead of one per filter). The differences between the two are exactly
// the arguments: where the configuration comes from, who keeps the tick, the
// request view the streams share, and what "resume" means for a request the
// filter paused.
type Stage interface {
	// Start parses and applies the filter's configuration (empty: none) and
	// returns the tick period the filter needs, 0 for none. The error names
	// the offending field; it is logged as "<filter>: <error>".
	Start(config []byte) (tick time.Duration, err error)
	// OnTick is called once per tick period.
	OnTick()
	// NewStream creates the filter's part of one HTTP stream. view is the
	// request view every filter of the stream shares; resume continues a
	// request the filter paused (awaiting a callout or a delay) through
	// whatever follows the filter. resume must be called with the stream
	// as the effective context (as in a callout callback).
	NewStream(contextID uint32, view *hostview.Request, resume func()) types.HttpContext
}

// PluginContext creates the filter's plugin context when it runs as its own
// Envoy plugin.
func (f Filter) PluginContext(contextID uint32) types.PluginContext {
	if f.NewStage != nil {
		return &standalone{name: f.Name, stage: f.NewStage()}
	}
	return f.NewPluginContext(contextID)
}

// LookupStage finds the filter registered under name that can run as a
// pipeline stage.
func LookupStage(name string) (Filter, bool) {
	f, ok := lookupName(name)
	return f, ok && f.NewStage != nil
}

// StageNames lists the registered filters that can run as pipeline stages.
func StageNames() []string {
	var names []string
	for _, f := range filters {
		if f.NewStage != nil {
			names = append(names, f.Name)
		}
	}
	return names
}

// standalone runs one Stage as its own Envoy plugin.
type standalone struct {
	types.DefaultPluginContext
	name  string
	stage Stage
}

func (p *standalone) OnPluginStart(int) types.OnPluginStartStatus {
	config, err := proxywasm.GetPluginConfiguration()
	if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
		proxywasm.LogCriticalf("%s: read configuration: %v", p.name, err)
		return types.OnPluginStartStatusFailed
	}
	tick, err := p.stage.Start(config)
	if err != nil {
		proxywasm.LogCriticalf("%s: %v", p.name, err)
		return types.OnPluginStartStatusFailed
	}
	if tick > 0 {
		if err := proxywasm.SetTickPeriodMilliSeconds(TickMillis(tick)); err != nil {
			proxywasm.LogCriticalf("%s: set tick period: %v", p.name, err)
			return types.OnPluginStartStatusFailed
		}
	}
	return types.OnPluginStartStatusOK
}

func (p *standalone) OnTick() { p.stage.OnTick() }

func (p *standalone) NewHttpContext(contextID uint32) types.HttpContext {
	return p.stage.NewStream(contextID, &hostview.Request{}, ResumeRequest)
}

// ResumeRequest resumes the effective context's request in Envoy: what
// "resume" means for a filter that runs as its own plugin, or for the last
// stage of a pipeline.
func ResumeRequest() {
	if err := proxywasm.ResumeHttpRequest(); err != nil {
		proxywasm.LogErrorf("meshwasm: resume request: %v", err)
	}
}

// TickMillis is a tick period as Envoy takes it: whole milliseconds, at
// least one.
func TickMillis(d time.Duration) uint32 { return uint32(max(d/time.Millisecond, 1)) }

// Guard applies, for one filter's part of streams that another context
// drives (the pipeline), what the registry applies to a filter running as
// its own plugin: a panic gets the filter's own declared outcome and is
// counted in its own panic metric. The driver recovers the panic (once per
// callback for all its stages: on Wasm every deferred recover is paid on
// every request) and skips the filter in the stream's later callbacks.
type Guard struct{ plugin pluginContext }

// NewGuard prepares the guard for filter f, once per plugin.
func NewGuard(f Filter) *Guard {
	return &Guard{plugin: pluginContext{filter: f, panics: counterFor(f.Name)}}
}

// Panicked reports r, recovered from the filter's callback, and returns what
// the stream does next. For a request callback that is FailRequest; for a
// response callback or the stream's end, the stream goes on without the
// filter.
func (g *Guard) Panicked(callback string, r any, request bool) types.Action {
	g.plugin.panics.report(callback, r)
	if request {
		return g.FailRequest()
	}
	return types.ActionContinue
}

// FailRequest applies the filter's declared safe outcome to a request it
// could not judge: its DenyStatus answer (the request is then paused for
// good), or nothing when it fails open.
func (g *Guard) FailRequest() types.Action { return g.plugin.failRequest() }

// Do runs one plugin-level callback of the filter (a tick), containing a
// panic in it.
func (g *Guard) Do(callback string, fn func()) {
	defer g.plugin.recoverPlugin(callback, nil)
	fn()
}
