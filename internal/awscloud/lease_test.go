package awscloud_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/lifeguardhq/lifeguard/internal/awscloud"
	"github.com/lifeguardhq/lifeguard/internal/interop"
	"github.com/lifeguardhq/lifeguard/internal/lease"
	"github.com/lifeguardhq/lifeguard/internal/lease/leasetest"
	"github.com/lifeguardhq/lifeguard/internal/sandbox"
)

// leaseMoto starts moto_server on a free loopback port for the test and
// returns SDK configuration for it. Without moto_server the test is
// skipped loudly, and fails under CI=true.
func leaseMoto(t *testing.T) aws.Config {
	t.Helper()
	url := interop.Moto(t)
	tr := &http.Transport{}
	client := &http.Client{Transport: tr}
	t.Cleanup(tr.CloseIdleConnections)
	return aws.Config{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDLEASE", "lease-secret", ""),
		HTTPClient:   client,
	}
}

// newLeaseTable creates a lease table on moto, twice (creation is
// idempotent).
func newLeaseTable(t *testing.T, cfg aws.Config, name string) *awscloud.LeaseTable {
	t.Helper()
	tbl := awscloud.NewLeaseTable(cfg, name)
	for i := range 2 {
		if err := tbl.Create(t.Context()); err != nil {
			t.Fatalf("Create #%d: %v", i+1, err)
		}
	}
	return tbl
}

// serialized makes one call to a store at a time. moto_server handles
// requests on threads and evaluates a condition and applies the write
// without a lock, so two concurrent conditional writes on one item can
// both succeed there (DynamoDB applies each atomically). Serialized, the
// concurrent-acquisition test still checks what the adapter decides: that
// every write after the first fails its condition.
type serialized struct {
	mu sync.Mutex
	s  lease.Store
}

func (s *serialized) Get(ctx context.Context, g string) (lease.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.s.Get(ctx, g)
}

func (s *serialized) Acquire(ctx context.Context, g string, c lease.Claim) (lease.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.s.Acquire(ctx, g, c)
}

func (s *serialized) Renew(ctx context.Context, g string, c lease.Claim) (lease.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.s.Renew(ctx, g, c)
}

func (s *serialized) Release(ctx context.Context, g string, c lease.Claim) (lease.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.s.Release(ctx, g, c)
}

func TestLeaseTableConformance(t *testing.T) {
	cfg := leaseMoto(t)
	tbl := newLeaseTable(t, cfg, "lifeguard-leases")
	t.Run("store", func(t *testing.T) {
		s := &serialized{s: tbl}
		leasetest.RunStoreTests(t, func(*testing.T) lease.Store { return s })
	})
	t.Run("roster", func(t *testing.T) {
		leasetest.RunRosterTests(t, func(*testing.T) lease.Roster { return tbl })
	})
}

// TestLeaseTableConformanceOnSandbox runs the same suite against the
// sandbox's DynamoDB, which applies conditional writes atomically: no
// serialization here.
func TestLeaseTableConformanceOnSandbox(t *testing.T) {
	srv, err := sandbox.New(sandbox.Config{Listen: "127.0.0.1:0", NoProcesses: true})
	if err != nil {
		t.Fatal(err)
	}
	endpoint, stop, err := srv.Start()
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(func() { _ = stop(); tr.CloseIdleConnections() })
	cfg := aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint), HTTPClient: &http.Client{Transport: tr},
		Credentials: credentials.NewStaticCredentialsProvider("AKIDLEASE", "lease-secret", ""),
	}
	tbl := newLeaseTable(t, cfg, "lifeguard-leases")
	t.Run("store", func(t *testing.T) {
		leasetest.RunStoreTests(t, func(*testing.T) lease.Store { return tbl })
	})
	t.Run("roster", func(t *testing.T) {
		leasetest.RunRosterTests(t, func(*testing.T) lease.Roster { return tbl })
	})
}

func TestLeaseTableCreate(t *testing.T) {
	cfg := leaseMoto(t)
	db := dynamodb.NewFromConfig(cfg)
	newLeaseTable(t, cfg, "leases")
	out, err := db.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String("leases")})
	if err != nil {
		t.Fatal(err)
	}
	td := out.Table
	if td.TableStatus != ddbtypes.TableStatusActive || td.BillingModeSummary == nil || td.BillingModeSummary.BillingMode != ddbtypes.BillingModePayPerRequest {
		t.Errorf("table status %s, billing %+v; want ACTIVE, PAY_PER_REQUEST", td.TableStatus, td.BillingModeSummary)
	}
	var keys []string
	for _, k := range td.KeySchema {
		keys = append(keys, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
	}
	if got, want := strings.Join(keys, ", "), "pk HASH, sk RANGE"; got != want {
		t.Errorf("key schema %s; want %s", got, want)
	}
	// TTL is on for the run items' expires_at, and creating again (as
	// newLeaseTable did) leaves it on.
	ttl, err := db.DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String("leases")})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || d.TimeToLiveStatus != ddbtypes.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != "expires_at" {
		t.Errorf("time to live = %+v; want ENABLED on expires_at", d)
	}

	// A table of that name with other keys is refused, naming the fix.
	if _, err := db.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String("other"),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("LockID"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("LockID"), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	err = awscloud.NewLeaseTable(cfg, "other").Create(t.Context())
	if err == nil || !strings.Contains(err.Error(), "table other exists with key schema [LockID HASH]") || !strings.Contains(err.Error(), "name another table") {
		t.Fatalf("Create over a table with other keys = %v; want an error naming both schemas and the fix", err)
	}
}

func TestLeaseTableErrors(t *testing.T) {
	cfg := leaseMoto(t)
	tbl := awscloud.NewLeaseTable(cfg, "missing")
	_, err := tbl.Get(t.Context(), "web")
	var nf *ddbtypes.ResourceNotFoundException
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "get lease of web from table missing") {
		t.Fatalf("Get from a missing table = %v; want ResourceNotFoundException with context", err)
	}
	_, err = tbl.Acquire(t.Context(), "web", lease.Claim{Holder: "i-a", Version: "v1", Lease: time.Second})
	if errors.Is(err, lease.ErrConflict) || !errors.As(err, &nf) {
		t.Fatalf("Acquire in a missing table = %v; want ResourceNotFoundException, not a conflict", err)
	}
	// A conflict keeps the SDK's error next to the sentinel.
	tbl = newLeaseTable(t, cfg, "leases")
	if _, err := tbl.Acquire(t.Context(), "web", lease.Claim{Holder: "i-a", Version: "v1", Lease: time.Second}); err != nil {
		t.Fatal(err)
	}
	_, err = tbl.Acquire(t.Context(), "web", lease.Claim{Holder: "i-b", Version: "v2", Lease: time.Second})
	var ccf *ddbtypes.ConditionalCheckFailedException
	if !errors.Is(err, lease.ErrConflict) || !errors.As(err, &ccf) {
		t.Fatalf("conflicting Acquire = %v; want ErrConflict wrapping ConditionalCheckFailedException", err)
	}
}

// TestLeaseElectionOnMoto runs three electors on short timings and real
// time over the DynamoDB adapter: one leads, hands off on Resign, and the
// next leads with the next token. The electors share a serialized store,
// as moto does not apply conditional writes atomically.
func TestLeaseElectionOnMoto(t *testing.T) {
	cfg := leaseMoto(t)
	tbl := newLeaseTable(t, cfg, "leases")
	store := &serialized{s: tbl}

	type start struct {
		id    string
		token uint64
	}
	starts := make(chan start, 10)
	var (
		mu     sync.Mutex
		active int
	)
	work := func(id string) func(context.Context, lease.Leadership) {
		return func(ctx context.Context, l lease.Leadership) {
			mu.Lock()
			active++
			if active > 1 {
				t.Errorf("%s leads (token %d) while another leads", id, l.Token)
			}
			mu.Unlock()
			starts <- start{id, l.Token}
			<-ctx.Done()
			mu.Lock()
			active--
			mu.Unlock()
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	electors := map[string]*lease.Elector{}
	for i := range 3 {
		id := fmt.Sprintf("i-%d", i)
		e, err := lease.New(lease.Config{
			Group: "web", Identity: id,
			Lease: 1500 * time.Millisecond, RenewEvery: 250 * time.Millisecond, PollEvery: 250 * time.Millisecond, PresenceEvery: 250 * time.Millisecond,
			OnStartedLeading: work(id),
		}, store, tbl, nil)
		if err != nil {
			t.Fatal(err)
		}
		electors[id] = e
		wg.Go(func() { _ = e.Run(ctx) })
	}
	defer func() { cancel(); wg.Wait() }()

	wait := func(what string) start {
		t.Helper()
		select {
		case s := <-starts:
			return s
		case <-time.After(30 * time.Second):
			t.Fatalf("no leader within 30 s (%s)", what)
		}
		return start{}
	}
	first := wait("first election")
	if first.token != 1 {
		t.Fatalf("first leader %s has token %d; want 1", first.id, first.token)
	}
	// Let every member announce itself, so that the hand-off names one.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ms, err := electors[first.id].Members(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("members %+v; want three", ms)
		}
		time.Sleep(50 * time.Millisecond) // polling moto for the announcements
	}
	if err := electors[first.id].Resign(t.Context()); err != nil {
		t.Fatalf("Resign: %v", err)
	}
	rec, err := tbl.Get(t.Context(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Released || rec.Holder != first.id || rec.Next == "" || rec.Next == first.id {
		t.Fatalf("record after Resign %+v; want released by %s naming another member", rec, first.id)
	}
	second := wait("hand-off")
	if second.id != rec.Next || second.token != 2 {
		t.Fatalf("second leader %s with token %d; want the named %s with token 2", second.id, second.token, rec.Next)
	}
}
