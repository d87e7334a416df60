package events_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/events"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// fuzzSeeds are requests as the Go SDK sends them (operation, body),
// against the fuzz world's rule "r" on the default bus.
var fuzzSeeds = [][2]string{
	{"PutRule", `{"Description":"d","EventBusName":"default","EventPattern":"{\"source\":[\"aws.autoscaling\"]}","Name":"r2","State":"ENABLED","Tags":[{"Key":"k","Value":"v"}]}`},
	{"PutRule", `{"Name":"tick","ScheduleExpression":"cron(0 12 * * ? *)"}`},
	{"DescribeRule", `{"Name":"r"}`},
	{"ListRules", `{"Limit":1,"NamePrefix":"r"}`},
	{"ListRules", `{"NextToken":"cg"}`},
	{"ListRuleNamesByTarget", `{"TargetArn":"arn:aws:lambda:us-east-1:123456789012:function:f"}`},
	{"DisableRule", `{"Name":"r"}`},
	{"EnableRule", `{"EventBusName":"arn:aws:events:us-east-1:123456789012:event-bus/default","Name":"r"}`},
	{"DeleteRule", `{"Force":true,"Name":"r"}`},
	{"PutTargets", `{"Rule":"r","Targets":[{"Arn":"arn:aws:sqs:us-east-1:123456789012:q","Id":"q","InputTransformer":{"InputPathsMap":{"i":"$.detail.EC2InstanceId"},"InputTemplate":"{\"i\":<i>}"}},{"Arn":"arn:aws:lambda:us-east-1:123456789012:function:f","Id":"f","InputPath":"$.detail"}]}`},
	{"PutTargets", `{"Rule":"r","Targets":[{"Arn":"arn:aws:ecs:us-east-1:123456789012:cluster/c","Id":"e","EcsParameters":{"TaskCount":1}}]}`},
	{"ListTargetsByRule", `{"Limit":1,"Rule":"r"}`},
	{"RemoveTargets", `{"Force":false,"Ids":["f","x"],"Rule":"r"}`},
	{"PutEvents", `{"Entries":[{"Detail":"{\"EC2InstanceId\":\"i-1\"}","DetailType":"EC2 Instance-terminate Lifecycle Action","Source":"aws.autoscaling"}]}`},
	{"PutEvents", `{"Entries":[{"Detail":"{\"a\":1}","DetailType":"t","Resources":["arn:x"],"Source":"app","Time":946684800.5,"EventBusName":"nope"}]}`},
	{"TestEventPattern", `{"Event":"{\"id\":\"1\",\"account\":\"1\",\"source\":\"s\",\"time\":\"t\",\"region\":\"r\",\"detail-type\":\"d\"}","EventPattern":"{\"source\":[\"s\"]}"}`},
	{"CreateEventBus", `{"Name":"apps","Description":"d"}`},
	{"DescribeEventBus", `{}`},
	{"ListEventBuses", `{"Limit":100}`},
	{"DeleteEventBus", `{"Name":"apps"}`},
	{"CreateArchive", `{}`},
	{"PutRule", `{"Name":`},
	{"PutEvents", `{"Entries":"x"}`},
}

func fuzzWorld(t *testing.T) *messaging.Buses {
	w := messaging.New(messaging.Config{}, simclock.NewSim(), nil, nil).Buses()
	if _, err := w.PutRule(messaging.PutRuleInput{Name: "r", EventPattern: `{"source":["app"]}`}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.PutTargets("", "r", []messaging.EventTarget{{ID: "f", ARN: "arn:aws:lambda:us-east-1:123456789012:function:f"}}); err != nil {
		t.Fatal(err)
	}
	return w
}

// FuzzJSONHandler checks that any request gets a well-formed awsJson
// answer: 200 with a JSON object, or 400 with __type and message; never a
// panic or an internal failure.
func FuzzJSONHandler(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, op, body string) {
		w := fuzzWorld(t)
		defer w.Close()
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("X-Amz-Target", "AWSEvents."+op)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		rec := httptest.NewRecorder()
		events.New(w).ServeHTTP(rec, req)

		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatalf("status %d, body is not a JSON object (%v): %s", rec.Code, err, rec.Body)
		}
		switch rec.Code {
		case http.StatusOK:
			if _, ok := m["__type"]; ok {
				t.Fatalf("200 with an error body: %s", rec.Body)
			}
		case http.StatusBadRequest:
			typ, _ := m["__type"].(string)
			if !strings.Contains(typ, "#") || m["message"] == nil {
				t.Fatalf("400 without __type and message: %s", rec.Body)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}
