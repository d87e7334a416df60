package leasetest_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/lease"
	"github.com/lifeguardhq/lifeguard/internal/lease/leasetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStoreConformance(t *testing.T) {
	leasetest.RunStoreTests(t, func(*testing.T) lease.Store { return &leasetest.Store{} })
}

func TestRosterConformance(t *testing.T) {
	leasetest.RunRosterTests(t, func(*testing.T) lease.Roster { return &leasetest.Store{} })
}

func TestFaults(t *testing.T) {
	claim := func(prev, version string) lease.Claim {
		return lease.Claim{Holder: "i-a", Prev: prev, Version: version, Lease: time.Second}
	}
	t.Run("lost answer: the write applies and the call fails", func(t *testing.T) {
		var s leasetest.Store
		s.Inject(leasetest.Fault{Ops: []leasetest.Op{leasetest.OpAcquire}, Lost: true, Count: 1})
		if _, err := s.Acquire(t.Context(), "g", claim("", "v1")); !errors.Is(err, leasetest.ErrLostAnswer) {
			t.Fatalf("Acquire = %v; want ErrLostAnswer", err)
		}
		if r := s.Peek("g"); r.Version != "v1" || r.Token != 1 {
			t.Fatalf("record %+v; want the lost write applied", r)
		}
		if _, err := s.Acquire(t.Context(), "g", claim("v1", "v2")); err != nil {
			t.Fatalf("second Acquire = %v; want the fault used up", err)
		}
	})
	t.Run("conflict: nothing applies and the current record comes back", func(t *testing.T) {
		var s leasetest.Store
		s.Inject(leasetest.Fault{Conflict: true, Skip: 1, Count: 1})
		first, err := s.Acquire(t.Context(), "g", claim("", "v1"))
		if err != nil {
			t.Fatalf("skipped call: %v", err)
		}
		got, err := s.Acquire(t.Context(), "g", claim("v1", "v2"))
		if !errors.Is(err, lease.ErrConflict) || got != first {
			t.Fatalf("Acquire = %+v, %v; want %+v, ErrConflict", got, err, first)
		}
		if r := s.Peek("g"); r != first {
			t.Fatalf("record %+v; want unchanged %+v", r, first)
		}
	})
	t.Run("faults target one client", func(t *testing.T) {
		var s leasetest.Store
		remove := s.Inject(leasetest.Fault{Client: "b", Err: leasetest.ErrUnreachable})
		if _, err := s.Client("a").Get(t.Context(), "g"); err != nil {
			t.Fatalf("client a: %v", err)
		}
		if _, err := s.Client("b").Get(t.Context(), "g"); !errors.Is(err, leasetest.ErrUnreachable) {
			t.Fatalf("client b: %v; want ErrUnreachable", err)
		}
		remove()
		if _, err := s.Client("b").Get(t.Context(), "g"); err != nil {
			t.Fatalf("client b after removal: %v", err)
		}
	})
	t.Run("delay: the call takes effect late, or not at all when its context ends", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var s leasetest.Store
			s.Inject(leasetest.Fault{Delay: 3 * time.Second})
			start := time.Now()
			if _, err := s.Acquire(t.Context(), "g", claim("", "v1")); err != nil || time.Since(start) != 3*time.Second {
				t.Fatalf("Acquire = %v after %v; want success after 3s", err, time.Since(start))
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			if _, err := s.Renew(ctx, "g", lease.Claim{Holder: "i-a", Prev: "v1", Version: "v2", Token: 1, Lease: time.Second}); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Renew = %v; want DeadlineExceeded", err)
			}
			if r := s.Peek("g"); r.Version != "v1" {
				t.Fatalf("record %+v; want the timed-out renewal not applied", r)
			}
		})
	})
	t.Run("claims no caller makes are refused", func(t *testing.T) {
		var s leasetest.Store
		for _, c := range []lease.Claim{{Prev: "", Version: "v1", Lease: time.Second}, {Holder: "i-a", Lease: time.Second}, {Holder: "i-a", Version: "v1"}} {
			if _, err := s.Acquire(t.Context(), "g", c); err == nil || errors.Is(err, lease.ErrConflict) {
				t.Errorf("Acquire(%+v) = %v; want a loud error", c, err)
			}
		}
		if _, err := s.Renew(t.Context(), "g", lease.Claim{Holder: "i-a", Version: "v1", Lease: time.Second}); err == nil || errors.Is(err, lease.ErrConflict) {
			t.Errorf("Renew with token 0 = %v; want a loud error", err)
		}
	})
}
