package bench

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// perfSample renders one sample as `perf script -F comm,ip,dso` prints it
// with call chains: the thread, then one frame per line, leaf first.
func perfSample(thread string, dsos ...string) string {
	var b strings.Builder
	b.WriteString(thread + " \n")
	for i, d := range dsos {
		b.WriteString("\t    " + strings.Repeat("a", i+1) + "0 (" + d + ")\n")
	}
	return b.String() + "\n"
}

const (
	envoyBin = "/venv/envoy/_bin/envoy"
	jit      = "/tmp/perf-4242.map"
	kernel   = "[kernel.kallsyms]"
)

func TestSplitPerfScript(t *testing.T) {
	script := strings.Join([]string{
		// The module's code at the leaf, called from Envoy.
		perfSample("wrk:worker_0", jit, jit, envoyBin),
		perfSample("wrk:worker_0", jit, envoyBin),
		// A host function the module called, and the kernel under it.
		perfSample("wrk:worker_0", envoyBin, jit, envoyBin),
		perfSample("wrk:worker_1", kernel, "/lib/libc.so.6", envoyBin, jit, envoyBin),
		// Envoy alone, in user space and in the kernel.
		perfSample("wrk:worker_0", envoyBin, envoyBin),
		perfSample("wrk:worker_1", "/lib/libc.so.6", envoyBin),
		perfSample("wrk:worker_0", kernel, envoyBin),
		// Other threads, whatever they run.
		perfSample("envoy", envoyBin),
		perfSample("V8 DefaultWorke", jit),
		// perf's own spelling when it read no map.
		perfSample("wrk:worker_0", "[JIT] tid 4242", envoyBin),
	}, "")
	got, err := SplitPerfScript(strings.NewReader(script))
	require.NoError(t, err)
	require.Equal(t, 10, got.Samples)
	require.InDelta(t, 0.3, got.Module, 1e-9)
	require.InDelta(t, 0.2, got.Host, 1e-9)
	require.InDelta(t, 0.2, got.Envoy, 1e-9)
	require.InDelta(t, 0.1, got.Kernel, 1e-9)
	require.InDelta(t, 0.2, got.Other, 1e-9)
}

func TestSplitPerfScript_WithoutCallChains(t *testing.T) {
	// Without -g each sample is one line: thread, address, object.
	script := "wrk:worker_0     55a81c3 (" + jit + ")\nwrk:worker_0     55a81c3 (" + envoyBin + ")\n"
	got, err := SplitPerfScript(strings.NewReader(script))
	require.NoError(t, err)
	require.Equal(t, 2, got.Samples)
	require.InDelta(t, 0.5, got.Module, 1e-9)
	require.InDelta(t, 0.5, got.Envoy, 1e-9)
}

func TestSplitPerfScript_NoSamples(t *testing.T) {
	_, err := SplitPerfScript(strings.NewReader("\n\n"))
	require.ErrorContains(t, err, "no samples")
}
