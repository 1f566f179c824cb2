//go:build e2e

package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/e2e/harness"
)

// Failure modes in real Envoy: every dependency a filter calls out to is down, slow or
// answering garbage, and each filter must follow its configured failure mode, count the
// failure, and never hold a request past its timeout. One Envoy runs all four filters
// from the suite module (one VM per worker): eleven plugins, each scoped to its own
// paths or token header so the cases do not interfere.

// fakeUpstream is a loopback HTTP dependency that fails in one way: "500" answers
// 500, "garbage" answers 200 with a body nobody can parse, "slow" holds every
// request until the caller gives up (Envoy's callout timeout resets the stream) or the
// test ends. Nothing sleeps: the handler waits on the request's context.
type fakeUpstream struct {
	srv  *httptest.Server
	hits atomic.Int64
}

func startFake(t *testing.T, mode string) *fakeUpstream {
	t.Helper()
	f := &fakeUpstream{}
	done := make(chan struct{})
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		switch mode {
		case "500":
			http.Error(w, "internal error", http.StatusInternalServerError)
		case "garbage":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("\x00\xffthis is not {json"))
		case "slow":
			select {
			case <-r.Context().Done():
			case <-done:
			}
		}
	}))
	t.Cleanup(func() { close(done); f.srv.Close() })
	return f
}

func (f *fakeUpstream) addr() string { return f.srv.Listener.Addr().String() }

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestFailureModes_Envoy(t *testing.T) {
	module := harness.WasmModule(t, "suite.wasm")
	jwks500, jwksSlow, jwksGarbage := startFake(t, "500"), startFake(t, "slow"), startFake(t, "garbage")
	rlSlow, rlGarbage := startFake(t, "slow"), startFake(t, "garbage")
	extSlow := startFake(t, "slow")
	down := closedAddr(t)

	plugin := func(name, root, config string) harness.WasmFilter {
		return harness.WasmFilter{Name: name, RootID: root, VMID: "meshwasm", Path: module, Config: config, FailurePolicy: harness.FailClosed}
	}
	jwtPlugin := func(name, header string) harness.WasmFilter {
		return plugin(name, "authz", `{"jwt": {"providers": [{"issuer": "https://`+name+`", "jwksUri": "http://`+name+`/keys",
			"cluster": "`+name+`", "timeout": "500ms", "refreshInterval": "1m", "fromHeaders": [{"name": "`+header+`"}]}]}}`)
	}
	extPlugin := func(name, prefix, cluster string, failOpen bool) harness.WasmFilter {
		return plugin(name, "authz", `{"extensionProviders": [{"name": "ext", "envoyExtAuthzHttp": {"cluster": "`+cluster+`",
			"timeout": "300ms", "failOpen": `+strconv.FormatBool(failOpen)+`}}],
			"policies": [{"name": "`+name+`", "action": "CUSTOM", "provider": {"name": "ext"}, "rules": [{"to": [{"operation": {"paths": ["`+prefix+`*"]}}]}]}]}`)
	}
	rlPlugin := func(name, cluster, failureMode string) harness.WasmFilter {
		return plugin(name, "ratelimit", `{"keyPrefix": "`+name+`",
			"global": {"cluster": "`+cluster+`", "domain": "meshwasm", "timeout": "300ms", "failureMode": "`+failureMode+`"},
			"rules": [{"name": "`+name+`", "mode": "global", "match": {"paths": [{"prefix": "/`+name+`/"}]}, "key": ["path"]}]}`)
	}
	topo := harness.Start(t, harness.Options{
		Workers: 1,
		Filters: []harness.WasmFilter{
			plugin("tracing", "tracing", `{"export": {"cluster": "otel", "flushPeriod": "100ms", "timeout": "200ms", "maxAttempts": 1, "queueSize": 8, "batchSize": 2}}`),
			jwtPlugin("jwks-500", "x-token-500"),
			jwtPlugin("jwks-slow", "x-token-slow"),
			jwtPlugin("jwks-garbage", "x-token-garbage"),
			extPlugin("ext-down", "/ext/down/", "ext-down", false),
			extPlugin("ext-slow-open", "/ext/slow/", "ext-slow", true),
			rlPlugin("rl-down", "rl-down", "deny"),
			rlPlugin("rl-down-open", "rl-down", "allow"),
			rlPlugin("rl-slow", "rl-slow", "deny"),
			rlPlugin("rl-garbage", "rl-garbage", "deny"),
			plugin("canary", "canary", `{"versions": ["v1", "v2"], "default": "v1",
				"rules": [{"name": "canary", "match": {"headers": [{"name": "x-canary", "exact": "true"}]}, "route": "v2"}],
				"guard": {"consecutive5xx": 3, "maxErrorRatio": 0.5, "window": 20, "cooldown": "60s"}}`),
		},
		Clusters: []harness.Cluster{
			{Name: "otel", Addr: down},
			{Name: "jwks-500", Addr: jwks500.addr()}, {Name: "jwks-slow", Addr: jwksSlow.addr()}, {Name: "jwks-garbage", Addr: jwksGarbage.addr()},
			{Name: "ext-down", Addr: down}, {Name: "ext-slow", Addr: extSlow.addr()},
			{Name: "rl-down", Addr: down}, {Name: "rl-slow", Addr: rlSlow.addr()}, {Name: "rl-garbage", Addr: rlGarbage.addr()},
		},
	})
	client := topo.Client()
	stat := func(name string) uint64 {
		v, _ := topo.Stat("wasmcustom." + name)
		return v
	}
	type result struct {
		status  int
		served  string
		retry   string
		elapsed time.Duration
	}
	do := func(t *testing.T, path string, headers ...string) result {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, topo.URL(path), nil)
		require.NoError(t, err)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		began := time.Now()
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return result{status: resp.StatusCode, served: resp.Header.Get("X-Served-By"), retry: resp.Header.Get("Retry-After"), elapsed: time.Since(began)}
	}
	// slack is what a loaded CI machine may add to a request on top of a callout
	// timeout; a request that waited for a dead dependency without a timeout would
	// hit the client's 15 s.
	const slack = 1500 * time.Millisecond

	t.Run("ratelimit service", func(t *testing.T) {
		tests := []struct {
			name, path string
			status     int
			waits      bool // the callout runs into its 300 ms timeout
		}{
			{name: "down, failureMode deny", path: "/rl-down/x", status: 429},
			{name: "down, failureMode allow", path: "/rl-down-open/x", status: 200},
			{name: "slow, failureMode deny", path: "/rl-slow/x", status: 429, waits: true},
			{name: "garbage, failureMode deny", path: "/rl-garbage/x", status: 429},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				rule := strings.Split(tc.path, "/")[1]
				before := stat("meshwasm.ratelimit." + rule + ".global_errors")
				r := do(t, tc.path)
				require.Equal(t, tc.status, r.status)
				if tc.status == 429 {
					require.Empty(t, r.served, "no upstream answered")
					require.Equal(t, "1", r.retry)
				} else {
					require.Equal(t, "v1", r.served)
				}
				require.Equal(t, before+1, stat("meshwasm.ratelimit."+rule+".global_errors"), "failure counted")
				require.Less(t, r.elapsed, 300*time.Millisecond+slack, "never past the callout timeout")
				if tc.waits {
					require.GreaterOrEqual(t, r.elapsed, 250*time.Millisecond, "the slow service was waited for, up to the timeout")
				}
			})
		}
		require.Positive(t, rlSlow.hits.Load())
		require.Positive(t, rlGarbage.hits.Load())
	})

	t.Run("ext-authz", func(t *testing.T) {
		tests := []struct {
			name, path string
			status     int
			waits      bool
		}{
			{name: "down, failOpen false", path: "/ext/down/x", status: 403},
			{name: "slow, failOpen true", path: "/ext/slow/x", status: 200, waits: true},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := stat("meshwasm.authz.ext_authz.errors")
				r := do(t, tc.path)
				require.Equal(t, tc.status, r.status)
				require.Equal(t, before+1, stat("meshwasm.authz.ext_authz.errors"), "failure counted")
				require.Less(t, r.elapsed, 300*time.Millisecond+slack, "never past the check timeout")
				if tc.waits {
					require.GreaterOrEqual(t, r.elapsed, 250*time.Millisecond)
					require.Equal(t, "v1", r.served, "failOpen let it through")
				} else {
					require.Empty(t, r.served)
				}
			})
		}
	})

	t.Run("JWKS endpoint", func(t *testing.T) {
		// Every provider's first fetch fails (500 at once, garbage at once, slow after
		// its 500 ms timeout); until keys arrive every token is refused with 401
		// no_keys, at once: requests never wait for a key fetch.
		require.Eventually(t, func() bool { return stat("meshwasm.authz.jwks.fetch_errors") >= 3 },
			20*time.Second, 20*time.Millisecond, "three failed fetches counted")
		require.Positive(t, jwks500.hits.Load())
		require.Positive(t, jwksSlow.hits.Load())
		require.Positive(t, jwksGarbage.hits.Load())
		require.Zero(t, stat("meshwasm.authz.jwks.fetched"))
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		for _, name := range []string{"500", "slow", "garbage"} {
			t.Run(name, func(t *testing.T) {
				// A well-formed token of the provider's issuer: only the missing
				// keys can refuse it.
				s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
				require.NoError(t, err)
				obj, err := s.Sign([]byte(`{"iss": "https://jwks-` + name + `", "sub": "alice"}`))
				require.NoError(t, err)
				tok, err := obj.CompactSerialize()
				require.NoError(t, err)
				before := stat("meshwasm.authz.jwt.no_keys")
				r := do(t, "/jwt", "x-token-"+name, tok)
				require.Equal(t, 401, r.status, "fail closed without keys")
				require.Equal(t, before+1, stat("meshwasm.authz.jwt.no_keys"))
				require.Less(t, r.elapsed, slack, "no request waits for a key fetch")
			})
		}
		r := do(t, "/jwt")
		require.Equal(t, 200, r.status, "no token: no key needed")
	})

	t.Run("OTLP collector down", func(t *testing.T) {
		for i := 0; i < 10; i++ {
			r := do(t, "/traced")
			require.Equal(t, 200, r.status)
			require.Less(t, r.elapsed, slack, "a dead collector never delays requests")
		}
		require.Eventually(t, func() bool { return stat("meshwasm.tracing.export_failures") > 0 },
			15*time.Second, 20*time.Millisecond, "export failures counted")
		require.Zero(t, stat("meshwasm.tracing.spans_exported"))
	})

	t.Run("v2 5xx storm trips the canary guard", func(t *testing.T) {
		require.Zero(t, stat("meshwasm.canary.v2.guard_trips"))
		for i := 0; i < 3; i++ {
			r := do(t, "/orders", "x-canary", "true", "x-echo-status", "503")
			require.Equal(t, 503, r.status)
			require.Equal(t, "v2", r.served)
		}
		require.Equal(t, uint64(1), stat("meshwasm.canary.v2.guard_trips"))
		for i := 0; i < 5; i++ {
			r := do(t, "/orders", "x-canary", "true", "x-echo-status", "503")
			require.Equal(t, "v1", r.served, "diverted from v2 while the guard is open")
		}
		require.Equal(t, uint64(5), stat("meshwasm.canary.v2.guard_diverted"))
	})

	for _, f := range []string{"authz", "ratelimit", "canary", "tracing"} {
		require.Zero(t, stat("meshwasm."+f+".panics"), f)
	}
	v, _ := topo.Stat("wasm.envoy.wasm.runtime.v8.active")
	require.Positive(t, v)
}

// TestFailurePolicy_Envoy: Envoy's failure_policy decides what happens to requests
// once a VM is broken. The test-only conformance module panics on demand
// (x-conformance-op: panic), which the registry recovers: that request gets the
// module's declared 503, the panic is counted, and the VM keeps serving. An
// unrecoverable failure (x-conformance-op: trap, a panic on another goroutine: the Go
// runtime dies, as on a fatal error) traps the VM, and then:
//
//	FAIL_CLOSED  every later request gets 503 from Envoy: the filter's VM is gone
//	FAIL_OPEN    later requests skip the filter and reach the upstream unfiltered
//	FAIL_RELOAD  503 during Envoy's 1 s backoff, then a new VM serves again
func TestFailurePolicy_Envoy(t *testing.T) {
	module := harness.WasmModule(t, "conformance.wasm")
	for _, policy := range []harness.FailurePolicy{harness.FailClosed, harness.FailOpen, harness.FailReload} {
		t.Run(string(policy), func(t *testing.T) {
			topo := harness.Start(t, harness.Options{
				Workers: 1,
				Filters: []harness.WasmFilter{{
					Name: "conformance", RootID: "conformance", VMID: "meshwasm", Path: module, Config: "{}", FailurePolicy: policy,
				}},
			})
			client := topo.Client()
			do := func(op string) (status int, filtered bool, served string) {
				req, err := http.NewRequest(http.MethodGet, topo.URL("/x"), nil)
				require.NoError(t, err)
				if op != "" {
					req.Header.Set("x-conformance-op", op)
				}
				resp, err := client.Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				_, _ = io.Copy(io.Discard, resp.Body)
				return resp.StatusCode, resp.Header.Get("x-conformance") == "ok", resp.Header.Get("X-Served-By")
			}

			// A panic inside filter code: recovered, answered, counted; the VM lives on.
			status, _, served := do("panic")
			require.Equal(t, 503, status, "the module's declared outcome for a panic")
			require.Empty(t, served)
			require.Equal(t, uint64(1), stat(t, topo, "wasmcustom.meshwasm.conformance.panics"))
			for i := 0; i < 3; i++ {
				status, filtered, served := do("")
				require.Equal(t, 200, status)
				require.True(t, filtered, "the same VM keeps filtering")
				require.Equal(t, "v1", served)
			}
			reloads, _ := topo.Stat("wasm.conformance.vm_reload_success")
			require.Zero(t, reloads, "a recovered panic never costs a VM")

			// An unrecoverable failure: the VM traps.
			status, _, served = do("trap")
			require.Equal(t, 503, status)
			require.Empty(t, served)
			switch policy {
			case harness.FailClosed:
				for i := 0; i < 3; i++ {
					status, _, served := do("")
					require.Equal(t, 503, status, "fail closed: the broken VM answers every request")
					require.Empty(t, served)
				}
			case harness.FailOpen:
				for i := 0; i < 3; i++ {
					status, filtered, served := do("")
					require.Equal(t, 200, status)
					require.False(t, filtered, "fail open: the filter is skipped")
					require.Equal(t, "v1", served)
				}
			case harness.FailReload:
				var others []int
				require.Eventually(t, func() bool {
					status, filtered, _ := do("")
					if status != 200 || !filtered {
						others = append(others, status)
						return false
					}
					return true
				}, 20*time.Second, 50*time.Millisecond, "a new VM serves again")
				for _, s := range others {
					require.Equal(t, 503, s, "until the new VM is up")
				}
				require.Positive(t, stat(t, topo, "wasm.conformance.vm_reload_success"))
			}
		})
	}
}
