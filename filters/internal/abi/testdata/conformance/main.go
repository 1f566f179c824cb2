// Command conformance is a test-only plugin that exercises every host call and
// callback of the ABI bridge. Tests (the wazero host's and the real-Envoy
// smoke test) drive it through request headers:
//
//	x-conformance-op: local | panic | pause | callout | shared-inc | property |
//	                  queue | foreign | headers | body-upper | resp-body-append |
//	                  trailers | alloc | trap
//	x-conformance-local: 1   answers 418 (kept for the Envoy smoke test)
//
// Root id "conformance-tcp" selects a network filter instead, driven by the
// connection's data: "panic" panics, anything else is upper-cased on the way
// up and suffixed with "!" on the way down.
//
// Every response gets `x-conformance: ok`. It is never shipped: production
// filters carry no panic trigger.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"strconv"
	"strings"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	_ "github.com/meshwasm/meshwasm/filters/internal/abi"
	"github.com/meshwasm/meshwasm/filters/internal/registry"
)

func main() {}

func init() {
	registry.Register(registry.Filter{
		Name:             "conformance",
		NewPluginContext: func(uint32) types.PluginContext { return &plugin{} },
		DenyStatus:       503,
	})
	registry.Register(registry.Filter{
		Name:             "conformance-tcp",
		NewPluginContext: func(uint32) types.PluginContext { return &tcpPlugin{} },
	})
}

const (
	sharedKey = "conformance.counter"
	queueName = "conformance.queue"
)

type plugin struct {
	types.DefaultPluginContext
	config   string
	vmConfig string
	queueID  uint32
	paused   []uint32
	requests proxywasm.MetricCounter
	inflight proxywasm.MetricGauge
	sizes    proxywasm.MetricHistogram
	dequeued proxywasm.MetricCounter
	ticks    proxywasm.MetricCounter
}

func (p *plugin) OnPluginStart(int) types.OnPluginStartStatus {
	cfg, err := proxywasm.GetPluginConfiguration()
	if err != nil && !errors.Is(err, types.ErrorStatusNotFound) {
		proxywasm.LogCriticalf("conformance: plugin configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.config = string(cfg)
	if p.config == "fail" {
		proxywasm.LogCritical("conformance: configuration refused: fail")
		return types.OnPluginStartStatusFailed
	}
	vm, _ := proxywasm.GetVMConfiguration()
	p.vmConfig = string(vm)
	p.requests = proxywasm.DefineCounterMetric("conformance.requests")
	p.inflight = proxywasm.DefineGaugeMetric("conformance.inflight")
	p.sizes = proxywasm.DefineHistogramMetric("conformance.header_count")
	p.dequeued = proxywasm.DefineCounterMetric("conformance.dequeued")
	p.ticks = proxywasm.DefineCounterMetric("conformance.ticks")
	if p.queueID, err = proxywasm.RegisterSharedQueue(queueName); err != nil {
		proxywasm.LogCriticalf("conformance: register queue: %v", err)
		return types.OnPluginStartStatusFailed
	}
	if id, err := proxywasm.ResolveSharedQueue("", queueName); err != nil || id != p.queueID {
		proxywasm.LogCriticalf("conformance: resolve queue: id %d want %d: %v", id, p.queueID, err)
		return types.OnPluginStartStatusFailed
	}
	// Shared data has no create-if-absent: a Set with CAS 0 on a missing key
	// is unconditional, so two workers' first increments would both win. The
	// counter is created before any stream counts on it.
	if _, _, err := proxywasm.GetSharedData(sharedKey); errors.Is(err, types.ErrorStatusNotFound) {
		_ = proxywasm.SetSharedData(sharedKey, make([]byte, 8), 0)
	}
	if err := proxywasm.SetTickPeriodMilliSeconds(100); err != nil {
		proxywasm.LogCriticalf("conformance: tick: %v", err)
		return types.OnPluginStartStatusFailed
	}
	proxywasm.LogInfof("conformance: started with config %q vm config %q", p.config, p.vmConfig)
	return types.OnPluginStartStatusOK
}

func (p *plugin) OnTick() {
	p.ticks.Increment(1)
	paused := p.paused
	p.paused = nil
	for _, id := range paused {
		if err := proxywasm.SetEffectiveContext(id); err != nil {
			proxywasm.LogWarnf("conformance: effective context %d: %v", id, err)
			continue
		}
		_ = proxywasm.AddHttpRequestHeader("x-resumed-by", "tick")
		if err := proxywasm.ResumeHttpRequest(); err != nil {
			proxywasm.LogWarnf("conformance: resume %d: %v", id, err)
		}
	}
}

func (p *plugin) OnQueueReady(queueID uint32) {
	for {
		data, err := proxywasm.DequeueSharedQueue(queueID)
		if err != nil {
			return
		}
		p.dequeued.Increment(uint64(len(data)))
	}
}

func (p *plugin) NewHttpContext(contextID uint32) types.HttpContext {
	return &stream{plugin: p, id: contextID}
}

type stream struct {
	types.DefaultHttpContext
	plugin *plugin
	id     uint32
	op     string
}

func (s *stream) OnHttpRequestHeaders(numHeaders int, endOfStream bool) types.Action {
	p := s.plugin
	p.inflight.Add(1)
	p.sizes.Record(uint64(numHeaders))
	headers, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		proxywasm.LogErrorf("conformance: headers: %v", err)
	}
	if len(headers) != numHeaders {
		proxywasm.LogErrorf("conformance: %d headers, host said %d", len(headers), numHeaders)
	}
	_ = proxywasm.AddHttpRequestHeader("x-conformance-seen", strconv.Itoa(numHeaders))
	if v, _ := proxywasm.GetHttpRequestHeader("x-conformance-local"); v == "1" {
		_ = proxywasm.SendHttpResponse(418, [][2]string{{"x-conformance", "local"}}, []byte("teapot\n"), -1)
		return types.ActionPause
	}
	s.op, _ = proxywasm.GetHttpRequestHeader("x-conformance-op")
	switch s.op {
	case "local":
		_ = proxywasm.SendHttpResponse(418, [][2]string{{"x-local", "yes"}}, []byte("local reply"), -1)
		return types.ActionPause
	case "panic":
		panic("conformance: panic on demand")
	case "trap":
		// A panic on another goroutine cannot be recovered by the registry or
		// the bridge: the Go runtime dies and the VM traps, as it would on a
		// fatal error (stack exhaustion, out of memory). Envoy's
		// failure_policy then decides.
		go func() { panic("conformance: unrecoverable panic on demand") }()
		runtime.Gosched()
	case "pause":
		p.paused = append(p.paused, s.id)
		return types.ActionPause
	case "callout":
		return s.callout()
	case "shared-inc":
		n, retries := incrementShared()
		_ = proxywasm.ReplaceHttpRequestHeader("x-shared-value", strconv.FormatUint(n, 10))
		_ = proxywasm.ReplaceHttpRequestHeader("x-shared-retries", strconv.Itoa(retries))
	case "property":
		name, _ := proxywasm.GetHttpRequestHeader("x-conformance-property")
		v, err := proxywasm.GetProperty(strings.Split(name, "."))
		if err != nil {
			_ = proxywasm.ReplaceHttpRequestHeader("x-property-error", err.Error())
		} else {
			_ = proxywasm.ReplaceHttpRequestHeader("x-property-value", string(v))
		}
		_ = proxywasm.SetProperty([]string{"conformance", "seen"}, []byte("yes"))
	case "queue":
		v, _ := proxywasm.GetHttpRequestHeader("x-queue-item")
		if err := proxywasm.EnqueueSharedQueue(p.queueID, []byte(v)); err != nil {
			proxywasm.LogErrorf("conformance: enqueue: %v", err)
		}
	case "foreign":
		ret, err := proxywasm.CallForeignFunction("echo", []byte("ping"))
		if err != nil {
			_ = proxywasm.ReplaceHttpRequestHeader("x-foreign-error", err.Error())
		} else {
			_ = proxywasm.ReplaceHttpRequestHeader("x-foreign", string(ret))
		}
	case "headers":
		_ = proxywasm.RemoveHttpRequestHeader("x-remove-me")
		_ = proxywasm.ReplaceHttpRequestHeader("x-replace-me", "replaced")
		headers, _ := proxywasm.GetHttpRequestHeaders()
		headers = append(headers, [2]string{"x-pairs", strconv.Itoa(len(headers))})
		_ = proxywasm.ReplaceHttpRequestHeaders(headers)
	case "alloc":
		// Many short-lived allocations: linear memory must stay flat.
		var sum int
		for i := 0; i < 64; i++ {
			sum += len(strings.Repeat("x", 1024+i))
		}
		_ = proxywasm.ReplaceHttpRequestHeader("x-alloc", strconv.Itoa(sum))
	}
	return types.ActionContinue
}

func (s *stream) callout() types.Action {
	cluster, _ := proxywasm.GetHttpRequestHeader("x-callout-cluster")
	if cluster == "" {
		cluster = "callout"
	}
	_, err := proxywasm.DispatchHttpCall(cluster, [][2]string{
		{":method", "POST"}, {":path", "/check"}, {":authority", "callout"},
	}, []byte("request-body"), [][2]string{{"x-trailer", "t"}}, 500, s.onCalloutResponse)
	if err != nil {
		_ = proxywasm.ReplaceHttpRequestHeader("x-callout-error", err.Error())
		return types.ActionContinue
	}
	return types.ActionPause
}

func (s *stream) onCalloutResponse(numHeaders, bodySize, numTrailers int) {
	status := "none"
	if headers, err := proxywasm.GetHttpCallResponseHeaders(); err == nil {
		for _, h := range headers {
			if h[0] == ":status" {
				status = h[1]
			}
		}
	}
	body, _ := proxywasm.GetHttpCallResponseBody(0, bodySize)
	trailers, _ := proxywasm.GetHttpCallResponseTrailers()
	_ = proxywasm.ReplaceHttpRequestHeader("x-callout-status", status)
	_ = proxywasm.ReplaceHttpRequestHeader("x-callout-body", string(body))
	_ = proxywasm.ReplaceHttpRequestHeader("x-callout-trailers", strconv.Itoa(len(trailers)))
	_ = proxywasm.ReplaceHttpRequestHeader("x-callout-headers", strconv.Itoa(numHeaders))
	_ = proxywasm.ResumeHttpRequest()
}

// incrementShared adds one to a counter shared by every VM of the module,
// retrying on CAS conflicts the way the rate limiter does.
func incrementShared() (value uint64, retries int) {
	for {
		data, cas, err := proxywasm.GetSharedData(sharedKey)
		var n uint64
		if err == nil && len(data) == 8 {
			n = binary.LittleEndian.Uint64(data)
		}
		var buf [8]byte
		binary.LittleEndian.PutUint64(buf[:], n+1)
		err = proxywasm.SetSharedData(sharedKey, buf[:], cas)
		if err == nil {
			return n + 1, retries
		}
		if !errors.Is(err, types.ErrorStatusCasMismatch) {
			proxywasm.LogErrorf("conformance: shared data: %v", err)
			return 0, retries
		}
		retries++
	}
}

func (s *stream) OnHttpRequestBody(bodySize int, endOfStream bool) types.Action {
	if s.op != "body-upper" {
		return types.ActionContinue
	}
	if !endOfStream {
		return types.ActionPause // buffer until the whole body is here
	}
	body, err := proxywasm.GetHttpRequestBody(0, bodySize)
	if err != nil {
		proxywasm.LogErrorf("conformance: body: %v", err)
		return types.ActionContinue
	}
	_ = proxywasm.ReplaceHttpRequestBody(bytes.ToUpper(body))
	return types.ActionContinue
}

func (s *stream) OnHttpRequestTrailers(int) types.Action {
	if s.op == "trailers" {
		_ = proxywasm.AddHttpRequestTrailer("x-added-trailer", "yes")
		_ = proxywasm.RemoveHttpRequestTrailer("x-drop-trailer")
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	_ = proxywasm.AddHttpResponseHeader("x-conformance", "ok")
	if s.op == "trailers" {
		_ = proxywasm.ReplaceHttpResponseHeader("x-op", s.op)
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseBody(bodySize int, endOfStream bool) types.Action {
	if s.op == "resp-body-append" && endOfStream {
		_ = proxywasm.AppendHttpResponseBody([]byte("+appended"))
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseTrailers(int) types.Action {
	if s.op == "trailers" {
		_ = proxywasm.ReplaceHttpResponseTrailer("x-response-trailer", "seen")
	}
	return types.ActionContinue
}

func (s *stream) OnHttpStreamDone() {
	s.plugin.inflight.Add(-1)
	s.plugin.requests.Increment(1)
}

type tcpPlugin struct {
	types.DefaultPluginContext
	connections proxywasm.MetricCounter
	closes      proxywasm.MetricCounter
	done        proxywasm.MetricCounter
}

func (p *tcpPlugin) OnPluginStart(int) types.OnPluginStartStatus {
	p.connections = proxywasm.DefineCounterMetric("conformance_tcp.connections")
	p.closes = proxywasm.DefineCounterMetric("conformance_tcp.closes")
	p.done = proxywasm.DefineCounterMetric("conformance_tcp.done")
	return types.OnPluginStartStatusOK
}

// NewHttpContext returns nil: the SDK then offers the context as TCP.
func (p *tcpPlugin) NewHttpContext(uint32) types.HttpContext { return nil }

func (p *tcpPlugin) NewTcpContext(uint32) types.TcpContext { return &conn{plugin: p} }

type conn struct {
	types.DefaultTcpContext
	plugin *tcpPlugin
}

func (c *conn) OnNewConnection() types.Action {
	c.plugin.connections.Increment(1)
	return types.ActionContinue
}

func (c *conn) OnDownstreamData(size int, endOfStream bool) types.Action {
	data, err := proxywasm.GetDownstreamData(0, size)
	if err != nil {
		proxywasm.LogErrorf("conformance-tcp: downstream data: %v", err)
		return types.ActionContinue
	}
	if string(data) == "panic" {
		panic("conformance-tcp: panic on demand")
	}
	if err := proxywasm.ReplaceDownstreamData(bytes.ToUpper(data)); err != nil {
		proxywasm.LogErrorf("conformance-tcp: replace: %v", err)
	}
	return types.ActionContinue
}

func (c *conn) OnUpstreamData(size int, endOfStream bool) types.Action {
	if err := proxywasm.AppendUpstreamData([]byte("!")); err != nil {
		proxywasm.LogErrorf("conformance-tcp: append: %v", err)
	}
	return types.ActionContinue
}

func (c *conn) OnDownstreamClose(types.PeerType) { c.plugin.closes.Increment(1) }

func (c *conn) OnUpstreamClose(types.PeerType) { c.plugin.closes.Increment(1) }

func (c *conn) OnStreamDone() { c.plugin.done.Increment(1) }
