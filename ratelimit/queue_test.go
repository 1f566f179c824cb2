package ratelimit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestQueue(t *testing.T) {
	clock := newClock()
	q := NewQueue()
	at := func(d time.Duration) time.Time { return clock.Now().Add(d) }
	q.Add(1, at(300*time.Millisecond))
	q.Add(2, at(100*time.Millisecond))
	q.Add(3, at(200*time.Millisecond))
	q.Add(4, at(100*time.Millisecond))
	require.Equal(t, 4, q.Len())

	require.Empty(t, q.Due(at(99*time.Millisecond), nil))
	require.Equal(t, []uint32{2, 4}, q.Due(at(100*time.Millisecond), nil), "same due time: by id")
	// The client behind stream 3 hung up: it is dropped, never resumed.
	require.True(t, q.Remove(3))
	require.False(t, q.Remove(3))
	require.False(t, q.Remove(2), "already resumed")
	// Rescheduling moves an entry.
	q.Add(1, at(150*time.Millisecond))
	require.Equal(t, []uint32{1}, q.Due(at(time.Second), nil))
	require.Equal(t, 0, q.Len())
}

func TestQueue_ShapingFromTicks(t *testing.T) {
	// What the filter does: pause delayed requests, resume them from ticks.
	f := newFixture(t, `{"rules": [{"name": "lb", "algorithm": "leaky_bucket", "mode": "shape", "rate": "10/s", "queue": 4}]}`)
	q := NewQueue()
	var resumed []uint32
	for id := uint32(1); id <= 6; id++ {
		d := f.l.Check(get("/"))
		switch d.Verdict {
		case Allow:
			resumed = append(resumed, id)
		case Delay:
			q.Add(id, f.clock.Now().Add(d.Delay))
		}
	}
	require.Equal(t, 4, q.Len(), "the sixth overflowed the queue")
	require.True(t, q.Remove(4), "stream 4 abandoned")
	tick := f.l.Config().TickPeriod()
	require.Equal(t, 100*time.Millisecond, tick)
	for i := 0; i < 5; i++ {
		f.clock.Advance(tick)
		resumed = q.Due(f.clock.Now(), resumed)
	}
	require.Equal(t, []uint32{1, 2, 3, 5}, resumed)
}
