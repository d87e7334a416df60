package pattern_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/pattern"
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
			got, err := pattern.MatchEvent(c.pattern, []byte(ebEvent))
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
			err := pattern.ValidateEvent(c.pattern)
			var ae *awsproto.Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %v, want an InvalidEventPatternException", err)
			}
			if ae.Code != "InvalidEventPatternException" || !strings.HasPrefix(ae.Message, "Event pattern is not valid. Reason: ") || !strings.Contains(ae.Message, c.reason) {
				t.Errorf("got %s: %s\nwant InvalidEventPatternException with reason %q", ae.Code, ae.Message, c.reason)
			}
		})
	}
	if err := pattern.ValidateEvent(ebLifecyclePattern); err != nil {
		t.Errorf("the lifecycle pattern is refused: %v", err)
	}
}

func TestEBMatchRejectsNonObjectEvents(t *testing.T) {
	for _, ev := range []string{``, `[]`, `"x"`, `{"a":1}{}`, `{`} {
		_, err := pattern.MatchEvent(`{"a":[1]}`, []byte(ev))
		var ae *awsproto.Error
		if !errors.As(err, &ae) || ae.Code != "ValidationException" {
			t.Errorf("event %q: error %v, want ValidationException", ev, err)
		}
	}
}

// FuzzEventPattern checks that no pattern and event, however malformed,
// makes the matcher panic, and that a pattern that validates also matches
// without a pattern error.
func FuzzEventPattern(f *testing.F) {
	for _, seed := range []string{
		ebLifecyclePattern,
		`{"detail":{"count":[{"numeric":[">",0,"<=",5]}],"tags":[{"anything-but":["red"]}]}}`,
		`{"$or":[{"detail":{"mixed":[{"equals-ignore-case":"hello"}]}},{"detail":{"ip":[{"cidr":"10.0.0.0/8"}]}}]}`,
		`{"detail":{"AutoScalingGroupName":[{"wildcard":"m*\\*-*g"}],"absent":[{"exists":false}],"nothing":[null]}}`,
		`{"detail":{"EC2InstanceId":[{"prefix":{"equals-ignore-case":"I-"}},{"suffix":"0"},{"anything-but":{"suffix":["x","y"]}}]}}`,
		`{"detail":{"items":{"k":["a"],"v":[1,2.0]}}}`,
		`{"source":[]}`, `[]`, `{`,
	} {
		f.Add(seed, ebEvent)
	}
	f.Add(`{"a":[{"numeric":["=",1e309]}]}`, `{"a":[[[[1]]],{"b":null}]}`)
	f.Add(`{"a":{"b":{"c":[{"exists":true}]}}}`, `{"a":[{"b":[{"c":[]}]},{"b":{"c":0}}]}`)
	f.Fuzz(func(t *testing.T, p, event string) {
		valid := pattern.ValidateEvent(p) == nil
		_, err := pattern.MatchEvent(p, []byte(event))
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
