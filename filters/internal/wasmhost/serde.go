package wasmhost

import (
	"encoding/binary"
	"errors"
)

// encodeMap serializes pairs in the proxy-wasm layout: the pair count, then
// each key and value length, then each key and value followed by a NUL.
func encodeMap(pairs [][2]string) []byte {
	size := 4
	for _, p := range pairs {
		size += 8 + len(p[0]) + 1 + len(p[1]) + 1
	}
	out := make([]byte, 4, size)
	binary.LittleEndian.PutUint32(out, uint32(len(pairs)))
	for _, p := range pairs {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(p[0])))
		out = binary.LittleEndian.AppendUint32(out, uint32(len(p[1])))
	}
	for _, p := range pairs {
		out = append(out, p[0]...)
		out = append(out, 0)
		out = append(out, p[1]...)
		out = append(out, 0)
	}
	return out
}

var errMap = errors.New("malformed header map")

func decodeMap(b []byte) ([][2]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) < 4 {
		return nil, errMap
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n > (len(b)-4)/8 {
		return nil, errMap
	}
	sizes := b[4 : 4+8*n]
	data := b[4+8*n:]
	out := make([][2]string, n)
	for i := 0; i < n; i++ {
		k := int(binary.LittleEndian.Uint32(sizes[8*i:]))
		v := int(binary.LittleEndian.Uint32(sizes[8*i+4:]))
		if k+v+2 > len(data) || k < 0 || v < 0 {
			return nil, errMap
		}
		out[i] = [2]string{string(data[:k]), string(data[k+1 : k+1+v])}
		data = data[k+1+v+1:]
	}
	return out, nil
}
