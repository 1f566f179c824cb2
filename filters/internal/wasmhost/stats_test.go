package wasmhost_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/filters/internal/wasmhost"
)

func TestVM_RecordCalls(t *testing.T) {
	p := wasmhost.Load(t, "conformance").NewPlugin(wasmhost.VMOptions{}, wasmhost.PluginOptions{RootID: "conformance", Config: []byte("{}")})
	require.True(t, p.Started())
	vm := p.VM()
	require.Nil(t, vm.CallStats(), "nothing is recorded unless asked")

	vm.RecordCalls()
	began := time.Now()
	const requests = 3
	for range requests {
		s := p.NewStream()
		s.SendRequestHeaders([][2]string{{":path", "/"}, {"x-conformance-op", "headers"}}, true)
		s.Finish()
	}
	wall := time.Since(began)
	vm.StopRecordingCalls()
	// Recording has stopped: this request is not counted.
	s := p.NewStream()
	s.SendRequestHeaders([][2]string{{":path", "/"}}, true)
	s.Finish()

	stats := map[string]wasmhost.CallStat{}
	var self time.Duration
	for _, c := range vm.CallStats() {
		stats[c.Name] = c
		self += c.Self
		require.GreaterOrEqual(t, c.Self, time.Duration(0), "%s: nested crossings are subtracted, never more", c.Name)
		require.True(t, strings.HasPrefix(c.Name, "proxy_") || strings.HasPrefix(c.Name, "env.") || strings.HasPrefix(c.Name, "wasi."), c.Name)
	}
	for _, export := range []string{"proxy_on_context_create", "proxy_on_request_headers", "proxy_on_done", "proxy_on_log", "proxy_on_delete"} {
		require.Equal(t, requests, stats[export].Calls, export)
	}
	require.GreaterOrEqual(t, stats["env.proxy_get_header_map_pairs"].Calls, requests)
	require.Equal(t, requests, stats["env.proxy_set_header_map_pairs"].Calls)
	// Each host call that returns data re-enters the module to allocate it.
	require.GreaterOrEqual(t, stats["proxy_on_memory_allocate"].Calls, stats["env.proxy_get_header_map_pairs"].Calls)
	require.LessOrEqual(t, self, wall, "self times partition the run: they cannot add up to more than it")
}

func TestReportCrossings(t *testing.T) {
	p := wasmhost.Load(t, "noop").NewPlugin(wasmhost.VMOptions{}, wasmhost.PluginOptions{RootID: "noop"})
	res := testing.Benchmark(func(b *testing.B) {
		request := func() {
			s := p.NewStream()
			s.SendRequestHeaders([][2]string{{":path", "/"}}, true)
			s.SendResponseHeaders([][2]string{{":status", "200"}}, true)
			s.Finish()
		}
		for range b.N {
			request()
		}
		wasmhost.ReportCrossings(b, p.VM(), request)
	})
	// context create, request headers, response headers, done, log, delete:
	// the no-op filter makes no host call.
	require.Equal(t, 6.0, res.Extra["crossings/op"])
}
