package messaging_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// ebEvent is an aws.autoscaling terminate lifecycle event with extra
// detail fields for every operator.
const ebEvent = `{"version":"0","id":"7bf73129-1428-4cd3-a780-95db273d1602","detail-type":"EC2 Instance-terminate Lifecycle Action",
"source":"aws.autoscaling","account":"123456789012","time":"2026-01-07T15:00:10Z","region":"us-east-1",
"resources":["arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:042cba90-ad2f-431c-9b4d-6d9055bcc9fb:autoScalingGroupName/my-asg"],
"detail":{"LifecycleActionToken":"87654321-4321-4321-4321-210987654321","AutoScalingGroupName":"my-asg",
"LifecycleHookName":"drain","EC2InstanceId":"i-1234567890abcdef0","LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING",
"Origin":"AutoScalingGroup","Destination":"EC2",
"count":5,"ratio":2.5,"account":123456789012,"flag":true,"nothing":null,"tags":["blue","green"],"ip":"10.0.1.7",
"items":[{"k":"a","v":1},{"k":"b","v":2}],"nested":{"deep":{"x":"y"}},"empty":[],"mixed":"HeLLo","star":"a*b"}}`

// ebLifecyclePattern is the pattern a lifecycle consumer puts on its rule.
const ebLifecyclePattern = `{"source":["aws.autoscaling"],"detail-type":["EC2 Instance-terminate Lifecycle Action"],"detail":{"AutoScalingGroupName":["my-asg"]}}`

// Rules and targets ------------------------------------------------------------

func ebCode(t *testing.T, err error, code, msg string) {
	t.Helper()
	var ae *awsproto.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v, want %s", err, code)
	}
	if ae.Code != code || (msg != "" && ae.Message != msg) {
		t.Errorf("error %s: %q\nwant  %s: %q", ae.Code, ae.Message, code, msg)
	}
}

func ebWorld(t *testing.T) *system {
	t.Helper()
	f := newFixture(t, world.Config{})
	return f.w
}

func ebPutRule(t *testing.T, w *system, name, pattern string) string {
	t.Helper()
	arn, err := w.PutRule(messaging.PutRuleInput{Name: name, EventPattern: pattern})
	if err != nil {
		t.Fatalf("PutRule %s: %v", name, err)
	}
	return arn
}

const ebFunction = "arn:aws:lambda:us-east-1:123456789012:function:drain"

func ebPutTarget(t *testing.T, w *system, rule string, target messaging.EventTarget) {
	t.Helper()
	failed, err := w.PutTargets("", rule, []messaging.EventTarget{target})
	if err != nil || len(failed) > 0 {
		t.Fatalf("PutTargets %s: %v %+v", rule, err, failed)
	}
}

func TestEBRuleLifecycle(t *testing.T) {
	w := ebWorld(t)
	arn := ebPutRule(t, w, "drain", ebLifecyclePattern)
	if arn != "arn:aws:events:us-east-1:123456789012:rule/drain" {
		t.Errorf("rule ARN %s", arn)
	}
	r, err := w.DescribeRule("", "drain")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != messaging.RuleEnabled || r.EventBusName != "default" || r.EventPattern != ebLifecyclePattern || r.CreatedBy != "123456789012" {
		t.Errorf("described %+v", r)
	}
	_, err = w.DescribeRule("default", "nope")
	ebCode(t, err, "ResourceNotFoundException", "Rule nope does not exist on EventBus default.")
	_, err = w.DescribeRule("other", "drain")
	ebCode(t, err, "ResourceNotFoundException", "Event bus other does not exist.")

	if err := w.DisableRule("", "drain"); err != nil {
		t.Fatal(err)
	}
	if r, _ := w.DescribeRule("", "drain"); r.State != messaging.RuleDisabled {
		t.Errorf("state after DisableRule %s", r.State)
	}
	if err := w.EnableRule("arn:aws:events:us-east-1:123456789012:event-bus/default", "drain"); err != nil {
		t.Fatal(err)
	}
	if r, _ := w.DescribeRule("", "drain"); r.State != messaging.RuleEnabled {
		t.Errorf("state after EnableRule %s", r.State)
	}
	ebPutTarget(t, w, "drain", messaging.EventTarget{ID: "fn", ARN: ebFunction})
	ebCode(t, w.DeleteRule("", "drain", false), "ValidationException", "Rule can't be deleted since it has targets.")
	ebCode(t, w.DeleteRule("", "drain", true), "ValidationException", "Rule can't be deleted since it has targets.")
	failed, err := w.RemoveTargets("", "drain", []string{"fn", "ghost"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || failed[0].TargetID != "ghost" || failed[0].ErrorCode != "ResourceNotFoundException" {
		t.Errorf("RemoveTargets failures %+v", failed)
	}
	if err := w.DeleteRule("", "drain", false); err != nil {
		t.Fatal(err)
	}
	if err := w.DeleteRule("", "drain", false); err != nil {
		t.Errorf("deleting a deleted rule: %v", err)
	}
}

func TestEBPutRuleValidation(t *testing.T) {
	w := ebWorld(t)
	cases := []struct {
		name string
		in   messaging.PutRuleInput
		code string
		msg  string
	}{
		{"no pattern nor schedule", messaging.PutRuleInput{Name: "r"}, "ValidationException", "Parameter(s) EventPattern or ScheduleExpression must be specified."},
		{"bad pattern", messaging.PutRuleInput{Name: "r", EventPattern: `{"source":"x"}`}, "InvalidEventPatternException", `Event pattern is not valid. Reason: "source" must be an object or an array`},
		{"bad name", messaging.PutRuleInput{Name: "a b", EventPattern: ebLifecyclePattern}, "ValidationException", `1 validation error detected: Value 'a b' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [\.\-_A-Za-z0-9]+`},
		{"missing name", messaging.PutRuleInput{EventPattern: ebLifecyclePattern}, "ValidationException", "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null"},
		{"bad state", messaging.PutRuleInput{Name: "r", EventPattern: ebLifecyclePattern, State: "ON"}, "ValidationException", ""},
		{"bad schedule", messaging.PutRuleInput{Name: "r", ScheduleExpression: "rate(5 minute)"}, "ValidationException", "Parameter ScheduleExpression is not valid."},
		{"unknown bus", messaging.PutRuleInput{Name: "r", EventPattern: ebLifecyclePattern, EventBusName: "nope"}, "ResourceNotFoundException", "Event bus nope does not exist."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := w.PutRule(c.in)
			ebCode(t, err, c.code, c.msg)
		})
	}
	if _, err := w.PutRule(messaging.PutRuleInput{Name: "tick", ScheduleExpression: "rate(5 minutes)", State: messaging.RuleDisabled}); err != nil {
		t.Errorf("schedule rule: %v", err)
	}
}

func TestEBListRulesPages(t *testing.T) {
	w := ebWorld(t)
	for i := range 5 {
		ebPutRule(t, w, fmt.Sprintf("r%d", i), ebLifecyclePattern)
	}
	ebPutRule(t, w, "other", ebLifecyclePattern)
	var names []string
	token := ""
	for pages := 0; ; pages++ {
		rules, next, err := w.ListRules("", "r", 2, token)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			names = append(names, r.Name)
		}
		if next == "" {
			if pages != 2 {
				t.Errorf("%d pages, want 3", pages+1)
			}
			break
		}
		token = next
	}
	if got := strings.Join(names, ","); got != "r0,r1,r2,r3,r4" {
		t.Errorf("listed %s", got)
	}
	_, _, err := w.ListRules("", "", 101, "")
	ebCode(t, err, "ValidationException", "")
}

func TestEBPutTargets(t *testing.T) {
	w := ebWorld(t)
	ebPutRule(t, w, "r", ebLifecyclePattern)
	_, err := w.PutTargets("", "nope", []messaging.EventTarget{{ID: "a", ARN: ebFunction}})
	ebCode(t, err, "ResourceNotFoundException", "Rule nope does not exist on EventBus default.")

	failed, err := w.PutTargets("", "r", []messaging.EventTarget{
		{ID: "ok", ARN: ebFunction},
		{ID: "bad arn", ARN: ebFunction},
		{ID: "notarn", ARN: "queue"},
		{ID: "kinesis", ARN: "arn:aws:kinesis:us-east-1:123456789012:stream/s"},
		{ID: "both", ARN: ebFunction, Input: `{}`, InputPath: "$.detail"},
		{ID: "json", ARN: ebFunction, Input: `{`},
		{ID: "path", ARN: ebFunction, InputPath: "$.detail[0]"},
		{ID: "fifo", ARN: "arn:aws:sqs:us-east-1:123456789012:q.fifo"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range failed {
		got[f.TargetID] = f.ErrorCode + ": " + f.ErrorMessage
	}
	for id, want := range map[string]string{
		"bad arn": "Member must satisfy regular expression pattern",
		"notarn":  "Parameter queue is not valid. Reason: Provided Arn is not in correct format.",
		"kinesis": "does not deliver to kinesis targets",
		"both":    "Only one of Input, InputPath, or InputTransformer must be provided.",
		"json":    "Input must be valid JSON",
		"path":    "not bracket notation",
		"fifo":    "Parameter(s) SqsParameters must be specified for target: fifo.",
	} {
		if !strings.HasPrefix(got[id], "ValidationException: ") || !strings.Contains(got[id], want) {
			t.Errorf("target %s: %q, want a ValidationException containing %q", id, got[id], want)
		}
	}
	if len(failed) != 7 {
		t.Errorf("%d failures, want 7: %+v", len(failed), failed)
	}
	targets, _, err := w.ListTargetsByRule("", "r", 0, "")
	if err != nil || len(targets) != 1 || targets[0].ID != "ok" {
		t.Fatalf("targets %+v %v", targets, err)
	}

	// Five targets per rule; updating one in place does not count twice.
	var four []messaging.EventTarget
	for i := range 4 {
		four = append(four, messaging.EventTarget{ID: fmt.Sprintf("t%d", i), ARN: ebFunction})
	}
	if failed, err := w.PutTargets("", "r", four); err != nil || len(failed) > 0 {
		t.Fatalf("four more targets: %v %+v", err, failed)
	}
	if failed, err := w.PutTargets("", "r", []messaging.EventTarget{{ID: "t0", ARN: ebFunction, Input: `"x"`}}); err != nil || len(failed) > 0 {
		t.Fatalf("updating a target: %v %+v", err, failed)
	}
	_, err = w.PutTargets("", "r", []messaging.EventTarget{{ID: "sixth", ARN: ebFunction}})
	ebCode(t, err, "LimitExceededException", "The requested resource exceeds the maximum number allowed.")
	targets, _, _ = w.ListTargetsByRule("", "r", 0, "")
	if len(targets) != 5 || targets[1].Input != `"x"` {
		t.Errorf("after the refused sixth: %+v", targets)
	}
	names, _, err := w.ListRuleNamesByTarget("", ebFunction, 0, "")
	if err != nil || len(names) != 1 || names[0] != "r" {
		t.Errorf("ListRuleNamesByTarget %v %v", names, err)
	}
}

// Delivery ---------------------------------------------------------------------

// ebInvocations returns the Lambda invocations of one function.
func ebInvocations(w *system, fn string) []messaging.LambdaInvocation {
	var out []messaging.LambdaInvocation
	for _, inv := range w.LambdaInvocations(0) {
		if inv.FunctionARN == fn {
			out = append(out, inv)
		}
	}
	return out
}

func ebPut(t *testing.T, w *system, entries ...messaging.PutEventsEntry) []messaging.PutEventsResult {
	t.Helper()
	res, err := w.PutEvents(entries)
	if err != nil {
		t.Fatalf("PutEvents: %v", err)
	}
	return res
}

func TestEBPutEventsDeliversToMatchingRules(t *testing.T) {
	w := ebWorld(t)
	pattern := `{"source":["com.example.orders"],"detail":{"state":["placed"]}}`
	ruleARN := ebPutRule(t, w, "orders", pattern)
	ebPutTarget(t, w, "orders", messaging.EventTarget{ID: "fn", ARN: ebFunction})
	ebPutRule(t, w, "off", pattern)
	ebPutTarget(t, w, "off", messaging.EventTarget{ID: "fn", ARN: ebFunction + "-off"})
	if err := w.DisableRule("", "off"); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	res := ebPut(t, w,
		messaging.PutEventsEntry{Source: "com.example.orders", DetailType: "Order", Detail: `{"state": "placed", "id": 7}`, Resources: []string{"arn:x"}, Time: at},
		messaging.PutEventsEntry{Source: "com.example.orders", DetailType: "Order", Detail: `{"state":"shipped"}`},
	)
	if res[0].EventID == "" || res[1].EventID == "" || res[0].ErrorCode != "" {
		t.Fatalf("results %+v", res)
	}
	invs := ebInvocations(w, ebFunction)
	if len(invs) != 1 {
		t.Fatalf("%d invocations, want 1 (the placed order)", len(invs))
	}
	if invs[0].RuleARN != ruleARN || invs[0].EventID != res[0].EventID || invs[0].TargetID != "fn" {
		t.Errorf("invocation %+v", invs[0])
	}
	want := `{"version":"0","id":"` + res[0].EventID + `","detail-type":"Order","source":"com.example.orders","account":"123456789012","time":"2026-03-01T12:00:00Z","region":"us-east-1","resources":["arn:x"],"detail":{"state":"placed","id":7}}`
	if invs[0].Payload != want {
		t.Errorf("payload\n got %s\nwant %s", invs[0].Payload, want)
	}
	if n := len(ebInvocations(w, ebFunction+"-off")); n != 0 {
		t.Errorf("disabled rule delivered %d events", n)
	}
	var delivered int
	for _, e := range w.Events() {
		if e.Kind == messaging.EvEventBridge && strings.Contains(e.Detail, res[0].EventID) {
			delivered++
		}
	}
	if delivered != 1 {
		t.Errorf("%d eventbridge events in the log for the delivery, want 1", delivered)
	}
}

func TestEBPutEventsEntryErrors(t *testing.T) {
	w := ebWorld(t)
	res := ebPut(t, w,
		messaging.PutEventsEntry{Source: "aws.autoscaling", DetailType: "x", Detail: `{}`},
		messaging.PutEventsEntry{DetailType: "x", Detail: `{}`},
		messaging.PutEventsEntry{Source: "s", Detail: `{}`},
		messaging.PutEventsEntry{Source: "s", DetailType: "x"},
		messaging.PutEventsEntry{Source: "s", DetailType: "x", Detail: `[1]`},
		messaging.PutEventsEntry{Source: "s", DetailType: "x", Detail: `{}`, EventBusName: "nope"},
	)
	want := []string{
		"NotAuthorizedForSourceException: Not authorized for the source.",
		"InvalidArgument: Parameter Source is not valid. Reason: Source is a required argument.",
		"InvalidArgument: Parameter DetailType is not valid. Reason: DetailType is a required argument.",
		"InvalidArgument: Parameter Detail is not valid. Reason: Detail is a required argument.",
		"MalformedDetail: Detail is malformed.",
		": ",
	}
	for i, r := range res {
		if got := r.ErrorCode + ": " + r.ErrorMessage; got != want[i] {
			t.Errorf("entry %d: %q, want %q", i, got, want[i])
		}
	}
	if res[5].EventID == "" {
		t.Errorf("an event for a missing bus gets no id")
	}
	_, err := w.PutEvents(make([]messaging.PutEventsEntry, 11))
	ebCode(t, err, "ValidationException", "")
}

func TestEBTargetInputs(t *testing.T) {
	w := ebWorld(t)
	ebPutRule(t, w, "r", `{"source":["app"]}`)
	if failed, err := w.PutTargets("", "r", []messaging.EventTarget{
		{ID: "const", ARN: ebFunction + "-const", Input: `{"fixed":true}`},
		{ID: "path", ARN: ebFunction + "-path", InputPath: "$.detail"},
		{ID: "leaf", ARN: ebFunction + "-leaf", InputPath: "$.detail.instance"},
		{ID: "tmpl", ARN: ebFunction + "-tmpl", InputTransformer: &messaging.TargetInputTransformer{
			InputPathsMap: map[string]string{"inst": "$.detail.instance", "n": "$.detail.n", "gone": "$.detail.missing"},
			InputTemplate: `{"msg":"<inst> has <n> \"things\"","n":<n>,"inst":<inst>,"gone":<gone>,"rule":"<aws.events.rule-name>"}`,
		}},
		{ID: "text", ARN: ebFunction + "-text", InputTransformer: &messaging.TargetInputTransformer{
			InputPathsMap: map[string]string{"inst": "$.detail.instance"},
			InputTemplate: `"<inst> is going away"`,
		}},
	}); err != nil || len(failed) > 0 {
		t.Fatalf("PutTargets: %v %+v", err, failed)
	}
	ebPutRule(t, w, "r2", `{"source":["app"]}`)
	ebPutTarget(t, w, "r2", messaging.EventTarget{ID: "nothing", ARN: ebFunction + "-nothing", InputPath: "$.detail.missing"})
	ebPut(t, w, messaging.PutEventsEntry{Source: "app", DetailType: "x", Detail: `{"instance":"i-1\"q","n":3}`})
	for fn, want := range map[string]string{
		"-const": `{"fixed":true}`,
		"-path":  `{"instance":"i-1\"q","n":3}`,
		"-leaf":  `"i-1\"q"`,
		"-tmpl":  `{"msg":"i-1\"q has 3 \"things\"","n":3,"inst":"i-1\"q","gone":null,"rule":"r"}`,
		"-text":  `"i-1\"q is going away"`,
	} {
		invs := ebInvocations(w, ebFunction+fn)
		if len(invs) != 1 || invs[0].Payload != want {
			t.Errorf("%s got %+v\nwant payload %s", fn, invs, want)
		}
	}
	if invs := ebInvocations(w, ebFunction+"-nothing"); len(invs) != 0 {
		t.Errorf("an InputPath that selects nothing delivered %+v", invs)
	}
	var failed bool
	for _, e := range w.Events() {
		if e.Kind == messaging.EvEventBridge && strings.Contains(e.Detail, "-nothing") && strings.Contains(e.Detail, "not delivered: InputPath $.detail.missing selects nothing") {
			failed = true
		}
	}
	if !failed {
		t.Errorf("the failed delivery is not in the event log")
	}
}

func TestEBTestEventPattern(t *testing.T) {
	w := ebWorld(t)
	ok, err := w.TestEventPattern(ebLifecyclePattern, ebEvent)
	if err != nil || !ok {
		t.Errorf("TestEventPattern = %t, %v", ok, err)
	}
	_, err = w.TestEventPattern(ebLifecyclePattern, `{"source":"aws.autoscaling"}`)
	ebCode(t, err, "ValidationException", "Parameter Event is not valid.")
	_, err = w.TestEventPattern(`{"source":[]}`, ebEvent)
	ebCode(t, err, "InvalidEventPatternException", "Event pattern is not valid. Reason: Empty arrays are not allowed")
}

func TestEBCustomBusAndBusTargets(t *testing.T) {
	w := ebWorld(t)
	arn, err := w.CreateEventBus("apps", "application events")
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.CreateEventBus("apps", "")
	ebCode(t, err, "ResourceAlreadyExistsException", "Event bus apps already exists.")
	ruleARN, err := w.PutRule(messaging.PutRuleInput{Name: "r", EventBusName: "apps", EventPattern: `{"source":["app"]}`})
	if err != nil || ruleARN != "arn:aws:events:us-east-1:123456789012:rule/apps/r" {
		t.Fatalf("PutRule on apps: %s %v", ruleARN, err)
	}
	if _, err := w.PutTargets("apps", "r", []messaging.EventTarget{{ID: "fn", ARN: ebFunction}}); err != nil {
		t.Fatal(err)
	}
	// The default bus forwards app events to apps.
	ebPutRule(t, w, "forward", `{"source":["app"]}`)
	ebPutTarget(t, w, "forward", messaging.EventTarget{ID: "bus", ARN: arn})
	res := ebPut(t, w, messaging.PutEventsEntry{Source: "app", DetailType: "x", Detail: `{}`})
	invs := ebInvocations(w, ebFunction)
	if len(invs) != 1 || invs[0].EventID != res[0].EventID {
		t.Fatalf("forwarded invocations %+v", invs)
	}
	ebCode(t, w.DeleteEventBus("default"), "ValidationException", "Cannot delete event bus default.")
	if err := w.DeleteEventBus("apps"); err != nil {
		t.Fatal(err)
	}
	_, err = w.DescribeEventBus("apps")
	ebCode(t, err, "ResourceNotFoundException", "Event bus apps does not exist.")
}

// TestEBLifecycleEventReachesTarget drives a real scale-in: the terminate
// hook's action puts §8.4's event on the default bus and the rule's Lambda
// target gets it.
func TestEBLifecycleEventReachesTarget(t *testing.T) {
	f := newFixture(t, world.Config{})
	ebPutRule(t, f.w, "drain", strings.ReplaceAll(ebLifecyclePattern, "my-asg", "g"))
	ebPutTarget(t, f.w, "drain", messaging.EventTarget{ID: "fn", ARN: ebFunction})
	ebPutRule(t, f.w, "launches", `{"source":["aws.autoscaling"],"detail-type":["EC2 Instance Launch Successful"]}`)
	ebPutTarget(t, f.w, "launches", messaging.EventTarget{ID: "fn", ARN: ebFunction + "-launch", InputPath: "$.detail"})
	f.group(t, world.CreateGroupInput{Name: "g", Desired: ptr(1), Hooks: []world.Hook{{
		Name: "drain", Transition: world.TransitionTerminating, HeartbeatTimeout: 300, NotificationMetadata: "blue",
	}}})
	id := f.inService(t, "g", 1)[0].ID
	if err := f.w.SetDesiredCapacity("g", 0, false); err != nil {
		t.Fatal(err)
	}
	f.wait(t, "delivery", func(e eventlog.Event) bool {
		return e.Kind == messaging.EvEventBridge && strings.Contains(e.Detail, "Lifecycle Action")
	})
	invs := ebInvocations(f.w, ebFunction)
	if len(invs) != 1 {
		t.Fatalf("%d invocations, want 1", len(invs))
	}
	ebCheckLifecycleEvent(t, f.w, []byte(invs[0].Payload), "g", id)
	launches := ebInvocations(f.w, ebFunction+"-launch")
	if len(launches) != 1 || !strings.Contains(launches[0].Payload, `"StatusCode":"Successful"`) {
		t.Errorf("launch events %+v", launches)
	}
}

// ebCheckLifecycleEvent checks an event body against lifecycle-semantics
// §8.4 and returns its detail.
func ebCheckLifecycleEvent(t *testing.T, w *system, body []byte, group, instance string) map[string]any {
	t.Helper()
	var ev struct {
		Version    string         `json:"version"`
		ID         string         `json:"id"`
		DetailType string         `json:"detail-type"`
		Source     string         `json:"source"`
		Account    string         `json:"account"`
		Time       string         `json:"time"`
		Region     string         `json:"region"`
		Resources  []string       `json:"resources"`
		Detail     map[string]any `json:"detail"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatalf("event body %s: %v", body, err)
	}
	if ev.Version != "0" || len(ev.ID) != 36 || ev.DetailType != "EC2 Instance-terminate Lifecycle Action" || ev.Source != "aws.autoscaling" ||
		ev.Account != w.Account() || ev.Region != w.Region() || len(ev.Resources) != 1 ||
		!strings.HasSuffix(ev.Resources[0], ":autoScalingGroupName/"+group) {
		t.Errorf("envelope %s", body)
	}
	if _, err := time.Parse("2006-01-02T15:04:05Z", ev.Time); err != nil {
		t.Errorf("time %q: %v", ev.Time, err)
	}
	d := ev.Detail
	for k, want := range map[string]string{
		"AutoScalingGroupName": group, "EC2InstanceId": instance, "LifecycleHookName": "drain",
		"LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING", "Origin": "AutoScalingGroup", "Destination": "EC2",
		"NotificationMetadata": "blue",
	} {
		if d[k] != want {
			t.Errorf("detail %s = %v, want %q", k, d[k], want)
		}
	}
	if tok, _ := d["LifecycleActionToken"].(string); len(tok) != 36 {
		t.Errorf("LifecycleActionToken %v", d["LifecycleActionToken"])
	}
	return d
}

// ebQueue creates an SQS queue and returns its ARN.
func ebQueue(t *testing.T, w *system, name string, attrs map[string]string) string {
	t.Helper()
	if err := w.CreateQueue(messaging.CreateQueueInput{Name: name, Attributes: attrs}); err != nil {
		t.Fatalf("CreateQueue %s: %v", name, err)
	}
	q, err := w.GetQueue(name, "")
	if err != nil {
		t.Fatal(err)
	}
	return q.ARN
}

// ebReceive receives what is on a queue now, without waiting.
func ebReceive(t *testing.T, w *system, name string) []messaging.ReceivedMessage {
	t.Helper()
	msgs, err := w.ReceiveMessage(t.Context(), name, messaging.ReceiveMessageInput{
		MaxNumberOfMessages: ptr(10), WaitTimeSeconds: ptr(0), AttributeNames: []string{"All"}, MessageAttributeNames: []string{"All"},
	})
	if err != nil {
		t.Fatalf("ReceiveMessage %s: %v", name, err)
	}
	return msgs
}

// TestEBLifecycleEventToSQSQueue is the path a lifecycle consumer takes on
// AWS: a terminate hook, a rule on aws.autoscaling terminate lifecycle
// actions for the group, and an SQS target whose body is §8.4's event.
func TestEBLifecycleEventToSQSQueue(t *testing.T) {
	f := newFixture(t, world.Config{})
	queueARN := ebQueue(t, f.w, "lifecycle", nil)
	ebPutRule(t, f.w, "drain", `{"source":["aws.autoscaling"],"detail-type":["EC2 Instance-terminate Lifecycle Action"],"detail":{"AutoScalingGroupName":["g"]}}`)
	ebPutTarget(t, f.w, "drain", messaging.EventTarget{ID: "queue", ARN: queueARN})
	f.group(t, world.CreateGroupInput{Name: "g", Desired: ptr(1), Hooks: []world.Hook{{
		Name: "drain", Transition: world.TransitionTerminating, HeartbeatTimeout: 300, NotificationMetadata: "blue",
	}}})
	id := f.inService(t, "g", 1)[0].ID
	if msgs := ebReceive(t, f.w, "lifecycle"); len(msgs) != 0 {
		t.Fatalf("the queue got %d messages before any termination", len(msgs))
	}
	if err := f.w.SetDesiredCapacity("g", 0, false); err != nil {
		t.Fatal(err)
	}
	f.wait(t, "Terminating:Wait", inState(world.StateTerminatingWait))
	msgs := ebReceive(t, f.w, "lifecycle")
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	d := ebCheckLifecycleEvent(t, f.w, []byte(msgs[0].Body), "g", id)
	// The token in the event completes the action.
	ref := world.ActionRef{Group: "g", Hook: "drain", Token: d["LifecycleActionToken"].(string)}
	if err := f.w.CompleteLifecycleAction(ref, world.ResultContinue); err != nil {
		t.Fatalf("completing with the event's token: %v", err)
	}
	f.wait(t, "Terminated", inState(world.StateTerminated))
}

func TestEBSQSTargets(t *testing.T) {
	w := ebWorld(t)
	fifoARN := ebQueue(t, w, "events.fifo", map[string]string{"FifoQueue": "true"})
	dlqARN := ebQueue(t, w, "dlq", nil)
	ebPutRule(t, w, "r", `{"source":["app"]}`)
	if failed, err := w.PutTargets("", "r", []messaging.EventTarget{
		{ID: "fifo", ARN: fifoARN, InputPath: "$.detail", SQSParameters: &messaging.TargetSQSParameters{MessageGroupID: "orders"}},
		{ID: "gone", ARN: "arn:aws:sqs:us-east-1:123456789012:gone", DeadLetter: &messaging.TargetDeadLetter{ARN: dlqARN}},
	}); err != nil || len(failed) > 0 {
		t.Fatalf("PutTargets: %v %+v", err, failed)
	}
	res := ebPut(t, w, messaging.PutEventsEntry{Source: "app", DetailType: "x", Detail: `{"n":1}`})
	msgs := ebReceive(t, w, "events.fifo")
	if len(msgs) != 1 || msgs[0].Body != `{"n":1}` || msgs[0].Attributes["MessageGroupId"] != "orders" {
		t.Errorf("FIFO queue got %+v", msgs)
	}
	dead := ebReceive(t, w, "dlq")
	if len(dead) != 1 || !strings.Contains(dead[0].Body, res[0].EventID) ||
		dead[0].MessageAttributes["RULE_ARN"].StringValue != "arn:aws:events:us-east-1:123456789012:rule/r" ||
		dead[0].MessageAttributes["TARGET_ARN"].StringValue != "arn:aws:sqs:us-east-1:123456789012:gone" {
		t.Errorf("dead-letter queue got %+v", dead)
	}
}
