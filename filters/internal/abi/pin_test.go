package abi

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

func TestPinner_ReleasesAtOutermostExit(t *testing.T) {
	var p pinner
	p.enter()
	require.Len(t, p.alloc(8), 8)
	p.enter() // nested: a callback re-entered during a host call
	require.Len(t, p.alloc(0), 1, "zero-size requests still get an addressable byte")
	require.Len(t, p.alloc(maxCarved+1), maxCarved+1)
	p.exit()
	require.Len(t, p.bufs, 2, "inner exit must not release buffers the outer callback still depends on")
	p.exit()
	require.Empty(t, p.bufs)
	require.Zero(t, p.depth)
}

func TestPinner_AllocOutsideCallbackReleasedByNextCallback(t *testing.T) {
	var p pinner
	p.alloc(4)
	require.Len(t, p.bufs, 1)
	p.enter()
	p.exit()
	require.Empty(t, p.bufs)
}

func TestPinner_CarvesSmallBuffersWithoutOverlap(t *testing.T) {
	var p pinner
	p.enter()
	var got [][]byte
	total := 0
	for size := uint32(1); total < 3*chunkSize; size = size%maxCarved + 7 {
		b := p.alloc(size)
		require.Len(t, b, int(size))
		require.Equal(t, int(size), cap(b), "a carved buffer must not reach into its neighbour")
		for i := range b {
			b[i] = byte(len(got))
		}
		got = append(got, b)
		total += int(size)
	}
	for i, b := range got {
		for _, c := range b {
			require.Equal(t, byte(i), c, "buffer %d was overwritten", i)
		}
	}
	require.GreaterOrEqual(t, len(p.bufs), 3, "every chunk stays pinned until the callback returns")
	require.Less(t, len(p.bufs), len(got)/8, "small buffers share chunks")
	p.exit()
	require.Empty(t, p.bufs)
	next := p.alloc(1)
	last := got[len(got)-1]
	require.NotEqual(t, unsafe.Pointer(&last[0]), unsafe.Pointer(&next[0]), "memory handed out is never handed out again")
}

func TestPinner_AllocDoesNotAllocatePerSmallBuffer(t *testing.T) {
	var p pinner
	p.enter()
	allocs := testing.AllocsPerRun(1000, func() { p.alloc(24) })
	p.exit()
	require.Less(t, allocs, 0.1, "one chunk serves many small buffers")
}
