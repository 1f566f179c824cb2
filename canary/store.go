package canary

import (
	"errors"
	"fmt"
	"time"

	"github.com/meshwasm/meshwasm/internal/casstore"
)

// Store is where the guard keeps its state: Envoy shared data, shared by
// every worker's VM; casstore.Memory in tests.
type Store = casstore.Store

// ErrCASMismatch is what Store.Set returns when the key changed since Get.
var ErrCASMismatch = casstore.ErrCASMismatch

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
