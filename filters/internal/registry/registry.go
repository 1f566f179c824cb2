// Package registry lets one Wasm module carry one or several meshwasm filters.
//
// Each filter registers under its name, which is the root id an Envoy plugin
// selects it by (`root_id` in Envoy, `pluginName` in Istio's WasmPlugin). A
// module built with a single filter serves any root id; the suite module,
// built with all four, picks by root id, so plugins that share a `vm_id` run
// one Go runtime per worker instead of four.
//
// The registry also owns panic containment at the filter boundary: every
// callback into filter code recovers, logs at critical level with the stack,
// counts the panic, and applies the outcome the filter declared safe.
package registry

import (
	"fmt"
	"sort"
	"strings"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// Filter describes one filter to the registry.
type Filter struct {
	// Name is the root id that selects the filter, e.g. "authz".
	Name string
	// NewStage creates the filter as a Stage: the registry runs it as its
	// own plugin, and the pipeline filter can run it as one of its steps.
	NewStage func() Stage
	// NewPluginContext creates the plugin (root) context of a filter that is
	// not a Stage (test modules).
	NewPluginContext func(contextID uint32) types.PluginContext
	// DenyStatus, when non-zero, is the status of the local reply sent when
	// filter code panics while handling a request: an authorization filter
	// must fail closed. Zero lets the request continue, which suits filters
	// whose failure harms only their own feature.
	DenyStatus uint32
}

var filters []Filter

// Register adds a filter. It is called from a filter's main package init.
func Register(f Filter) {
	if f.Name == "" || (f.NewPluginContext == nil) == (f.NewStage == nil) {
		panic("registry: filter needs a name and one of NewStage or NewPluginContext")
	}
	for _, g := range filters {
		if g.Name == f.Name {
			panic("registry: filter " + f.Name + " registered twice")
		}
	}
	filters = append(filters, f)
	sort.Slice(filters, func(i, j int) bool { return filters[i].Name < filters[j].Name })
}

// Names lists the registered filters in order.
func Names() []string {
	names := make([]string, len(filters))
	for i, f := range filters {
		names[i] = f.Name
	}
	return names
}

// Lookup chooses the filter for a root id. A module carrying one filter
// accepts any root id, so users may name plugins as they like.
func Lookup(rootID string) (Filter, error) {
	switch len(filters) {
	case 0:
		return Filter{}, fmt.Errorf("no filter registered in this module")
	case 1:
		return filters[0], nil
	}
	for _, f := range filters {
		if f.Name == rootID {
			return f, nil
		}
	}
	return Filter{}, fmt.Errorf("root id %q selects no filter in this module (want one of %s)", rootID, strings.Join(Names(), ", "))
}

func lookupName(name string) (Filter, bool) {
	for _, f := range filters {
		if f.Name == name {
			return f, true
		}
	}
	return Filter{}, false
}

// VMContext is what the module hands to proxywasm.SetVMContext.
func VMContext() types.VMContext { return vmContext{} }

type vmContext struct{}

func (vmContext) OnVMStart(int) types.OnVMStartStatus { return types.OnVMStartStatusOK }

func (vmContext) NewPluginContext(contextID uint32) types.PluginContext {
	return &pluginContext{contextID: contextID}
}

// pluginContext defers choosing the filter to OnPluginStart, the first
// callback in which Envoy's plugin properties (plugin_root_id) can be read.
type pluginContext struct {
	contextID uint32
	filter    Filter
	inner     types.PluginContext
	panics    *panicCounter
}

func (p *pluginContext) OnPluginStart(configSize int) (status types.OnPluginStartStatus) {
	rootID := ""
	if b, err := proxywasm.GetProperty([]string{"plugin_root_id"}); err == nil {
		rootID = string(b)
	}
	f, err := Lookup(rootID)
	if err != nil {
		proxywasm.LogCriticalf("meshwasm: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.filter = f
	p.panics = counterFor(f.Name)
	defer p.recoverPlugin("OnPluginStart", func() { status = types.OnPluginStartStatusFailed })
	p.inner = f.PluginContext(p.contextID)
	return p.inner.OnPluginStart(configSize)
}

func (p *pluginContext) OnPluginDone() (done bool) {
	if p.inner == nil {
		return true
	}
	defer p.recoverPlugin("OnPluginDone", func() { done = true })
	return p.inner.OnPluginDone()
}

func (p *pluginContext) OnQueueReady(queueID uint32) {
	if p.inner == nil {
		return
	}
	defer p.recoverPlugin("OnQueueReady", nil)
	p.inner.OnQueueReady(queueID)
}

func (p *pluginContext) OnTick() {
	if p.inner == nil {
		return
	}
	defer p.recoverPlugin("OnTick", nil)
	p.inner.OnTick()
}

func (p *pluginContext) NewTcpContext(contextID uint32) (ctx types.TcpContext) {
	if p.inner == nil {
		return nil
	}
	defer p.recoverPlugin("NewTcpContext", func() { ctx = nil })
	return p.inner.NewTcpContext(contextID)
}

func (p *pluginContext) NewHttpContext(contextID uint32) types.HttpContext {
	vmMemory.sample()
	h := &httpContext{plugin: p}
	if p.inner == nil {
		// Envoy creates no streams for a plugin that failed to start; if it
		// ever does, the stream is refused or passed per the filter's policy.
		h.failed = true
		return h
	}
	func() {
		defer p.recoverPlugin("NewHttpContext", func() { h.failed = true })
		h.inner = p.inner.NewHttpContext(contextID)
	}()
	if h.inner == nil && !h.failed {
		// The SDK offers every new context as HTTP first, then as TCP: nil
		// is how a filter says "not an HTTP stream".
		return nil
	}
	return h
}

func (p *pluginContext) recoverPlugin(callback string, onPanic func()) {
	if r := recover(); r != nil {
		if p.panics == nil { // before the filter is known
			p.panics = counterFor("registry")
		}
		p.panics.report(callback, r)
		if onPanic != nil {
			onPanic()
		}
	}
}
