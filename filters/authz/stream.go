package authz

import (
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	core "github.com/meshwasm/meshwasm/authz"
	"github.com/meshwasm/meshwasm/filters/internal/hostview"
	"github.com/meshwasm/meshwasm/filters/internal/registry"
)

// stream is one HTTP request. It owns the Decision the engine fills: the
// engine reuses its slices, and a CallCustom decision must survive until the
// callout's reply.
type stream struct {
	types.DefaultHttpContext
	plugin *plugin
	// view answers every value of a repeated header (hostview.Headers):
	// policies must see "admin,guest", not the first value alone. One host
	// call reads all headers, pseudo-headers included.
	view *hostview.Request
	// resume continues the request after a callout's allow.
	resume func()
	req    core.Request
	d      core.Decision
	// allowed is set once the request was let through: only then do the
	// decision's response headers go on the upstream response.
	allowed bool
}

func (s *stream) OnHttpRequestHeaders(int, bool) types.Action {
	s.fill()
	e := s.plugin.engine
	e.Check(&s.req, &s.d)
	if s.d.Verdict == core.CallCustom {
		return s.dispatch()
	}
	return s.apply(false)
}

// fill reads what the engine needs from the host. Identity comes only from
// connection properties, never from headers: the SAN is read only for an
// mTLS connection. A property no policy reads is not fetched (each is a host
// call and a call back into the module for the reply); the engine treats it
// as absent, which is what it is to those policies.
func (s *stream) fill() {
	v := s.view
	r := &s.req
	in := &s.plugin.reads
	r.Method = v.Method()
	r.Path = v.Path()
	r.Authority, _ = v.Header(":authority")
	r.Headers = v
	if in.Source {
		r.SourceAddress = v.SourceAddress()
	}
	if in.Destination {
		r.DestinationAddress, _ = v.Property("destination.address")
	}
	if in.Peer {
		mtls, _ := v.Property("connection.mtls")
		r.MTLS = len(mtls) == 1 && mtls[0] != 0
		if r.MTLS {
			r.PeerURISAN, _ = v.Property("connection.uri_san_peer_certificate")
		}
	}
	if in.SNI {
		r.SNI, _ = v.Property("connection.requested_server_name")
	}
}

// apply carries out a final decision. resume is true when the request is
// paused on a callout: an allow must then continue it.
func (s *stream) apply(resume bool) types.Action {
	d := &s.d
	s.plugin.record(d)
	if d.Verdict != core.Allow {
		return s.refuse(d.Status, d.Body, d.ResponseHeaders)
	}
	for _, name := range d.RemoveRequestHeaders {
		if err := s.view.RemoveHeader(name); err != nil {
			return s.headerError("remove", name, err)
		}
	}
	for _, h := range d.SetRequestHeaders {
		if err := s.view.ReplaceHeader(h.Name, h.Value); err != nil {
			return s.headerError("set", h.Name, err)
		}
	}
	s.allowed = true
	if resume {
		s.resume()
	}
	return types.ActionContinue
}

// headerError refuses a request whose header changes failed: a claim header
// the client sent could otherwise reach upstream.
func (s *stream) headerError(op, name string, err error) types.Action {
	s.plugin.headerErrors.Increment(1)
	proxywasm.LogErrorf("authz: %s request header %s: %v", op, name, err)
	return s.refuse(403, "RBAC: access denied", nil)
}

// refuse sends the local response; the stream ends with it.
func (s *stream) refuse(status int, body string, headers []core.Header) types.Action {
	hs := make([][2]string, 0, 1+len(headers))
	hs = append(hs, [2]string{"content-type", "text/plain"})
	for _, h := range headers {
		hs = append(hs, [2]string{h.Name, h.Value})
	}
	if err := proxywasm.SendHttpResponse(uint32(status), hs, []byte(body), -1); err != nil {
		proxywasm.LogErrorf("authz: send %d: %v", status, err)
	}
	return types.ActionPause
}

// dispatch asks the external authorization service and pauses the request
// until it answers. A call the host refuses (unknown cluster) is a failed
// check: failOpen decides.
func (s *stream) dispatch() types.Action {
	c := &s.d.Callout
	s.plugin.extCalls.Increment(1)
	timeout := uint32(max(c.Timeout/time.Millisecond, 1))
	if _, err := proxywasm.DispatchHttpCall(c.Cluster, c.Headers, nil, nil, timeout, registry.Callback(Name, s.resume, s.onReply)); err != nil {
		proxywasm.LogErrorf("authz: ext-authz %s: dispatch to cluster %q: %v", c.Provider, c.Cluster, err)
		s.plugin.engine.Resolve(&s.d, core.Reply{Failed: true})
		return s.apply(false)
	}
	return types.ActionPause
}

// onReply runs with the stream as effective context (the SDK sets it).
func (s *stream) onReply(numHeaders, bodySize, _ int) {
	reply := readReply(numHeaders, bodySize, maxExtBody)
	if st, ok := reply.Status(); ok && st >= 500 {
		// Envoy's ext_authz treats a 5xx from the service as a failed
		// check, and so must we: Envoy reports an unreachable cluster to a
		// callout as its own 503 reply, not as a failure. Passing it on
		// would bypass failOpen and statusOnError and show the client
		// Envoy's "upstream connect error" text.
		reply = core.Reply{Failed: true}
	}
	s.plugin.engine.Resolve(&s.d, reply)
	s.apply(true)
}

func (s *stream) OnHttpResponseHeaders(int, bool) types.Action {
	if !s.allowed {
		return types.ActionContinue
	}
	for _, h := range s.d.ResponseHeaders {
		if err := proxywasm.AddHttpResponseHeader(h.Name, h.Value); err != nil {
			proxywasm.LogWarnf("authz: add response header %s: %v", h.Name, err)
		}
	}
	return types.ActionContinue
}
