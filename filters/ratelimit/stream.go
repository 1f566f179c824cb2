package ratelimit

import (
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshwasm/meshwasm/filters/internal/hostview"
	"github.com/meshwasm/meshwasm/filters/internal/registry"
	core "github.com/meshwasm/meshwasm/ratelimit"
)

// maxReplyBody bounds what is read of the ratelimit service's reply. Real
// replies are a few hundred bytes; a longer one is truncated, fails to parse
// and follows global.failureMode.
const maxReplyBody = 64 << 10

// stream is one HTTP request.
type stream struct {
	types.DefaultHttpContext
	plugin *plugin
	id     uint32
	req    *hostview.Request
	// resume continues the request after a global reply or a delay.
	resume func()
	// respHeaders are the RateLimit headers for an admitted request when
	// response.headersOnAllowed is set; nil otherwise (and on denials, whose
	// local reply already carries them).
	respHeaders [][2]string
	// shaped is set while the stream may sit in the shaping queue.
	shaped bool
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	d := s.plugin.limiter.CheckAt(s.req, s.req.Now())
	if d.Verdict == core.Call {
		return s.dispatch(d.Call)
	}
	return s.apply(d, false)
}

// apply carries out a final decision. resume is true when the request is
// already paused (after a callout): an admission must then continue it.
func (s *stream) apply(d core.Decision, resume bool) types.Action {
	l := s.plugin.limiter
	switch d.Verdict {
	case core.Allow:
		s.respHeaders = l.Headers(&d)
		if resume {
			s.resume()
		}
		return types.ActionContinue
	case core.Delay:
		if s.plugin.queue == nil {
			// Cannot happen: Delay needs a shaping rule, which sets up the
			// queue. Refuse rather than admit early.
			proxywasm.LogCritical("ratelimit: delay without a shaping queue")
			return s.deny(core.Decision{Verdict: core.Deny, Rule: d.Rule, RetryAfter: 1})
		}
		s.respHeaders = l.Headers(&d)
		s.shaped = true
		s.plugin.queue.Add(s.id, s.req.Now().Add(d.Delay))
		s.plugin.waiting[s.id] = s.resume
		return types.ActionPause
	}
	return s.deny(d)
}

// deny sends the 429. The action is Pause: the local reply ends the stream.
func (s *stream) deny(d core.Decision) types.Action {
	status, headers, body := s.plugin.limiter.DenyResponse(&d)
	if err := proxywasm.SendHttpResponse(status, headers, body, -1); err != nil {
		proxywasm.LogErrorf("ratelimit: send 429: %v", err)
	}
	return types.ActionPause
}

// dispatch asks the global rate limit service and pauses the request until it
// answers. A call the host refuses (unknown cluster...) completes at once
// with status 0, which follows global.failureMode.
func (s *stream) dispatch(call *core.GlobalCall) types.Action {
	timeout := uint32(max(call.Timeout/time.Millisecond, 1))
	_, err := proxywasm.DispatchHttpCall(call.Cluster, call.Headers, call.Body, nil, timeout,
		registry.Callback(Name, s.resume, func(numHeaders, bodySize, _ int) { s.onReply(call, numHeaders, bodySize) }))
	if err != nil {
		proxywasm.LogErrorf("ratelimit: dispatch to %s: %v", call.Cluster, err)
		return s.apply(s.plugin.limiter.Complete(call, 0, nil), false)
	}
	return types.ActionPause
}

// onReply runs with the stream as effective context (the SDK sets it). A
// failed, timed-out or unreadable reply completes with status 0, which
// follows global.failureMode.
func (s *stream) onReply(call *core.GlobalCall, numHeaders, bodySize int) {
	reply, _ := hostview.ReadReply(numHeaders, bodySize, maxReplyBody)
	s.apply(s.plugin.limiter.Complete(call, reply.Status, reply.Body), true)
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	for _, h := range s.respHeaders {
		if err := proxywasm.AddHttpResponseHeader(h[0], h[1]); err != nil {
			proxywasm.LogWarnf("ratelimit: add response header %s: %v", h[0], err)
		}
	}
	return types.ActionContinue
}

// OnHttpStreamDone drops a shaped request whose client went away before its
// turn: its slot stays charged (as in nginx), but it is never resumed.
func (s *stream) OnHttpStreamDone() {
	if !s.shaped {
		return
	}
	delete(s.plugin.waiting, s.id)
	if s.plugin.queue.Remove(s.id) {
		s.plugin.abandoned.Increment(1)
	}
}
