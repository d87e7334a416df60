package awscloud_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/lifeguardhq/lifeguard/internal/awscloud"
	"github.com/lifeguardhq/lifeguard/internal/jobs"
	"github.com/lifeguardhq/lifeguard/internal/jobs/jobstest"
	"github.com/lifeguardhq/lifeguard/internal/sandbox"
)

// serialLedger makes one call to a ledger at a time, for moto_server,
// which does not apply a conditional write atomically (see serialized):
// the concurrent-claims test then checks that every claim after the first
// fails its condition.
type serialLedger struct {
	mu sync.Mutex
	l  jobs.Ledger
}

func (s *serialLedger) Claim(ctx context.Context, job string, slot time.Time, token uint64, instance string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.l.Claim(ctx, job, slot, token, instance)
}

func (s *serialLedger) Finish(ctx context.Context, job string, slot time.Time, outcome string, ended time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.l.Finish(ctx, job, slot, outcome, ended)
}

func (s *serialLedger) Recent(ctx context.Context, job string, n int) ([]jobs.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.l.Recent(ctx, job, n)
}

func TestLedgerConformance(t *testing.T) {
	cfg := leaseMoto(t)
	newLeaseTable(t, cfg, "lifeguard-leases")
	l := &serialLedger{l: awscloud.NewLedger(cfg, "lifeguard-leases", "web", 0)}
	jobstest.RunLedgerTests(t, func(*testing.T) jobs.Ledger { return l })
}

// TestLedgerConformanceOnSandbox runs the suite against the sandbox's
// DynamoDB, which applies conditional writes atomically.
func TestLedgerConformanceOnSandbox(t *testing.T) {
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
	newLeaseTable(t, cfg, "lifeguard-leases")
	l := awscloud.NewLedger(cfg, "lifeguard-leases", "web", 0)
	jobstest.RunLedgerTests(t, func(*testing.T) jobs.Ledger { return l })
}

// TestLedgerItems checks the ledger's items as stored: where they live
// beside the lease record, what they hold, and that groups do not share
// runs.
func TestLedgerItems(t *testing.T) {
	cfg := leaseMoto(t)
	tbl := newLeaseTable(t, cfg, "leases")
	web := awscloud.NewLedger(cfg, "leases", "web", time.Hour)
	slot := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	before := time.Now()
	if ok, err := web.Claim(t.Context(), "report", slot, 12, "i-a"); !ok || err != nil {
		t.Fatalf("Claim = %v, %v", ok, err)
	}
	if err := web.Finish(t.Context(), "report", slot, "exit 0", slot.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(cfg)
	out, err := db.GetItem(t.Context(), &dynamodb.GetItemInput{
		TableName: aws.String("leases"), ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "web"}, "sk": &ddbtypes.AttributeValueMemberS{Value: "run#report#2025-03-04T05:06:07.000000000Z"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"job": "report", "slot": "2025-03-04T05:06:07Z", "token": "12", "instance": "i-a", "outcome": "exit 0", "ended": "2025-03-04T05:06:08Z"}
	for k, v := range want {
		var got string
		switch a := out.Item[k].(type) {
		case *ddbtypes.AttributeValueMemberS:
			got = a.Value
		case *ddbtypes.AttributeValueMemberN:
			got = a.Value
		}
		if got != v {
			t.Errorf("run item %s = %q; want %q (item %v)", k, got, v, out.Item)
		}
	}
	// Retention one hour after the claim, in Unix seconds.
	exp, ok := out.Item["expires_at"].(*ddbtypes.AttributeValueMemberN)
	var at int64
	if ok {
		at, _ = strconv.ParseInt(exp.Value, 10, 64)
	}
	if lo, hi := before.Add(time.Hour).Unix(), time.Now().Add(time.Hour).Unix(); at < lo || at > hi {
		t.Errorf("expires_at = %v; want Unix seconds between %d and %d", out.Item["expires_at"], lo, hi)
	}

	// The group's lease record is untouched, and another group has its own runs.
	if rec, err := tbl.Get(t.Context(), "web"); err != nil || rec.Exists() {
		t.Errorf("lease record of web = %+v, %v; want none", rec, err)
	}
	api := awscloud.NewLedger(cfg, "leases", "api", 0)
	if got, err := api.Recent(t.Context(), "report", 10); err != nil || len(got) != 0 {
		t.Errorf("api's runs of report = %+v, %v; want none", got, err)
	}
	if ok, err := api.Claim(t.Context(), "report", slot, 1, "i-b"); !ok || err != nil {
		t.Errorf("api's claim of the same slot with a lower token = %v, %v; want true (another group)", ok, err)
	}
}
