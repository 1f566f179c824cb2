package wasmhost

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// Connection is one TCP connection through a plugin used as a network filter.
type Connection struct {
	plugin *Plugin
	ctx    *contextState

	// Downstream and Upstream hold the data of the current callback, as the
	// module may read and rewrite it.
	Downstream, Upstream []byte

	DownstreamResumed, UpstreamResumed int
	DownstreamClosed, UpstreamClosed   bool
	finished                           bool
}

// Peer types of the connection close callbacks.
const (
	PeerUnknown = 0
	PeerLocal   = 1
	PeerRemote  = 2
)

// NewConnection creates a context and runs proxy_on_new_connection.
func (p *Plugin) NewConnection() (*Connection, types.Action) {
	c := &Connection{plugin: p}
	c.ctx = &contextState{id: p.vm.newContextID(), plugin: p, conn: c}
	p.vm.contexts[c.ctx.id] = c.ctx
	defer p.vm.enter(c.ctx)()
	p.vm.call("proxy_on_context_create", uint64(c.ctx.id), uint64(p.ctx.id))
	return c, types.Action(p.vm.call("proxy_on_new_connection", uint64(c.ctx.id)))
}

func (c *Connection) callback(name string, args ...uint64) types.Action {
	vm := c.plugin.vm
	defer vm.enter(c.ctx)()
	return types.Action(vm.call(name, append([]uint64{uint64(c.ctx.id)}, args...)...))
}

// SendDownstreamData delivers bytes from the client.
func (c *Connection) SendDownstreamData(data []byte, endOfStream bool) types.Action {
	c.Downstream = append([]byte(nil), data...)
	return c.callback("proxy_on_downstream_data", uint64(len(data)), b2u(endOfStream))
}

// SendUpstreamData delivers bytes from the upstream.
func (c *Connection) SendUpstreamData(data []byte, endOfStream bool) types.Action {
	c.Upstream = append([]byte(nil), data...)
	return c.callback("proxy_on_upstream_data", uint64(len(data)), b2u(endOfStream))
}

// CloseDownstream reports the client side closing.
func (c *Connection) CloseDownstream(peer uint32) {
	c.callback("proxy_on_downstream_connection_close", uint64(peer))
}

// CloseUpstream reports the upstream side closing.
func (c *Connection) CloseUpstream(peer uint32) {
	c.callback("proxy_on_upstream_connection_close", uint64(peer))
}

// Finish ends the connection as Envoy does: proxy_on_done, proxy_on_log,
// proxy_on_delete.
func (c *Connection) Finish() {
	if c.finished {
		return
	}
	c.finished = true
	c.callback("proxy_on_done")
	c.callback("proxy_on_log")
	c.callback("proxy_on_delete")
	delete(c.plugin.vm.contexts, c.ctx.id)
}
