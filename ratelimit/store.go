package ratelimit

import (
	"encoding/binary"
	"errors"
	"sync"
)

// Store is the compare-and-swap key/value store shared by all workers: Envoy
// shared data (proxy_get_shared_data / proxy_set_shared_data) in the filter,
// [MemStore] in tests. It has no delete and no TTL.
type Store interface {
	// Get returns the value and its CAS token; found is false (and err nil)
	// for a key never written.
	Get(key string) (value []byte, cas uint32, found bool, err error)
	// Set writes value if the key's current CAS token is cas, or
	// unconditionally when cas is 0, and returns [ErrCASMismatch] otherwise.
	// Like Envoy, a key that does not exist yet is created whatever cas is.
	Set(key string, value []byte, cas uint32) error
}

// ErrCASMismatch is returned by [Store.Set] when the key was written since the
// CAS token was read. Store implementations must return it (or wrap it).
var ErrCASMismatch = errors.New("cas mismatch")

// MemStore is an in-memory [Store] with Envoy's semantics, safe for use by
// many goroutines standing in for workers: CAS tokens come from one
// process-wide counter starting at 1 that skips 0, a missing key is created by
// any Set, and an existing key refuses a non-zero stale token.
type MemStore struct {
	mu   sync.Mutex
	next uint32
	m    map[string]memEntry
}

type memEntry struct {
	value []byte
	cas   uint32
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{next: 1, m: map[string]memEntry{}}
}

// Get returns a copy of the value, as the proxy-wasm host does.
func (s *MemStore) Get(key string) ([]byte, uint32, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok {
		return nil, 0, false, nil
	}
	return append([]byte(nil), e.value...), e.cas, true, nil
}

// Set implements [Store.Set].
func (s *MemStore) Set(key string, value []byte, cas uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if ok && cas != 0 && cas != e.cas {
		return ErrCASMismatch
	}
	e.value = append(e.value[:0], value...)
	e.cas = s.next
	s.next++
	if s.next == 0 {
		s.next = 1
	}
	s.m[key] = e
	return nil
}

// Len is the number of keys ever written.
func (s *MemStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

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
