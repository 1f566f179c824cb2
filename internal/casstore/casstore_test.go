package casstore

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMemory_EnvoySemantics(t *testing.T) {
	s := NewMemory()
	_, _, found, err := s.Get("k")
	require.NoError(t, err)
	require.False(t, found)

	require.NoError(t, s.Set("k", []byte("a"), 12345), "a missing key is created whatever the CAS")
	v, cas, found, err := s.Get("k")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "a", string(v))
	require.NotZero(t, cas)

	v[0] = 'z'
	again, _, _, _ := s.Get("k")
	require.Equal(t, "a", string(again), "Get returns a copy")

	require.ErrorIs(t, s.Set("k", []byte("b"), cas+1), ErrCASMismatch)
	require.NoError(t, s.Set("k", []byte("b"), cas))
	require.ErrorIs(t, s.Set("k", []byte("c"), cas), ErrCASMismatch, "the token is spent")
	require.NoError(t, s.Set("k", []byte("c"), 0), "CAS 0 writes unconditionally")
	require.Equal(t, 1, s.Len())
}

func TestMemory_ConcurrentIncrementsLoseNothing(t *testing.T) {
	s := NewMemory()
	require.NoError(t, s.Set("n", []byte{0}, 0))
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				for {
					v, cas, _, _ := s.Get("n")
					if s.Set("n", []byte{v[0] + 1}, cas) == nil {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	v, _, _, _ := s.Get("n")
	require.Equal(t, byte(200), v[0])
}

func TestMemory_TokensSkipZeroWhenTheyWrap(t *testing.T) {
	s := NewMemory()
	s.next = 0xffffffff
	require.NoError(t, s.Set("a", nil, 0))
	require.Equal(t, uint32(1), s.next)
}
