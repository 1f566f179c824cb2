// Package casstore defines the compare-and-swap key/value store that the
// policy cores keep cross-worker state in, with Envoy's shared-data
// semantics, and an in-memory implementation for tests.
//
// In Envoy the store is proxy_get_shared_data / proxy_set_shared_data: one
// table per vm_id shared by every worker's VM, with no delete and no TTL.
// CAS tokens come from one process-wide counter; a Set with CAS 0 writes
// unconditionally, and a key that does not exist yet is created whatever the
// CAS (so creation races: see each core for how it copes).
// See https://github.com/proxy-wasm/proxy-wasm-cpp-host/blob/main/src/shared_data.cc.
package casstore

import (
	"errors"
	"sync"
)

// Store is Envoy shared data as the cores use it.
type Store interface {
	// Get returns the value and its CAS token; found is false (and err nil)
	// for a key never written.
	Get(key string) (value []byte, cas uint32, found bool, err error)
	// Set writes value if the key's current CAS token is cas, or
	// unconditionally when cas is 0, and returns ErrCASMismatch otherwise.
	Set(key string, value []byte, cas uint32) error
}

// ErrCASMismatch is returned by Store.Set when the key was written since its
// CAS token was read.
var ErrCASMismatch = errors.New("cas mismatch")

// Memory is an in-memory Store with Envoy's semantics, safe for many
// goroutines standing in for workers.
type Memory struct {
	mu   sync.Mutex
	next uint32
	m    map[string]entry
}

type entry struct {
	value []byte
	cas   uint32
}

// NewMemory returns an empty store.
func NewMemory() *Memory { return &Memory{next: 1, m: map[string]entry{}} }

// Get returns a copy of the value, as the host does.
func (s *Memory) Get(key string) ([]byte, uint32, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok {
		return nil, 0, false, nil
	}
	return append([]byte(nil), e.value...), e.cas, true, nil
}

// Set implements Store.Set.
func (s *Memory) Set(key string, value []byte, cas uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if ok && cas != 0 && cas != e.cas {
		return ErrCASMismatch
	}
	e.value = append(e.value[:0:0], value...)
	e.cas = s.next
	s.next++
	if s.next == 0 { // 0 means "unconditional": never hand it out
		s.next = 1
	}
	s.m[key] = e
	return nil
}

// Len is the number of keys ever written.
func (s *Memory) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
