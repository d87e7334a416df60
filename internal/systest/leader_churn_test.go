package systest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/lifeguardhq/lifeguard/internal/awscloud"
	"github.com/lifeguardhq/lifeguard/internal/lease"
	isandbox "github.com/lifeguardhq/lifeguard/internal/sandbox"
)

// The lease cluster below runs real lease.Electors over the real
// awscloud.LeaseTable and the real SDK against an in-memory sandbox, one
// fault-injecting transport per instance, so that a churn run reaches
// hundreds of leadership changes (inside a synctest bubble, in simulated
// time) and a benchmark can measure with the default timings (outside a
// bubble, on the wall clock).

// netFaults is one instance's network, between its clients and the
// sandbox: dead (its process was killed: every request fails at once),
// cut (requests are lost: they fail when their context ends) or delay
// (every request reaches the sandbox that much later, even if the client
// has given up by then: a late packet).
type netFaults struct {
	next  http.RoundTripper
	late  *sync.WaitGroup // deliveries still under way, owned by the cluster
	onAns func(req, resp []byte, status int)

	mu    sync.Mutex
	dead  bool
	cut   bool
	delay time.Duration
	calls map[string]int // DynamoDB operation → requests sent to the lease table
}

var errDead = errors.New("connection refused: the instance's process is dead")

func (n *netFaults) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, err
	}
	op := strings.TrimPrefix(req.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	var in struct{ TableName string }
	_ = json.Unmarshal(body, &in)
	n.mu.Lock()
	dead, cut, delay := n.dead, n.cut, n.delay
	if !dead && in.TableName != fenceTable { // the lease table's calls only
		n.calls[op]++
	}
	n.mu.Unlock()
	switch {
	case dead:
		return nil, errDead
	case cut:
		<-req.Context().Done()
		return nil, req.Context().Err()
	}
	type answer struct {
		resp *http.Response
		err  error
	}
	deliver := func(ctx context.Context) answer {
		r := req.Clone(ctx)
		r.Body = io.NopCloser(bytes.NewReader(body))
		resp, err := n.next.RoundTrip(r)
		if err != nil {
			return answer{nil, err}
		}
		rb, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return answer{nil, err}
		}
		if n.onAns != nil {
			n.onAns(body, rb, resp.StatusCode)
		}
		resp.Body = io.NopCloser(bytes.NewReader(rb))
		return answer{resp, nil}
	}
	if delay == 0 {
		// Once sent, a request is answered whether or not its client
		// still waits, so that every write the table applied is seen.
		a := deliver(context.WithoutCancel(req.Context()))
		return a.resp, a.err
	}
	ch := make(chan answer, 1)
	n.late.Go(func() {
		time.Sleep(delay) // the network's latency
		ch <- deliver(context.WithoutCancel(req.Context()))
	})
	select {
	case a := <-ch:
		return a.resp, a.err
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
}

func (n *netFaults) set(f func(n *netFaults)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f(n)
}

// leaseNode is one instance: its elector and its network.
type leaseNode struct {
	id     string
	net    *netFaults
	el     *lease.Elector
	state  atomic.Value // lifecycle state, a string
	cancel context.CancelFunc
	done   chan struct{}
}

func (n *leaseNode) leading() bool { return n.el.State().Leading }

// jobRecord is one leadership's leader-only job: its token and when it
// started and ended.
type jobRecord struct {
	node       string
	token      uint64
	start, end time.Time
}

// fencedWrite is a guarded write as the table answered it (also when
// the client had given up: a late delivery); seq is the table's own
// order of the successful ones.
type fencedWrite struct {
	token uint64
	ok    bool
	seq   uint64
	at    time.Time
}

// leaseCluster runs leaseNodes against one sandbox.
type leaseCluster struct {
	t        testing.TB
	endpoint string
	tr       http.RoundTripper
	timings  lease.Config // Lease, RenewEvery, PollEvery
	late     sync.WaitGroup

	mu      sync.Mutex
	nodes   map[string]*leaseNode
	jobs    []*jobRecord
	writes  []fencedWrite
	retired map[string]int // calls of stopped nodes, by operation
	seq     int
}

const fenceTable = "reports"

func newLeaseCluster(t testing.TB, timings lease.Config) *leaseCluster {
	t.Helper()
	srv, err := isandbox.New(isandbox.Config{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	endpoint, stop, err := srv.Start()
	if err != nil {
		t.Fatal(err)
	}
	c := &leaseCluster{t: t, endpoint: endpoint, tr: srv.Transport(), timings: timings, nodes: map[string]*leaseNode{}, retired: map[string]int{}}
	t.Cleanup(func() {
		for _, n := range c.live() {
			c.stop(n.id, false)
		}
		c.late.Wait()
		if err := stop(); err != nil {
			t.Errorf("sandbox Run = %v", err)
		}
	})
	cfg := c.awsConfig(c.tr)
	ctx := context.Background()
	if err := awscloud.NewLeaseTable(cfg, "leases").Create(ctx); err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(cfg)
	if _, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(fenceTable),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	if err := dynamodb.NewTableExistsWaiter(db).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(fenceTable)}, time.Minute); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *leaseCluster) awsConfig(rt http.RoundTripper) aws.Config {
	return aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(c.endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("sandbox", "sandbox", ""),
		HTTPClient:  &http.Client{Transport: rt},
	}
}

// start runs an agent's elector as instance id (a new one, or one whose
// previous process was killed or stopped), InService and ready. Its
// leader-only job writes through the fencing condition every 500 ms.
func (c *leaseCluster) start(id string) *leaseNode {
	c.t.Helper()
	nf := &netFaults{next: c.tr, late: &c.late, calls: map[string]int{}, onAns: c.answered}
	n := &leaseNode{id: id, net: nf, done: make(chan struct{})}
	n.state.Store(lease.InService)
	cfg := c.awsConfig(nf)
	db := dynamodb.NewFromConfig(cfg)
	lc := c.timings
	lc.Group, lc.Identity = "web", id
	lc.Eligibility = func() lease.Eligibility { return lease.Eligibility{State: n.state.Load().(string), Ready: true} }
	lc.OnStartedLeading = func(ctx context.Context, l lease.Leadership) {
		j := &jobRecord{node: id, token: l.Token, start: time.Now()}
		c.mu.Lock()
		c.jobs = append(c.jobs, j)
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			j.end = time.Now()
			c.mu.Unlock()
		}()
		for ctx.Err() == nil {
			wctx, cancel := context.WithTimeout(ctx, time.Second)
			_, _ = db.UpdateItem(wctx, fencedUpdate(l.Token)) // its outcome is recorded as the table answers
			cancel()
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	table := awscloud.NewLeaseTable(cfg, "leases")
	el, err := lease.New(lc, table, table, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	n.el = el
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	c.mu.Lock()
	if _, ok := c.nodes[id]; ok {
		c.mu.Unlock()
		c.t.Fatalf("instance %s already runs", id)
	}
	c.nodes[id] = n
	c.mu.Unlock()
	go func() {
		defer close(n.done)
		_ = el.Run(ctx)
	}()
	return n
}

// fencedUpdate is the write of docs/leader.md's fencing example, plus a
// counter the table increments on each success, so that the successful
// writes can be put in the table's own order.
func fencedUpdate(token uint64) *dynamodb.UpdateItemInput {
	return &dynamodb.UpdateItemInput{
		TableName:                aws.String(fenceTable),
		Key:                      map[string]ddbtypes.AttributeValue{"id": &ddbtypes.AttributeValueMemberS{Value: "daily"}},
		UpdateExpression:         aws.String("SET #token = :mine, #seq = if_not_exists(#seq, :zero) + :one"),
		ConditionExpression:      aws.String("attribute_not_exists(#token) OR #token <= :mine"),
		ExpressionAttributeNames: map[string]string{"#token": "token", "#seq": "seq"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":mine": &ddbtypes.AttributeValueMemberN{Value: strconv.FormatUint(token, 10)},
			":zero": &ddbtypes.AttributeValueMemberN{Value: "0"},
			":one":  &ddbtypes.AttributeValueMemberN{Value: "1"},
		},
		ReturnValues: ddbtypes.ReturnValueUpdatedNew,
	}
}

// answered records the table's answer to a fenced write.
func (c *leaseCluster) answered(req, resp []byte, status int) {
	var in struct {
		TableName string
		Values    map[string]struct{ N string } `json:"ExpressionAttributeValues"`
	}
	if json.Unmarshal(req, &in) != nil || in.TableName != fenceTable {
		return
	}
	tok, err := strconv.ParseUint(in.Values[":mine"].N, 10, 64)
	if err != nil {
		return
	}
	w := fencedWrite{token: tok, at: time.Now()}
	var out struct {
		Type       string `json:"__type"`
		Attributes map[string]struct{ N string }
	}
	_ = json.Unmarshal(resp, &out)
	switch {
	case status == http.StatusOK:
		w.ok = true
		w.seq, _ = strconv.ParseUint(out.Attributes["seq"].N, 10, 64)
	case strings.HasSuffix(out.Type, "ConditionalCheckFailedException"):
	default:
		return // not answered by the condition (a throttle, a fault)
	}
	c.mu.Lock()
	c.writes = append(c.writes, w)
	c.mu.Unlock()
}

// kill ends instance id as SIGKILL would: nothing it sends reaches the
// table any more (requests already on the wire still may), its job stops
// at once, and nothing is released.
func (c *leaseCluster) kill(id string) { c.stop(id, true) }

// stop ends instance id; unless killed, the elector stops its job and
// releases the lease as an agent does on SIGTERM.
func (c *leaseCluster) stop(id string, killed bool) {
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	if n == nil {
		return
	}
	if killed {
		n.net.set(func(f *netFaults) { f.dead = true })
	} else {
		n.net.set(func(f *netFaults) { f.cut, f.delay = false, 0 })
	}
	n.cancel()
	<-n.done
	n.net.mu.Lock()
	c.mu.Lock()
	for op, k := range n.net.calls {
		c.retired[op] += k
	}
	c.mu.Unlock()
	n.net.mu.Unlock()
}

// newID names a new instance.
func (c *leaseCluster) newID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	return fmt.Sprintf("i-%017d", c.seq)
}

// live returns the running nodes, in id order.
func (c *leaseCluster) live() []*leaseNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*leaseNode
	for _, id := range slices.Sorted(maps.Keys(c.nodes)) {
		out = append(out, c.nodes[id])
	}
	return out
}

// leader returns the node whose elector leads, if any.
func (c *leaseCluster) leader() *leaseNode {
	for _, n := range c.live() {
		if n.leading() {
			return n
		}
	}
	return nil
}

// jobsSnapshot returns the job records so far, by start.
func (c *leaseCluster) jobsSnapshot() []jobRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]jobRecord, len(c.jobs))
	for i, j := range c.jobs {
		out[i] = *j
	}
	slices.SortStableFunc(out, func(a, b jobRecord) int { return a.start.Compare(b.start) })
	return out
}

// waitJob waits (polling every 10 ms of the cluster's clock) for a job
// with a token above after to start, and returns it.
func (c *leaseCluster) waitJob(after uint64, within time.Duration) (jobRecord, bool) {
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		for _, j := range c.jobsSnapshot() {
			if j.token > after {
				return j, true
			}
		}
	}
	return jobRecord{}, false
}

// checkInvariants checks the run's jobs and fenced writes: no two jobs
// act at overlapping times, tokens strictly increase with every new
// holder, and no fenced write with an older token succeeded after one with
// a newer token (in the table's own order). It returns the counts;
// overlaps counts the violations of the first and the last.
func (c *leaseCluster) checkInvariants(t testing.TB) (jobs, ok, refused, late, overlaps int) {
	t.Helper()
	js := c.jobsSnapshot()
	for i := 1; i < len(js); i++ {
		p, n := js[i-1], js[i]
		if p.end.IsZero() || p.end.After(n.start) {
			overlaps++
			t.Errorf("job of token %d on %s (%v – %v) overlaps the job of token %d on %s started %v", p.token, p.node, p.start, p.end, n.token, n.node, n.start)
		}
		if n.token <= p.token {
			t.Errorf("job of token %d on %s started after the job of token %d on %s: tokens must increase with each new holder", n.token, n.node, p.token, p.node)
		}
	}
	c.mu.Lock()
	ws := slices.Clone(c.writes)
	c.mu.Unlock()
	var oks []fencedWrite
	for _, w := range ws {
		if w.ok {
			oks = append(oks, w)
		} else {
			refused++
		}
	}
	slices.SortFunc(oks, func(a, b fencedWrite) int { return int(a.seq) - int(b.seq) })
	ends := map[uint64]time.Time{}
	for _, j := range js {
		ends[j.token] = j.end
	}
	for i, w := range oks {
		if w.seq != uint64(i+1) {
			t.Errorf("fenced write %d of the table's order has seq %d: a success went unrecorded", i+1, w.seq)
		}
		if i > 0 && w.token < oks[i-1].token {
			overlaps++
			t.Errorf("fenced write with token %d succeeded (seq %d) after one with token %d (seq %d)", w.token, w.seq, oks[i-1].token, oks[i-1].seq)
		}
		if e := ends[w.token]; !e.IsZero() && w.at.After(e) {
			late++
		}
	}
	return len(js), len(oks), refused, late, overlaps
}

// TestLeaderChurn is the invariant checker over a randomized churn run:
// instances killed with SIGKILL and restarted (some at once), leaders
// resigning, instances scaled in (through Terminating:Wait) and out,
// leaders cut off from the table, latency injected (requests that reach
// the table seconds after their client gave up). Every leadership's job
// records its token, start and end and writes through the token-guarded
// condition of docs/leader.md. It runs with the default timings (lease
// 10 s, renew 2 s, poll 1 s) in a synctest bubble, so the simulated hour
// or so of churn takes seconds. LIFEGUARD_CHURN_CHANGES raises the number
// of leadership changes (default 120); LIFEGUARD_CHURN_SEED replays a run.
func TestLeaderChurn(t *testing.T) {
	target := 120
	if s := os.Getenv("LIFEGUARD_CHURN_CHANGES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("LIFEGUARD_CHURN_CHANGES=%q: want a positive number", s)
		}
		target = v
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LIFEGUARD_CHURN_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("LIFEGUARD_CHURN_SEED=%q: want a number", s)
		}
		seed = v
	}
	t.Logf("seed %d (LIFEGUARD_CHURN_SEED replays the run's choices)", seed)
	synctest.Test(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(seed, seed))
		c := newLeaseCluster(t, lease.Config{})
		for range 3 {
			c.start(c.newID())
		}
		began := time.Now()
		counts := map[string]int{}
		type heal struct {
			at time.Time
			n  *leaseNode
		}
		var heals []heal
		var restarts []heal
		pickLeaderOr := func() *leaseNode {
			if l := c.leader(); l != nil && rng.IntN(4) > 0 {
				return l
			}
			live := c.live()
			return live[rng.IntN(len(live))]
		}
		for step := 0; len(c.jobsSnapshot()) < target; step++ {
			if step > 50*target {
				t.Fatalf("only %d leadership changes after %d steps", len(c.jobsSnapshot()), step)
			}
			now := time.Now()
			heals = slices.DeleteFunc(heals, func(h heal) bool {
				if now.Before(h.at) {
					return false
				}
				h.n.net.set(func(f *netFaults) { f.cut, f.delay = false, 0 })
				return true
			})
			restarts = slices.DeleteFunc(restarts, func(h heal) bool {
				if now.Before(h.at) {
					return false
				}
				c.start(h.n.id)
				counts["restarted"]++
				return true
			})
			live := c.live()
			switch r := rng.IntN(100); {
			case r < 30 && len(live) > 1: // kill -9, restarted at once or a little later
				n := pickLeaderOr()
				c.kill(n.id)
				counts["killed"]++
				restarts = append(restarts, heal{now.Add(time.Duration(rng.IntN(3000)) * time.Millisecond), n})
			case r < 50: // graceful hand-off
				if l := c.leader(); l != nil {
					// Bounded: an elector busy retrying a slow table takes a
					// resignation only between its calls.
					rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					err := l.el.Resign(rctx)
					cancel()
					if err != nil {
						t.Logf("resign of %s: %v", l.id, err)
					}
					counts["resigned"]++
				}
			case r < 62: // network cut
				n := pickLeaderOr()
				n.net.set(func(f *netFaults) { f.cut = true })
				heals = append(heals, heal{now.Add(time.Duration(2000+rng.IntN(18000)) * time.Millisecond), n})
				counts["cut"]++
			case r < 74: // latency, up to beyond the call timeout
				n := pickLeaderOr()
				d := time.Duration(100+rng.IntN(3500)) * time.Millisecond
				n.net.set(func(f *netFaults) { f.delay = d })
				heals = append(heals, heal{now.Add(time.Duration(2000+rng.IntN(15000)) * time.Millisecond), n})
				counts["latency"]++
			case r < 87 && len(live) > 2: // scale in: Terminating:Wait, then stopped
				n := pickLeaderOr()
				n.state.Store("Terminating:Wait")
				time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond) // the lifecycle's hand-off step
				c.stop(n.id, false)
				counts["scaled in"]++
			case len(live)+len(restarts) < 5: // scale out
				c.start(c.newID())
				counts["scaled out"]++
			}
			time.Sleep(time.Duration(500+rng.IntN(12000)) * time.Millisecond)
		}
		for _, h := range restarts {
			c.start(h.n.id)
		}
		for _, n := range c.live() {
			c.stop(n.id, false)
		}
		c.late.Wait()
		jobs, ok, refused, late, overlaps := c.checkInvariants(t)
		if jobs < target {
			t.Errorf("%d leaderships, want at least %d", jobs, target)
		}
		if ok == 0 {
			t.Errorf("no fenced write succeeded")
		}
		t.Logf("churn over %v of simulated time: %v", time.Since(began).Round(time.Second), counts)
		t.Logf("%d leaderships (%d leadership changes), %d jobs run; fenced writes: %d ok, %d refused, %d ok though delivered after their job ended; %d overlaps or out-of-order successes",
			jobs, jobs-1, jobs, ok, refused, late, overlaps)
	})
}
