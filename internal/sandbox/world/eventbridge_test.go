package world_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
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

func TestEBPatternMatching(t *testing.T) {
	cases := []struct {
		name    string
		pattern string
		want    bool
	}{
		{"lifecycle pattern matches its group", ebLifecyclePattern, true},
		{"lifecycle pattern skips another group", `{"source":["aws.autoscaling"],"detail-type":["EC2 Instance-terminate Lifecycle Action"],"detail":{"AutoScalingGroupName":["other"]}}`, false},
		{"launch pattern skips a terminate event", `{"source":["aws.autoscaling"],"detail-type":["EC2 Instance-launch Lifecycle Action"]}`, false},
		{"array of values is an OR", `{"detail-type":["x","EC2 Instance-terminate Lifecycle Action"]}`, true},
		{"exact match is case-sensitive", `{"source":["AWS.autoscaling"]}`, false},
		{"number matches number", `{"detail":{"count":[5]}}`, true},
		{"number matches numerically", `{"detail":{"count":[5.0],"ratio":[2.50]}}`, true},
		{"large number matches exactly", `{"detail":{"account":[123456789012]}}`, true},
		{"string does not match number", `{"detail":{"count":["5"]}}`, false},
		{"boolean", `{"detail":{"flag":[true]}}`, true},
		{"boolean false does not match true", `{"detail":{"flag":[false]}}`, false},
		{"null matches null", `{"detail":{"nothing":[null]}}`, true},
		{"null does not match a missing field", `{"detail":{"absent":[null]}}`, false},
		{"empty string does not match null", `{"detail":{"nothing":[""]}}`, false},
		{"event array matches any element", `{"detail":{"tags":["green"]}}`, true},
		{"event array without the value", `{"detail":{"tags":["red"]}}`, false},
		{"resources array", `{"resources":[{"prefix":"arn:aws:autoscaling:"}]}`, true},
		{"prefix", `{"detail":{"EC2InstanceId":[{"prefix":"i-123"}]}}`, true},
		{"prefix miss", `{"detail":{"EC2InstanceId":[{"prefix":"i-9"}]}}`, false},
		{"prefix does not match numbers", `{"detail":{"count":[{"prefix":"5"}]}}`, false},
		{"prefix ignoring case", `{"detail":{"mixed":[{"prefix":{"equals-ignore-case":"hel"}}]}}`, true},
		{"suffix", `{"detail":{"AutoScalingGroupName":[{"suffix":"-asg"}]}}`, true},
		{"suffix miss", `{"detail":{"AutoScalingGroupName":[{"suffix":"-web"}]}}`, false},
		{"suffix ignoring case", `{"detail":{"mixed":[{"suffix":{"equals-ignore-case":"LLO"}}]}}`, true},
		{"equals-ignore-case", `{"detail":{"mixed":[{"equals-ignore-case":"hello"}]}}`, true},
		{"equals-ignore-case miss", `{"detail":{"mixed":[{"equals-ignore-case":"hell"}]}}`, false},
		{"anything-but value excludes it", `{"detail":{"AutoScalingGroupName":[{"anything-but":"my-asg"}]}}`, false},
		{"anything-but value passes others", `{"detail":{"AutoScalingGroupName":[{"anything-but":"other"}]}}`, true},
		{"anything-but list", `{"detail":{"AutoScalingGroupName":[{"anything-but":["a","my-asg"]}]}}`, false},
		{"anything-but number", `{"detail":{"count":[{"anything-but":[4,6]}]}}`, true},
		{"anything-but number excludes it", `{"detail":{"count":[{"anything-but":5}]}}`, false},
		{"anything-but number does not match strings", `{"detail":{"mixed":[{"anything-but":5}]}}`, false},
		{"anything-but prefix", `{"detail":{"EC2InstanceId":[{"anything-but":{"prefix":"i-"}}]}}`, false},
		{"anything-but prefix passes others", `{"detail":{"EC2InstanceId":[{"anything-but":{"prefix":"x-"}}]}}`, true},
		{"anything-but suffix", `{"detail":{"AutoScalingGroupName":[{"anything-but":{"suffix":"asg"}}]}}`, false},
		{"anything-but equals-ignore-case", `{"detail":{"mixed":[{"anything-but":{"equals-ignore-case":["HELLO"]}}]}}`, false},
		{"anything-but wildcard", `{"detail":{"AutoScalingGroupName":[{"anything-but":{"wildcard":"my-*"}}]}}`, false},
		{"anything-but on an array passes when one element differs", `{"detail":{"tags":[{"anything-but":"blue"}]}}`, true},
		{"anything-but needs the field", `{"detail":{"absent":[{"anything-but":"x"}]}}`, false},
		{"numeric greater than", `{"detail":{"count":[{"numeric":[">",3]}]}}`, true},
		{"numeric closed range", `{"detail":{"count":[{"numeric":[">=",5,"<=",6]}]}}`, true},
		{"numeric open range excludes its ends", `{"detail":{"count":[{"numeric":[">",5,"<",10]}]}}`, false},
		{"numeric less than", `{"detail":{"count":[{"numeric":["<",5]}]}}`, false},
		{"numeric equals", `{"detail":{"ratio":[{"numeric":["=",2.5]}]}}`, true},
		{"numeric ignores strings", `{"detail":{"mixed":[{"numeric":[">",0]}]}}`, false},
		{"exists true", `{"detail":{"EC2InstanceId":[{"exists":true}]}}`, true},
		{"exists true on a missing field", `{"detail":{"absent":[{"exists":true}]}}`, false},
		{"exists false on a missing field", `{"detail":{"absent":[{"exists":false}]}}`, true},
		{"exists false on a present field", `{"detail":{"count":[{"exists":false}]}}`, false},
		{"exists true on null", `{"detail":{"nothing":[{"exists":true}]}}`, true},
		{"exists works on leaves only", `{"detail":{"nested":[{"exists":true}]}}`, false},
		{"exists false on an empty array", `{"detail":{"empty":[{"exists":false}]}}`, true},
		{"exists false under a missing object", `{"absent":{"x":[{"exists":false}]}}`, true},
		{"wildcard", `{"detail":{"AutoScalingGroupName":[{"wildcard":"my-*"}]}}`, true},
		{"wildcard in the middle", `{"detail":{"LifecycleTransition":[{"wildcard":"autoscaling:*_TERMINATING"}]}}`, true},
		{"wildcard several stars", `{"detail":{"AutoScalingGroupName":[{"wildcard":"m*-*g"}]}}`, true},
		{"wildcard star matches nothing too", `{"detail":{"AutoScalingGroupName":[{"wildcard":"my-asg*"}]}}`, true},
		{"wildcard miss", `{"detail":{"AutoScalingGroupName":[{"wildcard":"*web*"}]}}`, false},
		{"wildcard escaped star is literal", `{"detail":{"star":[{"wildcard":"a\\*b"}]}}`, true},
		{"wildcard escaped star does not glob", `{"detail":{"mixed":[{"wildcard":"H\\*"}]}}`, false},
		{"cidr", `{"detail":{"ip":[{"cidr":"10.0.0.0/16"}]}}`, true},
		{"cidr miss", `{"detail":{"ip":[{"cidr":"10.1.0.0/16"}]}}`, false},
		{"$or matches either branch", `{"source":["aws.autoscaling"],"$or":[{"detail":{"count":[1]}},{"detail":{"flag":[true]}}]}`, true},
		{"$or matches no branch", `{"$or":[{"detail":{"count":[1]}},{"detail":{"flag":[false]}}]}`, false},
		{"$or inside a nested object", `{"detail":{"$or":[{"count":[1]},{"ratio":[2.5]}]}}`, true},
		{"nested objects", `{"detail":{"nested":{"deep":{"x":["y"]}}}}`, true},
		{"nested object on a scalar", `{"source":{"x":["y"]}}`, false},
		{"array of objects matches within one element", `{"detail":{"items":{"k":["a"],"v":[1]}}}`, true},
		{"array of objects does not mix elements", `{"detail":{"items":{"k":["a"],"v":[2]}}}`, false},
		{"all fields must match", `{"source":["aws.autoscaling"],"detail":{"count":[6]}}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := world.MatchEventPattern(c.pattern, []byte(ebEvent))
			if err != nil {
				t.Fatalf("MatchEventPattern: %v", err)
			}
			if got != c.want {
				t.Errorf("match = %t, want %t\npattern %s", got, c.want, c.pattern)
			}
		})
	}
}

func TestEBPatternValidation(t *testing.T) {
	cases := []struct {
		pattern, reason string
	}{
		{`[]`, "Filter is not an object"},
		{`"source"`, "Filter is not an object"},
		{`{"source":`, "Filter is not valid JSON"},
		{`{}`, "Empty objects are not allowed"},
		{`{"detail":{}}`, "Empty objects are not allowed"},
		{`{"source":"aws.ec2"}`, `"source" must be an object or an array`},
		{`{"source":[]}`, "Empty arrays are not allowed"},
		{`{"source":[["a"]]}`, "Match value must be String, number, true, false, or null"},
		{`{"source":[{}]}`, "Match expression name not found"},
		{`{"source":[{"prefix":"a","suffix":"b"}]}`, "Only one key allowed in match expression"},
		{`{"source":[{"prefix":1}]}`, "prefix match pattern must be a string"},
		{`{"source":[{"suffix":null}]}`, "suffix match pattern must be a string"},
		{`{"source":[{"equals-ignore-case":["a"]}]}`, "equals-ignore-case match pattern must be a string"},
		{`{"source":[{"regex":"a.*"}]}`, "Unrecognized match type regex"},
		{`{"source":[{"exists":"yes"}]}`, "exists match pattern must be either true or false."},
		{`{"n":[{"numeric":5}]}`, "Value of numeric must be an array."},
		{`{"n":[{"numeric":["!",5]}]}`, "Unrecognized numeric range operator: !"},
		{`{"n":[{"numeric":[">","5"]}]}`, "Value of > must be numeric"},
		{`{"n":[{"numeric":["=",5,"<",6]}]}`, "Too many elements in numeric expression"},
		{`{"n":[{"numeric":[">",5,"<",1]}]}`, "Bottom must be less than top"},
		{`{"n":[{"numeric":[">",5,">",9]}]}`, "Bad numeric range operator: >"},
		{`{"s":[{"anything-but":[1,"x"]}]}`, "mixed type is not supported"},
		{`{"s":[{"anything-but":[true]}]}`, "Inside anything but list, start|null|boolean is not supported."},
		{`{"s":[{"anything-but":{"numeric":[">",1]}}]}`, "Unsupported anything-but pattern: numeric"},
		{`{"s":[{"anything-but":{"prefix":""}}]}`, "Null prefix/suffix not allowed"},
		{`{"s":[{"anything-but":null}]}`, "Value of anything-but must be an array or single string/number value."},
		{`{"s":[{"wildcard":"a**"}]}`, "Consecutive wildcard characters at pos 2"},
		{`{"s":[{"wildcard":"a\\b"}]}`, "Invalid escape character at pos 1"},
		{`{"s":[{"cidr":"10.0.0.0"}]}`, "Malformed CIDR, one '/' required"},
		{`{"s":[{"cidr":"10.0.0.0/x"}]}`, "Malformed CIDR, mask bits must be an integer"},
		{`{"s":[{"cidr":"10.0.0.300/8"}]}`, "Nonstandard IP address: 10.0.0.300"},
		{`{"$or":[{"a":[1]}]}`, "There must have at least 2 Objects in $or relationship."},
		{`{"$or":{"a":[1]}}`, "It must be an Array followed with $or."},
		{`{"$or":[{"a":[1]},"b"]}`, "Only JSON object is allowed in array of $or relationship."},
		{`{"$or":[{"a":[1]},{"prefix":["b"]}]}`, "prefix is Ruler reserved fieldName which cannot be used inside $or."},
	}
	for _, c := range cases {
		t.Run(c.pattern, func(t *testing.T) {
			err := world.ValidateEventPattern(c.pattern)
			var ae *awsproto.Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %v, want an InvalidEventPatternException", err)
			}
			if ae.Code != "InvalidEventPatternException" || !strings.HasPrefix(ae.Message, "Event pattern is not valid. Reason: ") || !strings.Contains(ae.Message, c.reason) {
				t.Errorf("got %s: %s\nwant InvalidEventPatternException with reason %q", ae.Code, ae.Message, c.reason)
			}
		})
	}
	if err := world.ValidateEventPattern(ebLifecyclePattern); err != nil {
		t.Errorf("the lifecycle pattern is refused: %v", err)
	}
}

func TestEBMatchRejectsNonObjectEvents(t *testing.T) {
	for _, ev := range []string{``, `[]`, `"x"`, `{"a":1}{}`, `{`} {
		_, err := world.MatchEventPattern(`{"a":[1]}`, []byte(ev))
		var ae *awsproto.Error
		if !errors.As(err, &ae) || ae.Code != "ValidationException" {
			t.Errorf("event %q: error %v, want ValidationException", ev, err)
		}
	}
}

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

func ebWorld(t *testing.T) *world.World {
	t.Helper()
	f := newFixture(t, world.Config{})
	return f.w
}

func ebPutRule(t *testing.T, w *world.World, name, pattern string) string {
	t.Helper()
	arn, err := w.PutRule(world.PutRuleInput{Name: name, EventPattern: pattern})
	if err != nil {
		t.Fatalf("PutRule %s: %v", name, err)
	}
	return arn
}

const ebFunction = "arn:aws:lambda:us-east-1:123456789012:function:drain"

func ebPutTarget(t *testing.T, w *world.World, rule string, target world.EventTarget) {
	t.Helper()
	failed, err := w.PutTargets("", rule, []world.EventTarget{target})
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
	if r.State != world.RuleEnabled || r.EventBusName != "default" || r.EventPattern != ebLifecyclePattern || r.CreatedBy != "123456789012" {
		t.Errorf("described %+v", r)
	}
	_, err = w.DescribeRule("default", "nope")
	ebCode(t, err, "ResourceNotFoundException", "Rule nope does not exist on EventBus default.")
	_, err = w.DescribeRule("other", "drain")
	ebCode(t, err, "ResourceNotFoundException", "Event bus other does not exist.")

	if err := w.DisableRule("", "drain"); err != nil {
		t.Fatal(err)
	}
	if r, _ := w.DescribeRule("", "drain"); r.State != world.RuleDisabled {
		t.Errorf("state after DisableRule %s", r.State)
	}
	if err := w.EnableRule("arn:aws:events:us-east-1:123456789012:event-bus/default", "drain"); err != nil {
		t.Fatal(err)
	}
	if r, _ := w.DescribeRule("", "drain"); r.State != world.RuleEnabled {
		t.Errorf("state after EnableRule %s", r.State)
	}
	ebPutTarget(t, w, "drain", world.EventTarget{ID: "fn", ARN: ebFunction})
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
		in   world.PutRuleInput
		code string
		msg  string
	}{
		{"no pattern nor schedule", world.PutRuleInput{Name: "r"}, "ValidationException", "Parameter(s) EventPattern or ScheduleExpression must be specified."},
		{"bad pattern", world.PutRuleInput{Name: "r", EventPattern: `{"source":"x"}`}, "InvalidEventPatternException", `Event pattern is not valid. Reason: "source" must be an object or an array`},
		{"bad name", world.PutRuleInput{Name: "a b", EventPattern: ebLifecyclePattern}, "ValidationException", `1 validation error detected: Value 'a b' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [\.\-_A-Za-z0-9]+`},
		{"missing name", world.PutRuleInput{EventPattern: ebLifecyclePattern}, "ValidationException", "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null"},
		{"bad state", world.PutRuleInput{Name: "r", EventPattern: ebLifecyclePattern, State: "ON"}, "ValidationException", ""},
		{"bad schedule", world.PutRuleInput{Name: "r", ScheduleExpression: "rate(5 minute)"}, "ValidationException", "Parameter ScheduleExpression is not valid."},
		{"unknown bus", world.PutRuleInput{Name: "r", EventPattern: ebLifecyclePattern, EventBusName: "nope"}, "ResourceNotFoundException", "Event bus nope does not exist."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := w.PutRule(c.in)
			ebCode(t, err, c.code, c.msg)
		})
	}
	if _, err := w.PutRule(world.PutRuleInput{Name: "tick", ScheduleExpression: "rate(5 minutes)", State: world.RuleDisabled}); err != nil {
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
	_, err := w.PutTargets("", "nope", []world.EventTarget{{ID: "a", ARN: ebFunction}})
	ebCode(t, err, "ResourceNotFoundException", "Rule nope does not exist on EventBus default.")

	failed, err := w.PutTargets("", "r", []world.EventTarget{
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
	var four []world.EventTarget
	for i := range 4 {
		four = append(four, world.EventTarget{ID: fmt.Sprintf("t%d", i), ARN: ebFunction})
	}
	if failed, err := w.PutTargets("", "r", four); err != nil || len(failed) > 0 {
		t.Fatalf("four more targets: %v %+v", err, failed)
	}
	if failed, err := w.PutTargets("", "r", []world.EventTarget{{ID: "t0", ARN: ebFunction, Input: `"x"`}}); err != nil || len(failed) > 0 {
		t.Fatalf("updating a target: %v %+v", err, failed)
	}
	_, err = w.PutTargets("", "r", []world.EventTarget{{ID: "sixth", ARN: ebFunction}})
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
func ebInvocations(w *world.World, fn string) []world.LambdaInvocation {
	var out []world.LambdaInvocation
	for _, inv := range w.LambdaInvocations(0) {
		if inv.FunctionARN == fn {
			out = append(out, inv)
		}
	}
	return out
}

func ebPut(t *testing.T, w *world.World, entries ...world.PutEventsEntry) []world.PutEventsResult {
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
	ebPutTarget(t, w, "orders", world.EventTarget{ID: "fn", ARN: ebFunction})
	ebPutRule(t, w, "off", pattern)
	ebPutTarget(t, w, "off", world.EventTarget{ID: "fn", ARN: ebFunction + "-off"})
	if err := w.DisableRule("", "off"); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	res := ebPut(t, w,
		world.PutEventsEntry{Source: "com.example.orders", DetailType: "Order", Detail: `{"state": "placed", "id": 7}`, Resources: []string{"arn:x"}, Time: at},
		world.PutEventsEntry{Source: "com.example.orders", DetailType: "Order", Detail: `{"state":"shipped"}`},
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
		if e.Kind == world.EvEventBridge && strings.Contains(e.Detail, res[0].EventID) {
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
		world.PutEventsEntry{Source: "aws.autoscaling", DetailType: "x", Detail: `{}`},
		world.PutEventsEntry{DetailType: "x", Detail: `{}`},
		world.PutEventsEntry{Source: "s", Detail: `{}`},
		world.PutEventsEntry{Source: "s", DetailType: "x"},
		world.PutEventsEntry{Source: "s", DetailType: "x", Detail: `[1]`},
		world.PutEventsEntry{Source: "s", DetailType: "x", Detail: `{}`, EventBusName: "nope"},
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
	_, err := w.PutEvents(make([]world.PutEventsEntry, 11))
	ebCode(t, err, "ValidationException", "")
}

func TestEBTargetInputs(t *testing.T) {
	w := ebWorld(t)
	ebPutRule(t, w, "r", `{"source":["app"]}`)
	if failed, err := w.PutTargets("", "r", []world.EventTarget{
		{ID: "const", ARN: ebFunction + "-const", Input: `{"fixed":true}`},
		{ID: "path", ARN: ebFunction + "-path", InputPath: "$.detail"},
		{ID: "leaf", ARN: ebFunction + "-leaf", InputPath: "$.detail.instance"},
		{ID: "tmpl", ARN: ebFunction + "-tmpl", InputTransformer: &world.TargetInputTransformer{
			InputPathsMap: map[string]string{"inst": "$.detail.instance", "n": "$.detail.n", "gone": "$.detail.missing"},
			InputTemplate: `{"msg":"<inst> has <n> \"things\"","n":<n>,"inst":<inst>,"gone":<gone>,"rule":"<aws.events.rule-name>"}`,
		}},
		{ID: "text", ARN: ebFunction + "-text", InputTransformer: &world.TargetInputTransformer{
			InputPathsMap: map[string]string{"inst": "$.detail.instance"},
			InputTemplate: `"<inst> is going away"`,
		}},
	}); err != nil || len(failed) > 0 {
		t.Fatalf("PutTargets: %v %+v", err, failed)
	}
	ebPutRule(t, w, "r2", `{"source":["app"]}`)
	ebPutTarget(t, w, "r2", world.EventTarget{ID: "nothing", ARN: ebFunction + "-nothing", InputPath: "$.detail.missing"})
	ebPut(t, w, world.PutEventsEntry{Source: "app", DetailType: "x", Detail: `{"instance":"i-1\"q","n":3}`})
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
		if e.Kind == world.EvEventBridge && strings.Contains(e.Detail, "-nothing") && strings.Contains(e.Detail, "not delivered: InputPath $.detail.missing selects nothing") {
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
	ruleARN, err := w.PutRule(world.PutRuleInput{Name: "r", EventBusName: "apps", EventPattern: `{"source":["app"]}`})
	if err != nil || ruleARN != "arn:aws:events:us-east-1:123456789012:rule/apps/r" {
		t.Fatalf("PutRule on apps: %s %v", ruleARN, err)
	}
	if _, err := w.PutTargets("apps", "r", []world.EventTarget{{ID: "fn", ARN: ebFunction}}); err != nil {
		t.Fatal(err)
	}
	// The default bus forwards app events to apps.
	ebPutRule(t, w, "forward", `{"source":["app"]}`)
	ebPutTarget(t, w, "forward", world.EventTarget{ID: "bus", ARN: arn})
	res := ebPut(t, w, world.PutEventsEntry{Source: "app", DetailType: "x", Detail: `{}`})
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
	ebPutTarget(t, f.w, "drain", world.EventTarget{ID: "fn", ARN: ebFunction})
	ebPutRule(t, f.w, "launches", `{"source":["aws.autoscaling"],"detail-type":["EC2 Instance Launch Successful"]}`)
	ebPutTarget(t, f.w, "launches", world.EventTarget{ID: "fn", ARN: ebFunction + "-launch", InputPath: "$.detail"})
	f.group(t, world.CreateGroupInput{Name: "g", Desired: ptr(1), Hooks: []world.Hook{{
		Name: "drain", Transition: world.TransitionTerminating, HeartbeatTimeout: 300, NotificationMetadata: "blue",
	}}})
	id := f.inService(t, "g", 1)[0].ID
	if err := f.w.SetDesiredCapacity("g", 0, false); err != nil {
		t.Fatal(err)
	}
	f.wait(t, "delivery", func(e world.Event) bool {
		return e.Kind == world.EvEventBridge && strings.Contains(e.Detail, "Lifecycle Action")
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
func ebCheckLifecycleEvent(t *testing.T, w *world.World, body []byte, group, instance string) map[string]any {
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

// FuzzEventPattern checks that no pattern and event, however malformed,
// makes the matcher panic, and that a pattern that validates also matches
// without a pattern error.
func FuzzEventPattern(f *testing.F) {
	for _, p := range []string{
		ebLifecyclePattern,
		`{"detail":{"count":[{"numeric":[">",0,"<=",5]}],"tags":[{"anything-but":["red"]}]}}`,
		`{"$or":[{"detail":{"mixed":[{"equals-ignore-case":"hello"}]}},{"detail":{"ip":[{"cidr":"10.0.0.0/8"}]}}]}`,
		`{"detail":{"AutoScalingGroupName":[{"wildcard":"m*\\*-*g"}],"absent":[{"exists":false}],"nothing":[null]}}`,
		`{"detail":{"EC2InstanceId":[{"prefix":{"equals-ignore-case":"I-"}},{"suffix":"0"},{"anything-but":{"suffix":["x","y"]}}]}}`,
		`{"detail":{"items":{"k":["a"],"v":[1,2.0]}}}`,
		`{"source":[]}`, `[]`, `{`,
	} {
		f.Add(p, ebEvent)
	}
	f.Add(`{"a":[{"numeric":["=",1e309]}]}`, `{"a":[[[[1]]],{"b":null}]}`)
	f.Add(`{"a":{"b":{"c":[{"exists":true}]}}}`, `{"a":[{"b":[{"c":[]}]},{"b":{"c":0}}]}`)
	f.Fuzz(func(t *testing.T, pattern, event string) {
		valid := world.ValidateEventPattern(pattern) == nil
		_, err := world.MatchEventPattern(pattern, []byte(event))
		var ae *awsproto.Error
		if err != nil && !errors.As(err, &ae) {
			t.Fatalf("error %v is not an AWS error", err)
		}
		if valid && ae != nil && ae.Code == "InvalidEventPatternException" {
			t.Fatalf("pattern validates but matching says %v", err)
		}
		if !valid && err == nil {
			t.Fatalf("pattern fails validation but matches without error")
		}
	})
}

// ebQueue creates an SQS queue and returns its ARN.
func ebQueue(t *testing.T, w *world.World, name string, attrs map[string]string) string {
	t.Helper()
	if err := w.CreateQueue(world.CreateQueueInput{Name: name, Attributes: attrs}); err != nil {
		t.Fatalf("CreateQueue %s: %v", name, err)
	}
	q, err := w.GetQueue(name, "")
	if err != nil {
		t.Fatal(err)
	}
	return q.ARN
}

// ebReceive receives what is on a queue now, without waiting.
func ebReceive(t *testing.T, w *world.World, name string) []world.ReceivedMessage {
	t.Helper()
	msgs, err := w.ReceiveMessage(t.Context(), name, world.ReceiveMessageInput{
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
	ebPutTarget(t, f.w, "drain", world.EventTarget{ID: "queue", ARN: queueARN})
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
	if failed, err := w.PutTargets("", "r", []world.EventTarget{
		{ID: "fifo", ARN: fifoARN, InputPath: "$.detail", SQSParameters: &world.TargetSQSParameters{MessageGroupID: "orders"}},
		{ID: "gone", ARN: "arn:aws:sqs:us-east-1:123456789012:gone", DeadLetter: &world.TargetDeadLetter{ARN: dlqARN}},
	}); err != nil || len(failed) > 0 {
		t.Fatalf("PutTargets: %v %+v", err, failed)
	}
	res := ebPut(t, w, world.PutEventsEntry{Source: "app", DetailType: "x", Detail: `{"n":1}`})
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
