package wasmhost

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"path/filepath"
	goruntime "runtime"
	"strings"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// VMOptions configure one VM (one Envoy worker's instance of the module).
type VMOptions struct {
	// VMID is Envoy's vm_id: shared data and queues are namespaced by it.
	VMID string
	// VMConfig is the vm_config.configuration bytes.
	VMConfig []byte
	// Clusters are the cluster names callouts may target.
	Clusters []string
	// RealRandom feeds WASI random_get from crypto/rand instead of wazero's
	// deterministic source.
	RealRandom bool
	// Env is the module's environment, as Envoy's
	// vm_config.environment_variables sets it (e.g. GOGC, GODEBUG).
	Env map[string]string
}

// PluginOptions configure one plugin (root context) in a VM.
type PluginOptions struct {
	// RootID is Envoy's root_id (Istio's pluginName).
	RootID string
	// Config is the plugin configuration.
	Config []byte
	// Properties answer proxy_get_property, keyed by the dotted path
	// ("source.address"). plugin_root_id, plugin_name and plugin_vm_id are
	// filled in automatically.
	Properties map[string][]byte
}

// LogEntry is one proxy_log call.
type LogEntry struct {
	Level   uint32 // 0 trace … 5 critical
	Message string
}

// VM is one instance of the module.
type VM struct {
	host     *Host
	opts     VMOptions
	mod      api.Module
	stderr   bytes.Buffer
	ctx      context.Context
	funcs    map[string]api.Function
	trapped  error
	clusters map[string]bool

	nextContextID uint32
	contexts      map[uint32]*contextState
	current       *contextState // the effective context of host calls
	tickPeriods   map[uint32]uint32
	callouts      []*Callout
	calloutSeq    uint32
	activeCallout *Callout
	logs          []LogEntry
	dones         int
	stats         *callStats // nil unless RecordCalls
	stopped       *callStats
}

type contextState struct {
	id     uint32
	plugin *Plugin
	stream *Stream     // set for HTTP streams
	conn   *Connection // set for TCP connections
}

// NewVM instantiates the module: _initialize first (a Go reactor traps on any
// other export before it), as Envoy does.
func (h *Host) NewVM(opts VMOptions) *VM {
	h.t.Helper()
	if opts.VMID == "" {
		opts.VMID = "meshwasm"
	}
	if opts.Clusters == nil {
		opts.Clusters = defaultClusters
	}
	r, _ := runtime()
	h.mu.Lock()
	h.vmSeq++
	name := fmt.Sprintf("vm-%d", h.vmSeq)
	h.mu.Unlock()

	vm := &VM{
		host:          h,
		opts:          opts,
		funcs:         map[string]api.Function{},
		contexts:      map[uint32]*contextState{},
		tickPeriods:   map[uint32]uint32{},
		clusters:      map[string]bool{},
		nextContextID: 1,
	}
	for _, c := range opts.Clusters {
		vm.clusters[c] = true
	}
	vm.ctx = context.WithValue(context.Background(), vmKey{}, vm)
	var random io.Reader
	if opts.RealRandom {
		random = rand.Reader
	}
	cfg := wazero.NewModuleConfig().
		WithName(fmt.Sprintf("%s-%p", name, vm)).
		WithStartFunctions().
		WithStdout(&vm.stderr).
		WithStderr(&vm.stderr).
		WithWalltime(h.Clock.walltime, 1).
		WithNanotime(h.Clock.nanotime, 1)
	if random != nil {
		cfg = cfg.WithRandSource(random)
	}
	for k, v := range opts.Env {
		cfg = cfg.WithEnv(k, v)
	}
	mod, err := r.InstantiateModule(vm.ctx, h.compiled, cfg)
	if err != nil {
		h.t.Fatalf("wasmhost: instantiate: %v", err)
	}
	vm.mod = mod
	h.t.Cleanup(func() { _ = mod.Close(context.Background()) })
	for _, name := range []string{"memory", "_initialize", "proxy_on_memory_allocate"} {
		if mod.ExportedFunction(name) == nil && mod.ExportedMemory(name) == nil {
			h.t.Fatalf("wasmhost: module does not export %s", name)
		}
	}
	vm.call("_initialize")
	return vm
}

// Exports lists the module's exported function names.
func (vm *VM) Exports() []string {
	var names []string
	for name := range vm.mod.ExportedFunctionDefinitions() {
		names = append(names, name)
	}
	return names
}

// MemorySize is the module's linear memory in bytes.
func (vm *VM) MemorySize() uint32 { return vm.mod.Memory().Size() }

// Logs returns the module's log lines so far.
func (vm *VM) Logs() []LogEntry { return append([]LogEntry(nil), vm.logs...) }

// LogsContaining returns log messages at or above level that contain s.
func (vm *VM) LogsContaining(level uint32, s string) []string {
	var out []string
	for _, l := range vm.logs {
		if l.Level >= level && strings.Contains(l.Message, s) {
			out = append(out, l.Message)
		}
	}
	return out
}

// Stderr is what the Go runtime wrote to stdout/stderr (fatal errors).
func (vm *VM) Stderr() string { return vm.stderr.String() }

// call invokes an export and fails the test if the module traps: a trap is
// exactly what Envoy punishes by failing every later request on the worker.
//
// The per-request paths do not call t.Helper: it walks the stack, and through
// wazero's frames that cost more than a whole no-op request, which would drown
// the module's own cost in benchmarks. Failures name the caller instead.
func (vm *VM) call(name string, args ...uint64) uint64 {
	if vm.trapped != nil {
		vm.fatalf("wasmhost: VM already trapped: %v", vm.trapped)
	}
	fn, ok := vm.funcs[name]
	if !ok {
		fn = vm.mod.ExportedFunction(name)
		if fn == nil {
			vm.fatalf("wasmhost: module does not export %s", name)
		}
		vm.funcs[name] = fn
	}
	if s := vm.stats; s != nil {
		s.enter()
		defer s.exit(name)
	}
	res, err := fn.Call(vm.ctx, args...)
	if err != nil {
		vm.trapped = err
		vm.fatalf("wasmhost: %s trapped: %v\nstderr:\n%s", name, err, vm.stderr.String())
	}
	if len(res) == 0 {
		return 0
	}
	return res[0]
}

// enter makes ctx the effective context for the duration of a callback.
func (vm *VM) enter(ctx *contextState) func() {
	prev := vm.current
	vm.current = ctx
	return func() { vm.current = prev }
}

// Host is the VM's host.
func (vm *VM) Host() *Host { return vm.host }

// Plugin is one root context.
type Plugin struct {
	vm      *VM
	ctx     *contextState
	opts    PluginOptions
	started bool
}

// StartPlugin creates a root context and runs proxy_on_vm_start and
// proxy_on_configure, as Envoy does for each plugin using the VM.
func (vm *VM) StartPlugin(opts PluginOptions) *Plugin {
	vm.host.t.Helper()
	p := &Plugin{vm: vm, opts: opts}
	props := map[string][]byte{}
	for k, v := range opts.Properties {
		props[k] = v
	}
	props["plugin_root_id"] = []byte(opts.RootID)
	props["plugin_name"] = []byte(opts.RootID)
	props["plugin_vm_id"] = []byte(vm.opts.VMID)
	p.opts.Properties = props

	p.ctx = &contextState{id: vm.newContextID(), plugin: p}
	vm.contexts[p.ctx.id] = p.ctx
	defer vm.enter(p.ctx)()
	vm.call("proxy_on_context_create", uint64(p.ctx.id), 0)
	if vm.call("proxy_on_vm_start", uint64(p.ctx.id), uint64(len(vm.opts.VMConfig))) == 0 {
		return p
	}
	p.started = vm.call("proxy_on_configure", uint64(p.ctx.id), uint64(len(opts.Config))) != 0
	return p
}

// NewPlugin is NewVM plus StartPlugin, for the common one-plugin case.
func (h *Host) NewPlugin(vmOpts VMOptions, opts PluginOptions) *Plugin {
	h.t.Helper()
	return h.NewVM(vmOpts).StartPlugin(opts)
}

// Started reports whether proxy_on_configure accepted the configuration.
func (p *Plugin) Started() bool { return p.started }

// VM is the plugin's VM.
func (p *Plugin) VM() *VM { return p.vm }

// ContextID is the root context id.
func (p *Plugin) ContextID() uint32 { return p.ctx.id }

// Tick runs proxy_on_tick if the plugin set a tick period.
func (p *Plugin) Tick() {
	p.vm.host.t.Helper()
	if p.vm.tickPeriods[p.ctx.id] == 0 {
		p.vm.host.t.Fatalf("wasmhost: plugin %q set no tick period", p.opts.RootID)
	}
	defer p.vm.enter(p.ctx)()
	p.vm.call("proxy_on_tick", uint64(p.ctx.id))
}

// TickPeriod is the tick period the plugin asked for, in milliseconds.
func (p *Plugin) TickPeriod() uint32 { return p.vm.tickPeriods[p.ctx.id] }

// Done runs proxy_on_done on the root context (plugin shutdown).
func (p *Plugin) Done() bool {
	defer p.vm.enter(p.ctx)()
	return p.vm.call("proxy_on_done", uint64(p.ctx.id)) != 0
}

// DeliverQueues runs proxy_on_queue_ready for every non-empty queue this
// plugin registered; Envoy posts these to the owner's worker asynchronously.
func (p *Plugin) DeliverQueues() {
	p.vm.host.mu.Lock()
	var ready []uint32
	for i, q := range p.vm.host.queues {
		if q.owner == p.vm && q.rootID == p.ctx.id && len(q.items) > 0 {
			ready = append(ready, uint32(i+1))
		}
	}
	p.vm.host.mu.Unlock()
	defer p.vm.enter(p.ctx)()
	for _, id := range ready {
		p.vm.call("proxy_on_queue_ready", uint64(p.ctx.id), uint64(id))
	}
}

func (vm *VM) newContextID() uint32 {
	id := vm.nextContextID
	vm.nextContextID++
	return id
}

// Callout is an HTTP call the module dispatched, waiting for the test.
type Callout struct {
	plugin   *Plugin
	ID       uint32
	Cluster  string
	Headers  [][2]string
	Body     []byte
	Trailers [][2]string
	Timeout  uint32 // milliseconds

	respHeaders, respTrailers [][2]string
	respBody                  []byte
	done                      bool
}

// Header returns a request header of the callout.
func (c *Callout) Header(name string) string { return get(c.Headers, name) }

// Callouts returns the callouts not yet answered.
func (vm *VM) Callouts() []*Callout {
	var out []*Callout
	for _, c := range vm.callouts {
		if !c.done {
			out = append(out, c)
		}
	}
	return out
}

// Respond delivers a reply: proxy_on_http_call_response with the counts.
func (c *Callout) Respond(status int, headers [][2]string, body []byte, trailers [][2]string) {
	hs := append([][2]string{{":status", fmt.Sprint(status)}}, lower(headers)...)
	c.deliver(hs, body, lower(trailers))
}

// Fail reports a failed callout (reset, no healthy upstream, timeout): Envoy
// calls back with no headers, body or trailers.
func (c *Callout) Fail() { c.deliver(nil, nil, nil) }

func (c *Callout) deliver(headers [][2]string, body []byte, trailers [][2]string) {
	vm := c.plugin.vm
	if c.done {
		vm.fatalf("wasmhost: callout %d answered twice", c.ID)
	}
	c.done = true
	c.respHeaders, c.respBody, c.respTrailers = headers, body, trailers
	vm.activeCallout = c
	defer func() { vm.activeCallout = nil }()
	defer vm.enter(c.plugin.ctx)()
	vm.call("proxy_on_http_call_response", uint64(c.plugin.ctx.id), uint64(c.ID),
		uint64(len(headers)), uint64(len(body)), uint64(len(trailers)))
}

// LocalResponse is a reply the module sent with proxy_send_local_response.
type LocalResponse struct {
	Status     uint32
	Details    string
	Body       []byte
	Headers    [][2]string
	GRPCStatus int32
}

// Header returns a header of the local response.
func (l *LocalResponse) Header(name string) string { return get(l.Headers, name) }

// Stream is one HTTP request through one plugin.
type Stream struct {
	plugin *Plugin
	ctx    *contextState

	RequestHeaders, RequestTrailers   [][2]string
	ResponseHeaders, ResponseTrailers [][2]string
	RequestBody, ResponseBody         []byte
	// Properties override the plugin's properties for this stream.
	Properties map[string][]byte
	// SetProperties records proxy_set_property calls.
	SetProperties map[string][]byte

	Local             *LocalResponse
	RequestResumed    int
	ResponseResumed   int
	RequestClosed     bool
	ResponseClosed    bool
	created, finished bool
}

// NewStream creates an HTTP context (proxy_on_context_create).
func (p *Plugin) NewStream() *Stream {
	s := &Stream{plugin: p, Properties: map[string][]byte{}, SetProperties: map[string][]byte{}}
	s.ctx = &contextState{id: p.vm.newContextID(), plugin: p, stream: s}
	p.vm.contexts[s.ctx.id] = s.ctx
	defer p.vm.enter(s.ctx)()
	p.vm.call("proxy_on_context_create", uint64(s.ctx.id), uint64(p.ctx.id))
	s.created = true
	return s
}

// ContextID is the stream's context id.
func (s *Stream) ContextID() uint32 { return s.ctx.id }

func (s *Stream) callback(name string, args ...uint64) types.Action {
	vm := s.plugin.vm
	defer vm.enter(s.ctx)()
	return types.Action(vm.call(name, append([]uint64{uint64(s.ctx.id)}, args...)...))
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// SendRequestHeaders sets the request headers and runs
// proxy_on_request_headers.
func (s *Stream) SendRequestHeaders(headers [][2]string, endOfStream bool) types.Action {
	s.RequestHeaders = lower(headers)
	return s.callback("proxy_on_request_headers", uint64(len(s.RequestHeaders)), b2u(endOfStream))
}

// SendRequestBody appends a body chunk and runs proxy_on_request_body with
// the buffered size, as Envoy does while a filter keeps buffering.
func (s *Stream) SendRequestBody(chunk []byte, endOfStream bool) types.Action {
	s.RequestBody = append(s.RequestBody, chunk...)
	return s.callback("proxy_on_request_body", uint64(len(s.RequestBody)), b2u(endOfStream))
}

// SendRequestTrailers runs proxy_on_request_trailers.
func (s *Stream) SendRequestTrailers(trailers [][2]string) types.Action {
	s.RequestTrailers = lower(trailers)
	return s.callback("proxy_on_request_trailers", uint64(len(s.RequestTrailers)))
}

// SendResponseHeaders runs proxy_on_response_headers.
func (s *Stream) SendResponseHeaders(headers [][2]string, endOfStream bool) types.Action {
	s.ResponseHeaders = lower(headers)
	return s.callback("proxy_on_response_headers", uint64(len(s.ResponseHeaders)), b2u(endOfStream))
}

// SendResponseBody appends a response chunk and runs proxy_on_response_body.
func (s *Stream) SendResponseBody(chunk []byte, endOfStream bool) types.Action {
	s.ResponseBody = append(s.ResponseBody, chunk...)
	return s.callback("proxy_on_response_body", uint64(len(s.ResponseBody)), b2u(endOfStream))
}

// SendResponseTrailers runs proxy_on_response_trailers.
func (s *Stream) SendResponseTrailers(trailers [][2]string) types.Action {
	s.ResponseTrailers = lower(trailers)
	return s.callback("proxy_on_response_trailers", uint64(len(s.ResponseTrailers)))
}

// Finish ends the stream the way Envoy does: proxy_on_done, proxy_on_log,
// proxy_on_delete.
func (s *Stream) Finish() {
	vm := s.plugin.vm
	if s.finished {
		return
	}
	s.finished = true
	s.callback("proxy_on_done")
	s.callback("proxy_on_log")
	s.callback("proxy_on_delete")
	delete(vm.contexts, s.ctx.id)
}

// RequestHeader returns the current value of a request header ("" if absent).
func (s *Stream) RequestHeader(name string) string { return get(s.RequestHeaders, name) }

// HasRequestHeader reports whether a request header is present.
func (s *Stream) HasRequestHeader(name string) bool { return has(s.RequestHeaders, name) }

// ResponseHeader returns the current value of a response header.
func (s *Stream) ResponseHeader(name string) string { return get(s.ResponseHeaders, name) }

// Plugin is the stream's plugin.
func (s *Stream) Plugin() *Plugin { return s.plugin }

func lower(hs [][2]string) [][2]string {
	out := make([][2]string, len(hs))
	for i, h := range hs {
		out[i] = [2]string{strings.ToLower(h[0]), h[1]}
	}
	return out
}

// get joins duplicate values with ",", as Envoy does for a filter's read.
func get(hs [][2]string, name string) string {
	name = strings.ToLower(name)
	var vals []string
	for _, h := range hs {
		if h[0] == name {
			vals = append(vals, h[1])
		}
	}
	return strings.Join(vals, ",")
}

// first is the first value of a header, as Envoy's
// proxy_get_header_map_value answers it.
func first(hs [][2]string, name string) string {
	name = strings.ToLower(name)
	for _, h := range hs {
		if h[0] == name {
			return h[1]
		}
	}
	return ""
}

func has(hs [][2]string, name string) bool {
	name = strings.ToLower(name)
	for _, h := range hs {
		if h[0] == name {
			return true
		}
	}
	return false
}

// fatalf fails the test, naming the first caller outside this package (the
// per-request paths skip t.Helper, see call).
func (vm *VM) fatalf(format string, args ...any) {
	vm.host.t.Helper()
	vm.host.t.Fatalf("%s"+format, append([]any{callerOutside()}, args...)...)
}

func callerOutside() string {
	var pcs [64]uintptr
	frames := goruntime.CallersFrames(pcs[:goruntime.Callers(3, pcs[:])])
	for {
		f, more := frames.Next()
		if f.File != "" && !strings.Contains(f.Function, "/wasmhost.") &&
			!strings.HasPrefix(f.Function, "runtime.") && !strings.HasPrefix(f.Function, "testing.") && !strings.Contains(f.Function, "/wazero") {
			return fmt.Sprintf("%s:%d: ", filepath.Base(f.File), f.Line)
		}
		if !more {
			return ""
		}
	}
}
