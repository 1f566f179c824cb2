package abi

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPinner_ReleasesAtOutermostExit(t *testing.T) {
	var p pinner
	p.enter()
	require.Len(t, p.alloc(8), 8)
	p.enter() // nested: a callback re-entered during a host call
	require.Len(t, p.alloc(0), 1, "zero-size requests still get an addressable byte")
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
