package ratelimit

import (
	"container/heap"
	"time"
)

// Queue holds the requests paused by shaping until their delay has passed.
// The filter adds a stream when it pauses it, calls Due from its tick to get
// the streams to resume, and calls Remove when a stream ends first (the
// client gave up), so abandoned requests are dropped without being resumed.
// Like Limiter, a Queue belongs to one VM and is not safe for concurrent use.
type Queue struct {
	items queueHeap
	pos   map[uint32]*queued
}

type queued struct {
	id    uint32
	due   int64
	index int
}

type queueHeap []*queued

func (h queueHeap) Len() int { return len(h) }
func (h queueHeap) Less(i, j int) bool {
	if h[i].due != h[j].due {
		return h[i].due < h[j].due
	}
	return h[i].id < h[j].id
}
func (h queueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *queueHeap) Push(x any) {
	q := x.(*queued)
	q.index = len(*h)
	*h = append(*h, q)
}
func (h *queueHeap) Pop() any {
	old := *h
	q := old[len(old)-1]
	*h = old[:len(old)-1]
	return q
}

// NewQueue returns an empty queue.
func NewQueue() *Queue { return &Queue{pos: map[uint32]*queued{}} }

// Add schedules stream id to resume at due; adding an id again reschedules it.
func (q *Queue) Add(id uint32, due time.Time) {
	if it, ok := q.pos[id]; ok {
		it.due = due.UnixNano()
		heap.Fix(&q.items, it.index)
		return
	}
	it := &queued{id: id, due: due.UnixNano()}
	heap.Push(&q.items, it)
	q.pos[id] = it
}

// Remove drops stream id and reports whether it was waiting.
func (q *Queue) Remove(id uint32) bool {
	it, ok := q.pos[id]
	if !ok {
		return false
	}
	heap.Remove(&q.items, it.index)
	delete(q.pos, id)
	return true
}

// Due removes and appends to dst, earliest first, every stream due at or
// before now.
func (q *Queue) Due(now time.Time, dst []uint32) []uint32 {
	t := now.UnixNano()
	for len(q.items) > 0 && q.items[0].due <= t {
		it := heap.Pop(&q.items).(*queued)
		delete(q.pos, it.id)
		dst = append(dst, it.id)
	}
	return dst
}

// Len is the number of waiting streams.
func (q *Queue) Len() int { return len(q.items) }
