package ratelimit

import (
	"encoding/binary"

	"github.com/meshwasm/meshwasm/internal/casstore"
)

// Store is where counters live: Envoy shared data in the filter,
// casstore.Memory in tests.
type Store = casstore.Store

// ErrCASMismatch is what Store.Set returns when another worker wrote first.
var ErrCASMismatch = casstore.ErrCASMismatch

// Bucket values: a header, then up to entriesPerBucket entries. One shared
// data value holds several keys so that a single CAS covers every slot a key
// may live in; with one value per slot, two workers could place the same new
// key in two different slots and split its count.
//
//	header: version u8 | fingerprint u64 | entries u8
//	entry:  owner length u8 | owner | a i64 | b i64 | c i64
const (
	bucketVersion    = 1
	entriesPerBucket = 4
	headerSize       = 10
	stateSize        = 24
)

type entry struct {
	owner []byte
	st    state
}

// decodeBucket parses a bucket into dst. A bucket of another version or
// fingerprint, or a malformed one, reads as empty: it can only come from a
// different configuration, whose counters this one cannot interpret.
func decodeBucket(v []byte, fp uint64, dst *[entriesPerBucket]entry) int {
	if len(v) < headerSize || v[0] != bucketVersion || binary.LittleEndian.Uint64(v[1:9]) != fp {
		return 0
	}
	n := int(v[9])
	if n > entriesPerBucket {
		return 0
	}
	p := v[headerSize:]
	for i := 0; i < n; i++ {
		if len(p) < 1 {
			return 0
		}
		ol := int(p[0])
		if len(p) < 1+ol+stateSize {
			return 0
		}
		dst[i].owner = p[1 : 1+ol]
		s := p[1+ol:]
		dst[i].st = state{
			a: int64(binary.LittleEndian.Uint64(s[0:8])),
			b: int64(binary.LittleEndian.Uint64(s[8:16])),
			c: int64(binary.LittleEndian.Uint64(s[16:24])),
		}
		p = p[1+ol+stateSize:]
	}
	if len(p) != 0 {
		return 0
	}
	return n
}

func encodeBucket(dst []byte, fp uint64, entries []entry) []byte {
	dst = append(dst, bucketVersion)
	dst = binary.LittleEndian.AppendUint64(dst, fp)
	dst = append(dst, byte(len(entries)))
	for _, e := range entries {
		dst = append(dst, byte(len(e.owner)))
		dst = append(dst, e.owner...)
		dst = binary.LittleEndian.AppendUint64(dst, uint64(e.st.a))
		dst = binary.LittleEndian.AppendUint64(dst, uint64(e.st.b))
		dst = binary.LittleEndian.AppendUint64(dst, uint64(e.st.c))
	}
	return dst
}
