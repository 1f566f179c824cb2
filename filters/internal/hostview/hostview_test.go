package hostview

import (
	"testing"

	"github.com/stretchr/testify/require"
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
