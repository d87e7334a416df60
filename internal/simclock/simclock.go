// Package simclock is the sandbox's notion of time.
//
// Client-side code calls package time directly and gets determinism from
// testing/synctest. The sandbox instead takes a Clock, because tests that run
// it as a separate process must be able to push its time forward (the admin
// API's POST /_sandbox/clock) to exercise AWS's real limits (a one-hour
// heartbeat timeout, a 48-hour global timeout) without waiting for them.
package simclock

import (
	"container/heap"
	"sync"
	"time"
)

// Clock tells time and schedules callbacks.
type Clock interface {
	// Now returns the current (possibly simulated) time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has elapsed on this clock.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a scheduled callback. Stop reports whether it prevented the call.
type Timer interface {
	Stop() bool
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (Real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Sim is a clock that follows real time plus an offset that only grows.
// Advance moves it forward at once and fires every callback that falls due,
// in deadline order; between advances it runs at real speed, so a sandbox on a
// Sim behaves like one on the wall clock until a test pushes it. The zero
// value is not usable; call NewSim.
type Sim struct {
	mu     sync.Mutex
	offset time.Duration
	seq    uint64
	timers timerHeap
	// wake fires when the earliest deadline is reached in real time.
	wake *time.Timer
}

// NewSim returns a Sim that starts at the current wall-clock time.
func NewSim() *Sim { return &Sim{} }

// Now returns the wall-clock time plus every Advance so far.
func (s *Sim) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nowLocked()
}

func (s *Sim) nowLocked() time.Time { return time.Now().Add(s.offset) }

// Offset reports how far the clock has been advanced past the wall clock.
func (s *Sim) Offset() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.offset
}

// AfterFunc schedules f to run once d has elapsed on the simulated clock.
func (s *Sim) AfterFunc(d time.Duration, f func()) Timer {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	t := &simTimer{sim: s, when: s.nowLocked().Add(d), seq: s.seq, f: f, index: -1}
	heap.Push(&s.timers, t)
	s.rearmLocked()
	return t
}

// Advance moves the clock forward by d and runs, in deadline order, every
// callback that is now due. Callbacks run in their own goroutines, as with
// time.AfterFunc; Advance does not wait for them.
func (s *Sim) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	s.mu.Lock()
	s.offset += d
	s.mu.Unlock()
	s.fireDue()
}

// fireDue pops and starts every timer whose deadline has passed.
func (s *Sim) fireDue() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowLocked()
	for len(s.timers) > 0 && !s.timers[0].when.After(now) {
		t := heap.Pop(&s.timers).(*simTimer)
		go t.f()
	}
	s.rearmLocked()
}

func (s *Sim) rearmLocked() {
	if s.wake != nil {
		s.wake.Stop()
		s.wake = nil
	}
	if len(s.timers) == 0 {
		return
	}
	d := s.timers[0].when.Sub(s.nowLocked())
	if d < 0 {
		d = 0
	}
	s.wake = time.AfterFunc(d, s.fireDue)
}

type simTimer struct {
	sim   *Sim
	when  time.Time
	seq   uint64
	f     func()
	index int
}

func (t *simTimer) Stop() bool {
	t.sim.mu.Lock()
	defer t.sim.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&t.sim.timers, t.index)
	t.sim.rearmLocked()
	return true
}

type timerHeap []*simTimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].when.Equal(h[j].when) {
		return h[i].seq < h[j].seq
	}
	return h[i].when.Before(h[j].when)
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*simTimer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	n := len(old)
	t := old[n-1]
	old[n-1] = nil
	t.index = -1
	*h = old[:n-1]
	return t
}
