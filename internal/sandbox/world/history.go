package world

import (
	"slices"
	"strings"
	"time"
)

// This file bounds the world's history by what AWS shows of it: scaling
// activities for six weeks, terminated instances for terminatedVisibility.
// Older ones are forgotten as the clock passes, so a long-lived sandbox
// neither grows nor slows with the instances it has launched.

// activityRetention is how long DescribeScalingActivities shows an
// activity.
const activityRetention = 6 * 7 * 24 * time.Hour

// addActivityLocked records a new activity.
func (w *World) addActivityLocked(a *Activity) {
	w.forgetHistoryLocked()
	w.acts.list = append(w.acts.list, a)
	ga := w.groupActs[a.Group]
	if ga == nil {
		ga = &history[*Activity]{}
		w.groupActs[a.Group] = ga
	}
	ga.list = append(ga.list, a)
}

// history is a list that loses its oldest entries as they age out.
type history[T any] struct {
	list []T
	dead int // entries dropped since the backing array was last allocated
}

// drop forgets the first n entries. Once more have been dropped than are
// left, the rest moves to a new array, so that memory follows what is
// kept and not what ever was (at a cost of O(1) per entry dropped).
func (h *history[T]) drop(n int) {
	clear(h.list[:n])
	h.list = h.list[n:]
	h.dead += n
	if h.dead > len(h.list) {
		if len(h.list) == 0 {
			h.list = nil
		} else {
			h.list = slices.Clone(h.list)
		}
		h.dead = 0
	}
}

// listInstanceLocked adds a new instance to EC2's listing order (launch
// time, then id). Launches come in clock order, so it goes at or near the
// end.
func (w *World) listInstanceLocked(in *Instance) {
	i, _ := slices.BinarySearchFunc(w.order, in, func(a, b *Instance) int {
		if c := a.LaunchTime.Compare(b.LaunchTime); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	w.order = slices.Insert(w.order, i, in)
	w.instsPeak = max(w.instsPeak, len(w.insts))
}

// forgetInstanceLocked drops an instance EC2 no longer shows.
func (w *World) forgetInstanceLocked(in *Instance) {
	if w.insts[in.ID] != in {
		return
	}
	delete(w.insts, in.ID)
	if f, ok := w.host.(Forgetter); ok {
		f.Forget(in.ID)
	}
	w.forgotten++
	if w.forgotten > len(w.order)/2 {
		w.order = slices.DeleteFunc(w.order, func(x *Instance) bool { return w.insts[x.ID] != x })
		if cap(w.order) > 2*len(w.order)+16 {
			w.order = slices.Clip(slices.Clone(w.order))
		}
		w.forgotten = 0
	}
	// A map never gives back its buckets: once it holds a quarter of its
	// peak, it moves to one of its size.
	if n := len(w.insts); w.instsPeak > 4*n+64 {
		insts := make(map[string]*Instance, n)
		for id, x := range w.insts {
			insts[id] = x
		}
		w.insts, w.instsPeak = insts, n
	}
}

// forgetHistoryLocked forgets the instances terminated longer than
// terminatedVisibility ago (unless a group still lists them) and the
// ended activities older than activityRetention.
func (w *World) forgetHistoryLocked() {
	now := w.clock.Now()
	n := 0
	for _, in := range w.gone.list {
		if now.Sub(in.terminatedAt) <= terminatedVisibility {
			break
		}
		n++
		if in.EC2State == EC2Terminated && !w.inGroupLocked(in) {
			w.forgetInstanceLocked(in)
		}
	}
	w.gone.drop(n)

	n = 0
	for _, a := range w.acts.list {
		if a.End.IsZero() || now.Sub(a.Start) <= activityRetention {
			break
		}
		n++
		// Activities are added to both lists in the same order, so a
		// group's oldest is the next one to go.
		if ga := w.groupActs[a.Group]; ga != nil && len(ga.list) > 0 && ga.list[0] == a {
			ga.drop(1)
			if len(ga.list) == 0 {
				delete(w.groupActs, a.Group)
			}
		}
	}
	w.acts.drop(n)
}
