package lease_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lease"
	"github.com/lifeguardhq/lifeguard/internal/lease/leasetest"
)

const (
	group   = "web"
	lease10 = 10 * time.Second
	poll    = time.Second
	margin  = 4 * time.Second
)

// span is one stretch of leader-only work.
type span struct {
	instance   string
	token      uint64
	deadline   time.Time
	start, end time.Time // end is zero while it runs
}

// cluster is N electors sharing one fake store, and the record of their
// work, checked as it happens: never two spans at once, tokens strictly
// increasing.
type cluster struct {
	t     *testing.T
	store *leasetest.Store
	start time.Time

	mu        sync.Mutex
	spans     []span
	lastToken uint64
	nodes     map[string]*node
	stopDelay time.Duration // how long the work takes to return once cancelled
	// wrap, when set, gives the store an instance's elector uses.
	wrap func(id string, cl *leasetest.Client) lease.Store
}

// node is one instance's elector.
type node struct {
	id     string
	e      *lease.Elector
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	elig   lease.Eligibility
	states []lease.State
}

func newCluster(t *testing.T) *cluster {
	return &cluster{t: t, store: &leasetest.Store{}, start: time.Now(), nodes: map[string]*node{}}
}

// since returns how long after the cluster's start t is.
func (c *cluster) since(t time.Time) time.Duration { return t.Sub(c.start) }

// work is the leader-only work of instance id: it records its span.
func (c *cluster) work(id string) func(context.Context, lease.Leadership) {
	return func(ctx context.Context, l lease.Leadership) {
		now := time.Now()
		c.mu.Lock()
		for _, s := range c.spans {
			if s.end.IsZero() {
				c.t.Errorf("at +%v %s starts leading (token %d) while %s still leads (token %d)", c.since(now), id, l.Token, s.instance, s.token)
			}
		}
		if l.Token <= c.lastToken {
			c.t.Errorf("at +%v %s leads with token %d after token %d", c.since(now), id, l.Token, c.lastToken)
		}
		c.lastToken = l.Token
		c.spans = append(c.spans, span{instance: id, token: l.Token, deadline: l.Deadline, start: now})
		i := len(c.spans) - 1
		delay := c.stopDelay
		c.mu.Unlock()

		<-ctx.Done()
		time.Sleep(delay)

		c.mu.Lock()
		c.spans[i].end = time.Now()
		c.mu.Unlock()
	}
}

// add starts an elector for id.
func (c *cluster) add(id string, edit ...func(*lease.Config)) *node {
	c.t.Helper()
	n := &node{id: id, elig: lease.Eligibility{State: lease.InService, Ready: true}}
	cfg := lease.Config{
		Group: group, Identity: id,
		Eligibility:      func() lease.Eligibility { n.mu.Lock(); defer n.mu.Unlock(); return n.elig },
		OnStartedLeading: c.work(id),
		Observers:        []func(lease.State){func(s lease.State) { n.mu.Lock(); n.states = append(n.states, s); n.mu.Unlock() }},
	}
	for _, f := range edit {
		f(&cfg)
	}
	cl := c.store.Client(id)
	var st lease.Store = cl
	if c.wrap != nil {
		st = c.wrap(id, cl)
	}
	e, err := lease.New(cfg, st, cl, slog.New(slog.NewTextHandler(c.t.Output(), nil)))
	if err != nil {
		c.t.Fatal(err)
	}
	n.e = e
	c.run(n)
	c.mu.Lock()
	c.nodes[id] = n
	c.mu.Unlock()
	return n
}

// run starts n's Run.
func (c *cluster) run(n *node) {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.done = cancel, make(chan struct{})
	go func() {
		defer close(n.done)
		if err := n.e.Run(ctx); err != nil {
			c.t.Errorf("Run of %s: %v", n.id, err)
		}
	}()
}

// stop cancels n's Run and waits for it to return.
func (n *node) stop() {
	n.cancel()
	<-n.done
}

// crash cuts n off the store, then stops it: nothing it does on the way
// out reaches the store, as when its process is killed.
func (c *cluster) crash(n *node) (restore func()) {
	restore = c.store.Inject(leasetest.Fault{Client: n.id, Err: leasetest.ErrUnreachable})
	n.stop()
	return restore
}

// stopAll stops every node still running.
func (c *cluster) stopAll() {
	c.mu.Lock()
	nodes := slices.Collect(func(yield func(*node) bool) {
		for _, n := range c.nodes {
			if !yield(n) {
				return
			}
		}
	})
	c.mu.Unlock()
	for _, n := range nodes {
		select {
		case <-n.done:
		default:
			n.stop()
		}
	}
}

func (n *node) setEligibility(e lease.Eligibility) {
	n.mu.Lock()
	n.elig = e
	n.mu.Unlock()
}

// leaders returns the ids of the nodes whose State says they lead.
func (c *cluster) leaders() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for id, n := range c.nodes {
		if n.e.State().Leading {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// leader returns the one leader, failing the test unless there is exactly
// one.
func (c *cluster) leader() *node {
	c.t.Helper()
	ids := c.leaders()
	if len(ids) != 1 {
		c.t.Fatalf("at +%v leaders %v; want exactly one", c.since(time.Now()), ids)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[ids[0]]
}

// spansCopy returns the spans so far.
func (c *cluster) spansCopy() []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.spans)
}

// lastSpan returns the latest span.
func (c *cluster) lastSpan() span {
	c.t.Helper()
	s := c.spansCopy()
	if len(s) == 0 {
		c.t.Fatal("nobody has led")
	}
	return s[len(s)-1]
}

// lastWrite returns when the last write by id that the store applied
// started... as seen by the store: the time of the call.
func (c *cluster) lastWrite(id string) time.Time {
	var at time.Time
	for _, call := range c.store.Calls() {
		if call.Client == id && (call.Op == leasetest.OpAcquire || call.Op == leasetest.OpRenew) && call.Err == nil {
			at = call.At
		}
	}
	return at
}

func TestOneLeaderAmongMany(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t)
		defer c.stopAll()
		for i := range 5 {
			c.add(fmt.Sprintf("i-%d", i))
		}
		synctest.Wait()
		first := c.leader()
		time.Sleep(59*time.Second + 500*time.Millisecond)
		if l := c.leader(); l != first {
			t.Fatalf("leader changed from %s to %s without any fault", first.id, l.id)
		}
		if s := c.spansCopy(); len(s) != 1 || s[0].token != 1 {
			t.Fatalf("spans %+v; want one, with token 1", s)
		}
		acquisitions := 0
		for _, r := range c.store.History(group) {
			if r.Token != 1 {
				t.Fatalf("record with token %d; want only token 1", r.Token)
			}
			acquisitions++
		}
		// One acquisition, then a renewal every 2 s.
		if want := 1 + 29; acquisitions != want {
			t.Errorf("%d writes in a minute; want %d", acquisitions, want)
		}
		// Followers read once per poll interval.
		reads := 0
		for _, call := range c.store.Calls() {
			if call.Op == leasetest.OpGet && call.Client != first.id {
				reads++
			}
		}
		if want := 4 * 60; reads != want {
			t.Errorf("%d follower reads in a minute; want one per second per follower (%d)", reads, want)
		}
	})
}

func TestCrashedLeaderIsTakenOverAfterLeasePlusOnePoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t)
		defer c.stopAll()
		for i := range 3 {
			c.add(fmt.Sprintf("i-%d", i))
		}
		time.Sleep(7*time.Second + 300*time.Millisecond) // mid-way between renewals
		old := c.leader()
		crashed := time.Now()
		lastWrite := c.lastWrite(old.id)
		c.crash(old)
		if r := c.store.Peek(group); r.Released || r.Holder != old.id {
			t.Fatalf("record after the crash %+v; want still held by %s", r, old.id)
		}
		time.Sleep(lease10 + poll + time.Millisecond)
		next := c.leader()
		s := c.lastSpan()
		if s.instance != next.id || s.token != 2 {
			t.Fatalf("last span %+v; want %s with token 2", s, next.id)
		}
		if took := s.start.Sub(crashed); took > lease10+poll {
			t.Errorf("take-over %v after the crash; want at most lease + one poll (%v)", took, lease10+poll)
		}
		if after := s.start.Sub(lastWrite); after < lease10 {
			t.Errorf("take-over %v after the crashed leader's last write; want at least a full lease (%v)", after, lease10)
		}
	})
}

func TestResignHandsOffWithinOnePoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t)
		c.stopDelay = 300 * time.Millisecond // the work takes a while to stop
		defer c.stopAll()
		for i := range 4 {
			c.add(fmt.Sprintf("i-%d", i))
		}
		time.Sleep(6*time.Second + 500*time.Millisecond)
		old := c.leader()
		resigned := time.Now()
		if err := old.e.Resign(t.Context()); err != nil {
			t.Fatalf("Resign: %v", err)
		}
		returned := time.Now()
		r := c.store.Peek(group)
		if !r.Released || r.Token != 1 || r.Holder != old.id {
			t.Fatalf("record after Resign %+v; want released by %s with token 1", r, old.id)
		}
		want := "i-0"
		if old.id == "i-0" {
			want = "i-1"
		}
		if r.Next != want {
			t.Errorf("named successor %q; want %q (live, eligible, lowest id among the most recent)", r.Next, want)
		}
		first := c.spansCopy()[0]
		if first.end.IsZero() || first.end.After(returned) || first.end.Sub(resigned) < c.stopDelay {
			t.Fatalf("old work ended at +%v (resigned +%v, Resign returned +%v); want it ended, after its stop delay, before Resign returned",
				c.since(first.end), c.since(resigned), c.since(returned))
		}
		for _, call := range c.store.Calls() {
			if call.Op == leasetest.OpRelease && call.Client == old.id && call.At.Before(first.end) {
				t.Errorf("release at +%v before the work returned at +%v", c.since(call.At), c.since(first.end))
			}
		}
		time.Sleep(poll + time.Millisecond)
		next := c.leader()
		if next.id != want {
			t.Errorf("new leader %s; want the named successor %s", next.id, want)
		}
		s := c.lastSpan()
		if gap := s.start.Sub(first.end); gap > poll {
			t.Errorf("hand-off gap %v; want at most one poll (%v)", gap, poll)
		}
		if s.token != 2 {
			t.Errorf("new token %d; want 2", s.token)
		}
		// The resigned instance does not come back for a lease duration,
		// even when it is the only one left.
		for _, n := range c.nodes {
			if n != old {
				n.stop()
			}
		}
		time.Sleep(poll)
		if got := c.leaders(); len(got) != 0 {
			t.Fatalf("leaders %v right after the others stopped; want none while the resigned one holds off", got)
		}
		time.Sleep(lease10)
		if l := c.leader(); l != old {
			t.Fatalf("leader %s; want %s back after its hold-off", l.id, old.id)
		}
	})
}

// skewed shifts the informational times a client writes, as a host whose
// clock is off would.
type skewed struct {
	*leasetest.Client
	by time.Duration
}

func (s skewed) Acquire(ctx context.Context, g string, c lease.Claim) (lease.Record, error) {
	c.LeaseEnd = c.LeaseEnd.Add(s.by)
	return s.Client.Acquire(ctx, g, c)
}

func (s skewed) Renew(ctx context.Context, g string, c lease.Claim) (lease.Record, error) {
	c.LeaseEnd = c.LeaseEnd.Add(s.by)
	return s.Client.Renew(ctx, g, c)
}

func TestLeaderCutOffGivesUpBeforeAnyoneTakesOver(t *testing.T) {
	for _, skew := range []time.Duration{0, time.Hour, -time.Hour} {
		t.Run(fmt.Sprintf("leader clock off by %v", skew), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newCluster(t)
				c.stopDelay = time.Second // the work needs a second to stop
				// Each host's clock is off by a different amount.
				offsets := map[string]time.Duration{"i-0": skew, "i-1": -skew, "i-2": skew / 2}
				c.wrap = func(id string, cl *leasetest.Client) lease.Store { return skewed{cl, offsets[id]} }
				defer c.stopAll()
				n0 := c.add("i-0")
				synctest.Wait()
				c.add("i-1")
				c.add("i-2")
				time.Sleep(5*time.Second + 500*time.Millisecond)
				if l := c.leader(); l != n0 {
					t.Fatalf("leader %s; want i-0", l.id)
				}
				heal := c.store.Inject(leasetest.Fault{Client: "i-0", Err: leasetest.ErrUnreachable})
				cut := time.Now()
				lastWrite := c.lastWrite("i-0")
				time.Sleep(lease10 + 2*poll)
				spans := c.spansCopy()
				old, next := spans[len(spans)-2], spans[len(spans)-1]
				if old.instance != "i-0" || next.instance == "i-0" {
					t.Fatalf("spans %+v; want i-0 followed by another", spans)
				}
				if old.end.IsZero() || !old.end.Before(next.start) {
					t.Fatalf("old leader's work ended at +%v, new one started at +%v; want the end first", c.since(old.end), c.since(next.start))
				}
				if deadline := lastWrite.Add(lease10 - margin); old.end.After(deadline.Add(c.stopDelay)) {
					t.Errorf("old work ended at +%v; want by its give-up time +%v plus its stop delay", c.since(old.end), c.since(deadline))
				}
				if !old.deadline.Before(next.start) {
					t.Errorf("old leadership's deadline +%v is not before the new start +%v", c.since(old.deadline), c.since(next.start))
				}
				if after := next.start.Sub(lastWrite); after < lease10 {
					t.Errorf("take-over %v after the old leader's last write; want at least a full lease", after)
				}
				if took := next.start.Sub(cut); took > lease10+poll {
					t.Errorf("take-over %v after the cut; want at most lease + one poll", took)
				}
				// Healed, the old leader follows.
				heal()
				time.Sleep(5 * time.Second)
				if l := c.leader(); l.id != next.instance {
					t.Errorf("after healing, leader %s; want %s", l.id, next.instance)
				}
			})
		})
	}
}

func TestAmbiguousWritesAreResolvedByReading(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults []leasetest.Fault
		// checks after 30 s
		leadsAt   time.Duration // when i-0 starts leading
		wantSpans int
	}{
		{
			name:    "acquisition applied, answer lost",
			faults:  []leasetest.Fault{{Client: "i-0", Ops: []leasetest.Op{leasetest.OpAcquire}, Lost: true, Count: 1}},
			leadsAt: 0, wantSpans: 1,
		},
		{
			name: "acquisition applied, answer lost, re-read failed: the next poll finds it",
			faults: []leasetest.Fault{
				{Client: "i-0", Ops: []leasetest.Op{leasetest.OpAcquire}, Lost: true, Count: 1},
				{Client: "i-0", Ops: []leasetest.Op{leasetest.OpGet}, Err: leasetest.ErrUnreachable, Skip: 1, Count: 1},
			},
			leadsAt: poll, wantSpans: 1,
		},
		{
			name:    "renewal applied, answer lost",
			faults:  []leasetest.Fault{{Client: "i-0", Ops: []leasetest.Op{leasetest.OpRenew}, Lost: true, Count: 3}},
			leadsAt: 0, wantSpans: 1,
		},
		{
			name: "renewal applied, answer lost, re-read failed: the next renewal's conflict shows it",
			faults: []leasetest.Fault{
				{Client: "i-0", Ops: []leasetest.Op{leasetest.OpRenew}, Lost: true, Count: 1},
				{Client: "i-0", Ops: []leasetest.Op{leasetest.OpGet}, Err: leasetest.ErrUnreachable, Skip: 1},
			},
			leadsAt: 0, wantSpans: 1,
		},
		{
			name:    "spurious conflicts on renewal",
			faults:  []leasetest.Fault{{Client: "i-0", Ops: []leasetest.Op{leasetest.OpRenew}, Conflict: true, Count: 2}},
			leadsAt: 0, wantSpans: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newCluster(t)
				defer c.stopAll()
				for _, f := range tc.faults {
					c.store.Inject(f)
				}
				c.add("i-0")
				synctest.Wait()
				time.Sleep(100 * time.Millisecond)
				c.add("i-1")
				time.Sleep(30 * time.Second)
				spans := c.spansCopy()
				if len(spans) != tc.wantSpans || spans[0].instance != "i-0" || spans[0].token != 1 {
					t.Fatalf("spans %+v; want %d, the first by i-0 with token 1", spans, tc.wantSpans)
				}
				if got := c.since(spans[0].start); got != tc.leadsAt {
					t.Errorf("i-0 leads from +%v; want +%v", got, tc.leadsAt)
				}
				if !spans[0].end.IsZero() {
					t.Errorf("i-0's work ended at +%v; want it still leading", c.since(spans[0].end))
				}
				for _, r := range c.store.History(group) {
					if r.Token != 1 {
						t.Fatalf("a record with token %d was written; want token 1 throughout", r.Token)
					}
				}
			})
		})
	}
}

func TestIneligibleInstances(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t)
		defer c.stopAll()
		a := c.add("i-a")
		a.setEligibility(lease.Eligibility{State: lease.InService, Ready: false})
		b := c.add("i-b")
		b.setEligibility(lease.Eligibility{State: "Pending:Wait", Ready: true})
		time.Sleep(30*time.Second + 500*time.Millisecond)
		if got := c.leaders(); len(got) != 0 {
			t.Fatalf("leaders %v; want none: nobody is both InService and ready", got)
		}
		b.setEligibility(lease.Eligibility{State: lease.InService, Ready: true})
		time.Sleep(poll)
		if l := c.leader(); l != b {
			t.Fatalf("leader %s; want i-b once it is InService and ready", l.id)
		}
		a.setEligibility(lease.Eligibility{State: lease.InService, Ready: true})
		time.Sleep(5 * time.Second) // let presence announce a's readiness
		b.setEligibility(lease.Eligibility{State: "Terminating:Wait", Ready: true})
		time.Sleep(2*poll + 1)
		if l := c.leader(); l != a {
			t.Fatalf("leader %s; want i-a after i-b left InService", l.id)
		}
		if r := c.store.History(group); r[len(r)-2].Next != "i-a" || !r[len(r)-2].Released {
			t.Errorf("release record %+v; want released naming i-a", r[len(r)-2])
		}
	})
}

func TestShutdownReleasesTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t)
		defer c.stopAll()
		a := c.add("i-a")
		synctest.Wait()
		c.add("i-b")
		time.Sleep(3 * time.Second)
		stopped := time.Now()
		a.stop()
		if r := c.store.Peek(group); !r.Released || r.Holder != "i-a" {
			t.Fatalf("record after i-a's Run returned %+v; want released by i-a", r)
		}
		time.Sleep(poll + time.Millisecond)
		c.leader()
		if s := c.lastSpan(); s.instance != "i-b" || s.start.Sub(stopped) > poll {
			t.Fatalf("last span %+v at +%v; want i-b within one poll of the shutdown", s, c.since(s.start))
		}
	})
}

func TestObserversFollowLeadership(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t)
		defer c.stopAll()
		var (
			mu             sync.Mutex
			releasedAtStop *bool
		)
		a := c.add("i-a", func(cfg *lease.Config) {
			cfg.Observers = append(cfg.Observers, func(s lease.State) {
				if !s.Leading && s.Holder == "i-a" {
					// Leadership ended: the lease must not be released yet
					// (marker removed, jobs stopped, then released).
					r := c.store.Peek(group)
					mu.Lock()
					v := r.Released
					releasedAtStop = &v
					mu.Unlock()
				}
			})
		})
		synctest.Wait()
		time.Sleep(3 * time.Second)
		st := a.e.State()
		if !st.Leading || st.Holder != "i-a" || st.Token != 1 || st.Checked.IsZero() {
			t.Fatalf("State = %+v; want leading, holder i-a, token 1, checked", st)
		}
		if want := time.Now().Round(0).Add(-time.Second).Add(lease10 - margin); !st.LeaseEnd.Equal(want) {
			t.Errorf("LeaseEnd = +%v; want +%v (last renewal at +2s, plus lease minus margin)", c.since(st.LeaseEnd), c.since(want))
		}
		b := c.add("i-b")
		time.Sleep(poll)
		if st := b.e.State(); st.Leading || st.Holder != "i-a" || st.Token != 1 || st.LeaseEnd.IsZero() {
			t.Fatalf("follower State = %+v; want not leading, holder i-a, token 1, a lease end", st)
		}
		if err := a.e.Resign(t.Context()); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		if releasedAtStop == nil || *releasedAtStop {
			t.Errorf("observer saw leadership end with the lease released=%v; want it told before the release", releasedAtStop)
		}
		mu.Unlock()
		a.mu.Lock()
		states := slices.Clone(a.states)
		a.mu.Unlock()
		var leading []bool
		for _, s := range states {
			if len(leading) == 0 || leading[len(leading)-1] != s.Leading {
				leading = append(leading, s.Leading)
			}
		}
		if !slices.Equal(leading, []bool{false, true, false}) {
			t.Errorf("leading as observed: %v; want false, true, false", leading)
		}
	})
}

func TestMembersListsLiveOnes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t)
		defer c.stopAll()
		a := c.add("i-a")
		b := c.add("i-b")
		b.setEligibility(lease.Eligibility{State: "Pending:Wait"})
		d := c.add("i-d")
		synctest.Wait()
		ids := func() []string {
			ms, err := a.e.Members(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, m := range ms {
				out = append(out, fmt.Sprintf("%s %s %v", m.Instance, m.State, m.Ready))
			}
			return out
		}
		time.Sleep(5*time.Second + time.Millisecond)
		if got, want := ids(), []string{"i-a InService true", "i-b Pending:Wait false", "i-d InService true"}; !slices.Equal(got, want) {
			t.Fatalf("members %v; want %v", got, want)
		}
		d.stop() // leaves
		if got, want := ids(), []string{"i-a InService true", "i-b Pending:Wait false"}; !slices.Equal(got, want) {
			t.Fatalf("members after i-d stopped %v; want %v", got, want)
		}
		c.store.Inject(leasetest.Fault{Client: "i-b", Ops: []leasetest.Op{leasetest.OpAnnounce}, Err: leasetest.ErrUnreachable})
		time.Sleep(14 * time.Second)
		if got := ids(); len(got) != 2 {
			t.Fatalf("members %v; want i-b still live 14 s after its last announcement", got)
		}
		time.Sleep(2 * time.Second)
		if got, want := ids(), []string{"i-a InService true"}; !slices.Equal(got, want) {
			t.Fatalf("members %v; want %v once i-b's announcements are three intervals old", got, want)
		}
	})
}

// TestChurn runs electors through random crashes, restarts, cuts,
// resignations and shutdowns; the cluster checks at every start that no
// two leaders overlap and tokens strictly increase.
func TestChurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t)
		c.stopDelay = 200 * time.Millisecond
		defer c.stopAll()
		rng := rand.New(rand.NewPCG(1, 2))
		ids := []string{"i-0", "i-1", "i-2", "i-3", "i-4"}
		for _, id := range ids {
			c.add(id)
		}
		heals := map[string]func(){} // instances cut off the store
		down := func(n *node) bool {
			select {
			case <-n.done:
				return true
			default:
				return heals[n.id] != nil
			}
		}
		for round := range 300 {
			time.Sleep(time.Duration(rng.IntN(12000)) * time.Millisecond)
			// Bring one instance back.
			for _, i := range rng.Perm(len(ids)) {
				if n := c.nodes[ids[i]]; down(n) {
					if h := heals[n.id]; h != nil {
						h()
						delete(heals, n.id)
					}
					select {
					case <-n.done:
						c.run(n)
					default:
					}
					break
				}
			}
			// Disrupt the leader.
			l := c.leaders()
			if len(l) != 1 {
				continue
			}
			n := c.nodes[l[0]]
			switch rng.IntN(5) {
			case 0: // killed
				heals[n.id] = c.crash(n)
			case 1:
				if err := n.e.Resign(t.Context()); err != nil {
					t.Errorf("round %d: Resign of %s: %v", round, n.id, err)
				}
			case 2: // network cut
				heals[n.id] = c.store.Inject(leasetest.Fault{Client: n.id, Err: leasetest.ErrUnreachable})
			case 3: // shut down
				n.stop()
			case 4: // slow store
				c.store.Inject(leasetest.Fault{Client: n.id, Delay: 1500 * time.Millisecond, Count: 3})
			}
		}
		var prev uint64
		acquisitions := 0
		for _, r := range c.store.History(group) {
			if r.Token < prev {
				t.Fatalf("token went from %d back to %d", prev, r.Token)
			}
			if r.Token > prev {
				if r.Token != prev+1 {
					t.Fatalf("token jumped from %d to %d", prev, r.Token)
				}
				acquisitions++
			}
			prev = r.Token
		}
		spans := c.spansCopy()
		t.Logf("%d acquisitions, %d leaderships over %v", acquisitions, len(spans), c.since(time.Now()))
		if len(spans) < 100 {
			t.Errorf("only %d leaderships; want the churn to move leadership often", len(spans))
		}
	})
}

// TestResignInARowNeverNamesAResigner: an instance that resigned sits out
// for a lease, so a second resignation soon after must not name it as the
// next holder (it would not take the lease, and the others would wait two
// polls for it): it is announced as not ready at once.
func TestResignInARowNeverNamesAResigner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t)
		defer c.stopAll()
		for i := range 4 {
			c.add(fmt.Sprintf("i-%d", i))
		}
		time.Sleep(6*time.Second + 500*time.Millisecond)
		first := c.leader()
		if err := first.e.Resign(t.Context()); err != nil {
			t.Fatalf("Resign: %v", err)
		}
		time.Sleep(poll + time.Millisecond)
		second := c.leader()
		if second == first {
			t.Fatalf("%s leads again right after resigning", first.id)
		}
		if err := second.e.Resign(t.Context()); err != nil {
			t.Fatalf("second Resign: %v", err)
		}
		r := c.store.Peek(group)
		if r.Next == first.id {
			t.Errorf("second resignation named %s, which resigned %v ago and sits out for a lease", first.id, poll)
		}
		ended := c.spansCopy()[1].end
		time.Sleep(poll + time.Millisecond)
		third := c.lastSpan()
		if third.instance == first.id || third.instance == second.id {
			t.Errorf("leader after two resignations is %s, one of the resigners", third.instance)
		}
		if gap := third.start.Sub(ended); gap > poll {
			t.Errorf("second hand-off gap %v; want at most one poll (%v)", gap, poll)
		}
	})
}
