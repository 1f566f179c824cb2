package pipeline

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshwasm/meshwasm/filters/internal/hostview"
	"github.com/meshwasm/meshwasm/filters/internal/registry"
)

// The native tests run the pipeline with small fake stages on the SDK's
// emulator: the order of stages, pausing and resuming, answering, panics and
// ticks. build/suite.wasm runs it with the real filters (filters/cmd/suite).

// events records what the stages saw, in order.
var events []string

// fake is a stage that logs its callbacks and acts on request headers:
// x-<name>: answer (local reply 418), pause (a callout, resumed by its
// reply), panic, panic-response, panic-done.
type fake struct {
	name  string
	tick  time.Duration
	ticks int
}

func (f *fake) Start(config []byte) (time.Duration, error) {
	if string(config) == `{"bad": true}` {
		return 0, errBad
	}
	events = append(events, f.name+" start "+string(config))
	return f.tick, nil
}

type badConfig struct{}

func (badConfig) Error() string { return "configuration refused: bad: unknown key" }

var errBad = badConfig{}

func (f *fake) OnTick() { f.ticks++ }

func (f *fake) NewStream(_ uint32, view *hostview.Request, resume func()) types.HttpContext {
	return &fakeStream{f: f, view: view, resume: resume}
}

type fakeStream struct {
	types.DefaultHttpContext
	f      *fake
	view   *hostview.Request
	resume func()
	mode   string // the request's x-<name>
}

func (s *fakeStream) OnHttpRequestHeaders(int, bool) types.Action {
	events = append(events, s.f.name+" request")
	v, _ := s.view.Header("x-" + s.f.name)
	s.mode = v
	switch v {
	case "answer":
		_ = proxywasm.SendHttpResponse(418, nil, []byte(s.f.name), -1)
		return types.ActionPause
	case "pause":
		_, err := proxywasm.DispatchHttpCall("svc", [][2]string{{":method", "GET"}, {":path", "/"}, {":authority", "svc"}}, nil, nil, 100,
			registry.Callback(s.f.name, s.resume, func(int, int, int) {
				events = append(events, s.f.name+" reply")
				s.resume()
			}))
		if err != nil {
			panic(err)
		}
		return types.ActionPause
	case "panic":
		panic("boom in " + s.f.name)
	}
	_ = s.view.ReplaceHeader("x-seen-by-"+s.f.name, "1")
	return types.ActionContinue
}

func (s *fakeStream) OnHttpResponseHeaders(int, bool) types.Action {
	events = append(events, s.f.name+" response")
	if s.mode == "panic-response" {
		panic("boom in " + s.f.name + "'s response")
	}
	return types.ActionContinue
}

func (s *fakeStream) OnHttpStreamDone() {
	events = append(events, s.f.name+" done")
	if s.mode == "panic-done" {
		panic("boom at " + s.f.name + "'s end")
	}
}

var stages = map[string]*fake{}

func init() {
	for _, st := range []struct {
		name string
		deny uint32
		tick time.Duration
	}{{"first", 0, 0}, {"second", 403, time.Hour}, {"third", 0, time.Millisecond}} {
		f := &fake{name: st.name, tick: st.tick}
		stages[st.name] = f
		registry.Register(registry.Filter{Name: st.name, DenyStatus: st.deny, NewStage: func() registry.Stage { return f }})
	}
	registry.Register(Filter)
}

type vm struct{ types.DefaultVMContext }

func (vm) NewPluginContext(uint32) types.PluginContext { return Filter.PluginContext(0) }

func start(t *testing.T, config string) (proxytest.HostEmulator, types.OnPluginStartStatus) {
	t.Helper()
	events = nil
	host, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption().WithVMContext(&vm{}).WithPluginConfiguration([]byte(config)))
	t.Cleanup(reset)
	return host, host.StartPlugin()
}

const threeStages = `{"stages": [{"filter": "first", "config": {"a": 1}}, {"filter": "second"}, {"filter": "third", "config": {}}]}`

func TestPipeline_Stages(t *testing.T) {
	tests := []struct {
		name       string
		headers    [][2]string
		reply      bool // deliver the callout reply
		wantAction types.Action
		wantStatus uint32 // local reply, 0: none
		wantEvents []string
		wantSeen   []string // x-seen-by-* headers upstream
		wantPanics map[string]uint64
	}{
		{name: "every stage in order, responses in reverse",
			wantAction: types.ActionContinue,
			wantEvents: []string{"first request", "second request", "third request", "third response", "second response", "first response", "first done", "second done", "third done"},
			wantSeen:   []string{"first", "second", "third"}},
		{name: "an answer stops the later stages; every stage sees the reply",
			headers: [][2]string{{"x-second", "answer"}}, wantAction: types.ActionPause, wantStatus: 418,
			wantEvents: []string{"first request", "second request", "third response", "second response", "first response", "first done", "second done", "third done"},
			wantSeen:   []string{"first"}},
		{name: "a pause holds the later stages until the stage resumes",
			headers: [][2]string{{"x-first", "pause"}}, reply: true, wantAction: types.ActionContinue,
			wantEvents: []string{"first request", "first reply", "second request", "third request", "third response", "second response", "first response", "first done", "second done", "third done"},
			wantSeen:   []string{"second", "third"}},
		{name: "two stages pause in turn",
			headers: [][2]string{{"x-first", "pause"}, {"x-third", "pause"}}, reply: true, wantAction: types.ActionContinue,
			wantEvents: []string{"first request", "first reply", "second request", "third request", "third reply", "third response", "second response", "first response", "first done", "second done", "third done"},
			wantSeen:   []string{"second"}},
		{name: "a fail-open stage's panic skips it and the rest go on",
			headers: [][2]string{{"x-first", "panic"}}, wantAction: types.ActionContinue,
			wantEvents: []string{"first request", "second request", "third request", "third response", "second response", "second done", "third done"},
			wantSeen:   []string{"second", "third"}, wantPanics: map[string]uint64{"first": 1}},
		{name: "a fail-closed stage's panic answers with its status",
			headers: [][2]string{{"x-second", "panic"}}, wantAction: types.ActionPause, wantStatus: 403,
			wantEvents: []string{"first request", "second request", "third response", "first response", "first done", "third done"},
			wantSeen:   []string{"first"}, wantPanics: map[string]uint64{"second": 1}},
		{name: "two stages panic in one callback, each contained",
			headers: [][2]string{{"x-first", "panic"}, {"x-third", "panic"}}, wantAction: types.ActionContinue,
			wantEvents: []string{"first request", "second request", "third request", "second response", "second done"},
			wantSeen:   []string{"second"}, wantPanics: map[string]uint64{"first": 1, "third": 1}},
		{name: "a panic in the response skips the stage from then on; the others go on",
			headers: [][2]string{{"x-second", "panic-response"}}, wantAction: types.ActionContinue,
			wantEvents: []string{"first request", "second request", "third request", "third response", "second response", "first response", "first done", "third done"},
			wantSeen:   []string{"first", "second", "third"}, wantPanics: map[string]uint64{"second": 1}},
		{name: "panics at the end of the stream do not keep the other stages from theirs",
			headers: [][2]string{{"x-first", "panic-done"}, {"x-third", "panic-done"}}, wantAction: types.ActionContinue,
			wantEvents: []string{"first request", "second request", "third request", "third response", "second response", "first response", "first done", "second done", "third done"},
			wantSeen:   []string{"first", "second", "third"}, wantPanics: map[string]uint64{"first": 1, "third": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host, status := start(t, threeStages)
			require.Equal(t, types.OnPluginStartStatusOK, status)
			events = nil
			id := host.InitializeHttpContext()
			headers := append([][2]string{{":method", "GET"}, {":path", "/"}}, tc.headers...)
			action := host.CallOnRequestHeaders(id, headers, true)
			for tc.reply {
				attrs := host.GetCalloutAttributesFromContext(id)
				if len(attrs) == 0 {
					break
				}
				host.CallOnHttpCallResponse(attrs[len(attrs)-1].CalloutID, [][2]string{{":status", "200"}}, nil, nil)
				if len(host.GetCalloutAttributesFromContext(id)) == len(attrs) {
					break
				}
			}
			if tc.reply {
				action = host.GetCurrentHttpStreamAction(id)
			}
			require.Equal(t, tc.wantAction, action)
			local := host.GetSentLocalResponse(id)
			if tc.wantStatus == 0 {
				require.Nil(t, local)
			} else {
				require.NotNil(t, local)
				require.Equal(t, tc.wantStatus, local.StatusCode)
			}
			// Envoy passes a local reply through the response callbacks too.
			host.CallOnResponseHeaders(id, [][2]string{{":status", "200"}}, true)
			host.CompleteHttpContext(id)
			require.Equal(t, tc.wantEvents, events)
			var seen []string
			for _, h := range host.GetCurrentRequestHeaders(id) {
				if name, ok := strings.CutPrefix(h[0], "x-seen-by-"); ok {
					seen = append(seen, name)
				}
			}
			require.Equal(t, tc.wantSeen, seen)
			// Counted from the critical log lines: the panic counters are
			// the VM's, defined once, while each case has a new emulator.
			for name, want := range tc.wantPanics {
				var n uint64
				for _, l := range host.GetCriticalLogs() {
					if strings.HasPrefix(l, "meshwasm: "+name+": recovered panic in ") {
						n++
					}
				}
				require.Equal(t, want, n, "%s: %v", name, host.GetCriticalLogs())
			}
			if tc.wantPanics == nil {
				require.Empty(t, host.GetCriticalLogs())
			}
		})
	}
}

func TestPipeline_StartsEachStageWithItsConfig(t *testing.T) {
	host, status := start(t, threeStages)
	require.Equal(t, types.OnPluginStartStatusOK, status)
	require.Equal(t, []string{`first start {"a": 1}`, "second start ", "third start {}"}, events)
	require.Contains(t, strings.Join(host.GetInfoLogs(), "\n"), "pipeline: started: first -> second -> third")
}

func TestPipeline_ConfigRefused(t *testing.T) {
	tests := []struct{ name, config, want string }{
		{name: "empty", config: ``, want: "stages: required: at least one stage"},
		{name: "stages not an array", config: `{"stages": {}}`, want: "stages: must be an array"},
		{name: "stage not an object", config: `{"stages": [1]}`, want: "stages[0]: must be an object"},
		{name: "filter missing", config: `{"stages": [{"config": {}}]}`, want: "stages[0].filter: required"},
		{name: "unknown stage key", config: `{"stages": [{"filter": "first", "cfg": {}}]}`, want: "stages[0].cfg: unknown key"},
		{name: "the pipeline is not a stage", config: `{"stages": [{"filter": "pipeline"}]}`,
			want: `stages[0].filter: unknown filter "pipeline" (want one of first, second, third)`},
		{name: "stage error", config: `{"stages": [{"filter": "first"}, {"filter": "third", "config": {"bad": true}}]}`,
			want: "stages[1].config (third): configuration refused: bad: unknown key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host, status := start(t, tc.config)
			require.Equal(t, types.OnPluginStartStatusFailed, status)
			require.Equal(t, []string{"pipeline: configuration refused: " + tc.want}, host.GetCriticalLogs())
		})
	}
}

// TestPipeline_TicksEachStageAtItsPeriod: the plugin ticks at the shortest
// period any stage asked for, and each stage gets its own cadence.
func TestPipeline_TicksEachStageAtItsPeriod(t *testing.T) {
	host, status := start(t, threeStages)
	require.Equal(t, types.OnPluginStartStatusOK, status)
	require.Equal(t, uint32(1), host.GetTickPeriod())
	stages["second"].ticks, stages["third"].ticks = 0, 0
	host.Tick()
	time.Sleep(3 * time.Millisecond) // past the third stage's 1 ms period
	host.Tick()
	require.Equal(t, 1, stages["second"].ticks, "hourly: the first tick only")
	require.Equal(t, 2, stages["third"].ticks)
}
