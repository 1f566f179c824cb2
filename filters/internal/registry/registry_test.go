package registry

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

func withFilters(t *testing.T, fs ...Filter) {
	t.Helper()
	saved := filters
	filters = nil
	// Each proxytest emulator is a fresh "VM": metric ids do not carry over.
	counters = map[string]*panicCounter{}
	t.Cleanup(func() { filters = saved })
	for _, f := range fs {
		Register(f)
	}
}

type panicky struct {
	types.DefaultPluginContext
	where string
}

func (p *panicky) OnPluginStart(int) types.OnPluginStartStatus {
	if p.where == "start" {
		panic("boom at start")
	}
	return types.OnPluginStartStatusOK
}

func (p *panicky) NewHttpContext(uint32) types.HttpContext { return &panickyStream{where: p.where} }

type panickyStream struct {
	types.DefaultHttpContext
	where string
}

func (s *panickyStream) OnHttpRequestHeaders(int, bool) types.Action {
	if s.where == "request" {
		panic("boom in request")
	}
	return types.ActionContinue
}

func (s *panickyStream) OnHttpResponseHeaders(int, bool) types.Action {
	if s.where == "response" {
		panic("boom in response")
	}
	return types.ActionContinue
}

func filter(name, where string, deny uint32) Filter {
	return Filter{
		Name:             name,
		NewPluginContext: func(uint32) types.PluginContext { return &panicky{where: where} },
		DenyStatus:       deny,
	}
}

func TestLookup(t *testing.T) {
	withFilters(t, filter("canary", "", 0), filter("authz", "", 403))
	f, err := Lookup("authz")
	require.NoError(t, err)
	require.Equal(t, "authz", f.Name)
	require.Equal(t, []string{"authz", "canary"}, Names())
	_, err = Lookup("typo")
	require.EqualError(t, err, `root id "typo" selects no filter in this module (want one of authz, canary)`)
}

func TestLookup_SingleFilterServesAnyRootID(t *testing.T) {
	withFilters(t, filter("authz", "", 403))
	f, err := Lookup("my-gateway-authz")
	require.NoError(t, err)
	require.Equal(t, "authz", f.Name)
}

func TestLookup_Empty(t *testing.T) {
	withFilters(t)
	_, err := Lookup("x")
	require.EqualError(t, err, "no filter registered in this module")
}

func TestRegister_Errors(t *testing.T) {
	withFilters(t, filter("authz", "", 0))
	require.PanicsWithValue(t, "registry: filter authz registered twice", func() { Register(filter("authz", "", 0)) })
	const want = "registry: filter needs a name and one of NewStage or NewPluginContext"
	require.PanicsWithValue(t, want, func() { Register(Filter{Name: "x"}) })
	require.PanicsWithValue(t, want, func() {
		Register(Filter{Name: "x", NewStage: func() Stage { return nil }, NewPluginContext: func(uint32) types.PluginContext { return nil }})
	})
}

func emulate(t *testing.T, rootID string) (proxytest.HostEmulator, types.OnPluginStartStatus) {
	t.Helper()
	host, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption().
		WithVMContext(VMContext()).
		WithProperty([]string{"plugin_root_id"}, []byte(rootID)))
	t.Cleanup(reset)
	return host, host.StartPlugin()
}

func TestDispatch_UnknownRootIDFailsStart(t *testing.T) {
	withFilters(t, filter("authz", "", 403), filter("canary", "", 0))
	host, status := emulate(t, "nope")
	require.Equal(t, types.OnPluginStartStatusFailed, status)
	require.Contains(t, host.GetCriticalLogs()[0], `root id "nope" selects no filter`)
}

func TestDispatch_PanicAtStartFailsStart(t *testing.T) {
	withFilters(t, filter("authz", "start", 403))
	host, status := emulate(t, "authz")
	require.Equal(t, types.OnPluginStartStatusFailed, status)
	require.Contains(t, host.GetCriticalLogs()[0], "recovered panic in OnPluginStart: boom at start")
}

func TestDispatch_RequestPanicAppliesDeclaredOutcome(t *testing.T) {
	tests := []struct {
		name       string
		deny       uint32
		wantAction types.Action
	}{
		{name: "fail closed", deny: 403, wantAction: types.ActionPause},
		{name: "fail open", deny: 0, wantAction: types.ActionContinue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			withFilters(t, filter("f", "request", tc.deny))
			host, status := emulate(t, "f")
			require.Equal(t, types.OnPluginStartStatusOK, status)
			id := host.InitializeHttpContext()
			require.Equal(t, tc.wantAction, host.CallOnRequestHeaders(id, nil, true))
			local := host.GetSentLocalResponse(id)
			if tc.deny != 0 {
				require.NotNil(t, local)
				require.Equal(t, tc.deny, local.StatusCode)
			} else {
				require.Nil(t, local)
			}
			require.Contains(t, host.GetCriticalLogs()[0], "recovered panic in OnHttpRequestHeaders: boom in request")
			v, err := host.GetCounterMetric(PanicMetric("f"))
			require.NoError(t, err)
			require.Equal(t, uint64(1), v)
			// The stream's filter state is suspect: later callbacks skip it.
			require.Equal(t, types.ActionContinue, host.CallOnResponseHeaders(id, nil, true))
		})
	}
}

func TestDispatch_ResponsePanicContinues(t *testing.T) {
	withFilters(t, filter("f", "response", 403))
	host, _ := emulate(t, "f")
	id := host.InitializeHttpContext()
	require.Equal(t, types.ActionContinue, host.CallOnRequestHeaders(id, nil, true))
	require.Equal(t, types.ActionContinue, host.CallOnResponseHeaders(id, nil, true))
	require.Nil(t, host.GetSentLocalResponse(id), "a response already on its way cannot be replaced")
	require.Len(t, host.GetCriticalLogs(), 1)
}

type calloutPlugin struct {
	types.DefaultPluginContext
	paused bool
}

func (p *calloutPlugin) NewHttpContext(uint32) types.HttpContext {
	return &calloutStream{paused: p.paused}
}

type calloutStream struct {
	types.DefaultHttpContext
	paused bool
}

func (s *calloutStream) resume() func() {
	if s.paused {
		return ResumeRequest
	}
	return nil
}

func (s *calloutStream) OnHttpRequestHeaders(int, bool) types.Action {
	_, err := proxywasm.DispatchHttpCall("svc", [][2]string{{":method", "GET"}, {":path", "/"}, {":authority", "svc"}}, nil, nil, 100,
		Callback("f", s.resume(), func(int, int, int) { panic("boom in callout") }))
	if err != nil {
		panic(err)
	}
	if s.paused {
		return types.ActionPause
	}
	return types.ActionContinue
}

func TestCallback_PanicAnswersPausedRequest(t *testing.T) {
	tests := []struct {
		name       string
		deny       uint32
		paused     bool
		wantStatus uint32 // 0: no local reply
		wantAction types.Action
	}{
		{name: "fail closed", deny: 403, paused: true, wantStatus: 403, wantAction: types.ActionPause},
		{name: "fail open resumes", deny: 0, paused: true, wantAction: types.ActionContinue},
		{name: "not paused", deny: 403, paused: false, wantAction: types.ActionContinue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			paused := tc.paused
			withFilters(t, Filter{Name: "f", DenyStatus: tc.deny,
				NewPluginContext: func(uint32) types.PluginContext { return &calloutPlugin{paused: paused} }})
			host, status := emulate(t, "f")
			require.Equal(t, types.OnPluginStartStatusOK, status)
			id := host.InitializeHttpContext()
			host.CallOnRequestHeaders(id, nil, true)
			attrs := host.GetCalloutAttributesFromContext(id)
			require.Len(t, attrs, 1)
			host.CallOnHttpCallResponse(attrs[0].CalloutID, nil, nil, nil)

			local := host.GetSentLocalResponse(id)
			if tc.wantStatus != 0 {
				require.NotNil(t, local)
				require.Equal(t, tc.wantStatus, local.StatusCode)
			} else {
				require.Nil(t, local)
			}
			require.Equal(t, tc.wantAction, host.GetCurrentHttpStreamAction(id))
			v, err := host.GetCounterMetric(PanicMetric("f"))
			require.NoError(t, err)
			require.Equal(t, uint64(1), v)
			require.Contains(t, host.GetCriticalLogs()[0], "recovered panic in callout callback: boom in callout")
		})
	}
}
