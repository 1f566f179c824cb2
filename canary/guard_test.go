package canary

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshwasm/meshwasm/internal/casstore"
)

const guardConfig = `{"versions":["v1","v2"],"rules":[{"name":"all","route":"v2"}],
	"guard":{"window":10,"minRequests":5,"maxErrorRatio":0.5,"consecutive5xx":3,"cooldown":"30s","probePercent":10,"probeSuccesses":3}}`

// record feeds outcomes ('.' success, 'x' 5xx, 'r' reset) into a pure guard
// one second apart and returns the final state and every event.
func record(g *Guard, s State, now time.Time, outcomes string) (State, []Event) {
	var events []Event
	for _, c := range outcomes {
		o := Success
		switch c {
		case 'x':
			o = ServerError
		case 'r':
			o = Failure
		}
		var ev Event
		s, ev = g.Record(s, o, now)
		if ev.Kind != NoEvent {
			events = append(events, ev)
		}
		now = now.Add(time.Second)
	}
	return s, events
}

func TestGuard_Record(t *testing.T) {
	tests := []struct {
		name     string
		guard    string
		outcomes string
		reason   TripReason // 0: no trip
		errs     int
		reqs     int
	}{
		{name: "healthy", guard: `{"consecutive5xx":3}`, outcomes: "..........", reason: 0},
		{name: "consecutive broken by success", guard: `{"consecutive5xx":3,"maxErrorRatio":0}`, outcomes: "xx.xx.xx.", reason: 0},
		{name: "three consecutive 5xx", guard: `{"consecutive5xx":3,"maxErrorRatio":0}`, outcomes: ".xxx", reason: Consecutive5xx, errs: 3, reqs: 3},
		{name: "resets count as errors", guard: `{"consecutive5xx":3,"maxErrorRatio":0}`, outcomes: "xrx", reason: Consecutive5xx, errs: 3, reqs: 3},
		{name: "ratio waits for min requests", guard: `{"window":10,"minRequests":5,"maxErrorRatio":0.5,"consecutive5xx":0}`, outcomes: "x.x.", reason: 0},
		{name: "ratio above threshold", guard: `{"window":10,"minRequests":5,"maxErrorRatio":0.5,"consecutive5xx":0}`, outcomes: "x.x.x", reason: ErrorRatio, errs: 3, reqs: 5},
		{name: "ratio at threshold does not trip", guard: `{"window":10,"minRequests":10,"maxErrorRatio":0.5,"consecutive5xx":0}`, outcomes: "x.x.x.x.x.", reason: 0},
		{name: "old errors slide out", guard: `{"window":4,"minRequests":4,"maxErrorRatio":0.5,"consecutive5xx":0}`, outcomes: "xx..........x.x.", reason: 0},
		{name: "sliding window trips", guard: `{"window":4,"minRequests":4,"maxErrorRatio":0.5,"consecutive5xx":0}`, outcomes: "xx......x.xx", reason: ErrorRatio, errs: 3, reqs: 4},
		{name: "full 256 window", guard: `{"window":256,"minRequests":256,"maxErrorRatio":0.1,"consecutive5xx":0}`,
			outcomes: repeat("x.........", 25) + ".....x", reason: ErrorRatio, errs: 26, reqs: 256},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustParse(t, `{"versions":["v1","v2"],"guard":`+tc.guard+`}`)
			g := r.Guard()
			s, events := record(g, State{}, epoch, tc.outcomes)
			if tc.reason == 0 {
				require.Empty(t, events)
				require.Equal(t, Closed, s.Phase(epoch.Add(time.Hour)))
				return
			}
			require.Len(t, events, 1)
			ev := events[0]
			require.Equal(t, Tripped, ev.Kind)
			require.Equal(t, tc.reason, ev.Reason)
			require.Equal(t, tc.errs, ev.Errors)
			require.Equal(t, tc.reqs, ev.Requests)
			require.Equal(t, uint32(1), ev.Trips)
			last := epoch.Add(time.Duration(len(tc.outcomes)-1) * time.Second)
			require.Equal(t, last.Add(30*time.Second), ev.Until)
			require.Equal(t, Open, s.Phase(last))
		})
	}
}

func repeat(s string, n int) string {
	out := ""
	for range n {
		out += s
	}
	return out
}

func TestGuard_Lifecycle(t *testing.T) {
	g := mustParse(t, guardConfig).Guard()
	now := epoch
	s, events := record(g, State{}, now, "xxx")
	require.Len(t, events, 1)
	tripAt := now.Add(2 * time.Second)
	require.True(t, tripAt.Add(30*time.Second).Equal(s.OpenUntil()))

	// Open: nothing is admitted and late responses change nothing.
	for _, at := range []time.Duration{0, 29*time.Second + 999*time.Millisecond} {
		require.Equal(t, Open, s.Phase(tripAt.Add(at)))
		for rnd := range uint64(100) {
			require.False(t, g.Admit(&s, tripAt.Add(at), rnd))
		}
		late, ev := g.Record(s, ServerError, tripAt.Add(at))
		require.Equal(t, s, late)
		require.Equal(t, NoEvent, ev.Kind)
	}

	// Half-open: a probe share of 10% is admitted.
	halfOpen := tripAt.Add(30 * time.Second)
	require.Equal(t, HalfOpen, s.Phase(halfOpen))
	admitted := 0
	for rnd := range uint64(10000) {
		if g.Admit(&s, halfOpen, rnd) {
			admitted++
		}
	}
	require.Equal(t, 1000, admitted)

	// A failed probe re-trips for another cooldown.
	retripped, ev := g.Record(s, ServerError, halfOpen)
	require.Equal(t, Tripped, ev.Kind)
	require.Equal(t, ProbeFailed, ev.Reason)
	require.Equal(t, uint32(2), ev.Trips)
	require.Equal(t, Open, retripped.Phase(halfOpen.Add(29*time.Second)))

	// Healthy probes recover it.
	s = retripped
	probeAt := halfOpen.Add(30 * time.Second)
	s, events = record(g, s, probeAt, "..")
	require.Empty(t, events)
	require.Equal(t, HalfOpen, s.Phase(probeAt.Add(2*time.Second)))
	s, ev = g.Record(s, Success, probeAt.Add(2*time.Second))
	require.Equal(t, Recovered, ev.Kind)
	require.Equal(t, 3, ev.Requests)
	require.Equal(t, uint32(2), ev.Trips)
	require.Equal(t, Closed, s.Phase(probeAt))
	require.Equal(t, uint32(2), s.Trips())
	require.True(t, g.Admit(&s, probeAt, 9999))

	// After recovery the window starts empty: two errors do not trip.
	_, events = record(g, s, probeAt.Add(time.Minute), "xx")
	require.Empty(t, events)
}

func TestState_EncodeDecode(t *testing.T) {
	g := mustParse(t, guardConfig).Guard()
	states := map[string]State{"zero": {}}
	s, _ := record(g, State{}, epoch, ".x.x..x.x...")
	states["window wrapped"] = s
	s, _ = record(g, State{}, epoch, "xxx")
	states["open"] = s
	s, _ = record(g, s, epoch.Add(time.Hour), "..")
	states["half-open probes"] = s
	for name, s := range states {
		t.Run(name, func(t *testing.T) {
			b := s.AppendBinary(nil)
			require.Len(t, b, stateSize)
			got, err := DecodeState(b)
			require.NoError(t, err)
			require.Equal(t, s, got)
		})
	}
}

func TestDecodeState_Errors(t *testing.T) {
	valid := (&State{}).AppendBinary(nil)
	mutate := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), valid...))
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{name: "empty", in: nil},
		{name: "short", in: valid[:stateSize-1]},
		{name: "long", in: append(append([]byte(nil), valid...), 0)},
		{name: "format", in: mutate(func(b []byte) []byte { b[0] = 2; return b })},
		{name: "flags", in: mutate(func(b []byte) []byte { b[1] = 2; return b })},
		{name: "window too large", in: mutate(func(b []byte) []byte { b[22] = 0xff; b[23] = 0xff; return b })},
		{name: "count over size", in: mutate(func(b []byte) []byte { b[22] = 4; b[24] = 5; return b })},
		{name: "pos over size", in: mutate(func(b []byte) []byte { b[22] = 4; b[26] = 4; return b })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeState(tc.in)
			require.EqualError(t, err, "canary guard: malformed state")
		})
	}
}

// A changed window size must not reinterpret the old bits.
func TestGuard_WindowResize(t *testing.T) {
	small := mustParse(t, `{"versions":["v1","v2"],"guard":{"window":4,"minRequests":4,"consecutive5xx":0,"maxErrorRatio":0.5}}`).Guard()
	large := mustParse(t, `{"versions":["v1","v2"],"guard":{"window":8,"minRequests":2,"consecutive5xx":0,"maxErrorRatio":0.5}}`).Guard()
	s, events := record(small, State{}, epoch, "xx.")
	require.Empty(t, events)
	s, events = record(large, s, epoch, ".")
	require.Empty(t, events, "the small window's errors are forgotten")
	require.Equal(t, uint16(1), s.count)
}

func TestRouter_GuardDivertsAndRecovers(t *testing.T) {
	// Two routers parsed from one configuration stand for two workers'
	// VMs sharing Envoy's shared data.
	vmA, vmB := mustParse(t, guardConfig), mustParse(t, guardConfig)
	store := casstore.NewMemory()
	now := epoch
	env := func(rnd uint64) Env { return Env{Now: now, Random: rnd, Store: store} }

	d := vmB.Decide(get("/"), env(0))
	require.Equal(t, "v2", d.Version)
	require.Equal(t, -1, d.DivertedFrom)
	require.NoError(t, d.GuardErr)

	for i, o := range []Outcome{ServerError, ServerError, ServerError} {
		ev, err := vmA.Record(store, 1, o, now)
		require.NoError(t, err)
		if i < 2 {
			require.Equal(t, NoEvent, ev.Kind)
		} else {
			require.Equal(t, Tripped, ev.Kind)
			require.Equal(t, "v2", ev.Version)
			require.Equal(t, "canary guard: version v2 tripped (consecutive 5xx, 3 errors in 3 responses, trip 1): no new traffic until 2026-01-02T03:04:35Z", ev.String())
		}
	}

	// Worker B sees the trip: canary traffic goes to the default version.
	for rnd := range uint64(1000) {
		d = vmB.Decide(get("/"), env(rnd))
		require.Equal(t, "v1", d.Version)
		require.Equal(t, 1, d.DivertedFrom)
		require.Equal(t, 0, d.Rule)
	}

	// Cooldown over: about 10% probes reach v2.
	now = now.Add(30 * time.Second)
	probes := 0
	for i := range uint64(10000) {
		if vmB.Decide(get("/"), env(mix64(i))).Version == "v2" {
			probes++
		}
	}
	require.InDelta(t, 1000, probes, 100)

	// Healthy probes from both workers recover it.
	for i, vm := range []*Router{vmA, vmB, vmA} {
		ev, err := vm.Record(store, 1, Success, now)
		require.NoError(t, err)
		if i < 2 {
			require.Equal(t, NoEvent, ev.Kind)
		} else {
			require.Equal(t, Recovered, ev.Kind)
			require.Equal(t, "canary guard: version v2 recovered after 3 healthy probes", ev.String())
		}
	}
	for rnd := range uint64(100) {
		require.Equal(t, "v2", vmB.Decide(get("/"), env(rnd)).Version)
	}
	s, err := vmB.GuardState(store, 1)
	require.NoError(t, err)
	require.Equal(t, uint32(1), s.Trips())
	require.Equal(t, Closed, s.Phase(now))
}

func TestRouter_GuardDivertsSplitAndSticky(t *testing.T) {
	r := mustParse(t, `{"versions":["v1","v2"],"sticky":{"cookie":"cv"},
		"rules":[{"split":{"weights":{"v1":50,"v2":50},"hashOn":{"header":"x-user-id"}}}],
		"guard":{"consecutive5xx":1,"cooldown":"1m"}}`)
	store := casstore.NewMemory()
	_, err := r.Record(store, 1, Failure, epoch)
	require.NoError(t, err)
	env := Env{Now: epoch, Store: store}

	d := r.Decide(get("/", "cookie", "cv=v2"), env)
	require.Equal(t, "v1", d.Version)
	require.Equal(t, 1, d.DivertedFrom)
	require.Empty(t, d.SetCookie, "a diverted client keeps its pin for after recovery")

	d = r.Decide(get("/", "cookie", "cv=v1"), env)
	require.Equal(t, "v1", d.Version)
	require.Equal(t, -1, d.DivertedFrom)

	diverted := 0
	for i := range 1000 {
		d = r.Decide(get("/", "x-user-id", string(rune('a'+i%26))+string(rune('a'+i/26))), env)
		require.Equal(t, "v1", d.Version)
		if d.DivertedFrom == 1 {
			diverted++
			require.Empty(t, d.SetCookie)
		}
	}
	require.InDelta(t, 500, diverted, 60)
}

func TestRouter_GuardTrustedBypasses(t *testing.T) {
	r := mustParse(t, `{"versions":["v1","v2"],"trust":{"principals":["spiffe://qa"]},"guard":{"consecutive5xx":1}}`)
	store := casstore.NewMemory()
	_, err := r.Record(store, 1, ServerError, epoch)
	require.NoError(t, err)
	req := get("/", "x-route-version", "v2")
	req.principal = "spiffe://qa"
	d := r.Decide(req, Env{Now: epoch, Store: store})
	require.Equal(t, "v2", d.Version)
	require.Equal(t, ReasonTrusted, d.Reason)
}

func TestRouter_RecordUnguarded(t *testing.T) {
	r := mustParse(t, guardConfig)
	store := &faultyStore{Memory: casstore.NewMemory(), FailGet: errors.New("must not be called"), FailSet: errors.New("must not be called")}
	ev, err := r.Record(store, 0, ServerError, epoch)
	require.NoError(t, err)
	require.Equal(t, NoEvent, ev.Kind)

	noGuard := mustParse(t, `{"versions":["v1","v2"]}`)
	ev, err = noGuard.Record(store, 1, ServerError, epoch)
	require.NoError(t, err)
	require.Equal(t, NoEvent, ev.Kind)
	d := noGuard.Decide(get("/"), Env{Now: epoch, Store: store})
	require.NoError(t, d.GuardErr)
}

// racingStore lets another writer update the key between Get and Set, the
// way a second worker does.
type racingStore struct {
	*casstore.Memory
	races int
	rival func()
}

func (s *racingStore) Set(key string, value []byte, cas uint32) error {
	if s.races > 0 {
		s.races--
		s.rival()
	}
	return s.Memory.Set(key, value, cas)
}

func TestRouter_RecordRetriesOnCASMismatch(t *testing.T) {
	r := mustParse(t, `{"versions":["v1","v2"],"guard":{"consecutive5xx":2,"maxErrorRatio":0}}`)
	store := &racingStore{Memory: casstore.NewMemory()}
	// An existing value: a first write (CAS 0) is unconditional in Envoy.
	require.NoError(t, store.Memory.Set("meshwasm.canary.guard.v2", (&State{}).AppendBinary(nil), 0))
	store.rival = func() {
		_, err := r.Record(store.Memory, 1, ServerError, epoch)
		require.NoError(t, err)
	}
	store.races = 1
	// The rival's error lands first; ours is retried on top of it and
	// the two consecutive errors trip the guard.
	ev, err := r.Record(store, 1, ServerError, epoch)
	require.NoError(t, err)
	require.Equal(t, Tripped, ev.Kind)
	require.Equal(t, 2, ev.Errors)
}

func TestRouter_Record_Errors(t *testing.T) {
	r := mustParse(t, guardConfig)
	tests := []struct {
		name  string
		store Store
		want  string
	}{
		{name: "get fails", store: &faultyStore{Memory: casstore.NewMemory(), FailGet: errors.New("boom")}, want: "canary guard: read meshwasm.canary.guard.v2: boom"},
		{name: "set fails", store: &faultyStore{Memory: casstore.NewMemory(), FailSet: errors.New("boom")}, want: "canary guard: write meshwasm.canary.guard.v2: boom"},
		{name: "endless contention", store: &racingStore{Memory: casstore.NewMemory(), races: 1000, rival: func() {}}, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if rs, ok := tc.store.(*racingStore); ok {
				// Every Set finds the key moved on.
				rs.rival = func() {
					require.NoError(t, rs.Memory.Set("meshwasm.canary.guard.v2", (&State{}).AppendBinary(nil), 0))
				}
				require.NoError(t, rs.Memory.Set("meshwasm.canary.guard.v2", (&State{}).AppendBinary(nil), 0))
				tc.want = "canary guard: write meshwasm.canary.guard.v2: cas mismatch after 8 attempts"
			}
			_, err := r.Record(tc.store, 1, ServerError, epoch)
			require.EqualError(t, err, tc.want)
		})
	}
}

func TestRouter_RecordOverwritesMalformedState(t *testing.T) {
	r := mustParse(t, `{"versions":["v1","v2"],"rules":[{"route":"v2"}],"guard":{"consecutive5xx":1}}`)
	store := casstore.NewMemory()
	require.NoError(t, store.Set("meshwasm.canary.guard.v2", []byte("garbage"), 0))

	d := r.Decide(get("/"), Env{Now: epoch, Store: store})
	require.EqualError(t, d.GuardErr, "canary guard: malformed state at meshwasm.canary.guard.v2")

	ev, err := r.Record(store, 1, ServerError, epoch)
	require.NoError(t, err)
	require.Equal(t, Tripped, ev.Kind)
	s, err := r.GuardState(store, 1)
	require.NoError(t, err)
	require.Equal(t, Open, s.Phase(epoch))
}

func TestRouter_GuardStoreErrorMode(t *testing.T) {
	tests := []struct {
		name, mode string
		store      Store
		want       string
		wantErr    string
	}{
		{name: "admit on read error", mode: `"admit"`, store: &faultyStore{Memory: casstore.NewMemory(), FailGet: errors.New("boom")}, want: "v2",
			wantErr: "canary guard: read meshwasm.canary.guard.v2: boom"},
		{name: "divert on read error", mode: `"divert"`, store: &faultyStore{Memory: casstore.NewMemory(), FailGet: errors.New("boom")}, want: "v1",
			wantErr: "canary guard: read meshwasm.canary.guard.v2: boom"},
		{name: "default admits", mode: `null`, store: &faultyStore{Memory: casstore.NewMemory(), FailGet: errors.New("boom")}, want: "v2",
			wantErr: "canary guard: read meshwasm.canary.guard.v2: boom"},
		{name: "no store divert", mode: `"divert"`, store: nil, want: "v1", wantErr: "canary guard: no store configured"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustParse(t, `{"versions":["v1","v2"],"rules":[{"route":"v2"}],"guard":{"onStoreError":`+tc.mode+`}}`)
			d := r.Decide(get("/"), Env{Now: epoch, Store: tc.store})
			require.Equal(t, tc.want, d.Version)
			require.EqualError(t, d.GuardErr, tc.wantErr)
		})
	}
}

func TestGuard_Keys(t *testing.T) {
	r := mustParse(t, `{"versions":["v1","v2","v3"],"default":"v2","guard":{"key":"orders.guard"}}`)
	g := r.Guard()
	require.False(t, g.Guarded(1))
	require.True(t, g.Guarded(0))
	require.True(t, g.Guarded(2))
	require.False(t, g.Guarded(3))
	require.Equal(t, "orders.guard.v1", g.Key(0))
	require.Equal(t, "orders.guard.v3", g.Key(2))

	r = mustParse(t, `{"versions":["v1","v2","v3"],"guard":{"versions":["v3"]}}`)
	require.False(t, r.Guard().Guarded(1))
	require.True(t, r.Guard().Guarded(2))
}

func TestClassify(t *testing.T) {
	for status, want := range map[int]Outcome{200: Success, 404: Success, 499: Success, 500: ServerError, 503: ServerError, 599: ServerError} {
		require.Equal(t, want, Classify(status), "status %d", status)
	}
}

func TestGuard_Strings(t *testing.T) {
	require.Equal(t, "closed", Closed.String())
	require.Equal(t, "open", Open.String())
	require.Equal(t, "half-open", HalfOpen.String())
	require.Equal(t, "error ratio", ErrorRatio.String())
	require.Equal(t, "probe failed", ProbeFailed.String())
	require.Equal(t, "none", TripReason(0).String())
	require.Equal(t, "canary guard: no event", Event{}.String())
}

// faultyStore is a casstore.Memory whose Get or Set can be made to fail.
type faultyStore struct {
	*casstore.Memory
	FailGet, FailSet error
}

func (s *faultyStore) Get(key string) ([]byte, uint32, bool, error) {
	if s.FailGet != nil {
		return nil, 0, false, s.FailGet
	}
	return s.Memory.Get(key)
}

func (s *faultyStore) Set(key string, value []byte, cas uint32) error {
	if s.FailSet != nil {
		return s.FailSet
	}
	return s.Memory.Set(key, value, cas)
}
