package hostview

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

type sanProbe struct {
	types.DefaultHttpContext
	san, principal string
}

func (p *sanProbe) OnHttpRequestHeaders(int, bool) types.Action {
	var r Request
	p.san, p.principal = r.PeerURISAN(), r.Principal()
	return types.ActionContinue
}

type sanVM struct {
	types.DefaultVMContext
	p *sanProbe
}

func (v *sanVM) NewPluginContext(uint32) types.PluginContext { return &sanPlugin{p: v.p} }

type sanPlugin struct {
	types.DefaultPluginContext
	p *sanProbe
}

func (pl *sanPlugin) NewHttpContext(uint32) types.HttpContext { return pl.p }

func TestRequest_PeerURISAN(t *testing.T) {
	tests := []struct {
		name          string
		san           string // "" leaves the property unset (plain text)
		wantSAN, want string
	}{
		{name: "spiffe id keeps its scheme", san: "spiffe://cluster.local/ns/qa/sa/tester",
			wantSAN: "spiffe://cluster.local/ns/qa/sa/tester", want: "cluster.local/ns/qa/sa/tester"},
		{name: "plain text", san: "", wantSAN: "", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &sanProbe{}
			opt := proxytest.NewEmulatorOption().WithVMContext(&sanVM{p: p})
			if tc.san != "" {
				opt = opt.WithProperty([]string{"connection", "uri_san_peer_certificate"}, []byte(tc.san))
			}
			host, reset := proxytest.NewHostEmulator(opt)
			defer reset()
			require.Equal(t, types.OnPluginStartStatusOK, host.StartPlugin())
			host.CallOnRequestHeaders(host.InitializeHttpContext(), nil, true)
			require.Equal(t, tc.wantSAN, p.san)
			require.Equal(t, tc.want, p.principal)
		})
	}
}
