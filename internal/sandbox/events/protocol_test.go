package events_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/events"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/sandboxtest"
)

const (
	lifecyclePattern = `{"source":["aws.autoscaling"],"detail-type":["EC2 Instance-terminate Lifecycle Action"],"detail":{"AutoScalingGroupName":["my-asg"]}}`
	function         = "arn:aws:lambda:us-east-1:123456789012:function:drain"
)

func (e *env) putRule(t *testing.T, name, pattern string) string {
	t.Helper()
	out, err := e.client.PutRule(t.Context(), &eventbridge.PutRuleInput{Name: aws.String(name), EventPattern: aws.String(pattern)})
	if err != nil {
		t.Fatalf("PutRule %s: %v", name, err)
	}
	return aws.ToString(out.RuleArn)
}

func (e *env) putTargets(t *testing.T, rule string, targets ...types.Target) {
	t.Helper()
	out, err := e.client.PutTargets(t.Context(), &eventbridge.PutTargetsInput{Rule: aws.String(rule), Targets: targets})
	if err != nil {
		t.Fatalf("PutTargets %s: %v", rule, err)
	}
	if out.FailedEntryCount != 0 {
		t.Fatalf("PutTargets %s: failed entries %+v", rule, out.FailedEntries)
	}
}

func TestRuleCRUD(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	arn := e.putRule(t, "drain", lifecyclePattern)
	if arn != "arn:aws:events:us-east-1:123456789012:rule/drain" {
		t.Errorf("RuleArn %s", arn)
	}
	if _, err := e.client.PutRule(ctx, &eventbridge.PutRuleInput{
		Name: aws.String("tick"), ScheduleExpression: aws.String("rate(1 minute)"),
		State: types.RuleStateDisabled, Description: aws.String("never fires in the sandbox"),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("ops")}},
	}); err != nil {
		t.Fatalf("schedule rule: %v", err)
	}

	d, err := e.client.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String("drain")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(d.Name) != "drain" || aws.ToString(d.Arn) != arn || aws.ToString(d.EventPattern) != lifecyclePattern ||
		d.State != types.RuleStateEnabled || aws.ToString(d.EventBusName) != "default" || aws.ToString(d.CreatedBy) != "123456789012" {
		t.Errorf("DescribeRule %+v", d)
	}

	l, err := e.client.ListRules(ctx, &eventbridge.ListRulesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Rules) != 2 || aws.ToString(l.Rules[1].Name) != "tick" || l.Rules[1].State != types.RuleStateDisabled ||
		aws.ToString(l.Rules[1].ScheduleExpression) != "rate(1 minute)" || aws.ToString(l.Rules[1].Description) != "never fires in the sandbox" {
		t.Errorf("ListRules %+v", l.Rules)
	}
	l, err = e.client.ListRules(ctx, &eventbridge.ListRulesInput{NamePrefix: aws.String("dr"), Limit: aws.Int32(1)})
	if err != nil || len(l.Rules) != 1 || l.NextToken != nil {
		t.Errorf("ListRules by prefix: %+v %v", l, err)
	}

	if _, err := e.client.DisableRule(ctx, &eventbridge.DisableRuleInput{Name: aws.String("drain")}); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.client.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String("drain")}); d.State != types.RuleStateDisabled {
		t.Errorf("after DisableRule: %s", d.State)
	}
	if _, err := e.client.EnableRule(ctx, &eventbridge.EnableRuleInput{Name: aws.String("drain")}); err != nil {
		t.Fatal(err)
	}

	e.putTargets(t, "drain", types.Target{Id: aws.String("fn"), Arn: aws.String(function)})
	_, err = e.client.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String("drain")})
	wantAPIError(t, err, "ValidationException", "Rule can't be deleted since it has targets.")
	rm, err := e.client.RemoveTargets(ctx, &eventbridge.RemoveTargetsInput{Rule: aws.String("drain"), Ids: []string{"fn"}})
	if err != nil || rm.FailedEntryCount != 0 {
		t.Fatalf("RemoveTargets: %+v %v", rm, err)
	}
	if _, err := e.client.DeleteRule(ctx, &eventbridge.DeleteRuleInput{Name: aws.String("drain")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String("drain")})
	wantAPIError(t, err, "ResourceNotFoundException", "Rule drain does not exist on EventBus default.")
}

func TestRuleErrors(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	cases := []struct {
		name string
		call func() error
		code string
		msg  string
	}{
		{"describe a missing rule", func() error {
			_, err := e.client.DescribeRule(ctx, &eventbridge.DescribeRuleInput{Name: aws.String("r")})
			return err
		}, "ResourceNotFoundException", "Rule r does not exist on EventBus default."},
		{"enable a missing rule", func() error {
			_, err := e.client.EnableRule(ctx, &eventbridge.EnableRuleInput{Name: aws.String("r")})
			return err
		}, "ResourceNotFoundException", "Rule r does not exist on EventBus default."},
		{"put targets on a missing rule", func() error {
			_, err := e.client.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("r"), Targets: []types.Target{{Id: aws.String("a"), Arn: aws.String(function)}}})
			return err
		}, "ResourceNotFoundException", "Rule r does not exist on EventBus default."},
		{"rule on a missing bus", func() error {
			_, err := e.client.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r"), EventPattern: aws.String(lifecyclePattern), EventBusName: aws.String("nope")})
			return err
		}, "ResourceNotFoundException", "Event bus nope does not exist."},
		{"invalid pattern", func() error {
			_, err := e.client.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r"), EventPattern: aws.String(`{"source":[{"numeric":[">",5,"<",1]}]}`)})
			return err
		}, "InvalidEventPatternException", "Event pattern is not valid. Reason: Bottom must be less than top"},
		{"pattern that is not JSON", func() error {
			_, err := e.client.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r"), EventPattern: aws.String(`source`)})
			return err
		}, "InvalidEventPatternException", ""},
		{"neither pattern nor schedule", func() error {
			_, err := e.client.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r")})
			return err
		}, "ValidationException", "Parameter(s) EventPattern or ScheduleExpression must be specified."},
		{"limit out of range", func() error {
			_, err := e.client.ListRules(ctx, &eventbridge.ListRulesInput{Limit: aws.Int32(0)})
			return err
		}, "ValidationException", ""},
		{"bad next token", func() error {
			_, err := e.client.ListRules(ctx, &eventbridge.ListRulesInput{NextToken: aws.String("!!")})
			return err
		}, "ValidationException", "The NextToken provided is invalid."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantAPIError(t, c.call(), c.code, c.msg) })
	}
}

func TestTargets(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.putRule(t, "r", lifecyclePattern)
	out, err := e.client.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("r"), Targets: []types.Target{
		{Id: aws.String("queue"), Arn: aws.String("arn:aws:sqs:us-east-1:123456789012:lifecycle"), InputPath: aws.String("$.detail"),
			DeadLetterConfig: &types.DeadLetterConfig{Arn: aws.String("arn:aws:sqs:us-east-1:123456789012:dlq")},
			RetryPolicy:      &types.RetryPolicy{MaximumRetryAttempts: aws.Int32(3), MaximumEventAgeInSeconds: aws.Int32(600)}},
		{Id: aws.String("fn"), Arn: aws.String(function), InputTransformer: &types.InputTransformer{
			InputPathsMap: map[string]string{"i": "$.detail.EC2InstanceId"}, InputTemplate: aws.String(`{"instance":<i>}`)}},
		{Id: aws.String("fifo"), Arn: aws.String("arn:aws:sqs:us-east-1:123456789012:q.fifo"), SqsParameters: &types.SqsParameters{MessageGroupId: aws.String("g")}},
		{Id: aws.String("ecs"), Arn: aws.String("arn:aws:ecs:us-east-1:123456789012:cluster/c"), EcsParameters: &types.EcsParameters{TaskDefinitionArn: aws.String("td")}},
		{Id: aws.String("bad id!"), Arn: aws.String(function)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if out.FailedEntryCount != 2 || len(out.FailedEntries) != 2 {
		t.Fatalf("failed entries %d %+v, want ecs and bad id!", out.FailedEntryCount, out.FailedEntries)
	}
	for _, f := range out.FailedEntries {
		if aws.ToString(f.ErrorCode) != "ValidationException" || aws.ToString(f.ErrorMessage) == "" {
			t.Errorf("failed entry %s: %s %s", aws.ToString(f.TargetId), aws.ToString(f.ErrorCode), aws.ToString(f.ErrorMessage))
		}
	}

	l, err := e.client.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String("r")})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Targets) != 3 {
		t.Fatalf("targets %+v", l.Targets)
	}
	fifo, fn, queue := l.Targets[0], l.Targets[1], l.Targets[2]
	if aws.ToString(queue.InputPath) != "$.detail" || aws.ToString(queue.DeadLetterConfig.Arn) != "arn:aws:sqs:us-east-1:123456789012:dlq" ||
		aws.ToInt32(queue.RetryPolicy.MaximumRetryAttempts) != 3 || aws.ToInt32(queue.RetryPolicy.MaximumEventAgeInSeconds) != 600 {
		t.Errorf("queue target %+v", queue)
	}
	if fn.InputTransformer == nil || fn.InputTransformer.InputPathsMap["i"] != "$.detail.EC2InstanceId" || aws.ToString(fn.InputTransformer.InputTemplate) != `{"instance":<i>}` {
		t.Errorf("function target %+v", fn)
	}
	if fifo.SqsParameters == nil || aws.ToString(fifo.SqsParameters.MessageGroupId) != "g" {
		t.Errorf("fifo target %+v", fifo)
	}

	// Paging, two at a time.
	page, err := e.client.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String("r"), Limit: aws.Int32(2)})
	if err != nil || len(page.Targets) != 2 || page.NextToken == nil {
		t.Fatalf("first page %+v %v", page, err)
	}
	page, err = e.client.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String("r"), Limit: aws.Int32(2), NextToken: page.NextToken})
	if err != nil || len(page.Targets) != 1 || aws.ToString(page.Targets[0].Id) != "queue" || page.NextToken != nil {
		t.Fatalf("second page %+v %v", page, err)
	}

	names, err := e.client.ListRuleNamesByTarget(ctx, &eventbridge.ListRuleNamesByTargetInput{TargetArn: aws.String(function)})
	if err != nil || len(names.RuleNames) != 1 || names.RuleNames[0] != "r" {
		t.Errorf("ListRuleNamesByTarget %+v %v", names, err)
	}

	// A rule takes five targets at most.
	_, err = e.client.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("r"), Targets: []types.Target{
		{Id: aws.String("a"), Arn: aws.String(function)}, {Id: aws.String("b"), Arn: aws.String(function)}, {Id: aws.String("c"), Arn: aws.String(function)},
	}})
	wantAPIError(t, err, "LimitExceededException", "The requested resource exceeds the maximum number allowed.")

	rm, err := e.client.RemoveTargets(ctx, &eventbridge.RemoveTargetsInput{Rule: aws.String("r"), Ids: []string{"fn", "ghost"}})
	if err != nil {
		t.Fatal(err)
	}
	if rm.FailedEntryCount != 1 || aws.ToString(rm.FailedEntries[0].TargetId) != "ghost" || aws.ToString(rm.FailedEntries[0].ErrorCode) != "ResourceNotFoundException" {
		t.Errorf("RemoveTargets %+v", rm.FailedEntries)
	}
}

func TestPutEvents(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.putRule(t, "orders", `{"source":["com.example.orders"],"detail-type":["Order Placed"],"detail":{"total":[{"numeric":[">",100]}]}}`)
	e.putTargets(t, "orders", types.Target{Id: aws.String("fn"), Arn: aws.String(function)})

	at := time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)
	out, err := e.client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{
		{Source: aws.String("com.example.orders"), DetailType: aws.String("Order Placed"), Detail: aws.String(`{"total":250}`), Time: &at, Resources: []string{"arn:aws:s3:::orders"}},
		{Source: aws.String("com.example.orders"), DetailType: aws.String("Order Placed"), Detail: aws.String(`{"total":5}`)},
		{Source: aws.String("aws.autoscaling"), DetailType: aws.String("EC2 Instance-terminate Lifecycle Action"), Detail: aws.String(`{"EC2InstanceId":"i-1"}`)},
		{Source: aws.String("com.example.orders"), DetailType: aws.String("Order Placed"), Detail: aws.String(`not json`)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if out.FailedEntryCount != 2 || len(out.Entries) != 4 {
		t.Fatalf("PutEvents %+v", out)
	}
	if aws.ToString(out.Entries[0].EventId) == "" || aws.ToString(out.Entries[1].EventId) == "" {
		t.Errorf("event ids %+v", out.Entries)
	}
	if c, m := aws.ToString(out.Entries[2].ErrorCode), aws.ToString(out.Entries[2].ErrorMessage); c != "NotAuthorizedForSourceException" || m != "Not authorized for the source." {
		t.Errorf("aws. source: %s %s", c, m)
	}
	if c := aws.ToString(out.Entries[3].ErrorCode); c != "MalformedDetail" {
		t.Errorf("malformed detail: %s", c)
	}
	invs := e.w.LambdaInvocations(0)
	if len(invs) != 1 || invs[0].EventID != aws.ToString(out.Entries[0].EventId) {
		t.Fatalf("invocations %+v, want the 250 order only", invs)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(invs[0].Payload), &ev); err != nil {
		t.Fatal(err)
	}
	if ev["time"] != "2026-03-01T12:30:00Z" || ev["source"] != "com.example.orders" || fmt.Sprint(ev["resources"]) != "[arn:aws:s3:::orders]" {
		t.Errorf("delivered %s", invs[0].Payload)
	}

	_, err = e.client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: make([]types.PutEventsRequestEntry, 11)})
	wantAPIError(t, err, "ValidationException", "")
}

func TestTestEventPattern(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	event := `{"id":"1","account":"123456789012","source":"aws.autoscaling","time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":[],
"detail-type":"EC2 Instance-terminate Lifecycle Action","detail":{"AutoScalingGroupName":"my-asg"}}`
	for _, c := range []struct {
		pattern string
		want    bool
	}{
		{lifecyclePattern, true},
		{`{"detail":{"AutoScalingGroupName":[{"anything-but":"my-asg"}]}}`, false},
	} {
		out, err := e.client.TestEventPattern(ctx, &eventbridge.TestEventPatternInput{EventPattern: aws.String(c.pattern), Event: aws.String(event)})
		if err != nil {
			t.Fatal(err)
		}
		if out.Result != c.want {
			t.Errorf("%s: %t, want %t", c.pattern, out.Result, c.want)
		}
	}
	_, err := e.client.TestEventPattern(ctx, &eventbridge.TestEventPatternInput{EventPattern: aws.String(lifecyclePattern), Event: aws.String(`{"source":"x"}`)})
	wantAPIError(t, err, "ValidationException", "Parameter Event is not valid.")
	_, err = e.client.TestEventPattern(ctx, &eventbridge.TestEventPatternInput{EventPattern: aws.String(`{"source":[]}`), Event: aws.String(event)})
	wantAPIError(t, err, "InvalidEventPatternException", "Event pattern is not valid. Reason: Empty arrays are not allowed")
}

func TestEventBuses(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	c, err := e.client.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("apps"), Description: aws.String("app events")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(c.EventBusArn) != "arn:aws:events:us-east-1:123456789012:event-bus/apps" {
		t.Errorf("EventBusArn %s", aws.ToString(c.EventBusArn))
	}
	_, err = e.client.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String("apps")})
	wantAPIError(t, err, "ResourceAlreadyExistsException", "Event bus apps already exists.")
	d, err := e.client.DescribeEventBus(ctx, &eventbridge.DescribeEventBusInput{Name: aws.String("apps")})
	if err != nil || aws.ToString(d.Description) != "app events" || d.CreationTime == nil {
		t.Errorf("DescribeEventBus %+v %v", d, err)
	}
	l, err := e.client.ListEventBuses(ctx, &eventbridge.ListEventBusesInput{})
	if err != nil || len(l.EventBuses) != 2 || aws.ToString(l.EventBuses[0].Name) != "apps" || aws.ToString(l.EventBuses[1].Name) != "default" {
		t.Errorf("ListEventBuses %+v %v", l, err)
	}
	if _, err := e.client.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("r"), EventBusName: aws.String("apps"), EventPattern: aws.String(`{"source":["app"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("r"), EventBusName: aws.String("apps"), Targets: []types.Target{{Id: aws.String("fn"), Arn: aws.String(function)}}}); err != nil {
		t.Fatal(err)
	}
	out, err := e.client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{
		{Source: aws.String("app"), DetailType: aws.String("x"), Detail: aws.String(`{}`), EventBusName: aws.String("apps")},
		{Source: aws.String("app"), DetailType: aws.String("x"), Detail: aws.String(`{}`)},
	}})
	if err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("PutEvents %+v %v", out, err)
	}
	if invs := e.w.LambdaInvocations(0); len(invs) != 1 || invs[0].EventID != aws.ToString(out.Entries[0].EventId) {
		t.Errorf("invocations %+v, want the apps event only", invs)
	}
	_, err = e.client.DeleteEventBus(ctx, &eventbridge.DeleteEventBusInput{Name: aws.String("default")})
	wantAPIError(t, err, "ValidationException", "Cannot delete event bus default.")
}

// post sends a raw request to the sandbox.
func (e *env) post(t *testing.T, target, contentType, body string) (int, map[string]any) {
	t.Helper()
	return postTo(t, e.url, target, contentType, body)
}

// postTo sends a raw request to url.
func postTo(t *testing.T, url, target, contentType, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		t.Errorf("Content-Type %q", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body %q: %v", b, err)
	}
	return resp.StatusCode, m
}

func TestWireErrors(t *testing.T) {
	e := newEnv(t)
	// The router sends another service's target to that service; the
	// EventBridge handler alone must still refuse it.
	alone, _ := sandboxtest.Serve(t, events.New(e.w))
	cases := []struct {
		name, target, body string
		wantType           string
	}{
		{"unknown operation", "AWSEvents.CreateArchive", `{}`, "com.amazon.coral.service#UnknownOperationException"},
		{"no operation", "AWSEvents", `{}`, "com.amazon.coral.service#UnknownOperationException"},
		{"other service", "DynamoDB_20120810.ListTables", `{}`, "com.amazon.coral.service#UnknownOperationException"},
		{"bad JSON", "AWSEvents.PutRule", `{"Name":`, "com.amazon.coral.service#SerializationException"},
		{"wrong member type", "AWSEvents.PutRule", `{"Name":5}`, "com.amazon.coral.service#SerializationException"},
		{"missing rule", "AWSEvents.DescribeRule", `{"Name":"r"}`, "com.amazonaws.eventbridge#ResourceNotFoundException"},
		{"no targets", "AWSEvents.PutTargets", `{"Rule":"r","Targets":[]}`, "com.amazonaws.eventbridge#ValidationException"},
		{"unmodelled bus option", "AWSEvents.CreateEventBus", `{"Name":"b","KmsKeyIdentifier":"k"}`, "com.amazonaws.eventbridge#ValidationException"},
		{"global endpoint", "AWSEvents.PutEvents", `{"EndpointId":"abc.xyz","Entries":[]}`, "com.amazonaws.eventbridge#ValidationException"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			url := e.url
			if !strings.HasPrefix(c.target, "AWSEvents") {
				url = alone
			}
			status, m := postTo(t, url, c.target, "application/x-amz-json-1.1", c.body)
			if status != http.StatusBadRequest || m["__type"] != c.wantType || m["message"] == "" {
				t.Errorf("status %d body %v, want 400 %s", status, m, c.wantType)
			}
		})
	}
	status, m := e.post(t, "AWSEvents.DescribeRule", "application/x-amz-json-1.1", `{"Name":"r"}`)
	if status != http.StatusBadRequest || m["message"] != "Rule r does not exist on EventBus default." {
		t.Errorf("missing rule: %d %v", status, m)
	}
	// An empty body is an empty input; botocore sends charset parameters.
	status, m = e.post(t, "AWSEvents.ListRules", "application/x-amz-json-1.1; charset=utf-8", ``)
	if status != http.StatusOK || m["Rules"] == nil {
		t.Errorf("ListRules with no body: %d %v", status, m)
	}
}
