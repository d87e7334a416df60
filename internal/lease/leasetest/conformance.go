package leasetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lease"
)

// RunStoreTests checks that the lease.Store returned by open behaves as
// the interface says: conditional writes keyed on the record version,
// conflicts that return the current record, tokens that increase with
// every new holder and survive release, and at most one winner among
// concurrent acquisitions. open is called once per subtest; subtests use
// distinct groups, so open may return the same store every time.
func RunStoreTests(t *testing.T, open func(t *testing.T) lease.Store) {
	t.Run("missing record reads as the zero record", func(t *testing.T) {
		s, g := open(t), group(t)
		got, err := s.Get(t.Context(), g)
		if err != nil || got != (lease.Record{}) {
			t.Fatalf("Get = %+v, %v; want the zero record, nil", got, err)
		}
	})

	t.Run("first acquisition stores the claim with token 1", func(t *testing.T) {
		s, g := open(t), group(t)
		c := claim("i-a", "", "v1", 0)
		got := mustWrite(t, "acquire", s.Acquire, g, c)
		want := lease.Record{Holder: "i-a", Token: 1, Lease: c.Lease, Version: "v1", LeaseEnd: c.LeaseEnd}
		sameRecord(t, "Acquire", got, want)
		sameRecord(t, "Get", mustGet(t, s, g), want)
	})

	t.Run("acquire applies only at the version it is based on", func(t *testing.T) {
		s, g := open(t), group(t)
		first := mustWrite(t, "acquire", s.Acquire, g, claim("i-a", "", "v1", 0))
		for _, prev := range []string{"", "v0", "other"} {
			got, err := s.Acquire(t.Context(), g, claim("i-b", prev, "v2-"+prev, 0))
			if !errors.Is(err, lease.ErrConflict) {
				t.Fatalf("Acquire based on %q = %v; want ErrConflict", prev, err)
			}
			sameRecord(t, "conflict of Acquire based on "+prev, got, first)
		}
		sameRecord(t, "Get", mustGet(t, s, g), first)
		got := mustWrite(t, "acquire", s.Acquire, g, claim("i-b", "v1", "v2", 0))
		if got.Holder != "i-b" || got.Token != 2 || got.Version != "v2" {
			t.Fatalf("take-over = %+v; want holder i-b, token 2, version v2", got)
		}
	})

	t.Run("conflict on a missing record returns the zero record", func(t *testing.T) {
		s, g := open(t), group(t)
		got, err := s.Acquire(t.Context(), g, claim("i-a", "v0", "v1", 0))
		if !errors.Is(err, lease.ErrConflict) || got != (lease.Record{}) {
			t.Fatalf("Acquire based on a version of no record = %+v, %v; want the zero record, ErrConflict", got, err)
		}
		got, err = s.Renew(t.Context(), g, claim("i-a", "v0", "v1", 1))
		if !errors.Is(err, lease.ErrConflict) || got != (lease.Record{}) {
			t.Fatalf("Renew of no record = %+v, %v; want the zero record, ErrConflict", got, err)
		}
	})

	t.Run("renew keeps holder and token and changes version and lease end", func(t *testing.T) {
		s, g := open(t), group(t)
		mustWrite(t, "acquire", s.Acquire, g, claim("i-a", "", "v1", 0))
		c := claim("i-a", "v1", "v2", 1)
		c.Lease, c.LeaseEnd = 20*time.Second, c.LeaseEnd.Add(5*time.Second)
		got := mustWrite(t, "renew", s.Renew, g, c)
		want := lease.Record{Holder: "i-a", Token: 1, Lease: 20 * time.Second, Version: "v2", LeaseEnd: c.LeaseEnd}
		sameRecord(t, "Renew", got, want)
		sameRecord(t, "Get", mustGet(t, s, g), want)
	})

	t.Run("renew and release need version, holder and token", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			c    lease.Claim
		}{
			{"stale version", claim("i-a", "v0", "v9", 1)},
			{"other holder", claim("i-b", "v1", "v9", 1)},
			{"other token", claim("i-a", "v1", "v9", 2)},
		} {
			for _, op := range []string{"renew", "release"} {
				t.Run(op+" with "+tc.name, func(t *testing.T) {
					s, g := open(t), group(t)
					f := s.Renew
					if op == "release" {
						f = s.Release
					}
					first := mustWrite(t, "acquire", s.Acquire, g, claim("i-a", "", "v1", 0))
					got, err := f(t.Context(), g, tc.c)
					if !errors.Is(err, lease.ErrConflict) {
						t.Fatalf("%s = %v; want ErrConflict", op, err)
					}
					sameRecord(t, "conflict", got, first)
					sameRecord(t, "Get", mustGet(t, s, g), first)
				})
			}
		}
	})

	t.Run("release keeps holder and token, marks the lease released and names the successor", func(t *testing.T) {
		s, g := open(t), group(t)
		mustWrite(t, "acquire", s.Acquire, g, claim("i-a", "", "v1", 0))
		c := claim("i-a", "v1", "v2", 1)
		c.Next = "i-b"
		got := mustWrite(t, "release", s.Release, g, c)
		if got.Holder != "i-a" || got.Token != 1 || !got.Released || got.Next != "i-b" || got.Version != "v2" {
			t.Fatalf("Release = %+v; want holder i-a, token 1, released, next i-b, version v2", got)
		}
		sameRecord(t, "Get", mustGet(t, s, g), got)
		for _, op := range []string{"renew", "release"} {
			f := s.Renew
			if op == "release" {
				f = s.Release
			}
			if _, err := f(t.Context(), g, claim("i-a", "v2", "v3", 1)); !errors.Is(err, lease.ErrConflict) {
				t.Errorf("%s of a released lease = %v; want ErrConflict", op, err)
			}
		}
	})

	t.Run("release without a successor stores none", func(t *testing.T) {
		s, g := open(t), group(t)
		mustWrite(t, "acquire", s.Acquire, g, claim("i-a", "", "v1", 0))
		c := claim("i-a", "v1", "v2", 1)
		c.Next = "i-b"
		mustWrite(t, "release", s.Release, g, c)
		got := mustWrite(t, "acquire", s.Acquire, g, claim("i-c", "v2", "v3", 0))
		if got.Released || got.Next != "" || got.Holder != "i-c" || got.Token != 2 {
			t.Fatalf("Acquire after release = %+v; want holder i-c, token 2, not released, no successor", got)
		}
		got = mustWrite(t, "release", s.Release, g, claim("i-c", "v3", "v4", 2))
		if !got.Released || got.Next != "" {
			t.Fatalf("Release without successor = %+v; want released, no successor", got)
		}
	})

	t.Run("token increases with every new holder and survives release", func(t *testing.T) {
		s, g := open(t), group(t)
		steps := []struct {
			op     string
			holder string
			token  uint64 // claim token for renew/release
			want   uint64
		}{
			{"acquire", "i-a", 0, 1},
			{"renew", "i-a", 1, 1},
			{"release", "i-a", 1, 1},
			{"acquire", "i-a", 0, 2}, // the same instance again is a new holder
			{"acquire", "i-b", 0, 3}, // taken over after expiry
			{"renew", "i-b", 3, 3},
			{"release", "i-b", 3, 3},
			{"acquire", "i-c", 0, 4},
		}
		prev := ""
		for i, st := range steps {
			f := map[string]writeFunc{"acquire": s.Acquire, "renew": s.Renew, "release": s.Release}[st.op]
			v := fmt.Sprintf("v%d", i+1)
			got := mustWrite(t, st.op, f, g, claim(st.holder, prev, v, st.token))
			if got.Token != st.want || got.Holder != st.holder {
				t.Fatalf("step %d (%s by %s): record %+v; want holder %s, token %d", i, st.op, st.holder, got, st.holder, st.want)
			}
			prev = v
		}
	})

	t.Run("one of concurrent acquisitions wins", func(t *testing.T) {
		s, g := open(t), group(t)
		for round, prev := range []string{"", "v-round0"} {
			const n = 8
			var wg sync.WaitGroup
			results := make([]error, n)
			records := make([]lease.Record, n)
			for i := range n {
				wg.Go(func() {
					records[i], results[i] = s.Acquire(t.Context(), g, claim(fmt.Sprintf("i-%d", i), prev, fmt.Sprintf("v-round%d-%d", round, i), 0))
				})
			}
			wg.Wait()
			winner := -1
			for i, err := range results {
				switch {
				case err == nil && winner >= 0:
					t.Fatalf("round %d: both i-%d and i-%d acquired", round, winner, i)
				case err == nil:
					winner = i
				case !errors.Is(err, lease.ErrConflict):
					t.Fatalf("round %d: i-%d: %v; want success or ErrConflict", round, i, err)
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: nobody acquired", round)
			}
			cur := mustGet(t, s, g)
			if cur.Holder != fmt.Sprintf("i-%d", winner) || cur.Token != uint64(round+1) {
				t.Fatalf("round %d: record %+v; want holder i-%d, token %d", round, cur, winner, round+1)
			}
			for i, err := range results {
				if err != nil {
					sameRecord(t, fmt.Sprintf("round %d: conflict of i-%d", round, i), records[i], cur)
				}
			}
			if round == 0 {
				// Make the next round's base version known.
				c := claim(cur.Holder, cur.Version, "v-round0", cur.Token)
				mustWrite(t, "release", s.Release, g, c)
			}
		}
	})

	t.Run("groups are independent", func(t *testing.T) {
		s, g := open(t), group(t)
		a := mustWrite(t, "acquire", s.Acquire, g+"-a", claim("i-a", "", "v1", 0))
		b := mustWrite(t, "acquire", s.Acquire, g+"-b", claim("i-b", "", "v1", 0))
		if a.Token != 1 || b.Token != 1 {
			t.Fatalf("tokens %d and %d; want 1 in each group", a.Token, b.Token)
		}
		sameRecord(t, "Get a", mustGet(t, s, g+"-a"), a)
		sameRecord(t, "Get b", mustGet(t, s, g+"-b"), b)
	})
}

// RunRosterTests checks that the lease.Roster returned by open keeps one
// item per member and group. If the roster is also a lease.Store, it
// checks too that a group's lease record is not listed as a member.
func RunRosterTests(t *testing.T, open func(t *testing.T) lease.Roster) {
	at := time.UnixMilli(1735689600123).UTC()

	t.Run("a group without members lists none", func(t *testing.T) {
		r, g := open(t), group(t)
		got, err := r.Members(t.Context(), g)
		if err != nil || len(got) != 0 {
			t.Fatalf("Members = %v, %v; want none", got, err)
		}
	})

	t.Run("announcements are listed and replaced", func(t *testing.T) {
		r, g := open(t), group(t)
		a := lease.Member{Instance: "i-a", State: lease.InService, Ready: true, Renewed: at}
		b := lease.Member{Instance: "i-b", State: "Pending:Wait", Ready: false, Renewed: at.Add(time.Second)}
		for _, m := range []lease.Member{a, b} {
			if err := r.Announce(t.Context(), g, m); err != nil {
				t.Fatalf("Announce(%+v): %v", m, err)
			}
		}
		sameMembers(t, mustMembers(t, r, g), []lease.Member{a, b})
		b.State, b.Ready, b.Renewed = lease.InService, true, at.Add(2*time.Second)
		if err := r.Announce(t.Context(), g, b); err != nil {
			t.Fatal(err)
		}
		sameMembers(t, mustMembers(t, r, g), []lease.Member{a, b})
	})

	t.Run("leave removes the member, and leaving twice is fine", func(t *testing.T) {
		r, g := open(t), group(t)
		a := lease.Member{Instance: "i-a", State: lease.InService, Ready: true, Renewed: at}
		b := lease.Member{Instance: "i-b", State: lease.InService, Ready: true, Renewed: at}
		for _, m := range []lease.Member{a, b} {
			if err := r.Announce(t.Context(), g, m); err != nil {
				t.Fatal(err)
			}
		}
		for range 2 {
			if err := r.Leave(t.Context(), g, "i-a"); err != nil {
				t.Fatalf("Leave: %v", err)
			}
		}
		sameMembers(t, mustMembers(t, r, g), []lease.Member{b})
	})

	t.Run("groups are independent", func(t *testing.T) {
		r, g := open(t), group(t)
		a := lease.Member{Instance: "i-a", State: lease.InService, Ready: true, Renewed: at}
		if err := r.Announce(t.Context(), g+"-a", a); err != nil {
			t.Fatal(err)
		}
		if err := r.Announce(t.Context(), g+"-ab", a); err != nil {
			t.Fatal(err)
		}
		sameMembers(t, mustMembers(t, r, g+"-a"), []lease.Member{a})
		sameMembers(t, mustMembers(t, r, g+"-b"), nil)
	})

	t.Run("many members are all listed", func(t *testing.T) {
		r, g := open(t), group(t)
		var want []lease.Member
		for i := range 40 {
			m := lease.Member{Instance: fmt.Sprintf("i-%02d", i), State: lease.InService, Ready: i%2 == 0, Renewed: at}
			if err := r.Announce(t.Context(), g, m); err != nil {
				t.Fatal(err)
			}
			want = append(want, m)
		}
		sameMembers(t, mustMembers(t, r, g), want)
	})

	t.Run("the lease record is not a member", func(t *testing.T) {
		r, g := open(t), group(t)
		s, ok := r.(lease.Store)
		if !ok {
			t.Skip("the roster is not also a lease store")
		}
		mustWrite(t, "acquire", s.Acquire, g, claim("i-a", "", "v1", 0))
		sameMembers(t, mustMembers(t, r, g), nil)
	})
}

type writeFunc func(ctx context.Context, group string, c lease.Claim) (lease.Record, error)

// group returns a group name unique to the test.
func group(t *testing.T) string {
	return "conformance." + strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
}

// claim returns a claim with a 10 s lease and a millisecond lease end.
func claim(holder, prev, version string, token uint64) lease.Claim {
	return lease.Claim{
		Holder: holder, Prev: prev, Version: version, Token: token,
		Lease: 10 * time.Second, LeaseEnd: time.UnixMilli(1735689610000).UTC(),
	}
}

func mustWrite(t *testing.T, op string, f writeFunc, g string, c lease.Claim) lease.Record {
	t.Helper()
	rec, err := f(t.Context(), g, c)
	if err != nil {
		t.Fatalf("%s(%s, %+v): %v", op, g, c, err)
	}
	return rec
}

func mustGet(t *testing.T, s lease.Store, g string) lease.Record {
	t.Helper()
	rec, err := s.Get(t.Context(), g)
	if err != nil {
		t.Fatalf("Get(%s): %v", g, err)
	}
	return rec
}

func mustMembers(t *testing.T, r lease.Roster, g string) []lease.Member {
	t.Helper()
	ms, err := r.Members(t.Context(), g)
	if err != nil {
		t.Fatalf("Members(%s): %v", g, err)
	}
	return ms
}

// sameRecord compares records, times by instant.
func sameRecord(t *testing.T, what string, got, want lease.Record) {
	t.Helper()
	gotEnd, wantEnd := got.LeaseEnd, want.LeaseEnd
	got.LeaseEnd, want.LeaseEnd = time.Time{}, time.Time{}
	if got != want || !gotEnd.Equal(wantEnd) {
		got.LeaseEnd, want.LeaseEnd = gotEnd, wantEnd
		t.Fatalf("%s: record %+v; want %+v", what, got, want)
	}
}

// sameMembers compares member sets, in any order, times by instant.
func sameMembers(t *testing.T, got, want []lease.Member) {
	t.Helper()
	key := func(m lease.Member) string {
		return fmt.Sprintf("%s|%s|%v|%d", m.Instance, m.State, m.Ready, m.Renewed.UnixNano())
	}
	count := map[string]int{}
	for _, m := range want {
		count[key(m)]++
	}
	for _, m := range got {
		count[key(m)]--
	}
	for _, n := range count {
		if n != 0 {
			t.Fatalf("members %+v; want %+v", got, want)
		}
	}
}
