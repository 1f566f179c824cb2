package hostview

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshwasm/meshwasm/internal/casstore"
)

type probe struct {
	types.DefaultHttpContext
	got map[string]string
}

func (p *probe) OnHttpRequestHeaders(int, bool) types.Action {
	var r Request
	p.got["method"] = r.Method()
	p.got["path"] = r.Path()
	p.got["source"] = r.SourceAddress()
	p.got["principal"] = r.Principal()
	v, ok := r.Header("x-user-id")
	if ok {
		p.got["x-user-id"] = v
	}
	if _, ok := r.Header("x-missing"); !ok {
		p.got["missing"] = "absent"
	}
	return types.ActionContinue
}

type vm struct {
	types.DefaultVMContext
	p *probe
}

func (v *vm) NewPluginContext(uint32) types.PluginContext { return &plugin{p: v.p} }

type plugin struct {
	types.DefaultPluginContext
	p *probe
}

func (pl *plugin) NewHttpContext(uint32) types.HttpContext { return pl.p }

func TestRequest(t *testing.T) {
	p := &probe{got: map[string]string{}}
	host, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption().
		WithVMContext(&vm{p: p}).
		WithProperty([]string{"source", "address"}, []byte("10.1.2.3:4567")).
		WithProperty([]string{"connection", "uri_san_peer_certificate"}, []byte("spiffe://cluster.local/ns/orders/sa/order-service")))
	defer reset()
	require.Equal(t, types.OnPluginStartStatusOK, host.StartPlugin())
	id := host.InitializeHttpContext()
	host.CallOnRequestHeaders(id, [][2]string{{":method", "POST"}, {":path", "/api?x=1"}, {"x-user-id", "42"}}, true)
	require.Equal(t, map[string]string{
		"method":    "POST",
		"path":      "/api?x=1",
		"source":    "10.1.2.3:4567",
		"principal": "cluster.local/ns/orders/sa/order-service",
		"x-user-id": "42",
		"missing":   "absent",
	}, p.got)
}

func TestSharedData(t *testing.T) {
	_, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption())
	defer reset()
	var s SharedData

	_, _, found, err := s.Get("k")
	require.NoError(t, err)
	require.False(t, found)

	require.NoError(t, s.Set("k", []byte("v1"), 0))
	v, cas, found, err := s.Get("k")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "v1", string(v))

	require.NoError(t, s.Set("k", []byte("v2"), cas))
	require.ErrorIs(t, s.Set("k", []byte("v3"), cas), casstore.ErrCASMismatch, "stale CAS must be refused")
}

type replaceProbe struct {
	types.DefaultHttpContext
	before, after, other string
	err                  error
}

func (p *replaceProbe) OnHttpRequestHeaders(int, bool) types.Action {
	var r Request
	p.before, _ = r.Header("x-route-version")
	p.err = r.ReplaceHeader("x-route-version", "v2")
	p.after, _ = r.Header("x-route-version")
	p.other, _ = r.Header("x-user-id")
	return types.ActionContinue
}

type replaceVM struct {
	types.DefaultVMContext
	p *replaceProbe
}

func (v *replaceVM) NewPluginContext(uint32) types.PluginContext {
	return &replacePlugin{p: v.p}
}

type replacePlugin struct {
	types.DefaultPluginContext
	p *replaceProbe
}

func (pl *replacePlugin) NewHttpContext(uint32) types.HttpContext { return pl.p }

func TestRequest_ReplaceHeader(t *testing.T) {
	p := &replaceProbe{}
	host, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption().WithVMContext(&replaceVM{p: p}))
	defer reset()
	require.Equal(t, types.OnPluginStartStatusOK, host.StartPlugin())
	id := host.InitializeHttpContext()
	host.CallOnRequestHeaders(id, [][2]string{{":path", "/"}, {"x-route-version", "v1"}, {"x-user-id", "7"}, {"x-route-version", "v9"}}, true)
	require.NoError(t, p.err)
	require.Equal(t, "v1,v9", p.before)
	require.Equal(t, "v2", p.after, "the view follows the filter's own change")
	require.Equal(t, "7", p.other)
	require.Contains(t, host.GetCurrentRequestHeaders(id), [2]string{"x-route-version", "v2"}, "and so does the host")
}

func TestHeaders_ReplaceBeforeLoadLeavesViewToHost(t *testing.T) {
	var h Headers
	h.replace("x", "1")
	require.False(t, h.loaded)
	require.Nil(t, h.pairs)
}

type statusProbe struct {
	types.DefaultHttpContext
	req           Request
	first, second int
}

func (p *statusProbe) OnHttpResponseHeaders(int, bool) types.Action {
	p.first = p.req.ResponseStatus()
	// A later read in the same request is answered from the view: the host
	// is asked once, however many filters of a pipeline want the status.
	_ = proxywasm.ReplaceHttpResponseHeader(":status", "503")
	p.second = p.req.ResponseStatus()
	return types.ActionContinue
}

type statusPlugin struct {
	types.DefaultPluginContext
	p *statusProbe
}

func (pl *statusPlugin) NewHttpContext(uint32) types.HttpContext { return pl.p }

type statusVM struct {
	types.DefaultVMContext
	p *statusProbe
}

func (v *statusVM) NewPluginContext(uint32) types.PluginContext { return &statusPlugin{p: v.p} }

func TestRequest_ResponseStatus(t *testing.T) {
	for _, tc := range []struct {
		status string
		want   int
	}{{"200", 200}, {"404", 404}, {"abc", 0}, {"-1", 0}} {
		p := &statusProbe{}
		host, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption().WithVMContext(&statusVM{p: p}))
		require.Equal(t, types.OnPluginStartStatusOK, host.StartPlugin())
		id := host.InitializeHttpContext()
		host.CallOnResponseHeaders(id, [][2]string{{":status", tc.status}}, true)
		require.Equal(t, tc.want, p.first, tc.status)
		require.Equal(t, tc.want, p.second, tc.status)
		reset()
	}
}

// Every filter of a request reads one clock reading.
func TestRequest_Now(t *testing.T) {
	var r Request
	first := r.Now()
	require.False(t, first.IsZero())
	time.Sleep(2 * time.Millisecond)
	require.Equal(t, first, r.Now())
}
