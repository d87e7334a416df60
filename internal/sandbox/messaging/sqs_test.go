package messaging_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// sqsBound bounds every wait in these tests: the world answers in
// microseconds; the bound only turns a hang into a failure.
const sqsBound = 10 * time.Second

type sqsFixture struct {
	w     *system
	clock *simclock.Sim
}

func sqsNewFixture(t *testing.T, cfg world.Config) *sqsFixture {
	t.Helper()
	f := &sqsFixture{clock: simclock.NewSim()}
	f.w = newSystem(t, cfg, f.clock)
	return f
}

func sqsInt(n int) *int { return &n }

func (f *sqsFixture) create(t *testing.T, name string, attrs map[string]string) {
	t.Helper()
	if err := f.w.CreateQueue(messaging.CreateQueueInput{Name: name, Attributes: attrs}); err != nil {
		t.Fatalf("CreateQueue %s: %v", name, err)
	}
}

func (f *sqsFixture) send(t *testing.T, queue string, in messaging.SendMessageInput) messaging.SentMessage {
	t.Helper()
	sent, err := f.w.SendMessage(queue, in)
	if err != nil {
		t.Fatalf("SendMessage %s: %v", queue, err)
	}
	return sent
}

// receive receives without waiting, with every system attribute.
func (f *sqsFixture) receive(t *testing.T, queue string, max int, visibility *int) []messaging.ReceivedMessage {
	t.Helper()
	msgs, err := f.w.ReceiveMessage(t.Context(), queue, messaging.ReceiveMessageInput{
		MaxNumberOfMessages: sqsInt(max), VisibilityTimeout: visibility, WaitTimeSeconds: sqsInt(0),
		AttributeNames: []string{"All"}, MessageAttributeNames: []string{"All"},
	})
	if err != nil {
		t.Fatalf("ReceiveMessage %s: %v", queue, err)
	}
	return msgs
}

func (f *sqsFixture) counts(t *testing.T, queue string) string {
	t.Helper()
	a, err := f.w.GetQueueAttributes(queue, []string{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"})
	if err != nil {
		t.Fatal(err)
	}
	return a["ApproximateNumberOfMessages"] + "/" + a["ApproximateNumberOfMessagesNotVisible"] + "/" + a["ApproximateNumberOfMessagesDelayed"]
}

// sqsCode returns an error's AWS code ("" for nil).
func sqsCode(err error) string {
	var e *awsproto.Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err != nil {
		return "not an AWS error: " + err.Error()
	}
	return ""
}

func sqsBodies(msgs []messaging.ReceivedMessage) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Body)
	}
	return out
}

func TestSQSQueueNamesAndRecreation(t *testing.T) {
	f := sqsNewFixture(t, world.Config{})
	tests := []struct {
		name  string
		in    messaging.CreateQueueInput
		wantc string
	}{
		{"plain name", messaging.CreateQueueInput{Name: "jobs_1-a"}, ""},
		{"80 characters", messaging.CreateQueueInput{Name: strings.Repeat("q", 80)}, ""},
		{"81 characters", messaging.CreateQueueInput{Name: strings.Repeat("q", 81)}, "InvalidParameterValue"},
		{"dot in a standard name", messaging.CreateQueueInput{Name: "jobs.fifo"}, "InvalidParameterValue"},
		{"empty name", messaging.CreateQueueInput{Name: ""}, "MissingParameter"},
		{"fifo with suffix", messaging.CreateQueueInput{Name: "jobs.fifo", Attributes: map[string]string{"FifoQueue": "true"}}, ""},
		{"fifo without suffix", messaging.CreateQueueInput{Name: "jobs2", Attributes: map[string]string{"FifoQueue": "true"}}, "InvalidParameterValue"},
		{"same attributes again", messaging.CreateQueueInput{Name: "jobs_1-a"}, ""},
		{"different attributes", messaging.CreateQueueInput{Name: "jobs_1-a", Attributes: map[string]string{"VisibilityTimeout": "60"}}, "QueueAlreadyExists"},
		{"default given explicitly", messaging.CreateQueueInput{Name: "jobs_1-a", Attributes: map[string]string{"VisibilityTimeout": "30"}}, ""},
		{"attribute out of range", messaging.CreateQueueInput{Name: "v", Attributes: map[string]string{"VisibilityTimeout": "43201"}}, "InvalidAttributeValue"},
		{"unknown attribute", messaging.CreateQueueInput{Name: "v", Attributes: map[string]string{"Colour": "blue"}}, "InvalidAttributeName"},
		{"fifo attribute on a standard queue", messaging.CreateQueueInput{Name: "v", Attributes: map[string]string{"ContentBasedDeduplication": "true"}}, "InvalidAttributeName"},
		{"1 MiB messages", messaging.CreateQueueInput{Name: "big", Attributes: map[string]string{"MaximumMessageSize": "1048576"}}, ""},
		{"over 1 MiB", messaging.CreateQueueInput{Name: "bigger", Attributes: map[string]string{"MaximumMessageSize": "1048577"}}, "InvalidAttributeValue"},
		{"redrive to a missing queue", messaging.CreateQueueInput{Name: "src", Attributes: map[string]string{"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:nope","maxReceiveCount":3}`}}, "InvalidParameterValue"},
		{"redrive from standard to fifo", messaging.CreateQueueInput{Name: "src", Attributes: map[string]string{"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:jobs.fifo","maxReceiveCount":3}`}}, "InvalidParameterValue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sqsCode(f.w.CreateQueue(tt.in)); got != tt.wantc {
				t.Errorf("CreateQueue: code %q, want %q", got, tt.wantc)
			}
		})
	}

	t.Run("a deleted name is refused for 60 seconds", func(t *testing.T) {
		if err := f.w.DeleteQueue("jobs_1-a"); err != nil {
			t.Fatal(err)
		}
		err := f.w.CreateQueue(messaging.CreateQueueInput{Name: "jobs_1-a"})
		var e *awsproto.Error
		if !errors.As(err, &e) || e.Code != "AWS.SimpleQueueService.QueueDeletedRecently" ||
			e.Message != "You must wait 60 seconds after deleting a queue before you can create another with the same name." {
			t.Fatalf("CreateQueue after delete: %v", err)
		}
		f.clock.Advance(59 * time.Second)
		if got := sqsCode(f.w.CreateQueue(messaging.CreateQueueInput{Name: "jobs_1-a"})); got != "AWS.SimpleQueueService.QueueDeletedRecently" {
			t.Fatalf("at 59 s: %q", got)
		}
		f.clock.Advance(time.Second)
		f.create(t, "jobs_1-a", nil)
	})

	t.Run("relaxed limits shorten the wait to a second", func(t *testing.T) {
		r := sqsNewFixture(t, world.Config{RelaxLimits: true})
		r.create(t, "q", nil)
		if err := r.w.DeleteQueue("q"); err != nil {
			t.Fatal(err)
		}
		if got := sqsCode(r.w.CreateQueue(messaging.CreateQueueInput{Name: "q"})); got != "AWS.SimpleQueueService.QueueDeletedRecently" {
			t.Fatalf("right after delete: %q", got)
		}
		r.clock.Advance(time.Second)
		r.create(t, "q", nil)
	})

	t.Run("listing pages in name order", func(t *testing.T) {
		names, next, err := f.w.ListQueues("", 2, "")
		if err != nil || strings.Join(names, ",") != "big,jobs.fifo" || next == "" {
			t.Fatalf("page 1: %v %q %v", names, next, err)
		}
		names, next, err = f.w.ListQueues("", 2, next)
		if err != nil || strings.Join(names, ",") != "jobs_1-a,"+strings.Repeat("q", 80) || next != "" {
			t.Fatalf("page 2: %v %q %v", names, next, err)
		}
		names, _, _ = f.w.ListQueues("jobs", 0, "")
		if strings.Join(names, ",") != "jobs.fifo,jobs_1-a" {
			t.Fatalf("prefix: %v", names)
		}
	})
}

func TestSQSVisibilityAndReceiptHandles(t *testing.T) {
	f := sqsNewFixture(t, world.Config{})
	f.create(t, "q", nil)
	sent := f.send(t, "q", messaging.SendMessageInput{Body: "hello"})
	if sent.MD5OfMessageBody != "5d41402abc4b2a76b9719d911017c592" {
		t.Errorf("MD5OfMessageBody = %s", sent.MD5OfMessageBody)
	}
	first := f.receive(t, "q", 1, nil)
	if len(first) != 1 || first[0].MessageID != sent.MessageID || first[0].Attributes["ApproximateReceiveCount"] != "1" {
		t.Fatalf("first receive: %+v", first)
	}
	if got := f.counts(t, "q"); got != "0/1/0" {
		t.Errorf("counts while in flight = %s, want 0/1/0", got)
	}
	if got := f.receive(t, "q", 1, nil); len(got) != 0 {
		t.Fatalf("received an invisible message: %+v", got)
	}
	f.clock.Advance(29 * time.Second)
	if got := f.receive(t, "q", 1, nil); len(got) != 0 {
		t.Fatalf("visible before the 30 s default timeout: %+v", got)
	}
	f.clock.Advance(time.Second)
	second := f.receive(t, "q", 1, nil)
	if len(second) != 1 || second[0].Attributes["ApproximateReceiveCount"] != "2" || second[0].ReceiptHandle == first[0].ReceiptHandle {
		t.Fatalf("second receive: %+v", second)
	}
	if second[0].Attributes["ApproximateFirstReceiveTimestamp"] != first[0].Attributes["ApproximateFirstReceiveTimestamp"] {
		t.Errorf("first-receive timestamp moved: %s then %s", first[0].Attributes["ApproximateFirstReceiveTimestamp"], second[0].Attributes["ApproximateFirstReceiveTimestamp"])
	}

	t.Run("an older handle succeeds without deleting", func(t *testing.T) {
		if err := f.w.DeleteMessage("q", first[0].ReceiptHandle); err != nil {
			t.Fatal(err)
		}
		if got := f.counts(t, "q"); got != "0/1/0" {
			t.Errorf("counts = %s, want the message still in flight", got)
		}
	})
	t.Run("an older handle cannot change visibility", func(t *testing.T) {
		if got := sqsCode(f.w.ChangeMessageVisibility("q", first[0].ReceiptHandle, 0)); got != "AWS.SimpleQueueService.MessageNotInflight" {
			t.Errorf("code %q", got)
		}
	})
	t.Run("visibility cannot run past 12 hours from the receive", func(t *testing.T) {
		if err := f.w.ChangeMessageVisibility("q", second[0].ReceiptHandle, 7200); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Hour)
		if got := sqsCode(f.w.ChangeMessageVisibility("q", second[0].ReceiptHandle, 43200)); got != "InvalidParameterValue" {
			t.Errorf("code %q", got)
		}
		if err := f.w.ChangeMessageVisibility("q", second[0].ReceiptHandle, 39500); err != nil {
			t.Errorf("within 12 h: %v", err)
		}
	})
	t.Run("visibility 0 makes it receivable at once", func(t *testing.T) {
		if err := f.w.ChangeMessageVisibility("q", second[0].ReceiptHandle, 0); err != nil {
			t.Fatal(err)
		}
		if got := sqsCode(f.w.ChangeMessageVisibility("q", second[0].ReceiptHandle, 10)); got != "AWS.SimpleQueueService.MessageNotInflight" {
			t.Errorf("change on a visible message: code %q", got)
		}
	})
	t.Run("the latest handle deletes", func(t *testing.T) {
		third := f.receive(t, "q", 1, sqsInt(5))
		if len(third) != 1 {
			t.Fatalf("third receive: %+v", third)
		}
		if err := f.w.DeleteMessage("q", third[0].ReceiptHandle); err != nil {
			t.Fatal(err)
		}
		if got := f.counts(t, "q"); got != "0/0/0" {
			t.Errorf("counts after delete = %s", got)
		}
		if err := f.w.DeleteMessage("q", third[0].ReceiptHandle); err != nil {
			t.Errorf("deleting twice: %v", err)
		}
	})
	t.Run("a handle that is not one fails", func(t *testing.T) {
		for _, h := range []string{"garbage", "AQEB" + strings.Repeat("A", 12)} {
			err := f.w.DeleteMessage("q", h)
			var e *awsproto.Error
			if !errors.As(err, &e) || e.Code != "ReceiptHandleIsInvalid" || e.HTTPStatus() != 404 {
				t.Errorf("DeleteMessage(%q): %v", h, err)
			}
		}
	})
}

func TestSQSDelayRetentionAndCounts(t *testing.T) {
	f := sqsNewFixture(t, world.Config{})
	f.create(t, "q", map[string]string{"DelaySeconds": "10", "MessageRetentionPeriod": "60"})
	f.send(t, "q", messaging.SendMessageInput{Body: "queue delay"})
	f.send(t, "q", messaging.SendMessageInput{Body: "no delay", DelaySeconds: sqsInt(0)})
	f.send(t, "q", messaging.SendMessageInput{Body: "long delay", DelaySeconds: sqsInt(30)})
	if got := f.counts(t, "q"); got != "1/0/2" {
		t.Errorf("counts = %s, want 1/0/2", got)
	}
	if got := sqsBodies(f.receive(t, "q", 10, nil)); strings.Join(got, ",") != "no delay" {
		t.Errorf("received %v", got)
	}
	f.clock.Advance(10 * time.Second)
	if got := sqsBodies(f.receive(t, "q", 10, nil)); strings.Join(got, ",") != "queue delay" {
		t.Errorf("after 10 s received %v", got)
	}
	f.clock.Advance(50 * time.Second)
	if got := f.counts(t, "q"); got != "0/0/0" {
		t.Errorf("after the 60 s retention: counts = %s, want every message expired", got)
	}
}

func TestSQSDeadLetterRedrive(t *testing.T) {
	f := sqsNewFixture(t, world.Config{})
	f.create(t, "dlq", map[string]string{"MessageRetentionPeriod": "120"})
	dlqARN := "arn:aws:sqs:us-east-1:123456789012:dlq"
	f.create(t, "src", map[string]string{"RedrivePolicy": `{"deadLetterTargetArn":"` + dlqARN + `","maxReceiveCount":"2"}`})
	attrs, err := f.w.GetQueueAttributes("src", []string{"RedrivePolicy", "QueueArn"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"deadLetterTargetArn":"` + dlqARN + `","maxReceiveCount":2}`; attrs["RedrivePolicy"] != want {
		t.Errorf("RedrivePolicy = %s, want %s", attrs["RedrivePolicy"], want)
	}
	sent := f.send(t, "src", messaging.SendMessageInput{Body: "poison", Attributes: map[string]messaging.MessageAttribute{"k": {DataType: "String", StringValue: "v"}}})
	for i := 1; i <= 2; i++ {
		got := f.receive(t, "src", 1, sqsInt(0))
		if len(got) != 1 || got[0].Attributes["ApproximateReceiveCount"] != fmt.Sprint(i) {
			t.Fatalf("receive %d: %+v", i, got)
		}
	}
	if got := f.receive(t, "src", 1, sqsInt(0)); len(got) != 0 {
		t.Fatalf("third receive returned %+v; want the message moved instead", got)
	}
	moved := f.receive(t, "dlq", 1, nil)
	if len(moved) != 1 || moved[0].MessageID != sent.MessageID || moved[0].Body != "poison" ||
		moved[0].Attributes["DeadLetterQueueSourceArn"] != "arn:aws:sqs:us-east-1:123456789012:src" ||
		moved[0].Attributes["ApproximateReceiveCount"] != "1" || moved[0].MessageAttributes["k"].StringValue != "v" {
		t.Fatalf("dead-letter message: %+v", moved)
	}
	sources, _, err := f.w.DeadLetterSourceQueues("dlq", 0, "")
	if err != nil || strings.Join(sources, ",") != "src" {
		t.Errorf("DeadLetterSourceQueues = %v, %v", sources, err)
	}
	// A standard queue's message keeps its enqueue time: the DLQ's 120 s
	// retention counts from the original send.
	f.clock.Advance(120 * time.Second)
	if got := f.counts(t, "dlq"); got != "0/0/0" {
		t.Errorf("dlq counts after 120 s = %s, want expired", got)
	}
}

func TestSQSFifo(t *testing.T) {
	f := sqsNewFixture(t, world.Config{})
	f.create(t, "o.fifo", map[string]string{"FifoQueue": "true"})
	f.create(t, "c.fifo", map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"})

	t.Run("group and deduplication ids are required", func(t *testing.T) {
		_, err := f.w.SendMessage("o.fifo", messaging.SendMessageInput{Body: "x", DedupID: "d"})
		if got := sqsCode(err); got != "MissingParameter" {
			t.Errorf("no group: %q", got)
		}
		_, err = f.w.SendMessage("o.fifo", messaging.SendMessageInput{Body: "x", GroupID: "g"})
		if got := sqsCode(err); got != "InvalidParameterValue" {
			t.Errorf("no dedup id without content-based deduplication: %q", got)
		}
		_, err = f.w.SendMessage("o.fifo", messaging.SendMessageInput{Body: "x", GroupID: "g", DedupID: "d", DelaySeconds: sqsInt(5)})
		if got := sqsCode(err); got != "InvalidParameterValue" {
			t.Errorf("per-message delay: %q", got)
		}
	})

	t.Run("duplicates within five minutes are dropped", func(t *testing.T) {
		a := f.send(t, "c.fifo", messaging.SendMessageInput{Body: "same", GroupID: "g"})
		b := f.send(t, "c.fifo", messaging.SendMessageInput{Body: "same", GroupID: "g"})
		if a.MessageID != b.MessageID || a.SequenceNumber != b.SequenceNumber || len(a.SequenceNumber) != 20 {
			t.Errorf("duplicate got %+v, first %+v", b, a)
		}
		f.clock.Advance(5 * time.Minute)
		c := f.send(t, "c.fifo", messaging.SendMessageInput{Body: "same", GroupID: "g"})
		if c.MessageID == a.MessageID || c.SequenceNumber <= a.SequenceNumber {
			t.Errorf("after the window got %+v, first %+v", c, a)
		}
		msgs := f.receive(t, "c.fifo", 10, nil)
		if len(msgs) != 2 || msgs[0].Attributes["MessageDeduplicationId"] == "" || msgs[0].Attributes["SequenceNumber"] != a.SequenceNumber {
			t.Errorf("received %+v", msgs)
		}
	})

	t.Run("a group with a message in flight delivers nothing else", func(t *testing.T) {
		for i, g := range []string{"a", "a", "b", "a"} {
			f.send(t, "o.fifo", messaging.SendMessageInput{Body: fmt.Sprintf("%s%d", g, i), GroupID: g, DedupID: fmt.Sprint(i)})
		}
		got := f.receive(t, "o.fifo", 1, nil)
		if strings.Join(sqsBodies(got), ",") != "a0" {
			t.Fatalf("first receive %v", sqsBodies(got))
		}
		if b := sqsBodies(f.receive(t, "o.fifo", 10, nil)); strings.Join(b, ",") != "b2" {
			t.Fatalf("second receive %v, want only group b", b)
		}
		if b := f.receive(t, "o.fifo", 10, nil); len(b) != 0 {
			t.Fatalf("third receive %v, want nothing", sqsBodies(b))
		}
		if err := f.w.DeleteMessage("o.fifo", got[0].ReceiptHandle); err != nil {
			t.Fatal(err)
		}
		if b := sqsBodies(f.receive(t, "o.fifo", 10, nil)); strings.Join(b, ",") != "a1,a3" {
			t.Fatalf("after deleting a0: %v, want a1,a3 in order", b)
		}
	})
}

func TestSQSMessageAttributes(t *testing.T) {
	f := sqsNewFixture(t, world.Config{})
	f.create(t, "q", nil)
	// Digests published by AWS SDK test suites for the same attributes.
	tests := []struct {
		name  string
		attrs map[string]messaging.MessageAttribute
		want  string
	}{
		{"one string", map[string]messaging.MessageAttribute{"SellerName": {DataType: "String", StringValue: "Example Store"}}, "cd28f3b68aeee4b2eac9c66f2f694b58"},
		{"string and number", map[string]messaging.MessageAttribute{
			"ordinal":  {DataType: "Number", StringValue: "1"},
			"category": {DataType: "String", StringValue: "test"},
		}, "d21ae90c49061e927f57df5f5d72be1f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent := f.send(t, "q", messaging.SendMessageInput{Body: "b", Attributes: tt.attrs})
			if sent.MD5OfMessageAttributes != tt.want {
				t.Errorf("MD5OfMessageAttributes = %s, want %s", sent.MD5OfMessageAttributes, tt.want)
			}
		})
	}
	t.Run("receive returns and digests only the attributes asked for", func(t *testing.T) {
		f.create(t, "sel", nil)
		f.send(t, "sel", messaging.SendMessageInput{Body: "b", Attributes: map[string]messaging.MessageAttribute{
			"app.id": {DataType: "String", StringValue: "1"}, "app.kind": {DataType: "Binary", BinaryValue: []byte{0, 1}}, "other": {DataType: "Number.int", StringValue: "7"},
		}})
		msgs, err := f.w.ReceiveMessage(t.Context(), "sel", messaging.ReceiveMessageInput{MessageAttributeNames: []string{"app.*"}, VisibilityTimeout: sqsInt(0)})
		if err != nil || len(msgs) != 1 {
			t.Fatalf("%v %v", msgs, err)
		}
		m := msgs[0]
		if len(m.MessageAttributes) != 2 || m.MessageAttributes["other"].DataType != "" || len(m.Attributes) != 0 {
			t.Errorf("attributes %+v, system %+v", m.MessageAttributes, m.Attributes)
		}
		sent := f.send(t, "q", messaging.SendMessageInput{Body: "b", Attributes: m.MessageAttributes})
		if m.MD5OfMessageAttributes != sent.MD5OfMessageAttributes {
			t.Errorf("digest of the selection %s, of the same attributes sent %s", m.MD5OfMessageAttributes, sent.MD5OfMessageAttributes)
		}
	})
	t.Run("bad attributes are refused", func(t *testing.T) {
		for name, a := range map[string]map[string]messaging.MessageAttribute{
			"type":          {"a": {DataType: "Text", StringValue: "x"}},
			"empty value":   {"a": {DataType: "String"}},
			"reserved name": {"AWS.x": {DataType: "String", StringValue: "x"}},
			"number":        {"a": {DataType: "Number", StringValue: "one"}},
		} {
			if got := sqsCode(func() error {
				_, err := f.w.SendMessage("q", messaging.SendMessageInput{Body: "b", Attributes: a})
				return err
			}()); got != "InvalidParameterValue" {
				t.Errorf("%s: code %q", name, got)
			}
		}
	})
	t.Run("bodies SQS cannot carry are refused", func(t *testing.T) {
		_, err := f.w.SendMessage("q", messaging.SendMessageInput{Body: "a\x00b"})
		if got := sqsCode(err); got != "InvalidMessageContents" {
			t.Errorf("NUL: %q", got)
		}
		f.create(t, "small", map[string]string{"MaximumMessageSize": "1024"})
		_, err = f.w.SendMessage("small", messaging.SendMessageInput{Body: strings.Repeat("x", 1025)})
		if got := sqsCode(err); got != "InvalidParameterValue" {
			t.Errorf("too long: %q", got)
		}
	})
}

// TestSQSConcurrentReceiversNeverShareAMessage runs 20 long-polling
// receivers against one queue while a sender fills it: no message may be
// handed to two receivers while it is invisible.
func TestSQSConcurrentReceiversNeverShareAMessage(t *testing.T) {
	f := sqsNewFixture(t, world.Config{})
	f.create(t, "q", map[string]string{"VisibilityTimeout": "3600"})
	const receivers, messages = 20, 400
	ctx, cancel := context.WithTimeout(t.Context(), sqsBound)
	defer cancel()
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
	)
	for r := range receivers {
		wg.Go(func() {
			for i := r; ; i++ {
				mu.Lock()
				done := len(seen) >= messages
				mu.Unlock()
				if done || ctx.Err() != nil {
					return
				}
				msgs, err := f.w.ReceiveMessage(ctx, "q", messaging.ReceiveMessageInput{MaxNumberOfMessages: sqsInt(1 + i%10), WaitTimeSeconds: sqsInt(1)})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, m := range msgs {
					seen[m.MessageID]++
				}
				mu.Unlock()
			}
		})
	}
	for i := range messages {
		f.send(t, "q", messaging.SendMessageInput{Body: fmt.Sprint(i)})
	}
	wg.Wait()
	if len(seen) != messages {
		t.Fatalf("received %d distinct messages, want %d", len(seen), messages)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("message %s received %d times", id, n)
		}
	}
}

// sqsWaitEvent waits for an event whose detail starts with prefix, after seq.
func (f *sqsFixture) waitEvent(t *testing.T, seq int64, prefix string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), sqsBound)
	defer cancel()
	for {
		evs, err := f.w.EventsAfter(ctx, seq)
		if err != nil {
			t.Fatalf("waiting for %q: %v", prefix, err)
		}
		for _, e := range evs {
			seq = e.Seq
			if e.Service == "sqs" && strings.HasPrefix(e.Detail, prefix) {
				return seq
			}
		}
	}
}

func (f *sqsFixture) lastSeq() int64 {
	evs := f.w.Events()
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}

func TestSQSLongPolling(t *testing.T) {
	type result struct {
		msgs []messaging.ReceivedMessage
		err  error
	}
	poll := func(f *sqsFixture, queue string) chan result {
		ch := make(chan result, 1)
		go func() {
			msgs, err := f.w.ReceiveMessage(context.Background(), queue, messaging.ReceiveMessageInput{WaitTimeSeconds: sqsInt(20)})
			ch <- result{msgs, err}
		}()
		return ch
	}
	wait := func(t *testing.T, ch chan result) result {
		t.Helper()
		select {
		case r := <-ch:
			return r
		case <-time.After(sqsBound): // well short of the 20 s wait
			t.Fatal("the receiver was not woken")
			return result{}
		}
	}

	t.Run("a send wakes a waiting receiver", func(t *testing.T) {
		f := sqsNewFixture(t, world.Config{})
		f.create(t, "q", nil)
		seq := f.lastSeq()
		ch := poll(f, "q")
		f.waitEvent(t, seq, "long poll waiting q")
		f.send(t, "q", messaging.SendMessageInput{Body: "wake"})
		if r := wait(t, ch); r.err != nil || strings.Join(sqsBodies(r.msgs), ",") != "wake" {
			t.Fatalf("got %+v", r)
		}
	})

	t.Run("advancing the clock past a visibility timeout wakes it", func(t *testing.T) {
		f := sqsNewFixture(t, world.Config{})
		f.create(t, "q", nil)
		f.send(t, "q", messaging.SendMessageInput{Body: "again"})
		if got := f.receive(t, "q", 1, sqsInt(300)); len(got) != 1 {
			t.Fatal("first receive failed")
		}
		seq := f.lastSeq()
		ch := poll(f, "q")
		f.waitEvent(t, seq, "long poll waiting q")
		f.clock.Advance(300 * time.Second)
		if r := wait(t, ch); r.err != nil || strings.Join(sqsBodies(r.msgs), ",") != "again" {
			t.Fatalf("got %+v", r)
		}
	})

	t.Run("the queue's ReceiveMessageWaitTimeSeconds applies without WaitTimeSeconds", func(t *testing.T) {
		f := sqsNewFixture(t, world.Config{})
		f.create(t, "q", map[string]string{"ReceiveMessageWaitTimeSeconds": "20"})
		seq := f.lastSeq()
		ch := make(chan result, 1)
		go func() {
			msgs, err := f.w.ReceiveMessage(context.Background(), "q", messaging.ReceiveMessageInput{})
			ch <- result{msgs, err}
		}()
		f.waitEvent(t, seq, "long poll waiting q")
		f.send(t, "q", messaging.SendMessageInput{Body: "late"})
		if r := wait(t, ch); r.err != nil || strings.Join(sqsBodies(r.msgs), ",") != "late" {
			t.Fatalf("got %+v", r)
		}
	})

	t.Run("deleting the queue ends the wait", func(t *testing.T) {
		f := sqsNewFixture(t, world.Config{})
		f.create(t, "q", nil)
		seq := f.lastSeq()
		ch := poll(f, "q")
		f.waitEvent(t, seq, "long poll waiting q")
		if err := f.w.DeleteQueue("q"); err != nil {
			t.Fatal(err)
		}
		if r := wait(t, ch); sqsCode(r.err) != messaging.SQSNonExistentQueue {
			t.Fatalf("got %+v", r)
		}
	})

	t.Run("a cancelled request returns empty-handed", func(t *testing.T) {
		f := sqsNewFixture(t, world.Config{})
		f.create(t, "q", nil)
		ctx, cancel := context.WithCancel(t.Context())
		seq := f.lastSeq()
		ch := make(chan result, 1)
		go func() {
			msgs, err := f.w.ReceiveMessage(ctx, "q", messaging.ReceiveMessageInput{WaitTimeSeconds: sqsInt(20)})
			ch <- result{msgs, err}
		}()
		f.waitEvent(t, seq, "long poll waiting q")
		cancel()
		if r := wait(t, ch); r.err != nil || len(r.msgs) != 0 {
			t.Fatalf("got %+v", r)
		}
	})
}

func TestSQSBatches(t *testing.T) {
	f := sqsNewFixture(t, world.Config{})
	f.create(t, "q", nil)
	entries := func(ids ...string) []messaging.SendMessageBatchEntry {
		var out []messaging.SendMessageBatchEntry
		for _, id := range ids {
			out = append(out, messaging.SendMessageBatchEntry{ID: id, SendMessageInput: messaging.SendMessageInput{Body: "m" + id}})
		}
		return out
	}
	for name, tt := range map[string]struct {
		entries []messaging.SendMessageBatchEntry
		code    string
	}{
		"empty":        {nil, "AWS.SimpleQueueService.EmptyBatchRequest"},
		"eleven":       {entries("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"), "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"},
		"repeated ids": {entries("a", "a"), "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"},
		"bad id":       {entries("a b"), "AWS.SimpleQueueService.InvalidBatchEntryId"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := f.w.SendMessageBatch("q", tt.entries)
			if got := sqsCode(err); got != tt.code {
				t.Errorf("code %q, want %q", got, tt.code)
			}
		})
	}
	t.Run("one bad entry fails alone", func(t *testing.T) {
		es := entries("ok1", "bad", "ok2")
		es[1].DelaySeconds = sqsInt(901)
		res, err := f.w.SendMessageBatch("q", es)
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Err != nil || res[2].Err != nil || res[1].Err == nil || res[1].Err.Code != "InvalidParameterValue" {
			t.Fatalf("results %+v", res)
		}
		msgs := f.receive(t, "q", 10, nil)
		var rs []messaging.ReceiptEntry
		for i, m := range msgs {
			rs = append(rs, messaging.ReceiptEntry{ID: fmt.Sprint("e", i), ReceiptHandle: m.ReceiptHandle})
		}
		rs = append(rs, messaging.ReceiptEntry{ID: "junk", ReceiptHandle: "junk"})
		del, err := f.w.DeleteMessageBatch("q", rs)
		if err != nil {
			t.Fatal(err)
		}
		if len(del) != 3 || del[0].Err != nil || del[1].Err != nil || del[2].Err == nil || del[2].Err.Code != "ReceiptHandleIsInvalid" {
			t.Fatalf("delete results %+v", del)
		}
	})
}

func TestSQSPurgeTagsAndAttributes(t *testing.T) {
	f := sqsNewFixture(t, world.Config{})
	f.create(t, "q", nil)
	for range 3 {
		f.send(t, "q", messaging.SendMessageInput{Body: "x"})
	}
	if err := f.w.PurgeQueue("q"); err != nil {
		t.Fatal(err)
	}
	if got := f.counts(t, "q"); got != "0/0/0" {
		t.Errorf("counts after purge = %s", got)
	}
	err := f.w.PurgeQueue("q")
	var e *awsproto.Error
	if !errors.As(err, &e) || e.Code != "AWS.SimpleQueueService.PurgeQueueInProgress" || e.HTTPStatus() != 403 {
		t.Errorf("second purge: %v", err)
	}
	f.clock.Advance(60 * time.Second)
	if err := f.w.PurgeQueue("q"); err != nil {
		t.Errorf("purge after 60 s: %v", err)
	}

	if err := f.w.TagQueue("q", map[string]string{"team": "infra", "env": "dev"}); err != nil {
		t.Fatal(err)
	}
	if err := f.w.UntagQueue("q", []string{"env", "absent"}); err != nil {
		t.Fatal(err)
	}
	if tags, _ := f.w.QueueTags("q"); len(tags) != 1 || tags["team"] != "infra" {
		t.Errorf("tags %v", tags)
	}

	f.clock.Advance(time.Minute)
	if err := f.w.SetQueueAttributes("q", map[string]string{"VisibilityTimeout": "45", "Policy": `{"Version":"2012-10-17"}`}); err != nil {
		t.Fatal(err)
	}
	all, err := f.w.GetQueueAttributes("q", []string{"All"})
	if err != nil {
		t.Fatal(err)
	}
	if all["VisibilityTimeout"] != "45" || all["Policy"] == "" || all["QueueArn"] != "arn:aws:sqs:us-east-1:123456789012:q" ||
		all["MaximumMessageSize"] != "1048576" || all["MessageRetentionPeriod"] != "345600" || all["LastModifiedTimestamp"] == all["CreatedTimestamp"] {
		t.Errorf("attributes %v", all)
	}
	if _, ok := all["FifoQueue"]; ok {
		t.Errorf("a standard queue shows FifoQueue")
	}
	if _, err := f.w.GetQueueAttributes("q", []string{"Bogus"}); sqsCode(err) != "InvalidAttributeName" {
		t.Errorf("unknown attribute: %v", err)
	}
	if err := f.w.SetQueueAttributes("q", map[string]string{"FifoQueue": "true"}); sqsCode(err) != "InvalidAttributeName" {
		t.Errorf("FifoQueue set later: %v", err)
	}
}

// TestSQSLifecycleHookNotifiesQueue checks the delivery contract other
// services use: a lifecycle hook's test notification lands on its queue.
func TestSQSLifecycleHookNotifiesQueue(t *testing.T) {
	f := sqsNewFixture(t, world.Config{})
	f.create(t, "lifecycle-q", nil)
	if err := f.w.CreateLaunchConfiguration(world.LaunchConfiguration{Name: "lc", ImageID: "ami-0abcdef1234567890", InstanceType: "t3.micro"}); err != nil {
		t.Fatal(err)
	}
	if err := f.w.CreateAutoScalingGroup(world.CreateGroupInput{Name: "g", LaunchConfiguration: "lc", MinSize: sqsInt(0), MaxSize: sqsInt(1), AvailabilityZones: []string{"us-east-1a"}}); err != nil {
		t.Fatal(err)
	}
	err := f.w.PutLifecycleHook(world.Hook{
		Group: "g", Name: "h", Transition: world.TransitionTerminating, HeartbeatTimeout: 300,
		NotificationTargetARN: "arn:aws:sqs:us-east-1:123456789012:lifecycle-q", RoleARN: "arn:aws:iam::123456789012:role/r",
	}, world.HookFields{Transition: true, HeartbeatTimeout: true, NotificationTargetARN: true, RoleARN: true})
	if err != nil {
		t.Fatal(err)
	}
	msgs := f.receive(t, "lifecycle-q", 10, nil)
	if len(msgs) != 1 {
		t.Fatalf("received %d messages", len(msgs))
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(msgs[0].Body), &body); err != nil || body["Event"] != "autoscaling:TEST_NOTIFICATION" {
		t.Errorf("body %s (%v)", msgs[0].Body, err)
	}
	if got := msgs[0].Attributes["SenderId"]; got != "AROAAUTOSCALING:AutoScaling" {
		t.Errorf("SenderId %q", got)
	}
	var created, sent bool
	for _, e := range f.w.Events() {
		created = created || e.Service == "sqs" && e.Detail == "queue created lifecycle-q"
		sent = sent || e.Service == "sqs" && e.Detail == "message sent lifecycle-q "+msgs[0].MessageID
	}
	if !created || !sent {
		t.Errorf("events: created %t, sent %t", created, sent)
	}
}
