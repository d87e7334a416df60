package messaging_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// TestSNSLifecycleNotificationsReachEachInstanceQueue runs the lifecycle
// use case in the world: a terminate hook notifies a topic; each
// instance's queue subscribes with a body filter on its own instance id
// and receives exactly its own lifecycle message, raw; an unfiltered,
// enveloped subscription receives every message with Auto Scaling's
// subject.
func TestSNSLifecycleNotificationsReachEachInstanceQueue(t *testing.T) {
	f := newFixture(t, world.Config{})
	w := f.w
	topic, err := w.CreateTopic(messaging.CreateTopicInput{Name: "asg-events"})
	if err != nil {
		t.Fatal(err)
	}
	f.group(t, world.CreateGroupInput{Name: "g", Desired: ptr(2), Hooks: []world.Hook{{
		Name: "drain", Transition: world.TransitionTerminating, HeartbeatTimeout: 300, NotificationTargetARN: topic,
		RoleARN: "arn:aws:iam::123456789012:role/asg-notify",
	}}})
	members := f.inService(t, "g", 2)
	queueARN := func(name string) string { return "arn:aws:sqs:us-east-1:123456789012:" + name }
	for _, m := range append(members, world.Instance{ID: "all"}) {
		if err := w.CreateQueue(messaging.CreateQueueInput{Name: "q-" + m.ID}); err != nil {
			t.Fatal(err)
		}
		in := messaging.SubscribeInput{TopicARN: topic, Protocol: "sqs", Endpoint: queueARN("q-" + m.ID)}
		if m.ID != "all" {
			in.Attributes = map[string]string{
				"FilterPolicy":       `{"EC2InstanceId":["` + m.ID + `"]}`,
				"FilterPolicyScope":  "MessageBody",
				"RawMessageDelivery": "true",
			}
		}
		if _, err := w.Subscribe(in); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.SetDesiredCapacity("g", 0, false); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		f.wait(t, "Terminating:Wait", inState(world.StateTerminatingWait))
	}
	receive := func(queue string) []messaging.ReceivedMessage {
		t.Helper()
		ten := 10
		msgs, err := w.ReceiveMessage(context.Background(), queue, messaging.ReceiveMessageInput{MaxNumberOfMessages: &ten})
		if err != nil {
			t.Fatal(err)
		}
		return msgs
	}
	for _, m := range members {
		msgs := receive("q-" + m.ID)
		if len(msgs) != 1 {
			t.Fatalf("queue of %s got %d messages, want its own lifecycle message only", m.ID, len(msgs))
		}
		var body map[string]any
		if err := json.Unmarshal([]byte(msgs[0].Body), &body); err != nil {
			t.Fatalf("raw body is not the lifecycle JSON: %v: %s", err, msgs[0].Body)
		}
		if body["EC2InstanceId"] != m.ID || body["LifecycleTransition"] != world.TransitionTerminating {
			t.Errorf("queue of %s got %s", m.ID, msgs[0].Body)
		}
	}
	all := receive("q-all")
	if len(all) != 2 {
		t.Fatalf("unfiltered queue got %d messages, want 2", len(all))
	}
	for _, m := range all {
		var env map[string]string
		if err := json.Unmarshal([]byte(m.Body), &env); err != nil {
			t.Fatalf("enveloped body: %v: %s", err, m.Body)
		}
		if env["Type"] != "Notification" || env["TopicArn"] != topic ||
			!strings.HasPrefix(env["Subject"], "Auto Scaling: Lifecycle action 'TERMINATING' for instance i-") ||
			!strings.Contains(env["Message"], `"LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING"`) {
			t.Errorf("envelope %s", m.Body)
		}
	}
}

func TestSNSPublishToMissingQueueIsRecorded(t *testing.T) {
	f := newFixture(t, world.Config{})
	topic, err := f.w.CreateTopic(messaging.CreateTopicInput{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.w.Subscribe(messaging.SubscribeInput{TopicARN: topic, Protocol: "sqs", Endpoint: "arn:aws:sqs:us-east-1:123456789012:gone"}); err != nil {
		t.Fatal(err)
	}
	res, err := f.w.Publish(messaging.PublishRequest{TopicARN: topic, Message: "hello"})
	if err != nil {
		t.Fatalf("publishing to a topic whose queue is gone: %v (SNS does not report delivery failures to the publisher)", err)
	}
	e := f.wait(t, "delivery failure", func(e eventlog.Event) bool {
		return e.Service == "sns" && strings.Contains(e.Detail, "delivery of "+res.MessageID)
	})
	if !strings.Contains(e.Detail, "NonExistentQueue") {
		t.Errorf("event %q does not name SQS's error", e.Detail)
	}
}

// TestSNSFifoDeduplicationWindow publishes to a FIFO topic with ids
// recorded at different times: each is a duplicate for exactly five
// minutes from its own first publish, and a republish after that is a new
// message whose window starts again.
func TestSNSFifoDeduplicationWindow(t *testing.T) {
	f := sqsNewFixture(t, world.Config{})
	topic, err := f.w.CreateTopic(messaging.CreateTopicInput{Name: "t.fifo", Attributes: map[string]string{"FifoTopic": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(dedup string) string {
		t.Helper()
		res, err := f.w.Publish(messaging.PublishRequest{TopicARN: topic, Message: "m", GroupID: "g", DedupID: dedup})
		if err != nil {
			t.Fatal(err)
		}
		return res.MessageID
	}
	a := publish("a")
	f.clock.Advance(2 * time.Minute)
	b := publish("b")
	f.clock.Advance(3*time.Minute - time.Second) // a: 4:59 old, b: 2:59
	if publish("a") != a || publish("b") != b {
		t.Fatal("duplicates within the window got new message ids")
	}
	f.clock.Advance(2 * time.Second) // a: 5:01, b: 3:01
	a2 := publish("a")
	if a2 == a || publish("b") != b {
		t.Fatalf("at 5:01 a got %s (first %s); b must still be a duplicate", a2, a)
	}
	f.clock.Advance(2 * time.Minute) // b: 5:01, a2: 2:00
	if publish("b") == b || publish("a") != a2 {
		t.Fatal("b's window did not end by 5:01, or a's new window ended early")
	}
}
