package awsproto_test

import (
	"encoding/xml"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
)

func params(t *testing.T, body string) awsproto.Params {
	t.Helper()
	v, err := url.ParseQuery(body)
	if err != nil {
		t.Fatal(err)
	}
	return awsproto.NewParams(v)
}

func TestListsDecodeAsEachProtocolSendsThem(t *testing.T) {
	cases := []struct {
		name string
		body string
		get  func(awsproto.Params) []string
		want []string
	}{
		{"awsquery members in index order", "Names.member.2=b&Names.member.10=c&Names.member.1=a", func(p awsproto.Params) []string { return p.Strings("Names") }, []string{"a", "b", "c"}},
		{"empty list sent as bare key is empty, not absent", "InstanceIds=", func(p awsproto.Params) []string { return p.Strings("InstanceIds") }, []string{}},
		{"absent list is nil", "Other=1", func(p awsproto.Params) []string { return p.Strings("InstanceIds") }, nil},
		{"ec2query flattened list", "InstanceId.1=i-1&InstanceId.2=i-2", func(p awsproto.Params) []string { return p.FlatStrings("InstanceId") }, []string{"i-1", "i-2"}},
		{"non-numeric index is ignored", "Names.member.x=a&Names.member.1=b", func(p awsproto.Params) []string { return p.Strings("Names") }, []string{"b"}},
		{"nested structure lists", "Filters.member.1.Name=tag%3Arole&Filters.member.1.Values.member.1=web&Filters.member.1.Values.member.2=api", func(p awsproto.Params) []string {
			f := p.Members("Filters")[0]
			return append([]string{f.String("Name")}, f.Strings("Values")...)
		}, []string{"tag:role", "web", "api"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.get(params(t, c.body))
			if !reflect.DeepEqual(got, c.want) || (got == nil) != (c.want == nil) {
				t.Errorf("got %#v, want %#v", got, c.want)
			}
		})
	}
}

func TestSentSeesNestedMembers(t *testing.T) {
	p := params(t, "LaunchTemplate.LaunchTemplateName=t&LaunchTemplateData.ImageId=ami-1&LaunchTemplateData.MetadataOptions.HttpTokens=required&InstanceIds=")
	for name, want := range map[string]bool{"LaunchTemplate": true, "InstanceIds": true, "LaunchTemplateData": true, "Launch": false, "InstanceId": false} {
		if got := p.Sent(name); got != want {
			t.Errorf("Sent(%q) = %t, want %t", name, got, want)
		}
	}
	if got, want := p.SentUnder("LaunchTemplateData"), map[string]bool{"ImageId": true, "MetadataOptions": true}; !reflect.DeepEqual(got, want) {
		t.Errorf("SentUnder = %v, want %v", got, want)
	}
	if got := p.Sub("LaunchTemplateData").Sent("MetadataOptions"); !got {
		t.Error("Sent under a Sub prefix missed MetadataOptions.HttpTokens")
	}
}

func TestScalarsReportBadValuesByName(t *testing.T) {
	p := params(t, "MinSize=two&Force=maybe&Max=3&On=TRUE")
	if _, _, err := p.Int("MinSize"); err == nil || !strings.Contains(err.Error(), "MinSize") {
		t.Errorf("Int: %v, want an error naming MinSize", err)
	}
	if _, _, err := p.Bool("Force"); err == nil || !strings.Contains(err.Error(), "Force") {
		t.Errorf("Bool: %v, want an error naming Force", err)
	}
	if n, ok, err := p.Int("Max"); n != 3 || !ok || err != nil {
		t.Errorf("Int(Max) = %d %t %v", n, ok, err)
	}
	if b, ok, err := p.Bool("On"); !b || !ok || err != nil {
		t.Errorf("Bool(On) = %t %t %v", b, ok, err)
	}
	if _, ok, _ := p.Int("Absent"); ok {
		t.Error("absent parameter reported as sent")
	}
	e := awsproto.AsError(func() error { _, _, err := p.Int("MinSize"); return err }(), "ValidationError")
	if e.Code != "ValidationError" || !strings.Contains(e.Message, "MinSize") {
		t.Errorf("AsError = %+v", e)
	}
}

func TestQueryEnvelopes(t *testing.T) {
	t.Run("operation with output has a Result element even when empty", func(t *testing.T) {
		rec := httptest.NewRecorder()
		awsproto.WriteQuery(rec, awsproto.NSAutoScaling, "CompleteLifecycleAction", "req-1", nil)
		if !strings.Contains(rec.Body.String(), "<CompleteLifecycleActionResult/>") || rec.Header().Get("x-amzn-RequestId") != "req-1" {
			t.Errorf("body %s", rec.Body)
		}
	})
	t.Run("operation without output has only metadata", func(t *testing.T) {
		rec := httptest.NewRecorder()
		awsproto.WriteQuery(rec, awsproto.NSAutoScaling, "SetDesiredCapacity", "req-1", awsproto.NoOutput{})
		if strings.Contains(rec.Body.String(), "Result") {
			t.Errorf("body %s", rec.Body)
		}
	})
	t.Run("lists always marshal their wrapper", func(t *testing.T) {
		type out struct {
			Names awsproto.Members[string] `xml:"Names"`
			Set   awsproto.Items[string]   `xml:"nameSet"`
		}
		b, err := xml.Marshal(out{Set: awsproto.Items[string]{"a"}})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(b), "<out><Names></Names><nameSet><item>a</item></nameSet></out>"; got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})
	t.Run("query error envelope", func(t *testing.T) {
		rec := httptest.NewRecorder()
		awsproto.WriteQueryError(rec, awsproto.NSAutoScaling, "req-2", awsproto.Validation("No active Lifecycle Action found with instance ID i-1"))
		var env struct {
			Error     struct{ Type, Code, Message string }
			RequestID string `xml:"RequestId"`
		}
		if err := xml.Unmarshal(rec.Body.Bytes(), &env); err != nil {
			t.Fatal(err)
		}
		if rec.Code != 400 || env.Error.Type != "Sender" || env.Error.Code != "ValidationError" || env.RequestID != "req-2" {
			t.Errorf("status %d, %+v", rec.Code, env)
		}
	})
	t.Run("ec2 error envelope has RequestID with a capital D", func(t *testing.T) {
		rec := httptest.NewRecorder()
		awsproto.WriteEC2Error(rec, "req-3", awsproto.Errorf("InvalidInstanceID.NotFound", "The instance ID 'i-1' does not exist"))
		if !strings.Contains(rec.Body.String(), "<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code>") || !strings.Contains(rec.Body.String(), "<RequestID>req-3</RequestID>") {
			t.Errorf("body %s", rec.Body)
		}
	})
	t.Run("json error carries the query-compatible code", func(t *testing.T) {
		rec := httptest.NewRecorder()
		awsproto.WriteJSONError(rec, "com.amazonaws.sqs", "application/x-amz-json-1.0", "req-4", &awsproto.Error{Code: "QueueDoesNotExist", Message: "The specified queue does not exist.", QueryCode: "AWS.SimpleQueueService.NonExistentQueue"})
		if got := rec.Header().Get("x-amzn-query-error"); got != "AWS.SimpleQueueService.NonExistentQueue;Sender" {
			t.Errorf("x-amzn-query-error %q", got)
		}
		if !strings.Contains(rec.Body.String(), `"__type":"com.amazonaws.sqs#QueueDoesNotExist"`) {
			t.Errorf("body %s", rec.Body)
		}
	})
}

// FuzzParams feeds arbitrary form bodies to the query decoder: it must
// never panic, and every list it returns must be in index order.
func FuzzParams(f *testing.F) {
	for _, seed := range []string{
		"Action=PutLifecycleHook&AutoScalingGroupName=my-asg&HeartbeatTimeout=300&Version=2011-01-01",
		"Filters.member.1.Name=tag%3Arole&Filters.member.1.Values.member.1=web",
		"InstanceIds=&Tags.member.1.Key=a&Tags.member.1.Value=",
		"Filter.1.Name=instance-state-name&Filter.1.Value.1=running&Attributes.entry.1.key=k&Attributes.entry.1.value=v",
		"Names.member.99999999999999999999=x&Names.member.-1=y",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		v, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		p := awsproto.NewParams(v)
		for _, name := range []string{"Names", "InstanceIds", "Filters", "Tags", "Filter", "Attributes"} {
			_ = p.Strings(name)
			_ = p.FlatStrings(name)
			_ = p.Map(name)
			for _, m := range p.Members(name) {
				_ = m.String("Name")
				_ = m.Strings("Values")
				_, _, _ = m.Int("Key")
				_, _, _ = m.Bool("Value")
			}
		}
		_, _, _ = p.Time("StartTime")
	})
}
