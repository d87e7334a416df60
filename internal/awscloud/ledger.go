package awscloud

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/lifeguardhq/lifeguard/internal/jobs"
)

// Layout of the run ledger in the lease table, in the group's partition
// (ltPK) next to its lease record and members:
//
//	sk = "run#<job>#<slot>"   one item per run: the claim and its outcome
//	sk = "runfence#<job>"     the highest token that claimed a run of job
//
// <slot> is the slot in UTC with nanoseconds at a fixed width, so that the
// sort key orders a job's runs by slot and Recent is one Query, newest
// first. Job names cannot contain '#' (jobs.ScheduledJob), so one job's
// prefix never matches another's.
const (
	lgRunPrefix   = "run#"
	lgFencePrefix = "runfence#"
	lgSlotFormat  = "2006-01-02T15:04:05.000000000Z"

	lgJob      = "job"        // S
	lgSlot     = "slot"       // S: RFC 3339 with nanoseconds
	lgToken    = "token"      // N
	lgInstance = "instance"   // S
	lgClaimed  = "claimed"    // S: RFC 3339 with nanoseconds
	lgEnded    = "ended"      // S: RFC 3339 with nanoseconds; absent until finished
	lgOutcome  = "outcome"    // S: absent until finished
	lgExpires  = "expires_at" // N: Unix seconds; a TTL attribute, if TTL is enabled on it
)

// DefaultRunRetention is how long run items are kept when the table has
// TTL enabled on expires_at: far longer than any missed-run window, since
// a slot whose item expired could be claimed again.
const DefaultRunRetention = 30 * 24 * time.Hour

// Ledger implements jobs.Ledger in the lease table, in the partition of
// one group. Its zero value is not usable; call NewLedger.
//
// Claim makes two conditional writes: an UpdateItem of the job's fence
// item (its token must not exceed ours), then a PutItem of the run item
// conditioned on attribute_not_exists, so that each (job, slot) is claimed
// once and a deposed leader is fenced off once a newer one has tried to
// claim. Finish is an UpdateItem of the run item; Recent a consistent
// Query of the job's run items, newest first. A run item carries
// expires_at (Unix seconds, claim time plus the retention) for a TTL
// enabled on that attribute; without TTL, items are kept.
type Ledger struct {
	db        *dynamodb.Client
	table     string
	group     string
	retention time.Duration
}

var _ jobs.Ledger = (*Ledger)(nil)

// NewLedger returns the run ledger of group kept in the lease table,
// using the SDK configuration cfg; retention 0 means DefaultRunRetention.
func NewLedger(cfg aws.Config, table, group string, retention time.Duration) *Ledger {
	if retention <= 0 {
		retention = DefaultRunRetention
	}
	return &Ledger{db: dynamodb.NewFromConfig(cfg), table: table, group: group, retention: retention}
}

// Ledger returns the run ledger of group kept in the lease table.
func (s Session) Ledger(table, group string) *Ledger { return NewLedger(s.cfg, table, group, 0) }

func (l *Ledger) runKey(job string, slot time.Time) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{ltPK: ddbS(l.group), ltSK: ddbS(lgRunPrefix + job + "#" + slot.UTC().Format(lgSlotFormat))}
}

// Claim implements jobs.Ledger.
func (l *Ledger) Claim(ctx context.Context, job string, slot time.Time, token uint64, instance string) (bool, error) {
	what := fmt.Sprintf("claim run of %s at %s in table %s", job, slot.UTC().Format(time.RFC3339Nano), l.table)
	_, err := l.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(l.table),
		Key:                                 map[string]ddbtypes.AttributeValue{ltPK: ddbS(l.group), ltSK: ddbS(lgFencePrefix + job)},
		UpdateExpression:                    aws.String("SET #t = :t"),
		ConditionExpression:                 aws.String("attribute_not_exists(#t) OR #t <= :t"),
		ExpressionAttributeNames:            map[string]string{"#t": lgToken},
		ExpressionAttributeValues:           map[string]ddbtypes.AttributeValue{":t": ddbU(token)},
		ReturnValuesOnConditionCheckFailure: ddbtypes.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var failed *ddbtypes.ConditionalCheckFailedException
	switch {
	case errors.As(err, &failed):
		d := itemDecoder{item: failed.Item}
		return false, fmt.Errorf("%s with token %d (a run was claimed with token %d): %w", what, token, d.unsigned(lgToken), jobs.ErrFenced)
	case err != nil:
		return false, fmt.Errorf("%s: fence: %w", what, err)
	}
	now := time.Now().UTC()
	item := l.runKey(job, slot)
	item[lgJob], item[lgSlot] = ddbS(job), ddbS(slot.UTC().Format(time.RFC3339Nano))
	item[lgToken], item[lgInstance] = ddbU(token), ddbS(instance)
	item[lgClaimed], item[lgExpires] = ddbS(now.Format(time.RFC3339Nano)), ddbN(now.Add(l.retention).Unix())
	_, err = l.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(l.table),
		Item:                                item,
		ConditionExpression:                 aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames:            map[string]string{"#pk": ltPK},
		ReturnValuesOnConditionCheckFailure: ddbtypes.ReturnValuesOnConditionCheckFailureAllOld,
	})
	switch {
	case errors.As(err, &failed):
		// Ours already, when an earlier attempt of this call (an SDK retry
		// after a lost answer) or of this leadership wrote it.
		d := itemDecoder{item: failed.Item}
		mine := d.unsigned(lgToken) == token && d.text(lgInstance, true) == instance
		if d.err != nil {
			return false, fmt.Errorf("%s: run item: %w", what, d.err)
		}
		return mine, nil
	case err != nil:
		return false, fmt.Errorf("%s: %w", what, err)
	}
	return true, nil
}

// Finish implements jobs.Ledger.
func (l *Ledger) Finish(ctx context.Context, job string, slot time.Time, outcome string, ended time.Time) error {
	_, err := l.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(l.table),
		Key:                       l.runKey(job, slot),
		UpdateExpression:          aws.String("SET #e = :e, #o = :o"),
		ConditionExpression:       aws.String("attribute_exists(#pk)"),
		ExpressionAttributeNames:  map[string]string{"#e": lgEnded, "#o": lgOutcome, "#pk": ltPK},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":e": ddbS(ended.UTC().Format(time.RFC3339Nano)), ":o": ddbS(outcome)},
	})
	var failed *ddbtypes.ConditionalCheckFailedException
	switch {
	case errors.As(err, &failed):
		return fmt.Errorf("finish run of %s at %s in table %s: no such run was claimed", job, slot.UTC().Format(time.RFC3339Nano), l.table)
	case err != nil:
		return fmt.Errorf("finish run of %s at %s in table %s: %w", job, slot.UTC().Format(time.RFC3339Nano), l.table, err)
	}
	return nil
}

// Recent implements jobs.Ledger with a consistent Query, newest slot
// first; the history is every run item the table keeps.
func (l *Ledger) Recent(ctx context.Context, job string, n int) ([]jobs.Record, error) {
	if n <= 0 {
		return nil, fmt.Errorf("recent runs of %s: n is %d; ask for at least 1", job, n)
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(l.table),
		KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
		ExpressionAttributeNames:  map[string]string{"#pk": ltPK, "#sk": ltSK},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":pk": ddbS(l.group), ":prefix": ddbS(lgRunPrefix + job + "#")},
		ConsistentRead:            aws.Bool(true),
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(int32(min(n, 1000))),
	}
	var out []jobs.Record
	for {
		page, err := l.db.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("recent runs of %s in table %s: %w", job, l.table, err)
		}
		for _, item := range page.Items {
			r, err := decodeRun(item)
			if err != nil {
				return nil, fmt.Errorf("run item of %s in table %s: %w", job, l.table, err)
			}
			out = append(out, r)
		}
		if len(out) >= n || len(page.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	return out[:min(n, len(out))], nil
}

// decodeRun reads a run item.
func decodeRun(item map[string]ddbtypes.AttributeValue) (jobs.Record, error) {
	d := itemDecoder{item: item}
	r := jobs.Record{
		Job:      d.text(lgJob, true),
		Token:    d.unsigned(lgToken),
		Instance: d.text(lgInstance, true),
		Outcome:  d.text(lgOutcome, false),
	}
	times := []struct {
		name     string
		required bool
		into     *time.Time
	}{{lgSlot, true, &r.Slot}, {lgClaimed, true, &r.Claimed}, {lgEnded, false, &r.Ended}}
	for _, tm := range times {
		s := d.text(tm.name, tm.required)
		if s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			d.fail("attribute %s: %w", tm.name, err)
		}
		*tm.into = t.UTC()
	}
	return r, d.err
}
