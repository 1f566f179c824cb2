package hostview

import (
	"encoding/binary"
	"strings"
)

// addedHeaders is the room parsePairs leaves for headers the filters add.
const addedHeaders = 4

// parsePairs decodes a header map in the proxy-wasm layout: the pair count,
// then each key's and value's length, then each key and value followed by a
// NUL. The strings share b's memory (see hostString).
func parsePairs(b []byte) ([][2]string, error) {
	if len(b) < 4 {
		return nil, errPairs
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n > (len(b)-4)/8 {
		return nil, errPairs
	}
	sizes, data := b[4:4+8*n], b[4+8*n:]
	// Room for the headers the filters add (Request.ReplaceHeader: a trace
	// context, a route version) without growing the slice.
	out := make([][2]string, n, n+addedHeaders)
	for i := range out {
		k := int(binary.LittleEndian.Uint32(sizes[8*i:]))
		v := int(binary.LittleEndian.Uint32(sizes[8*i+4:]))
		if k < 0 || v < 0 || k+v+2 > len(data) {
			return nil, errPairs
		}
		out[i] = [2]string{hostString(data[:k]), hostString(data[k+1 : k+1+v])}
		data = data[k+v+2:]
	}
	return out, nil
}

// propertyPath is a property path in both forms: segments for the SDK,
// serialized (segments joined by NUL) for the ABI.
type propertyPath struct {
	parts []string
	raw   []byte
}

func newPropertyPath(dotted string) propertyPath {
	parts := strings.Split(dotted, ".")
	return propertyPath{parts: parts, raw: []byte(strings.Join(parts, "\x00"))}
}

// wellKnown are the property paths the filters read per request, split and
// serialized once rather than on every read.
var wellKnown = map[string]propertyPath{}

func init() {
	for _, p := range []string{
		"source.address", "destination.address", "connection.mtls",
		"connection.uri_san_peer_certificate", "connection.requested_server_name",
	} {
		wellKnown[p] = newPropertyPath(p)
	}
}

func lookupPropertyPath(dotted string) propertyPath {
	if p, ok := wellKnown[dotted]; ok {
		return p
	}
	return newPropertyPath(dotted)
}
