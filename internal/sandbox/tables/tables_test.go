package tables_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/tables"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder keeps the owner's events.
type recorder struct {
	mu      sync.Mutex
	control []string
	data    map[string]int
}

func (r *recorder) Control(kind string, attrs map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.control = append(r.control, kind+" "+attrs["table"])
}

func (r *recorder) Data(kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.data == nil {
		r.data = map[string]int{}
	}
	r.data[kind]++
}

// fixedClock stands still; its timers fire only through fire.
type fixedClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []func()
}

type stopper struct{}

func (stopper) Stop() bool { return true }

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fixedClock) AfterFunc(d time.Duration, f func()) simclock.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timers = append(c.timers, f)
	return stopper{}
}

// advance moves the clock and runs the timers in this goroutine.
func (c *fixedClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	fs := c.timers
	c.timers = nil
	c.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

// av decodes an item written in DynamoDB's JSON form.
func av(t testing.TB, s string) tables.Item {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("test item %s: %v", s, err)
	}
	out := tables.Item{}
	for k, raw := range m {
		out[k] = value(t, raw)
	}
	return out
}

func value(t testing.TB, raw json.RawMessage) tables.Value {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || len(m) != 1 {
		t.Fatalf("test value %s: %v", raw, err)
	}
	for typ, v := range m {
		switch typ {
		case "S", "N":
			var s string
			_ = json.Unmarshal(v, &s)
			return tables.Value{Type: tables.Type(typ), Str: s}
		case "B":
			var s string
			_ = json.Unmarshal(v, &s)
			b, _ := base64.StdEncoding.DecodeString(s)
			return tables.B(b)
		case "BOOL":
			var b bool
			_ = json.Unmarshal(v, &b)
			return tables.Bool(b)
		case "NULL":
			return tables.Null()
		case "SS", "NS":
			var s []string
			_ = json.Unmarshal(v, &s)
			return tables.Value{Type: tables.Type(typ), Set: s}
		case "L":
			var l []json.RawMessage
			_ = json.Unmarshal(v, &l)
			out := tables.L()
			for _, e := range l {
				out.L = append(out.L, value(t, e))
			}
			return out
		case "M":
			return tables.M(av(t, string(v)))
		}
	}
	t.Fatalf("test value %s: unknown type", raw)
	return tables.Value{}
}

func ptr(s string) *string { return &s }

// newOwner returns an owner with an ACTIVE table "leases" keyed by pk (S).
func newOwner(t *testing.T) (*tables.Tables, *fixedClock, *recorder) {
	t.Helper()
	clock := &fixedClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	rec := &recorder{}
	o := tables.New(tables.Config{}, clock, rec)
	t.Cleanup(o.Close)
	if _, err := o.CreateTable(tables.TableSpec{
		Name: "leases", KeySchema: []tables.KeySchemaElement{{AttributeName: "pk", KeyType: "HASH"}},
		Attributes: []tables.AttributeDefinition{{AttributeName: "pk", AttributeType: "S"}}, BillingMode: tables.PayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	clock.advance(tables.DefaultCreateDelay)
	return o, clock, rec
}

func wantErr(t *testing.T, err error, code, msg string) {
	t.Helper()
	var e *tables.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v, want %s %q", err, code, msg)
	}
	if e.Code != code || (msg != "" && e.Message != msg) {
		t.Errorf("error %s: %q\nwant  %s: %q", e.Code, e.Message, code, msg)
	}
}

func sameItem(a, b tables.Item) bool { return tables.Equal(tables.M(a), tables.M(b)) }

func TestDynamoDBTableBecomesActiveAfterCreating(t *testing.T) {
	clock := &fixedClock{now: time.Unix(1e9, 0)}
	rec := &recorder{}
	o := tables.New(tables.Config{CreateDelay: 3 * time.Second}, clock, rec)
	d, err := o.CreateTable(tables.TableSpec{
		Name: "tb1", KeySchema: []tables.KeySchemaElement{{AttributeName: "pk", KeyType: "HASH"}, {AttributeName: "sk", KeyType: "RANGE"}},
		Attributes: []tables.AttributeDefinition{{AttributeName: "sk", AttributeType: "N"}, {AttributeName: "pk", AttributeType: "S"}},
		Throughput: &tables.Throughput{Read: 5, Write: 5},
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != "CREATING" || d.BillingMode != tables.Provisioned || d.ARN != "arn:aws:dynamodb:us-east-1:123456789012:table/tb1" {
		t.Errorf("created %+v", d)
	}
	_, err = o.PutItem(tables.PutItemInput{Table: "tb1", Item: av(t, `{"pk":{"S":"a"},"sk":{"N":"1"}}`)})
	wantErr(t, err, tables.CodeResourceNotFound, "Requested resource not found")
	_, err = o.DeleteTable("tb1")
	wantErr(t, err, tables.CodeResourceInUse, "")
	clock.advance(3 * time.Second)
	if d, _ := o.DescribeTable("tb1"); d.Status != "ACTIVE" {
		t.Errorf("status %s after the delay, want ACTIVE", d.Status)
	}
	if _, err := o.PutItem(tables.PutItemInput{Table: "tb1", Item: av(t, `{"pk":{"S":"a"},"sk":{"N":"1"},"x":{"S":"y"}}`)}); err != nil {
		t.Fatal(err)
	}
	_, err = o.CreateTable(tables.TableSpec{Name: "tb1", KeySchema: d.KeySchema, Attributes: d.Attributes, BillingMode: tables.PayPerRequest})
	wantErr(t, err, tables.CodeResourceInUse, "Table already exists: tb1")
	if _, err := o.UpdateTimeToLive("tb1", tables.TTL{AttributeName: "exp", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.DeleteTable("tb1"); err != nil {
		t.Fatal(err)
	}
	_, err = o.DescribeTable("tb1")
	wantErr(t, err, tables.CodeResourceNotFound, "Requested resource not found: Table: tb1 not found")
	want := []string{"table-created tb1", "table-active tb1", "ttl-updated tb1", "table-deleted tb1"}
	if len(rec.control) != len(want) {
		t.Fatalf("control events %v, want %v", rec.control, want)
	}
	for i := range want {
		if rec.control[i] != want[i] {
			t.Errorf("control event %d: %s, want %s", i, rec.control[i], want[i])
		}
	}
	if rec.data[tables.EventItemPut] != 1 {
		t.Errorf("data counts %v, want one PutItem", rec.data)
	}
}

func TestDynamoDBCreateTableValidation(t *testing.T) {
	hash := []tables.KeySchemaElement{{AttributeName: "pk", KeyType: "HASH"}}
	defS := []tables.AttributeDefinition{{AttributeName: "pk", AttributeType: "S"}}
	tp := &tables.Throughput{Read: 1, Write: 1}
	for _, tc := range []struct {
		name string
		spec tables.TableSpec
		want string
	}{
		{"short name", tables.TableSpec{Name: "ab", KeySchema: hash, Attributes: defS, Throughput: tp},
			"1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 3"},
		{"bad name", tables.TableSpec{Name: "a b c", KeySchema: hash, Attributes: defS, Throughput: tp},
			"1 validation error detected: Value 'a b c' at 'tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"},
		{"provisioned without throughput", tables.TableSpec{Name: "tbl", KeySchema: hash, Attributes: defS},
			"One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED"},
		{"on demand with throughput", tables.TableSpec{Name: "tbl", KeySchema: hash, Attributes: defS, BillingMode: tables.PayPerRequest, Throughput: tp},
			"One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"},
		{"unknown billing mode", tables.TableSpec{Name: "tbl", KeySchema: hash, Attributes: defS, BillingMode: "FREE"},
			"1 validation error detected: Value 'FREE' at 'billingMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]"},
		{"range first", tables.TableSpec{Name: "tbl", KeySchema: []tables.KeySchemaElement{{AttributeName: "pk", KeyType: "RANGE"}}, Attributes: defS, Throughput: tp},
			"Invalid KeySchema: The first KeySchemaElement is not a HASH key type"},
		{"undefined key attribute", tables.TableSpec{Name: "tbl", KeySchema: hash, Attributes: []tables.AttributeDefinition{{AttributeName: "x", AttributeType: "S"}}, Throughput: tp},
			"One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [pk], AttributeDefinitions: [x]"},
		{"extra definition", tables.TableSpec{Name: "tbl", KeySchema: hash, Attributes: append(defS, tables.AttributeDefinition{AttributeName: "x", AttributeType: "N"}), Throughput: tp},
			"One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions"},
		{"missing definition", tables.TableSpec{Name: "tbl", KeySchema: append(hash, tables.KeySchemaElement{AttributeName: "sk", KeyType: "RANGE"}), Attributes: defS, Throughput: tp},
			"Invalid KeySchema: Some index key attribute have no definition"},
		{"bad attribute type", tables.TableSpec{Name: "tbl", KeySchema: hash, Attributes: []tables.AttributeDefinition{{AttributeName: "pk", AttributeType: "BOOL"}}, Throughput: tp},
			"1 validation error detected: Value 'BOOL' at 'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tables.New(tables.Config{}, &fixedClock{}, nil)
			_, err := o.CreateTable(tc.spec)
			wantErr(t, err, tables.CodeValidation, tc.want)
		})
	}
}
