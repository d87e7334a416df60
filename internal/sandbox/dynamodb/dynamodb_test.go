package dynamodb_test

import (
	"context"
	"errors"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	sbdynamodb "github.com/lifeguardhq/lifeguard/internal/sandbox/dynamodb"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/tables"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is one tables owner behind one DynamoDB endpoint, driven by the real
// SDK, which checks every response's X-Amz-Crc32.
type env struct {
	clock  *simclock.Sim
	t      *tables.Tables
	client *dynamodb.Client
	url    string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{clock: simclock.NewSim()}
	e.t = tables.New(tables.Config{CreateDelay: time.Hour}, e.clock, nil)
	srv := httptest.NewServer(sbdynamodb.New(e.t))
	t.Cleanup(e.t.Close)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	e.client = dynamodb.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:       srv.Client(),
		RetryMaxAttempts: 1,
	})
	return e
}

// leaseTable creates the lease table of leader-lease.md and makes it ACTIVE.
func (e *env) leaseTable(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	out, err := e.client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("agent-leases"),
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.TableDescription.TableStatus != types.TableStatusCreating {
		t.Errorf("new table %s, want CREATING", out.TableDescription.TableStatus)
	}
	e.clock.Advance(time.Hour)
}

func wantAPIError(t *testing.T, err error, code, msg string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v, want API error %s", err, code)
	}
	if ae.ErrorCode() != code || (msg != "" && ae.ErrorMessage() != msg) {
		t.Errorf("error %s: %q\nwant  %s: %q", ae.ErrorCode(), ae.ErrorMessage(), code, msg)
	}
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }

func str(t *testing.T, item map[string]types.AttributeValue, k string) string {
	t.Helper()
	switch v := item[k].(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	case nil:
		return "<missing>"
	}
	t.Fatalf("%s is %T", k, item[k])
	return ""
}

func TestDynamoDBTableLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.leaseTable(t)
	d, err := e.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("agent-leases")})
	if err != nil {
		t.Fatal(err)
	}
	tb := d.Table
	if tb.TableStatus != types.TableStatusActive || aws.ToString(tb.TableArn) != "arn:aws:dynamodb:us-east-1:123456789012:table/agent-leases" ||
		tb.BillingModeSummary == nil || tb.BillingModeSummary.BillingMode != types.BillingModePayPerRequest || tb.CreationDateTime == nil ||
		len(tb.KeySchema) != 1 || aws.ToString(tb.KeySchema[0].AttributeName) != "pk" {
		t.Errorf("described %+v", tb)
	}
	_, err = e.client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("agent-leases"),
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	var inUse *types.ResourceInUseException
	if !errors.As(err, &inUse) {
		t.Errorf("second CreateTable: %v, want ResourceInUseException", err)
	}
	for _, name := range []string{"t-b", "t-a", "t-c"} {
		if _, err := e.client.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName: aws.String(name),
			KeySchema: []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}, {AttributeName: aws.String("at"), KeyType: types.KeyTypeRange}},
			AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String("at"), AttributeType: types.ScalarAttributeTypeN}},
			ProvisionedThroughput: &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(5), WriteCapacityUnits: aws.Int64(5)},
		}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	p := dynamodb.NewListTablesPaginator(e.client, &dynamodb.ListTablesInput{Limit: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		names = append(names, out.TableNames...)
	}
	if strings.Join(names, ",") != "agent-leases,t-a,t-b,t-c" || pages != 2 {
		t.Errorf("listed %v in %d pages", names, pages)
	}
	_, err = e.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("t-a"), Item: map[string]types.AttributeValue{"id": s("x"), "at": n("1")}})
	var notFound *types.ResourceNotFoundException
	if !errors.As(err, &notFound) || notFound.ErrorMessage() != "Requested resource not found" {
		t.Errorf("PutItem on a CREATING table: %v, want ResourceNotFoundException", err)
	}
	_, err = e.client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String("t-a")})
	wantAPIError(t, err, "ResourceInUseException", "")
	del, err := e.client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String("agent-leases")})
	if err != nil || del.TableDescription.TableStatus != types.TableStatusDeleting {
		t.Fatalf("DeleteTable: %v %+v", err, del)
	}
	_, err = e.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("agent-leases")})
	wantAPIError(t, err, "ResourceNotFoundException", "Requested resource not found: Table: agent-leases not found")
	_, err = e.client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("on-demand"),
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
	})
	wantAPIError(t, err, "ValidationException", "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED")
	_, err = e.client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("indexed"),
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		BillingMode:          types.BillingModePayPerRequest,
		Tags:                 []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}},
	})
	wantAPIError(t, err, "ValidationException", "")
}

func TestDynamoDBTimeToLiveIsStored(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.leaseTable(t)
	d, err := e.client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String("agent-leases")})
	if err != nil || d.TimeToLiveDescription.TimeToLiveStatus != types.TimeToLiveStatusDisabled {
		t.Fatalf("initial TTL %v %+v", err, d)
	}
	u, err := e.client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String("agent-leases"),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String("expires"), Enabled: aws.Bool(true)}})
	if err != nil || aws.ToString(u.TimeToLiveSpecification.AttributeName) != "expires" || !aws.ToBool(u.TimeToLiveSpecification.Enabled) {
		t.Fatalf("UpdateTimeToLive %v %+v", err, u)
	}
	d, err = e.client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String("agent-leases")})
	if err != nil || d.TimeToLiveDescription.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(d.TimeToLiveDescription.AttributeName) != "expires" {
		t.Fatalf("TTL after enabling %v %+v", err, d)
	}
	_, err = e.client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String("agent-leases"),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String("expires"), Enabled: aws.Bool(true)}})
	wantAPIError(t, err, "ValidationException", "TimeToLive is already enabled")
	// An expired TTL attribute does not remove the item.
	if _, err := e.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("agent-leases"), Item: map[string]types.AttributeValue{"pk": s("a"), "expires": n("1")}}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(72 * time.Hour)
	g, err := e.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("agent-leases"), Key: map[string]types.AttributeValue{"pk": s("a")}, ConsistentRead: aws.Bool(true)})
	if err != nil || g.Item == nil {
		t.Errorf("item with an expired TTL: %v %v, want it kept", err, g.Item)
	}
}

// TestDynamoDBLeaseOperations runs the lease's own calls from
// leader-lease.md §2: acquire, a competing acquire, take-over with the
// fencing token bumped, a consistent read, release and conditional delete.
func TestDynamoDBLeaseOperations(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.leaseTable(t)
	tbl := aws.String("agent-leases")
	key := map[string]types.AttributeValue{"pk": s("asg#web-prod#leader")}
	acquire := func(holder, now string) error {
		_, err := e.client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: tbl,
			Item: map[string]types.AttributeValue{"pk": s("asg#web-prod#leader"), "holder": s(holder), "epoch": n("42"),
				"expires_ms": n("1735689615000"), "rvn": s("9f1c")},
			ConditionExpression:                 aws.String("attribute_not_exists(#pk) OR #exp < :now"),
			ExpressionAttributeNames:            map[string]string{"#pk": "pk", "#exp": "expires_ms"},
			ExpressionAttributeValues:           map[string]types.AttributeValue{":now": n(now)},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		return err
	}
	if err := acquire("i-0abc123", "1735689600000"); err != nil {
		t.Fatalf("first acquire: %v", err)
	}
	err := acquire("i-0def456", "1735689600000")
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		t.Fatalf("competing acquire: %v, want ConditionalCheckFailedException", err)
	}
	if ccf.ErrorMessage() != "The conditional request failed" || str(t, ccf.Item, "holder") != "i-0abc123" {
		t.Errorf("competing acquire failed with %q and item %v", ccf.ErrorMessage(), ccf.Item)
	}

	takeover := func(me, oldRvn, now string) (*dynamodb.UpdateItemOutput, error) {
		return e.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                tbl,
			Key:                      key,
			UpdateExpression:         aws.String("SET #h = :me, #exp = :newExp, #rvn = :newRvn ADD #epoch :one"),
			ConditionExpression:      aws.String("attribute_not_exists(#pk) OR #exp < :now OR (#h = :me AND #rvn = :oldRvn)"),
			ExpressionAttributeNames: map[string]string{"#pk": "pk", "#h": "holder", "#exp": "expires_ms", "#rvn": "rvn", "#epoch": "epoch"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":me": s(me), ":newExp": n("1735689630000"), ":now": n(now),
				":newRvn": s("a2b3"), ":oldRvn": s(oldRvn), ":one": n("1")},
			ReturnValues:                        types.ReturnValueAllNew,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
	}
	if _, err := takeover("i-0def456", "nope", "1735689600000"); !errors.As(err, &ccf) {
		t.Errorf("take-over of a live lease: %v, want ConditionalCheckFailedException", err)
	}
	out, err := takeover("i-0def456", "nope", "1735689615001")
	if err != nil {
		t.Fatalf("take-over of an expired lease: %v", err)
	}
	if str(t, out.Attributes, "holder") != "i-0def456" || str(t, out.Attributes, "epoch") != "43" || str(t, out.Attributes, "rvn") != "a2b3" {
		t.Errorf("after take-over: %v", out.Attributes)
	}
	g, err := e.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: tbl, Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil || str(t, g.Item, "epoch") != "43" {
		t.Errorf("consistent read: %v %v", err, g.Item)
	}
	// Release by expiring, only while still held: the token survives.
	release := &dynamodb.UpdateItemInput{
		TableName: tbl, Key: key,
		UpdateExpression:          aws.String("SET #exp = :zero"),
		ConditionExpression:       aws.String("#h = :me AND #epoch = :myEpoch"),
		ExpressionAttributeNames:  map[string]string{"#h": "holder", "#epoch": "epoch", "#exp": "expires_ms"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": s("i-0def456"), ":myEpoch": n("43"), ":zero": n("0")},
		ReturnValues:              types.ReturnValueUpdatedNew,
	}
	rel, err := e.client.UpdateItem(ctx, release)
	if err != nil || len(rel.Attributes) != 1 || str(t, rel.Attributes, "expires_ms") != "0" {
		t.Fatalf("release: %v %v", err, rel)
	}
	release.ExpressionAttributeValues[":myEpoch"] = n("42")
	if _, err := e.client.UpdateItem(ctx, release); !errors.As(err, &ccf) || ccf.Item != nil {
		t.Errorf("release with a stale token: %v, want ConditionalCheckFailedException without an item", err)
	}
	// Conditional delete: only the holder with the current token.
	del := &dynamodb.DeleteItemInput{
		TableName: tbl, Key: key,
		ConditionExpression:       aws.String("#h = :me AND #epoch = :myEpoch"),
		ExpressionAttributeNames:  map[string]string{"#h": "holder", "#epoch": "epoch"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": s("i-0abc123"), ":myEpoch": n("43")},
		ReturnValues:              types.ReturnValueAllOld,
	}
	if _, err := e.client.DeleteItem(ctx, del); !errors.As(err, &ccf) {
		t.Errorf("delete by the old holder: %v, want ConditionalCheckFailedException", err)
	}
	del.ExpressionAttributeValues[":me"] = s("i-0def456")
	d, err := e.client.DeleteItem(ctx, del)
	if err != nil || str(t, d.Attributes, "holder") != "i-0def456" {
		t.Errorf("delete by the holder: %v %v", err, d)
	}
	g, err = e.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: tbl, Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil || g.Item != nil {
		t.Errorf("read after delete: %v %v, want no item", err, g.Item)
	}
}

func TestDynamoDBValidationErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.leaseTable(t)
	tbl := aws.String("agent-leases")
	key := map[string]types.AttributeValue{"pk": s("k")}
	for _, tc := range []struct {
		name string
		call func() error
		code string
		msg  string
	}{
		{"unused value", func() error {
			_, err := e.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: tbl, Item: key, ConditionExpression: aws.String("attribute_not_exists(pk)"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":x": s("1")}})
			return err
		}, "ValidationException", "1 validation error detected: Value provided in ExpressionAttributeValues unused in expressions: keys: {:x}"},
		{"undefined value", func() error {
			_, err := e.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: tbl, Key: key, ConditionExpression: aws.String("a = :x")})
			return err
		}, "ValidationException", "Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :x"},
		{"syntax", func() error {
			_, err := e.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: tbl, Key: key, UpdateExpression: aws.String("SET a = :v,"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":v": s("1")}})
			return err
		}, "ValidationException", `Invalid UpdateExpression: Syntax error; token: "<EOF>", near: ","`},
		{"wrong key", func() error {
			_, err := e.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: tbl, Key: map[string]types.AttributeValue{"id": s("k")}})
			return err
		}, "ValidationException", "The provided key element does not match the schema"},
		{"item without its key", func() error {
			_, err := e.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: tbl, Item: map[string]types.AttributeValue{"a": s("k")}})
			return err
		}, "ValidationException", "One or more parameter values were invalid: Missing the key pk in the item"},
		{"key of the wrong type", func() error {
			_, err := e.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: tbl, Item: map[string]types.AttributeValue{"pk": n("1")}})
			return err
		}, "ValidationException", "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N"},
		{"missing table", func() error {
			_, err := e.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("nope"), Key: key})
			return err
		}, "ResourceNotFoundException", "Requested resource not found"},
		{"bad number", func() error {
			_, err := e.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: tbl, Item: map[string]types.AttributeValue{"pk": s("k"), "n": n("12abc")}})
			return err
		}, "ValidationException", "The parameter cannot be converted to a numeric value: 12abc"},
		{"NULL false", func() error {
			_, err := e.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: tbl, Item: map[string]types.AttributeValue{"pk": s("k"), "z": &types.AttributeValueMemberNULL{Value: false}}})
			return err
		}, "ValidationException", "One or more parameter values were invalid: Null attribute value types must have the value of true"},
		{"legacy Expected", func() error {
			_, err := e.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: tbl, Item: key, Expected: map[string]types.ExpectedAttributeValue{"pk": {Exists: aws.Bool(false)}}})
			return err
		}, "ValidationException", ""},
		{"return values on put", func() error {
			_, err := e.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: tbl, Item: key, ReturnValues: types.ReturnValueUpdatedNew})
			return err
		}, "ValidationException", "Return values set to invalid value"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantAPIError(t, tc.call(), tc.code, tc.msg) })
	}
}

func TestDynamoDBQuery(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String("runs"),
		KeySchema: []types.KeySchemaElement{{AttributeName: aws.String("job"), KeyType: types.KeyTypeHash}, {AttributeName: aws.String("slot"), KeyType: types.KeyTypeRange}},
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("job"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("slot"), AttributeType: types.ScalarAttributeTypeN}},
		BillingMode: types.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	for i := 1; i <= 12; i++ {
		outcome := "ok"
		if i%3 == 0 {
			outcome = "failed"
		}
		if _, err := e.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("runs"), Item: map[string]types.AttributeValue{
			"job": s("backup"), "slot": n(strconv.Itoa(i * 10)), "outcome": s(outcome), "token": n(strconv.Itoa(i)),
		}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("runs"), Item: map[string]types.AttributeValue{"job": s("other"), "slot": n("15")}}); err != nil {
		t.Fatal(err)
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String("runs"),
		KeyConditionExpression:    aws.String("job = :j AND slot BETWEEN :lo AND :hi"),
		FilterExpression:          aws.String("outcome = :ok"),
		ProjectionExpression:      aws.String("slot, #t"),
		ExpressionAttributeNames:  map[string]string{"#t": "token"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":j": s("backup"), ":lo": n("20"), ":hi": n("100"), ":ok": s("ok")},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(4),
		ConsistentRead:            aws.Bool(true),
	}
	var slots []string
	scanned, pages := 0, 0
	p := dynamodb.NewQueryPaginator(e.client, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		scanned += int(out.ScannedCount)
		for _, it := range out.Items {
			if len(it) != 2 {
				t.Errorf("projected item %v, want slot and token", it)
			}
			slots = append(slots, str(t, it, "slot"))
		}
	}
	// 100..20 descending is 9 items; 90, 60 and 30 failed.
	if strings.Join(slots, ",") != "100,80,70,50,40,20" || scanned != 9 || pages != 3 {
		t.Errorf("slots %v, scanned %d in %d pages", slots, scanned, pages)
	}
	c, err := e.client.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("runs"), KeyConditionExpression: aws.String("job = :j AND begins_with(slot, :p)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":j": s("backup"), ":p": s("1")}})
	wantAPIError(t, err, "ValidationException", "One or more parameter values were invalid: Condition parameter type does not match schema type")
	c, err = e.client.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("runs"), KeyConditionExpression: aws.String("slot > :s AND job = :j"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":j": s("backup"), ":s": n("105")}, Select: types.SelectCount})
	if err != nil || c.Count != 2 || c.Items != nil {
		t.Errorf("count query: %v %+v", err, c)
	}
	_, err = e.client.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("runs"), KeyConditionExpression: aws.String("slot > :s"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": n("1")}})
	wantAPIError(t, err, "ValidationException", "Query condition missed key schema element: job")
	_, err = e.client.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("runs"), KeyConditionExpression: aws.String("job = :j OR slot > :s"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":j": s("backup"), ":s": n("1")}})
	wantAPIError(t, err, "ValidationException", "Invalid KeyConditionExpression: Invalid operator used in KeyConditionExpression: OR")
	_, err = e.client.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("runs"), KeyConditionExpression: aws.String("job = :j"), FilterExpression: aws.String("slot > :s"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":j": s("backup"), ":s": n("1")}})
	wantAPIError(t, err, "ValidationException", "Filter Expression can only contain non-primary key attributes: Primary key attribute: slot")
}

// TestDynamoDBWireShapes checks what the SDK does not: the checksum and
// content type of every answer, and the unknown-operation shape.
func TestDynamoDBWireShapes(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		target, body string
		status       int
		contains     string
	}{
		{"DynamoDB_20120810.ListTables", `{}`, 200, `{"TableNames":[]}`},
		{"DynamoDB_20120810.Scan", `{}`, 400, `"__type":"com.amazon.coral.service#UnknownOperationException"`},
		{"DynamoDB_20120810.GetItem", `{"TableName":"nope","Key":{"pk":{"S":"a"}}}`, 400, `{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"Requested resource not found"}`},
		{"DynamoDB_20120810.GetItem", `{"TableName":"abc","Key":{"pk":{"S":"a","N":"1"}}}`, 400, `"__type":"com.amazon.coral.validate#ValidationException","message":"Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"`},
		{"DynamoDB_20120810.GetItem", `{"TableName":"abc","Key":{"pk":{"S":1}}}`, 400, `"__type":"com.amazon.coral.service#SerializationException"`},
		{"DynamoDB_20120810.DescribeTable", `{}`, 400, `Value null at 'tableName' failed to satisfy constraint: Member must not be null`},
	} {
		req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(tc.body))
		req.Header.Set("X-Amz-Target", tc.target)
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.contains) {
			t.Errorf("%s %s: %d %s\nwant %d containing %s", tc.target, tc.body, resp.StatusCode, body, tc.status, tc.contains)
		}
		if got, want := resp.Header.Get("X-Amz-Crc32"), strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10); got != want {
			t.Errorf("%s: X-Amz-Crc32 %q, want %q", tc.target, got, want)
		}
		if resp.Header.Get("Content-Type") != "application/x-amz-json-1.0" || resp.Header.Get("x-amzn-RequestId") == "" {
			t.Errorf("%s: headers %v", tc.target, resp.Header)
		}
	}
}
