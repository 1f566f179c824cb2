package registry

import (
	"fmt"
	"runtime/debug"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// PanicMetric is the counter of recovered panics for filter name.
func PanicMetric(name string) string { return "meshwasm." + name + ".panics" }

type panicCounter struct {
	name    string
	counter *proxywasm.MetricCounter
}

// counters holds one panic counter per filter for the VM: the plugin
// contexts and the callout guards of a filter count into the same metric.
var counters = map[string]*panicCounter{}

func counterFor(name string) *panicCounter {
	c, ok := counters[name]
	if !ok {
		c = &panicCounter{name: name}
		counters[name] = c
	}
	return c
}

// Callback contains panics in a callout callback of the named filter, which
// the SDK calls outside any callback the registry wraps. When the callout was
// made for a request the filter paused (resume is not nil), a panic answers
// that request with the filter's DenyStatus, or resumes it when the filter
// fails open: a request never stays paused because its filter crashed.
func Callback(name string, resume func(), cb func(numHeaders, bodySize, numTrailers int)) func(int, int, int) {
	return func(numHeaders, bodySize, numTrailers int) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			counterFor(name).report("callout callback", r)
			if resume == nil {
				return
			}
			f, _ := lookupName(name)
			if f.DenyStatus != 0 {
				sendDeny(f.DenyStatus)
				return
			}
			resume()
		}()
		cb(numHeaders, bodySize, numTrailers)
	}
}

func sendDeny(status uint32) {
	_ = proxywasm.SendHttpResponse(status, [][2]string{{"content-type", "text/plain"}}, []byte(fmt.Sprintf("%d\n", status)), -1)
}

func (c *panicCounter) report(callback string, r any) {
	defer func() { _ = recover() }() // reporting must never re-panic
	proxywasm.LogCriticalf("meshwasm: %s: recovered panic in %s: %v\n%s", c.name, callback, r, debug.Stack())
	if c.counter == nil {
		m := proxywasm.DefineCounterMetric(PanicMetric(c.name))
		c.counter = &m
	}
	c.counter.Increment(1)
}

// httpContext contains panics in one stream's filter code. After a panic the
// filter's state for the stream is suspect, so later callbacks for the stream
// skip the filter.
type httpContext struct {
	plugin *pluginContext
	inner  types.HttpContext
	failed bool
}

// failRequest applies the filter's declared safe outcome to a request that
// the filter could not judge.
func (h *httpContext) failRequest() types.Action { return h.plugin.failRequest() }

func (p *pluginContext) failRequest() types.Action {
	if status := p.filter.DenyStatus; status != 0 {
		sendDeny(status)
		return types.ActionPause
	}
	return types.ActionContinue
}

func (h *httpContext) recoverRequest(callback string, action *types.Action) {
	if r := recover(); r != nil {
		h.failed = true
		h.plugin.panics.report(callback, r)
		*action = h.failRequest()
	}
}

func (h *httpContext) recoverResponse(callback string, action *types.Action) {
	if r := recover(); r != nil {
		h.failed = true
		h.plugin.panics.report(callback, r)
		*action = types.ActionContinue
	}
}

func (h *httpContext) OnHttpRequestHeaders(numHeaders int, endOfStream bool) (action types.Action) {
	if h.failed {
		return h.failRequest()
	}
	defer h.recoverRequest("OnHttpRequestHeaders", &action)
	return h.inner.OnHttpRequestHeaders(numHeaders, endOfStream)
}

func (h *httpContext) OnHttpRequestBody(bodySize int, endOfStream bool) (action types.Action) {
	if h.failed {
		return types.ActionContinue // the request was already answered or passed
	}
	defer h.recoverRequest("OnHttpRequestBody", &action)
	return h.inner.OnHttpRequestBody(bodySize, endOfStream)
}

func (h *httpContext) OnHttpRequestTrailers(numTrailers int) (action types.Action) {
	if h.failed {
		return types.ActionContinue
	}
	defer h.recoverRequest("OnHttpRequestTrailers", &action)
	return h.inner.OnHttpRequestTrailers(numTrailers)
}

func (h *httpContext) OnHttpResponseHeaders(numHeaders int, endOfStream bool) (action types.Action) {
	if h.failed {
		return types.ActionContinue
	}
	defer h.recoverResponse("OnHttpResponseHeaders", &action)
	return h.inner.OnHttpResponseHeaders(numHeaders, endOfStream)
}

func (h *httpContext) OnHttpResponseBody(bodySize int, endOfStream bool) (action types.Action) {
	if h.failed {
		return types.ActionContinue
	}
	defer h.recoverResponse("OnHttpResponseBody", &action)
	return h.inner.OnHttpResponseBody(bodySize, endOfStream)
}

func (h *httpContext) OnHttpResponseTrailers(numTrailers int) (action types.Action) {
	if h.failed {
		return types.ActionContinue
	}
	defer h.recoverResponse("OnHttpResponseTrailers", &action)
	return h.inner.OnHttpResponseTrailers(numTrailers)
}

func (h *httpContext) OnHttpStreamDone() {
	if h.failed {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			h.plugin.panics.report("OnHttpStreamDone", r)
		}
	}()
	h.inner.OnHttpStreamDone()
}
