package abi_test

import (
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/meshwasm/meshwasm/filters/internal/wasmhost"
)

// These tests run the compiled testdata/conformance module (built by
// `make build`) on the wazero host: they prove the bridge end to end, from
// the proxy-wasm ABI through the SDK's public API and back.

const logCritical = 5

func startConformance(t *testing.T, h *wasmhost.Host, config string) *wasmhost.Plugin {
	t.Helper()
	p := h.NewPlugin(wasmhost.VMOptions{VMConfig: []byte("vm-config")},
		wasmhost.PluginOptions{RootID: "conformance", Config: []byte(config)})
	require.True(t, p.Started(), "plugin start failed: %v", p.VM().Logs())
	return p
}

func request(op string, extra ...[2]string) [][2]string {
	hs := [][2]string{{":method", "GET"}, {":path", "/"}, {":authority", "example"}}
	if op != "" {
		hs = append(hs, [2]string{"x-conformance-op", op})
	}
	return append(hs, extra...)
}

func TestConformance_Exports(t *testing.T) {
	vm := wasmhost.Load(t, "conformance").NewVM(wasmhost.VMOptions{})
	want := []string{
		"_initialize", "proxy_abi_version_0_2_0", "proxy_on_memory_allocate",
		"proxy_on_context_create", "proxy_on_vm_start", "proxy_on_configure",
		"proxy_on_request_headers", "proxy_on_request_body", "proxy_on_request_trailers",
		"proxy_on_response_headers", "proxy_on_response_body", "proxy_on_response_trailers",
		"proxy_on_log", "proxy_on_done", "proxy_on_delete", "proxy_on_http_call_response",
		"proxy_on_tick", "proxy_on_queue_ready", "proxy_on_new_connection",
		"proxy_on_downstream_data", "proxy_on_downstream_connection_close",
		"proxy_on_upstream_data", "proxy_on_upstream_connection_close",
	}
	require.Subset(t, vm.Exports(), want)
	require.NotZero(t, vm.MemorySize(), "memory must be exported")
}

func TestConformance_StartReadsConfiguration(t *testing.T) {
	p := startConformance(t, wasmhost.Load(t, "conformance"), "hello")
	require.NotEmpty(t, p.VM().LogsContaining(2, `started with config "hello" vm config "vm-config"`))
	require.Equal(t, uint32(100), p.TickPeriod())
}

func TestConformance_BadConfigurationRefused(t *testing.T) {
	h := wasmhost.Load(t, "conformance")
	p := h.NewPlugin(wasmhost.VMOptions{}, wasmhost.PluginOptions{RootID: "conformance", Config: []byte("fail")})
	require.False(t, p.Started())
	require.NotEmpty(t, p.VM().LogsContaining(logCritical, "configuration refused: fail"))
}

func TestConformance_HeaderRoundTrip(t *testing.T) {
	p := startConformance(t, wasmhost.Load(t, "conformance"), "")
	s := p.NewStream()
	require.Equal(t, types.ActionContinue, s.SendRequestHeaders(request("headers",
		[2]string{"X-Remove-Me", "1"}, [2]string{"x-replace-me", "old"}, [2]string{"x-dup", "a"}, [2]string{"x-dup", "b"}), true))
	require.Equal(t, "8", s.RequestHeader("x-conformance-seen"), "host count of headers")
	require.False(t, s.HasRequestHeader("x-remove-me"))
	require.Equal(t, "replaced", s.RequestHeader("x-replace-me"))
	require.Equal(t, "a,b", s.RequestHeader("x-dup"), "duplicates read back joined")
	require.Equal(t, "8", s.RequestHeader("x-pairs"), "set_header_map_pairs replaced the whole map")

	require.Equal(t, types.ActionContinue, s.SendResponseHeaders([][2]string{{":status", "200"}}, false))
	require.Equal(t, "ok", s.ResponseHeader("x-conformance"))
	s.Finish()
	requests, _ := p.VM().Host().Metric("conformance.requests")
	require.Equal(t, uint64(1), requests)
}

func TestConformance_LocalResponse(t *testing.T) {
	p := startConformance(t, wasmhost.Load(t, "conformance"), "")
	s := p.NewStream()
	require.Equal(t, types.ActionPause, s.SendRequestHeaders(request("local"), true))
	require.NotNil(t, s.Local)
	require.Equal(t, uint32(418), s.Local.Status)
	require.Equal(t, "yes", s.Local.Header("x-local"))
	require.Equal(t, "local reply", string(s.Local.Body))
}

func TestConformance_Callout(t *testing.T) {
	p := startConformance(t, wasmhost.Load(t, "conformance"), "")
	s := p.NewStream()
	require.Equal(t, types.ActionPause, s.SendRequestHeaders(request("callout"), true))
	callouts := p.VM().Callouts()
	require.Len(t, callouts, 1)
	c := callouts[0]
	require.Equal(t, "callout", c.Cluster)
	require.Equal(t, "POST", c.Header(":method"))
	require.Equal(t, "request-body", string(c.Body))
	require.Equal(t, [][2]string{{"x-trailer", "t"}}, c.Trailers)
	require.Equal(t, uint32(500), c.Timeout)

	c.Respond(201, [][2]string{{"X-Reply", "1"}}, []byte("reply-body"), [][2]string{{"x-t", "1"}})
	require.Equal(t, 1, s.RequestResumed)
	require.Equal(t, "201", s.RequestHeader("x-callout-status"))
	require.Equal(t, "reply-body", s.RequestHeader("x-callout-body"))
	require.Equal(t, "1", s.RequestHeader("x-callout-trailers"))
	require.Equal(t, "2", s.RequestHeader("x-callout-headers"))
	require.Empty(t, p.VM().Callouts())
}

func TestConformance_CalloutFailure(t *testing.T) {
	p := startConformance(t, wasmhost.Load(t, "conformance"), "")
	s := p.NewStream()
	require.Equal(t, types.ActionPause, s.SendRequestHeaders(request("callout"), true))
	p.VM().Callouts()[0].Fail()
	require.Equal(t, 1, s.RequestResumed)
	require.Equal(t, "none", s.RequestHeader("x-callout-status"))
}

func TestConformance_CalloutUnknownCluster(t *testing.T) {
	p := startConformance(t, wasmhost.Load(t, "conformance"), "")
	s := p.NewStream()
	require.Equal(t, types.ActionContinue, s.SendRequestHeaders(request("callout", [2]string{"x-callout-cluster", "nowhere"}), true))
	require.Equal(t, "error status returned by host: bad argument", s.RequestHeader("x-callout-error"))
	require.Empty(t, p.VM().Callouts())
}

func TestConformance_PauseResumedByTick(t *testing.T) {
	p := startConformance(t, wasmhost.Load(t, "conformance"), "")
	s := p.NewStream()
	require.Equal(t, types.ActionPause, s.SendRequestHeaders(request("pause"), true))
	require.Zero(t, s.RequestResumed)
	p.Tick()
	require.Equal(t, 1, s.RequestResumed)
	require.Equal(t, "tick", s.RequestHeader("x-resumed-by"), "the tick acted on the stream's context")
	ticks, _ := p.VM().Host().Metric("conformance.ticks")
	require.Equal(t, uint64(1), ticks)
}

func TestConformance_SharedDataCASConflictRetried(t *testing.T) {
	h := wasmhost.Load(t, "conformance")
	p := startConformance(t, h, "")
	first := p.NewStream() // creates the key: creation is never conditional
	first.SendRequestHeaders(request("shared-inc"), true)
	require.Equal(t, "1", first.RequestHeader("x-shared-value"))
	raced := false
	h.BeforeSetSharedData = func(vmID, key string) {
		if !raced { // another worker wins the first race
			raced = true
			h.SetSharedData(vmID, key, []byte{41, 0, 0, 0, 0, 0, 0, 0})
		}
	}
	s := p.NewStream()
	s.SendRequestHeaders(request("shared-inc"), true)
	require.Equal(t, "1", s.RequestHeader("x-shared-retries"))
	require.Equal(t, "42", s.RequestHeader("x-shared-value"), "the retry read the other worker's value")
}

func TestConformance_SharedDataAcrossVMs(t *testing.T) {
	h := wasmhost.Load(t, "conformance")
	workers := []*wasmhost.Plugin{startConformance(t, h, ""), startConformance(t, h, "")}
	const perWorker = 200
	var wg sync.WaitGroup
	for _, p := range workers {
		wg.Add(1)
		go func(p *wasmhost.Plugin) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				s := p.NewStream()
				s.SendRequestHeaders(request("shared-inc"), true)
				s.Finish()
			}
		}(p)
	}
	wg.Wait()
	v, _, ok := h.SharedData("meshwasm", "conformance.counter")
	require.True(t, ok)
	require.Equal(t, uint64(2*perWorker), leUint64(v), "no increment lost between VMs")
}

func leUint64(b []byte) uint64 {
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func TestConformance_Metrics(t *testing.T) {
	h := wasmhost.Load(t, "conformance")
	p := startConformance(t, h, "")
	for i := 0; i < 3; i++ {
		s := p.NewStream()
		s.SendRequestHeaders(request(""), true)
		s.Finish()
	}
	requests, _ := h.Metric("conformance.requests")
	require.Equal(t, uint64(3), requests)
	inflight, _ := h.Metric("conformance.inflight")
	require.Zero(t, inflight, "gauge went up and down")
	require.Equal(t, []uint64{3, 3, 3}, h.Histogram("conformance.header_count"))
}

func TestConformance_PanicRecovered(t *testing.T) {
	h := wasmhost.Load(t, "conformance")
	p := startConformance(t, h, "")
	s := p.NewStream()
	require.Equal(t, types.ActionPause, s.SendRequestHeaders(request("panic"), true))
	require.NotNil(t, s.Local, "the filter's declared safe outcome: deny")
	require.Equal(t, uint32(503), s.Local.Status)
	s.Finish()
	panics, _ := h.Metric("meshwasm.conformance.panics")
	require.Equal(t, uint64(1), panics)
	logs := p.VM().LogsContaining(logCritical, "panic on demand")
	require.Len(t, logs, 1)
	require.Contains(t, logs[0], "goroutine", "the stack is logged")

	// The VM keeps serving.
	s = p.NewStream()
	require.Equal(t, types.ActionContinue, s.SendRequestHeaders(request(""), true))
	require.Nil(t, s.Local)
}

func TestConformance_Queue(t *testing.T) {
	h := wasmhost.Load(t, "conformance")
	p := startConformance(t, h, "")
	s := p.NewStream()
	s.SendRequestHeaders(request("queue", [2]string{"x-queue-item", "12345"}), true)
	p.DeliverQueues()
	dequeued, _ := h.Metric("conformance.dequeued")
	require.Equal(t, uint64(5), dequeued)
}

func TestConformance_PropertiesAndForeignFunction(t *testing.T) {
	p := startConformance(t, wasmhost.Load(t, "conformance"), "")
	s := p.NewStream()
	s.Properties["source.address"] = []byte("10.0.0.1:5555")
	s.SendRequestHeaders(request("property", [2]string{"x-conformance-property", "source.address"}), true)
	require.Equal(t, "10.0.0.1:5555", s.RequestHeader("x-property-value"))
	require.Equal(t, "yes", string(s.SetProperties["conformance.seen"]))

	s = p.NewStream()
	s.SendRequestHeaders(request("property", [2]string{"x-conformance-property", "no.such"}), true)
	require.Equal(t, "error status returned by host: not found", s.RequestHeader("x-property-error"))

	s = p.NewStream()
	s.SendRequestHeaders(request("property", [2]string{"x-conformance-property", "plugin_root_id"}), true)
	require.Equal(t, "conformance", s.RequestHeader("x-property-value"))

	s = p.NewStream()
	s.SendRequestHeaders(request("foreign"), true)
	require.Equal(t, "ping", s.RequestHeader("x-foreign"))
}

func TestConformance_Bodies(t *testing.T) {
	p := startConformance(t, wasmhost.Load(t, "conformance"), "")
	s := p.NewStream()
	require.Equal(t, types.ActionContinue, s.SendRequestHeaders(request("body-upper"), false))
	require.Equal(t, types.ActionPause, s.SendRequestBody([]byte("hello "), false))
	require.Equal(t, types.ActionContinue, s.SendRequestBody([]byte("world"), true))
	require.Equal(t, "HELLO WORLD", string(s.RequestBody))

	s = p.NewStream()
	s.SendRequestHeaders(request("resp-body-append"), true)
	s.SendResponseHeaders([][2]string{{":status", "200"}}, false)
	require.Equal(t, types.ActionContinue, s.SendResponseBody([]byte("body"), true))
	require.Equal(t, "body+appended", string(s.ResponseBody))
}

func TestConformance_Trailers(t *testing.T) {
	p := startConformance(t, wasmhost.Load(t, "conformance"), "")
	s := p.NewStream()
	s.SendRequestHeaders(request("trailers"), false)
	require.Equal(t, types.ActionContinue, s.SendRequestTrailers([][2]string{{"x-drop-trailer", "1"}, {"x-keep", "1"}}))
	require.Equal(t, [][2]string{{"x-keep", "1"}, {"x-added-trailer", "yes"}}, s.RequestTrailers)
	s.SendResponseHeaders([][2]string{{":status", "200"}}, false)
	require.Equal(t, types.ActionContinue, s.SendResponseTrailers(nil))
	require.Equal(t, [][2]string{{"x-response-trailer", "seen"}}, s.ResponseTrailers)
}

// Linear memory must not grow once warm: Wasm memory never shrinks, so any
// per-request leak shows here as growth.
func TestConformance_MemoryStable(t *testing.T) {
	p := startConformance(t, wasmhost.Load(t, "conformance"), "")
	run := func(n int) {
		for i := 0; i < n; i++ {
			s := p.NewStream()
			op := "alloc"
			if i%2 == 0 {
				op = "headers"
			}
			s.SendRequestHeaders(request(op, [2]string{"x-i", strconv.Itoa(i)}), true)
			s.SendResponseHeaders([][2]string{{":status", "200"}}, true)
			s.Finish()
		}
	}
	run(10_000)
	warm := p.VM().MemorySize()
	run(100_000)
	require.Equal(t, warm, p.VM().MemorySize(), "linear memory grew after warm-up")
}

func TestConformance_NetworkFilter(t *testing.T) {
	h := wasmhost.Load(t, "conformance")
	p := h.NewPlugin(wasmhost.VMOptions{}, wasmhost.PluginOptions{RootID: "conformance-tcp"})
	require.True(t, p.Started())
	c, action := p.NewConnection()
	require.Equal(t, types.ActionContinue, action)
	require.Equal(t, types.ActionContinue, c.SendDownstreamData([]byte("hello"), false))
	require.Equal(t, "HELLO", string(c.Downstream))
	require.Equal(t, types.ActionContinue, c.SendUpstreamData([]byte("world"), true))
	require.Equal(t, "world!", string(c.Upstream))
	c.CloseDownstream(wasmhost.PeerRemote)
	c.CloseUpstream(wasmhost.PeerLocal)
	c.Finish()
	for name, want := range map[string]uint64{
		"conformance_tcp.connections": 1, "conformance_tcp.closes": 2, "conformance_tcp.done": 1,
	} {
		got, _ := h.Metric(name)
		require.Equal(t, want, got, name)
	}
}

// A panic in a callback the registry does not wrap reaches the bridge's last
// line of defence: the connection is closed and the VM keeps serving.
func TestConformance_NetworkFilterPanicClosesConnection(t *testing.T) {
	h := wasmhost.Load(t, "conformance")
	p := h.NewPlugin(wasmhost.VMOptions{}, wasmhost.PluginOptions{RootID: "conformance-tcp"})
	c, _ := p.NewConnection()
	require.Equal(t, types.ActionPause, c.SendDownstreamData([]byte("panic"), false))
	require.True(t, c.DownstreamClosed)
	panics, _ := h.Metric("meshwasm.bridge.panics")
	require.Equal(t, uint64(1), panics)
	require.NotEmpty(t, p.VM().LogsContaining(logCritical, "recovered panic in proxy_on_downstream_data"))

	c2, _ := p.NewConnection()
	require.Equal(t, types.ActionContinue, c2.SendDownstreamData([]byte("ok"), false))
	require.Equal(t, "OK", string(c2.Downstream))
}

// An HTTP-only filter misused as a network filter has no TCP context; the
// SDK panics on the unknown context and the bridge closes the connection.
func TestConformance_HTTPFilterOnConnectionFailsClosed(t *testing.T) {
	h := wasmhost.Load(t, "conformance")
	p := startConformance(t, h, "")
	c, action := p.NewConnection()
	require.Equal(t, types.ActionPause, action)
	require.True(t, c.DownstreamClosed)
}

func TestConformance_UnknownRootIDRefused(t *testing.T) {
	h := wasmhost.Load(t, "conformance")
	p := h.NewPlugin(wasmhost.VMOptions{}, wasmhost.PluginOptions{RootID: "typo"})
	require.False(t, p.Started())
	require.NotEmpty(t, p.VM().LogsContaining(logCritical, `root id "typo" selects no filter in this module (want one of conformance, conformance-tcp)`))
}
