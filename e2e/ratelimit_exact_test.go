//go:build e2e

package e2e

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/e2e/harness"
)

// TestRateLimit_ExactVsLocalRateLimit runs the meshwasm rate limiter and Envoy's native
// local_ratelimit side by side in one Envoy with two workers, both with a budget of
// limit requests (a token bucket refilled once an hour), and sends both the same
// concurrent burst: clients on their own connections, spread over both workers. The
// wasm filter admits exactly limit (its counter lives in shared data, CAS across the
// workers' VMs); the native filter's number is measured and reported beside it.
func TestRateLimit_ExactVsLocalRateLimit(t *testing.T) {
	const limit, clients, perClient = 100, 32, 8
	module := harness.WasmModule(t, "ratelimit.wasm")
	topo := harness.StartFile(t, harness.FileOptions{
		File:    "e2e/testdata/ratelimit-compare/bootstrap.yaml",
		Workers: 2,
		Replace: func(services map[string]string) map[string]string {
			return map[string]string{
				"LIMIT":                                  strconv.Itoa(limit),
				`"build/ratelimit.wasm"`:                 strconv.Quote(module),
				harness.SocketAddress("127.0.0.1:9901"):  harness.SocketAddress("127.0.0.1:0"),
				harness.SocketAddress("127.0.0.1:10000"): harness.SocketAddress("127.0.0.1:0"),
				harness.SocketAddress("127.0.0.1:8081"):  harness.SocketAddress(services["echo-v1"]),
			}
		},
	})

	// Both paths in one burst, interleaved, so both filters see the same concurrency.
	var mu sync.Mutex
	admitted := map[string]int{}
	statuses := map[string]map[int]int{"wasm": {}, "native": {}}
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, clients*perClient*2)
	for i := 0; i < clients; i++ {
		c := topo.Client() // its own connections
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for j := 0; j < perClient; j++ {
				for _, which := range []string{"wasm", "native"} {
					resp, err := c.Get(topo.URL("/" + which + "/x"))
					if err != nil {
						errs <- err
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mu.Lock()
					statuses[which][resp.StatusCode]++
					if resp.StatusCode == http.StatusOK {
						admitted[which]++
					}
					mu.Unlock()
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for w := 0; w < 2; w++ {
		require.Positive(t, stat(t, topo, "listener.ingress.worker_"+strconv.Itoa(w)+".downstream_cx_total"), "worker %d took connections", w)
	}
	t.Logf("limit %d, %d requests per filter from %d concurrent clients over 2 workers: meshwasm admitted %d %v, Envoy local_ratelimit admitted %d %v",
		limit, clients*perClient, clients, admitted["wasm"], statuses["wasm"], admitted["native"], statuses["native"])
	for which, codes := range statuses {
		for code := range codes {
			require.Contains(t, []int{200, 429}, code, "%s: status %d", which, code)
		}
	}
	require.Equal(t, limit, admitted["wasm"], "meshwasm: exactly the limit across both workers")
	require.Equal(t, uint64(limit), stat(t, topo, "wasmcustom.meshwasm.ratelimit.exact.allowed"))
	require.Equal(t, uint64(clients*perClient-limit), stat(t, topo, "wasmcustom.meshwasm.ratelimit.exact.limited"))
	require.LessOrEqual(t, admitted["native"], limit, "local_ratelimit never admits more than its bucket")
	require.Positive(t, admitted["native"])
}
