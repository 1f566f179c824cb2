package canary

import (
	"errors"
	"fmt"
	"time"
)

// Store is the key/value store the guard keeps its state in: Envoy shared
// data, shared by every worker's VM. The filter implements it over
// proxy_get_shared_data / proxy_set_shared_data.
type Store interface {
	// Get returns the value and its CAS token; found is false (and err nil)
	// when the key was never written.
	Get(key string) (value []byte, cas uint32, found bool, err error)
	// Set writes value if the key is still at cas, and returns
	// ErrCASMismatch when another writer got there first. Envoy treats cas
	// 0 as "write unconditionally", which is what the first write uses.
	Set(key string, value []byte, cas uint32) error
}

// ErrCASMismatch is what Store.Set returns when the key changed since Get.
var ErrCASMismatch = errors.New("cas mismatch")

var errNoStore = errors.New("canary guard: no store configured")

// casAttempts bounds the read-modify-write loop: with a handful of workers
// contention clears in a few rounds, and a response must never spin.
const casAttempts = 8

// loadState reads version v's state; a missing key is a healthy state.
func (g *Guard) loadState(st Store, v int) (State, uint32, error) {
	b, cas, found, err := st.Get(g.keys[v])
	if err != nil {
		return State{}, 0, fmt.Errorf("canary guard: read %s: %w", g.keys[v], err)
	}
	if !found {
		return State{}, 0, nil
	}
	s, err := DecodeState(b)
	if err != nil {
		// Keep the CAS token: Record overwrites a malformed value.
		return State{}, cas, fmt.Errorf("%w at %s", err, g.keys[v])
	}
	return s, cas, nil
}

// Record applies a response outcome from version v (an index into
// Versions) to the shared guard state, retrying on CAS mismatches. It returns
// the resulting event, which the filter logs and counts when its Kind is not
// NoEvent. Versions the guard does not watch are ignored.
func (r *Router) Record(st Store, v int, o Outcome, now time.Time) (Event, error) {
	g := r.guard
	if g == nil || !g.Guarded(v) {
		return Event{}, nil
	}
	var buf [stateSize]byte
	for range casAttempts {
		s, cas, err := g.loadState(st, v)
		if err != nil && !errors.Is(err, ErrBadState) {
			return Event{}, err
		}
		next, ev := g.Record(s, o, now)
		if err == nil && next == s {
			return ev, nil
		}
		err = st.Set(g.keys[v], next.AppendBinary(buf[:0]), cas)
		if errors.Is(err, ErrCASMismatch) {
			continue
		}
		if err != nil {
			return Event{}, fmt.Errorf("canary guard: write %s: %w", g.keys[v], err)
		}
		ev.Version = r.versions[v]
		return ev, nil
	}
	return Event{}, fmt.Errorf("canary guard: write %s: %w after %d attempts", g.keys[v], ErrCASMismatch, casAttempts)
}

// GuardState reads version v's current guard state, for status endpoints and
// tests.
func (r *Router) GuardState(st Store, v int) (State, error) {
	if r.guard == nil || !r.guard.Guarded(v) {
		return State{}, nil
	}
	s, _, err := r.guard.loadState(st, v)
	return s, err
}

// MemoryStore is an in-process Store with Envoy's CAS semantics, for tests
// and for hosts without shared data. It is not safe for concurrent use, like
// the single-threaded VM it stands in for.
type MemoryStore struct {
	entries map[string]memEntry
	// FailGet and FailSet, when set, are returned by Get and Set.
	FailGet, FailSet error
}

type memEntry struct {
	value []byte
	cas   uint32
}

// Get implements Store.
func (m *MemoryStore) Get(key string) ([]byte, uint32, bool, error) {
	if m.FailGet != nil {
		return nil, 0, false, m.FailGet
	}
	e, ok := m.entries[key]
	if !ok {
		return nil, 0, false, nil
	}
	return append([]byte(nil), e.value...), e.cas, true, nil
}

// Set implements Store.
func (m *MemoryStore) Set(key string, value []byte, cas uint32) error {
	if m.FailSet != nil {
		return m.FailSet
	}
	if m.entries == nil {
		m.entries = map[string]memEntry{}
	}
	e := m.entries[key]
	if cas != 0 && cas != e.cas {
		return ErrCASMismatch
	}
	m.entries[key] = memEntry{value: append([]byte(nil), value...), cas: e.cas + 1}
	return nil
}
