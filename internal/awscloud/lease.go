package awscloud

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/lifeguardhq/lifeguard/internal/lease"
)

// Layout of a lease table: the partition key is the group, the sort key
// says what the item is. A group's lease record and its members' items
// share the partition, so one Query lists the members.
const (
	ltPK       = "pk"           // S: the group
	ltSK       = "sk"           // S: ltSortLease or ltMemberPrefix + instance
	ltHolder   = "holder"       // S
	ltToken    = "token"        // N: fencing token, bumped with ADD
	ltLeaseMS  = "lease_ms"     // N: lease duration in milliseconds
	ltVersion  = "version"      // S: record version
	ltReleased = "released"     // BOOL
	ltNext     = "next"         // S: successor named on release; absent when none
	ltEndMS    = "lease_end_ms" // N: informational lease end, Unix milliseconds
	ltInstance = "instance"     // S
	ltState    = "state"        // S
	ltReady    = "ready"        // BOOL
	ltRenewed  = "renewed_ms"   // N: Unix milliseconds

	ltSortLease    = "lease"
	ltMemberPrefix = "member#"
)

const (
	// createTableTimeout bounds CreateLeaseTable's wait for ACTIVE.
	createTableTimeout = 5 * time.Minute
	// tablePollInterval is the interval of DescribeTable while waiting.
	tablePollInterval = time.Second
)

// LeaseTable implements lease.Store and lease.Roster on one DynamoDB table
// with conditional writes: every write is conditioned on the record's
// version and asks for the old item on a failed condition, so a conflict
// needs no second read. Its zero value is not usable; call NewLeaseTable.
type LeaseTable struct {
	db    *dynamodb.Client
	table string
}

var (
	_ lease.Store  = (*LeaseTable)(nil)
	_ lease.Roster = (*LeaseTable)(nil)
)

// NewLeaseTable returns the lease store kept in table, using the SDK
// configuration cfg.
func NewLeaseTable(cfg aws.Config, table string) *LeaseTable {
	return &LeaseTable{db: dynamodb.NewFromConfig(cfg), table: table}
}

// Leases returns the lease store kept in table.
func (s Session) Leases(table string) *LeaseTable { return NewLeaseTable(s.cfg, table) }

// CreateLeaseTable creates the lease table name (see LeaseTable.Create).
func (s Session) CreateLeaseTable(ctx context.Context, name string) error {
	return NewLeaseTable(s.cfg, name).Create(ctx)
}

// Create creates the table (string keys pk and sk, on-demand billing),
// waits until it is ACTIVE, for at most createTableTimeout, and enables
// TTL on the run items' expires_at, so that old runs go. It is
// idempotent: a table that exists already (ResourceInUseException) is
// fine if its key schema is the lease table's, and an error naming the
// difference otherwise; TTL already enabled on expires_at is left as it
// is.
func (t *LeaseTable) Create(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, createTableTimeout)
	defer cancel()
	_, err := t.db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(t.table),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{
			{AttributeName: aws.String(ltPK), AttributeType: ddbtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String(ltSK), AttributeType: ddbtypes.ScalarAttributeTypeS},
		},
		KeySchema: []ddbtypes.KeySchemaElement{
			{AttributeName: aws.String(ltPK), KeyType: ddbtypes.KeyTypeHash},
			{AttributeName: aws.String(ltSK), KeyType: ddbtypes.KeyTypeRange},
		},
		BillingMode: ddbtypes.BillingModePayPerRequest,
	})
	var inUse *ddbtypes.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create lease table %s: %w", t.table, err)
	}
	for {
		out, err := t.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(t.table)})
		if err != nil {
			return fmt.Errorf("describe lease table %s: %w", t.table, err)
		}
		if err := checkLeaseKeySchema(t.table, out.Table); err != nil {
			return err
		}
		if out.Table.TableStatus == ddbtypes.TableStatusActive {
			return t.enableTTL(ctx)
		}
		timer := time.NewTimer(tablePollInterval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("lease table %s is %s, not yet ACTIVE: %w", t.table, out.Table.TableStatus, ctx.Err())
		case <-timer.C:
		}
	}
}

// enableTTL turns on TTL on the run items' expiry attribute (lgExpires),
// unless it is on (or being turned on) already: UpdateTimeToLive refuses
// to enable TTL twice. TTL on another attribute is left alone, named in
// the error.
func (t *LeaseTable) enableTTL(ctx context.Context) error {
	out, err := t.db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(t.table)})
	if err != nil {
		return fmt.Errorf("describe time to live of lease table %s: %w", t.table, err)
	}
	if d := out.TimeToLiveDescription; d != nil {
		switch d.TimeToLiveStatus {
		case ddbtypes.TimeToLiveStatusEnabled, ddbtypes.TimeToLiveStatusEnabling:
			if name := aws.ToString(d.AttributeName); name != lgExpires {
				return fmt.Errorf("lease table %s has TTL on attribute %s; run items expire by %s: disable TTL on the table, then create it again", t.table, name, lgExpires)
			}
			return nil
		}
	}
	_, err = t.db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(t.table),
		TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{AttributeName: aws.String(lgExpires), Enabled: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("enable TTL on %s of lease table %s: %w", lgExpires, t.table, err)
	}
	return nil
}

// checkLeaseKeySchema returns an error unless the table's keys are the lease
// table's.
func checkLeaseKeySchema(name string, td *ddbtypes.TableDescription) error {
	if td == nil {
		return fmt.Errorf("describe lease table %s: no table description", name)
	}
	var got []string
	for _, k := range td.KeySchema {
		got = append(got, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
	}
	types := map[string]ddbtypes.ScalarAttributeType{}
	for _, a := range td.AttributeDefinitions {
		types[aws.ToString(a.AttributeName)] = a.AttributeType
	}
	want := []string{ltPK + " " + string(ddbtypes.KeyTypeHash), ltSK + " " + string(ddbtypes.KeyTypeRange)}
	if strings.Join(got, ", ") != strings.Join(want, ", ") || types[ltPK] != ddbtypes.ScalarAttributeTypeS || types[ltSK] != ddbtypes.ScalarAttributeTypeS {
		return fmt.Errorf("table %s exists with key schema [%s]; a lease table needs [%s], both strings: name another table", name, strings.Join(got, ", "), strings.Join(want, ", "))
	}
	return nil
}

// leaseItemKey is the key of a group's lease record.
func leaseItemKey(group string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{ltPK: ddbS(group), ltSK: ddbS(ltSortLease)}
}

// Get implements lease.Store with a consistent read.
func (t *LeaseTable) Get(ctx context.Context, group string) (lease.Record, error) {
	out, err := t.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(t.table), Key: leaseItemKey(group), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return lease.Record{}, fmt.Errorf("get lease of %s from table %s: %w", group, t.table, err)
	}
	return t.decodeRecord(group, out.Item)
}

// Acquire implements lease.Store: one UpdateItem that bumps the token
// with ADD, conditioned on the version (or on there being no record).
func (t *LeaseTable) Acquire(ctx context.Context, group string, c lease.Claim) (lease.Record, error) {
	names := map[string]string{"#h": ltHolder, "#v": ltVersion, "#l": ltLeaseMS, "#r": ltReleased, "#e": ltEndMS, "#n": ltNext, "#t": ltToken}
	values := map[string]ddbtypes.AttributeValue{
		":h": ddbS(c.Holder), ":v": ddbS(c.Version), ":l": ddbMillis(c.Lease), ":f": &ddbtypes.AttributeValueMemberBOOL{Value: false},
		":e": ddbN(c.LeaseEnd.UnixMilli()), ":one": ddbN(1),
	}
	cond := "attribute_not_exists(#v)"
	if c.Prev != "" {
		cond, values[":prev"] = "#v = :prev", ddbS(c.Prev)
	}
	return t.update(ctx, "acquire", group, "SET #h = :h, #v = :v, #l = :l, #r = :f, #e = :e REMOVE #n ADD #t :one", cond, names, values)
}

// leaseHeldCondition is the condition of Renew and Release: the record is at
// the claim's version, held by its holder with its token, not released.
const leaseHeldCondition = "#v = :prev AND #h = :h AND #t = :t AND #r = :f"

// Renew implements lease.Store.
func (t *LeaseTable) Renew(ctx context.Context, group string, c lease.Claim) (lease.Record, error) {
	names := map[string]string{"#h": ltHolder, "#v": ltVersion, "#l": ltLeaseMS, "#r": ltReleased, "#e": ltEndMS, "#t": ltToken}
	values := map[string]ddbtypes.AttributeValue{
		":prev": ddbS(c.Prev), ":h": ddbS(c.Holder), ":t": ddbU(c.Token), ":f": &ddbtypes.AttributeValueMemberBOOL{Value: false},
		":v": ddbS(c.Version), ":l": ddbMillis(c.Lease), ":e": ddbN(c.LeaseEnd.UnixMilli()),
	}
	return t.update(ctx, "renew", group, "SET #v = :v, #l = :l, #e = :e", leaseHeldCondition, names, values)
}

// Release implements lease.Store: the record stays, marked released, so
// that the token is never reset.
func (t *LeaseTable) Release(ctx context.Context, group string, c lease.Claim) (lease.Record, error) {
	names := map[string]string{"#h": ltHolder, "#v": ltVersion, "#r": ltReleased, "#e": ltEndMS, "#t": ltToken, "#n": ltNext}
	values := map[string]ddbtypes.AttributeValue{
		":prev": ddbS(c.Prev), ":h": ddbS(c.Holder), ":t": ddbU(c.Token), ":f": &ddbtypes.AttributeValueMemberBOOL{Value: false},
		":v": ddbS(c.Version), ":true": &ddbtypes.AttributeValueMemberBOOL{Value: true}, ":e": ddbN(c.LeaseEnd.UnixMilli()),
	}
	update := "SET #v = :v, #r = :true, #e = :e REMOVE #n"
	if c.Next != "" {
		update, values[":n"] = "SET #v = :v, #r = :true, #e = :e, #n = :n", ddbS(c.Next)
	}
	return t.update(ctx, "release", group, update, leaseHeldCondition, names, values)
}

// update runs one conditional UpdateItem on a group's lease record and
// turns a failed condition into lease.ErrConflict with the old item.
func (t *LeaseTable) update(ctx context.Context, op, group, update, cond string, names map[string]string, values map[string]ddbtypes.AttributeValue) (lease.Record, error) {
	out, err := t.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(t.table),
		Key:                                 leaseItemKey(group),
		UpdateExpression:                    aws.String(update),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValues:                        ddbtypes.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: ddbtypes.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var failed *ddbtypes.ConditionalCheckFailedException
	switch {
	case errors.As(err, &failed):
		cur, derr := t.decodeRecord(group, failed.Item)
		if derr != nil {
			return lease.Record{}, derr
		}
		return cur, fmt.Errorf("%s lease of %s in table %s: %w (%w)", op, group, t.table, lease.ErrConflict, err)
	case err != nil:
		return lease.Record{}, fmt.Errorf("%s lease of %s in table %s: %w", op, group, t.table, err)
	}
	return t.decodeRecord(group, out.Attributes)
}

// decodeRecord reads a lease record item; no item is the zero Record.
func (t *LeaseTable) decodeRecord(group string, item map[string]ddbtypes.AttributeValue) (lease.Record, error) {
	if len(item) == 0 {
		return lease.Record{}, nil
	}
	d := itemDecoder{item: item}
	r := lease.Record{
		Holder:   d.text(ltHolder, true),
		Token:    d.unsigned(ltToken),
		Lease:    time.Duration(d.number(ltLeaseMS, true)) * time.Millisecond,
		Version:  d.text(ltVersion, true),
		Released: d.boolean(ltReleased),
		Next:     d.text(ltNext, false),
		LeaseEnd: time.UnixMilli(d.number(ltEndMS, false)).UTC(),
	}
	if _, ok := item[ltEndMS]; !ok {
		r.LeaseEnd = time.Time{}
	}
	if d.err != nil {
		return lease.Record{}, fmt.Errorf("lease record of %s in table %s: %w", group, t.table, d.err)
	}
	return r, nil
}

// Announce implements lease.Roster with an unconditional PutItem.
func (t *LeaseTable) Announce(ctx context.Context, group string, m lease.Member) error {
	_, err := t.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(t.table),
		Item: map[string]ddbtypes.AttributeValue{
			ltPK: ddbS(group), ltSK: ddbS(ltMemberPrefix + m.Instance),
			ltInstance: ddbS(m.Instance), ltState: ddbS(m.State),
			ltReady: &ddbtypes.AttributeValueMemberBOOL{Value: m.Ready}, ltRenewed: ddbN(m.Renewed.UnixMilli()),
		},
	})
	if err != nil {
		return fmt.Errorf("announce %s in group %s to table %s: %w", m.Instance, group, t.table, err)
	}
	return nil
}

// Leave implements lease.Roster.
func (t *LeaseTable) Leave(ctx context.Context, group, instance string) error {
	_, err := t.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(t.table),
		Key:       map[string]ddbtypes.AttributeValue{ltPK: ddbS(group), ltSK: ddbS(ltMemberPrefix + instance)},
	})
	if err != nil {
		return fmt.Errorf("remove %s from group %s in table %s: %w", instance, group, t.table, err)
	}
	return nil
}

// Members implements lease.Roster with a consistent Query of the group's
// member items.
func (t *LeaseTable) Members(ctx context.Context, group string) ([]lease.Member, error) {
	p := dynamodb.NewQueryPaginator(t.db, &dynamodb.QueryInput{
		TableName:                 aws.String(t.table),
		KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
		ExpressionAttributeNames:  map[string]string{"#pk": ltPK, "#sk": ltSK},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":pk": ddbS(group), ":prefix": ddbS(ltMemberPrefix)},
		ConsistentRead:            aws.Bool(true),
	})
	var out []lease.Member
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list members of group %s in table %s: %w", group, t.table, err)
		}
		for _, item := range page.Items {
			d := itemDecoder{item: item}
			m := lease.Member{
				Instance: d.text(ltInstance, true),
				State:    d.text(ltState, false),
				Ready:    d.boolean(ltReady),
				Renewed:  time.UnixMilli(d.number(ltRenewed, true)).UTC(),
			}
			if d.err != nil {
				return nil, fmt.Errorf("member item of group %s in table %s: %w", group, t.table, d.err)
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// itemDecoder reads typed attributes of an item, keeping the first error.
type itemDecoder struct {
	item map[string]ddbtypes.AttributeValue
	err  error
}

func (d *itemDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *itemDecoder) text(name string, required bool) string {
	switch v := d.item[name].(type) {
	case *ddbtypes.AttributeValueMemberS:
		return v.Value
	case nil:
		if required {
			d.fail("attribute %s missing", name)
		}
	default:
		d.fail("attribute %s is %T, want a string", name, v)
	}
	return ""
}

func (d *itemDecoder) number(name string, required bool) int64 {
	switch v := d.item[name].(type) {
	case *ddbtypes.AttributeValueMemberN:
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			d.fail("attribute %s: %w", name, err)
		}
		return n
	case nil:
		if required {
			d.fail("attribute %s missing", name)
		}
	default:
		d.fail("attribute %s is %T, want a number", name, v)
	}
	return 0
}

func (d *itemDecoder) unsigned(name string) uint64 {
	v, ok := d.item[name].(*ddbtypes.AttributeValueMemberN)
	if !ok {
		d.fail("attribute %s is %T, want a number", name, d.item[name])
		return 0
	}
	n, err := strconv.ParseUint(v.Value, 10, 64)
	if err != nil {
		d.fail("attribute %s: %w", name, err)
	}
	return n
}

func (d *itemDecoder) boolean(name string) bool {
	switch v := d.item[name].(type) {
	case *ddbtypes.AttributeValueMemberBOOL:
		return v.Value
	case nil:
		return false
	default:
		d.fail("attribute %s is %T, want a boolean", name, v)
	}
	return false
}

func ddbS(s string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: s} }

func ddbN(n int64) ddbtypes.AttributeValue {
	return &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func ddbU(n uint64) ddbtypes.AttributeValue {
	return &ddbtypes.AttributeValueMemberN{Value: strconv.FormatUint(n, 10)}
}

func ddbMillis(d time.Duration) ddbtypes.AttributeValue { return ddbN(d.Milliseconds()) }
