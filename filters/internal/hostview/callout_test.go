package hostview

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

type calloutProbe struct {
	types.DefaultHttpContext
	maxBody int
	reply   Reply
	ok      bool
	called  bool
}

func (c *calloutProbe) OnHttpRequestHeaders(int, bool) types.Action {
	_, err := proxywasm.DispatchHttpCall("svc", [][2]string{{":method", "GET"}, {":path", "/"}, {":authority", "svc"}}, nil, nil, 100,
		func(numHeaders, bodySize, _ int) {
			c.called = true
			c.reply, c.ok = ReadReply(numHeaders, bodySize, c.maxBody)
		})
	if err != nil {
		panic(err)
	}
	return types.ActionPause
}

type calloutVM struct {
	types.DefaultVMContext
	c *calloutProbe
}

func (v *calloutVM) NewPluginContext(uint32) types.PluginContext { return &calloutPlugin{c: v.c} }

type calloutPlugin struct {
	types.DefaultPluginContext
	c *calloutProbe
}

func (p *calloutPlugin) NewHttpContext(uint32) types.HttpContext { return p.c }

func TestReadReply(t *testing.T) {
	tests := []struct {
		name     string
		headers  [][2]string
		body     string
		maxBody  int
		wantOK   bool
		wantCode int
		wantBody string
	}{
		{name: "ok", headers: [][2]string{{":status", "200"}, {"x", "1"}}, body: "hello", maxBody: 100, wantOK: true, wantCode: 200, wantBody: "hello"},
		{name: "body cut", headers: [][2]string{{":status", "429"}}, body: "hello", maxBody: 2, wantOK: true, wantCode: 429, wantBody: "he"},
		{name: "body ignored", headers: [][2]string{{":status", "204"}}, body: "hello", maxBody: 0, wantOK: true, wantCode: 204},
		{name: "failed call", headers: nil, wantOK: false},
		{name: "no status", headers: [][2]string{{"x", "1"}}, wantOK: false},
		{name: "garbage status", headers: [][2]string{{":status", "abc"}}, wantOK: false},
		{name: "status out of range", headers: [][2]string{{":status", "999"}}, wantOK: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &calloutProbe{maxBody: tc.maxBody}
			host, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption().WithVMContext(&calloutVM{c: c}))
			defer reset()
			require.Equal(t, types.OnPluginStartStatusOK, host.StartPlugin())
			id := host.InitializeHttpContext()
			host.CallOnRequestHeaders(id, nil, true)
			attrs := host.GetCalloutAttributesFromContext(id)
			require.Len(t, attrs, 1)
			host.CallOnHttpCallResponse(attrs[0].CalloutID, tc.headers, nil, []byte(tc.body))
			require.True(t, c.called)
			require.Equal(t, tc.wantOK, c.ok)
			if tc.wantOK {
				require.Equal(t, tc.wantCode, c.reply.Status)
				require.Equal(t, tc.wantBody, string(c.reply.Body))
				require.Equal(t, tc.headers, c.reply.Headers)
			}
		})
	}
}
