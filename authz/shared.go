package authz

import (
	"errors"
	"sync"
)

// ErrCASMismatch is returned by [SharedData.Set] when the key was written
// since the cas the caller read.
var ErrCASMismatch = errors.New("shared data: cas mismatch")

// SharedData is Envoy's cross-worker key/value store
// (proxy_get_shared_data / proxy_set_shared_data). Get returns ok=false for
// a missing key. Set with cas 0 writes unconditionally; with a non-zero cas it
// fails with ErrCASMismatch if someone wrote in between. There is no delete
// and no TTL, so the engine only ever uses a bounded set of keys.
type SharedData interface {
	Get(key string) (value []byte, cas uint32, ok bool)
	Set(key string, value []byte, cas uint32) error
}

// MemorySharedData is an in-process SharedData with the host's semantics,
// used when no host store is given and in tests.
type MemorySharedData struct {
	mu sync.Mutex
	m  map[string]memEntry
}

type memEntry struct {
	v   []byte
	cas uint32
}

// NewMemorySharedData returns an empty store.
func NewMemorySharedData() *MemorySharedData {
	return &MemorySharedData{m: map[string]memEntry{}}
}

// Get implements SharedData.
func (s *MemorySharedData) Get(key string) ([]byte, uint32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok {
		return nil, 0, false
	}
	return append([]byte(nil), e.v...), e.cas, true
}

// Set implements SharedData.
func (s *MemorySharedData) Set(key string, value []byte, cas uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[key]
	if cas != 0 && cas != e.cas {
		return ErrCASMismatch
	}
	s.m[key] = memEntry{v: append([]byte(nil), value...), cas: e.cas + 1}
	return nil
}

// Len is the number of keys ever written, to check that key space stays bounded.
func (s *MemorySharedData) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
