package messaging_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// invoker records the invocations the broker hands it; functions whose
// name contains "missing" do not exist.
type invoker struct{ calls chan invocation }

type invocation struct {
	arn     string
	payload []byte
}

func (i *invoker) InvokeAsync(arn string, payload []byte) error {
	i.calls <- invocation{arn, payload}
	if strings.Contains(arn, "missing") {
		return errors.New("ResourceNotFoundException: Function not found: " + arn)
	}
	return nil
}

func (i *invoker) next(t *testing.T) invocation {
	t.Helper()
	select {
	case c := <-i.calls:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no invocation")
	}
	return invocation{}
}

const fnARN = "arn:aws:lambda:us-east-1:123456789012:function:controller"

func TestSNSLambdaSubscriptionInvokes(t *testing.T) {
	f := newFixture(t, world.Config{})
	inv := &invoker{calls: make(chan invocation, 10)}
	f.w.broker.SetInvoker(inv)
	topic, err := f.w.CreateTopic(messaging.CreateTopicInput{Name: "asg"})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := f.w.Subscribe(messaging.SubscribeInput{TopicARN: topic, Protocol: messaging.ProtocolLambda, Endpoint: fnARN})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.w.Publish(messaging.PublishRequest{TopicARN: topic, Subject: "launch", Message: `{"Event":"autoscaling:EC2_INSTANCE_LAUNCH"}`,
		Attributes: map[string]messaging.MessageAttribute{"kind": {DataType: "String", StringValue: "launch"}}}); err != nil {
		t.Fatal(err)
	}
	c := inv.next(t)
	var ev struct {
		Records []struct {
			EventSource, EventVersion, EventSubscriptionArn string
			Sns                                             struct {
				Type, MessageId, TopicArn, Subject, Message, Timestamp, Signature, SigningCertUrl, UnsubscribeUrl string
				MessageAttributes                                                                                 map[string]struct{ Type, Value string }
			}
		}
	}
	if err := json.Unmarshal(c.payload, &ev); err != nil || len(ev.Records) != 1 {
		t.Fatalf("payload %s: %v", c.payload, err)
	}
	r := ev.Records[0]
	if c.arn != fnARN || r.EventSource != "aws:sns" || r.EventVersion != "1.0" || r.EventSubscriptionArn != sub ||
		r.Sns.Type != "Notification" || r.Sns.TopicArn != topic || r.Sns.Subject != "launch" || r.Sns.Message != `{"Event":"autoscaling:EC2_INSTANCE_LAUNCH"}` ||
		r.Sns.MessageId == "" || r.Sns.Signature == "" || r.Sns.SigningCertUrl == "" || r.Sns.UnsubscribeUrl == "" ||
		r.Sns.MessageAttributes["kind"].Value != "launch" {
		t.Errorf("SNS event for Lambda: %s", c.payload)
	}
	f.wait(t, "delivered", func(e eventlog.Event) bool { return e.Kind == messaging.EvSNSDelivered && e.Resource == sub })

	missing, err := f.w.Subscribe(messaging.SubscribeInput{TopicARN: topic, Protocol: messaging.ProtocolLambda, Endpoint: fnARN + "-missing"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.w.Publish(messaging.PublishRequest{TopicARN: topic, Message: "again"}); err != nil {
		t.Fatal(err)
	}
	f.wait(t, "failed delivery", func(e eventlog.Event) bool {
		return e.Kind == messaging.EvSNSDeliveryFailed && e.Resource == missing && strings.Contains(e.Detail, "Function not found")
	})
}

func TestEBScheduleRuleFiresOnTheClockAndInvokes(t *testing.T) {
	f := newFixture(t, world.Config{})
	inv := &invoker{calls: make(chan invocation, 10)}
	f.w.broker.SetInvoker(inv)
	rule, err := f.w.PutRule(messaging.PutRuleInput{Name: "tick", ScheduleExpression: "rate(5 minutes)"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.w.CreateQueue(messaging.CreateQueueInput{Name: "dlq"}); err != nil {
		t.Fatal(err)
	}
	ebPutTarget(t, f.w, "tick", messaging.EventTarget{ID: "fn", ARN: fnARN})
	ebPutTarget(t, f.w, "tick", messaging.EventTarget{ID: "gone", ARN: fnARN + "-missing",
		DeadLetter: &messaging.TargetDeadLetter{ARN: "arn:aws:sqs:us-east-1:123456789012:dlq"}})
	select {
	case c := <-inv.calls:
		t.Fatalf("invoked before the schedule fell due: %s", c.payload)
	default:
	}
	f.clock.Advance(5 * time.Minute)
	got := map[string]string{}
	for range 2 {
		c := inv.next(t)
		got[c.arn] = string(c.payload)
	}
	var ev struct {
		Source     string         `json:"source"`
		DetailType string         `json:"detail-type"`
		Resources  []string       `json:"resources"`
		Detail     map[string]any `json:"detail"`
	}
	if err := json.Unmarshal([]byte(got[fnARN]), &ev); err != nil || ev.Source != "aws.events" || ev.DetailType != "Scheduled Event" ||
		len(ev.Resources) != 1 || ev.Resources[0] != rule || ev.Detail == nil {
		t.Errorf("scheduled event %s (%v)", got[fnARN], err)
	}
	f.wait(t, "dead-lettered", func(e eventlog.Event) bool {
		return e.Kind == messaging.EvEventBridge && strings.Contains(e.Detail, "not invoked") && strings.Contains(e.Detail, "sent to dead-letter queue")
	})
}

func TestEBCronSchedule(t *testing.T) {
	f := newFixture(t, world.Config{})
	inv := &invoker{calls: make(chan invocation, 10)}
	f.w.broker.SetInvoker(inv)
	if _, err := f.w.PutRule(messaging.PutRuleInput{Name: "every-minute", ScheduleExpression: "cron(* * * * ? *)"}); err != nil {
		t.Fatal(err)
	}
	ebPutTarget(t, f.w, "every-minute", messaging.EventTarget{ID: "fn", ARN: fnARN})
	f.clock.Advance(time.Minute)
	c := inv.next(t)
	if !strings.Contains(string(c.payload), `"detail-type":"Scheduled Event"`) {
		t.Errorf("cron event %s", c.payload)
	}
}

func TestEBNextFire(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	origin := at("2026-03-02T10:00:30Z") // a Monday
	for _, c := range []struct{ expr, after, want string }{
		{"rate(1 minute)", "2026-03-02T10:00:30Z", "2026-03-02T10:01:30Z"},
		{"rate(5 minutes)", "2026-03-02T10:07:00Z", "2026-03-02T10:10:30Z"},
		{"rate(2 hours)", "2026-03-02T10:00:30Z", "2026-03-02T12:00:30Z"},
		{"rate(1 day)", "2026-03-02T11:00:00Z", "2026-03-03T10:00:30Z"},
		{"cron(0 12 * * ? *)", "2026-03-02T10:00:30Z", "2026-03-02T12:00:00Z"},
		{"cron(0 12 * * ? *)", "2026-03-02T12:00:00Z", "2026-03-03T12:00:00Z"},
		{"cron(0/15 * * * ? *)", "2026-03-02T10:00:30Z", "2026-03-02T10:15:00Z"},
		{"cron(0 18 ? * MON-FRI *)", "2026-03-06T18:00:00Z", "2026-03-09T18:00:00Z"}, // Friday → Monday
		{"cron(0 8 1 * ? *)", "2026-03-02T10:00:30Z", "2026-04-01T08:00:00Z"},
		{"cron(30 9 ? * 1 *)", "2026-03-02T10:00:30Z", "2026-03-08T09:30:00Z"}, // 1 is Sunday
		{"cron(0 0 1 JAN ? 2027)", "2026-03-02T10:00:30Z", "2027-01-01T00:00:00Z"},
		{"cron(0 0 1 JAN ? 2020)", "2026-03-02T10:00:30Z", ""},
		{"cron(0 0 L * ? *)", "2026-03-02T10:00:30Z", ""}, // accepted, never fires
	} {
		got, ok := messaging.EBNextFire(c.expr, at(c.after), origin)
		if c.want == "" {
			if ok {
				t.Errorf("%s after %s: %s, want never", c.expr, c.after, got)
			}
			continue
		}
		if !ok || !got.Equal(at(c.want)) {
			t.Errorf("%s after %s: %s (%v), want %s", c.expr, c.after, got, ok, c.want)
		}
	}
}
