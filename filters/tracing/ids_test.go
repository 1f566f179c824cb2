package tracing

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// ids fills every byte it is asked for, and two draws of a trace and span id
// never repeat.
func TestIDs_Fill(t *testing.T) {
	seen := map[[24]byte]bool{}
	for i := 0; i < 1000; i++ {
		var b [24]byte
		n, err := ids{}.Read(b[:])
		require.NoError(t, err)
		require.Equal(t, 24, n)
		require.False(t, seen[b], "repeated draw")
		seen[b] = true
	}
	odd := make([]byte, 13)
	n, err := ids{}.Read(odd)
	require.NoError(t, err)
	require.Equal(t, 13, n)
	require.NotEqual(t, make([]byte, 5), odd[8:], "the tail past the last full word is filled too")
}
