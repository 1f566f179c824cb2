package canary

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"time"
)

// Outcome is how one response from a guarded version ended.
type Outcome uint8

const (
	// Success is any response below 500.
	Success Outcome = iota
	// ServerError is a 5xx response.
	ServerError
	// Failure is a reset or a local failure (connect failure, timeout)
	// before a response arrived.
	Failure
)

// Classify maps a response status to an Outcome; the filter reports a stream
// reset without a response as Failure itself.
func Classify(status int) Outcome {
	if status >= 500 {
		return ServerError
	}
	return Success
}

// Phase is the guard's view of one version.
type Phase uint8

const (
	// Closed: the version is healthy and receives its traffic.
	Closed Phase = iota
	// Open: the version tripped and receives no new traffic until the
	// cooldown ends.
	Open
	// HalfOpen: the cooldown ended; a probe share of the version's traffic
	// is let through until enough probes succeed or one fails.
	HalfOpen
)

func (p Phase) String() string {
	switch p {
	case Closed:
		return "closed"
	case Open:
		return "open"
	}
	return "half-open"
}

// maxWindow bounds the sliding window so that the state stays a fixed, small
// binary value in shared data.
const maxWindow = 256

// State is one guarded version's health, small and fixed-size so that the
// filter can keep it in Envoy shared data and update it with compare-and-swap
// from every worker. The zero State is healthy.
type State struct {
	open        bool
	trips       uint32
	openUntil   int64 // unix nanoseconds
	consecutive uint32
	probeOK     uint32
	size        uint16 // window size the bits were recorded with
	count       uint16 // responses in the window, up to size
	pos         uint16 // next slot to write
	bits        [maxWindow / 64]uint64
}

// Phase returns the state's phase at now.
func (s *State) Phase(now time.Time) Phase {
	switch {
	case !s.open:
		return Closed
	case now.UnixNano() < s.openUntil:
		return Open
	}
	return HalfOpen
}

// Trips is how many times the version tripped since the state was created.
func (s *State) Trips() uint32 { return s.trips }

// OpenUntil is when the current or last trip's cooldown ends.
func (s *State) OpenUntil() time.Time { return time.Unix(0, s.openUntil) }

func (s *State) errors() int {
	n := 0
	for _, w := range s.bits {
		n += bits.OnesCount64(w)
	}
	return n
}

func (s *State) push(bad bool, size uint16) {
	if s.size != size {
		// The configured window changed since this state was written:
		// the old bits mean nothing under the new size.
		s.size, s.count, s.pos, s.bits = size, 0, 0, [maxWindow / 64]uint64{}
	}
	word, bit := s.pos/64, uint64(1)<<(s.pos%64)
	if bad {
		s.bits[word] |= bit
	} else {
		s.bits[word] &^= bit
	}
	s.pos = (s.pos + 1) % size
	if s.count < size {
		s.count++
	}
}

const (
	stateFormat = 1
	stateSize   = 2 + 4 + 8 + 4 + 4 + 2 + 2 + 2 + 8*maxWindow/64
)

// ErrBadState is returned when stored guard state cannot be decoded.
var ErrBadState = errors.New("canary guard: malformed state")

// AppendBinary appends the encoded state to b.
func (s *State) AppendBinary(b []byte) []byte {
	var flags byte
	if s.open {
		flags = 1
	}
	b = append(b, stateFormat, flags)
	b = binary.LittleEndian.AppendUint32(b, s.trips)
	b = binary.LittleEndian.AppendUint64(b, uint64(s.openUntil))
	b = binary.LittleEndian.AppendUint32(b, s.consecutive)
	b = binary.LittleEndian.AppendUint32(b, s.probeOK)
	b = binary.LittleEndian.AppendUint16(b, s.size)
	b = binary.LittleEndian.AppendUint16(b, s.count)
	b = binary.LittleEndian.AppendUint16(b, s.pos)
	for _, w := range s.bits {
		b = binary.LittleEndian.AppendUint64(b, w)
	}
	return b
}

// DecodeState decodes a state written by AppendBinary.
func DecodeState(b []byte) (State, error) {
	if len(b) != stateSize || b[0] != stateFormat || b[1] > 1 {
		return State{}, ErrBadState
	}
	s := State{open: b[1] == 1}
	b = b[2:]
	s.trips = binary.LittleEndian.Uint32(b)
	s.openUntil = int64(binary.LittleEndian.Uint64(b[4:]))
	s.consecutive = binary.LittleEndian.Uint32(b[12:])
	s.probeOK = binary.LittleEndian.Uint32(b[16:])
	s.size = binary.LittleEndian.Uint16(b[20:])
	s.count = binary.LittleEndian.Uint16(b[22:])
	s.pos = binary.LittleEndian.Uint16(b[24:])
	b = b[26:]
	for i := range s.bits {
		s.bits[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	if s.size > maxWindow || s.count > s.size || (s.size > 0 && s.pos >= s.size) {
		return State{}, ErrBadState
	}
	return s, nil
}

// Guard is the precompiled canary guard: a circuit breaker per guarded
// version, modelled on Envoy's outlier detection (consecutive 5xx) and on
// success-rate ejection over a sliding window.
type Guard struct {
	window         uint16
	minRequests    int
	maxErrorRatio  float64 // 0: ratio check disabled
	consecutive    uint32  // 0: consecutive check disabled
	cooldown       time.Duration
	probeShare     uint64 // out of 10000
	probeSuccesses uint32
	admitOnError   bool
	keys           []string // per version; "" when not guarded
}

// Guarded reports whether the version at index v is watched by the guard.
func (g *Guard) Guarded(v int) bool { return v >= 0 && v < len(g.keys) && g.keys[v] != "" }

// Key is the shared-data key holding version v's state.
func (g *Guard) Key(v int) string { return g.keys[v] }

// Admit reports whether a request may go to a version in state s. rnd is a
// uniform random number used for the half-open probe share.
func (g *Guard) Admit(s *State, now time.Time, rnd uint64) bool {
	switch s.Phase(now) {
	case Closed:
		return true
	case Open:
		return false
	}
	return rnd%10000 < g.probeShare
}

// EventKind says what a recorded outcome did to a version's guard.
type EventKind uint8

const (
	// NoEvent: the phase did not change.
	NoEvent EventKind = iota
	// Tripped: the version stopped receiving new traffic.
	Tripped
	// Recovered: the probes succeeded; the version is back in rotation.
	Recovered
)

// TripReason says why a version tripped.
type TripReason uint8

const (
	// ErrorRatio: the window's error ratio exceeded maxErrorRatio.
	ErrorRatio TripReason = iota + 1
	// Consecutive5xx: consecutive5xx errors arrived in a row.
	Consecutive5xx
	// ProbeFailed: a half-open probe failed.
	ProbeFailed
)

func (r TripReason) String() string {
	switch r {
	case ErrorRatio:
		return "error ratio"
	case Consecutive5xx:
		return "consecutive 5xx"
	case ProbeFailed:
		return "probe failed"
	}
	return "none"
}

// Event reports a trip or a recovery so that the filter can log and count it.
type Event struct {
	Kind    EventKind
	Version string
	Reason  TripReason // set when Kind is Tripped
	// Errors and Requests describe the window at the trip (ErrorRatio) or
	// the run of errors (Consecutive5xx).
	Errors, Requests int
	Trips            uint32    // trips so far, this one included
	Until            time.Time // end of the cooldown, when Kind is Tripped
}

// String is a log line for the event.
func (e Event) String() string {
	switch e.Kind {
	case Tripped:
		return fmt.Sprintf("canary guard: version %s tripped (%s, %d errors in %d responses, trip %d): no new traffic until %s",
			e.Version, e.Reason, e.Errors, e.Requests, e.Trips, e.Until.UTC().Format(time.RFC3339Nano))
	case Recovered:
		return fmt.Sprintf("canary guard: version %s recovered after %d healthy probes", e.Version, e.Requests)
	}
	return "canary guard: no event"
}

// Record applies one response outcome at now to state s and returns the new
// state and what changed. It is pure: the caller stores the result.
func (g *Guard) Record(s State, o Outcome, now time.Time) (State, Event) {
	bad := o != Success
	switch s.Phase(now) {
	case Open:
		// Responses to requests admitted before the trip, or to trusted
		// overrides: the cooldown is already running, they change nothing.
		return s, Event{}
	case HalfOpen:
		if bad {
			return g.trip(s, now, ProbeFailed, 1, int(s.probeOK)+1)
		}
		s.probeOK++
		if s.probeOK >= g.probeSuccesses {
			ev := Event{Kind: Recovered, Requests: int(s.probeOK), Trips: s.trips}
			return State{trips: s.trips, openUntil: s.openUntil}, ev
		}
		return s, Event{}
	}
	s.push(bad, g.window)
	if bad {
		s.consecutive++
	} else {
		s.consecutive = 0
	}
	if g.consecutive > 0 && s.consecutive >= g.consecutive {
		n := int(s.consecutive)
		return g.trip(s, now, Consecutive5xx, n, n)
	}
	if g.maxErrorRatio > 0 && int(s.count) >= g.minRequests {
		errs := s.errors()
		if float64(errs) > g.maxErrorRatio*float64(s.count) {
			return g.trip(s, now, ErrorRatio, errs, int(s.count))
		}
	}
	return s, Event{}
}

func (g *Guard) trip(s State, now time.Time, why TripReason, errs, reqs int) (State, Event) {
	until := now.Add(g.cooldown)
	n := State{open: true, trips: s.trips + 1, openUntil: until.UnixNano()}
	return n, Event{Kind: Tripped, Reason: why, Errors: errs, Requests: reqs, Trips: n.trips, Until: until}
}
