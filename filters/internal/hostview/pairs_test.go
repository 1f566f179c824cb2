package hostview

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

// serialize writes pairs in the proxy-wasm layout, as the host does.
func serialize(pairs [][2]string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(pairs)))
	for _, p := range pairs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p[0])))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p[1])))
	}
	for _, p := range pairs {
		b = append(append(append(append(b, p[0]...), 0), p[1]...), 0)
	}
	return b
}

func TestParsePairs(t *testing.T) {
	pairs := [][2]string{{":path", "/orders/1"}, {"x-empty", ""}, {"x-user-id", "12345"}}
	got, err := parsePairs(serialize(pairs))
	require.NoError(t, err)
	require.Equal(t, pairs, got)

	got, err = parsePairs(serialize(nil))
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestParsePairs_Errors(t *testing.T) {
	whole := serialize([][2]string{{"k", "v"}})
	tests := []struct {
		name string
		b    []byte
	}{
		{name: "shorter than the count", b: []byte{1, 0}},
		{name: "count beyond the sizes", b: binary.LittleEndian.AppendUint32(nil, 1)},
		{name: "sizes beyond the data", b: whole[:len(whole)-2]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parsePairs(tc.b)
			require.ErrorIs(t, err, errPairs)
		})
	}
}

func TestNewPropertyPath(t *testing.T) {
	p := newPropertyPath("connection.uri_san_peer_certificate")
	require.Equal(t, []string{"connection", "uri_san_peer_certificate"}, p.parts)
	require.Equal(t, "connection\x00uri_san_peer_certificate", string(p.raw))
	require.Equal(t, p, lookupPropertyPath("connection.uri_san_peer_certificate"), "well-known paths are prepared once")
}
