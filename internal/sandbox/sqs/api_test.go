package sqs_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
)

func TestQueueLifecycle(t *testing.T) {
	e := newEnv(t, sandbox.Config{RelaxLimits: true})
	ctx := t.Context()
	url := e.createQueue(t, "jobs", map[string]string{"VisibilityTimeout": "45"})
	if want := e.url + "/123456789012/jobs"; url != want {
		t.Fatalf("QueueUrl = %s, want %s", url, want)
	}

	t.Run("creating it again with the same attributes returns its URL", func(t *testing.T) {
		if got := e.createQueue(t, "jobs", map[string]string{"VisibilityTimeout": "45"}); got != url {
			t.Errorf("got %s", got)
		}
	})
	t.Run("with other attributes it is refused", func(t *testing.T) {
		_, err := e.client.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String("jobs"), Attributes: map[string]string{"VisibilityTimeout": "46"}})
		var typed *types.QueueNameExists
		if code, _ := apiError(t, err); code != "QueueAlreadyExists" || !errors.As(err, &typed) {
			t.Errorf("code %s (%T)", code, err)
		}
	})
	t.Run("GetQueueUrl", func(t *testing.T) {
		out, err := e.client.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String("jobs")})
		if err != nil || aws.ToString(out.QueueUrl) != url {
			t.Errorf("%v %v", out, err)
		}
		_, err = e.client.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String("nope")})
		var typed *types.QueueDoesNotExist
		code, msg := apiError(t, err)
		if code != "AWS.SimpleQueueService.NonExistentQueue" || msg != "The specified queue does not exist." || !errors.As(err, &typed) {
			t.Errorf("missing queue: %s %q (%T)", code, msg, err)
		}
	})
	t.Run("a URL through any host names the same queue", func(t *testing.T) {
		_, err := e.client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String("http://127.0.0.9:1234/123456789012/jobs")})
		if err != nil {
			t.Error(err)
		}
	})
	t.Run("ListQueues pages", func(t *testing.T) {
		e.createQueue(t, "jobs-2", nil)
		e.createQueue(t, "other", nil)
		out, err := e.client.ListQueues(ctx, &awssqs.ListQueuesInput{QueueNamePrefix: aws.String("jobs")})
		if err != nil || len(out.QueueUrls) != 2 || out.NextToken != nil {
			t.Fatalf("%+v %v", out, err)
		}
		var all []string
		p := awssqs.NewListQueuesPaginator(e.client, &awssqs.ListQueuesInput{MaxResults: aws.Int32(2)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, page.QueueUrls...)
		}
		if len(all) != 3 || !strings.HasSuffix(all[2], "/other") {
			t.Errorf("paged %v", all)
		}
	})
	t.Run("deleted names wait a second under --relax-limits", func(t *testing.T) {
		if _, err := e.client.DeleteQueue(ctx, &awssqs.DeleteQueueInput{QueueUrl: aws.String(url)}); err != nil {
			t.Fatal(err)
		}
		_, err := e.client.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String("jobs")})
		var typed *types.QueueDeletedRecently
		if code, _ := apiError(t, err); code != "AWS.SimpleQueueService.QueueDeletedRecently" || !errors.As(err, &typed) {
			t.Errorf("code %s", code)
		}
		e.clock.Advance(time.Second)
		e.createQueue(t, "jobs", nil)
	})
}

func TestAttributesAndTags(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	ctx := t.Context()
	out, err := e.client.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String("q"), Tags: map[string]string{"team": "infra"}})
	if err != nil {
		t.Fatal(err)
	}
	url := out.QueueUrl
	for i, delay := range []int32{0, 0, 120} {
		if _, err := e.client.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: url, MessageBody: aws.String(fmt.Sprint(i)), DelaySeconds: delay}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: url}); err != nil {
		t.Fatal(err)
	}
	attrs, err := e.client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: url, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ApproximateNumberOfMessages": "1", "ApproximateNumberOfMessagesNotVisible": "1", "ApproximateNumberOfMessagesDelayed": "1",
		"QueueArn": "arn:aws:sqs:us-east-1:123456789012:q", "VisibilityTimeout": "30", "DelaySeconds": "0",
		"MaximumMessageSize": "1048576", "MessageRetentionPeriod": "345600", "ReceiveMessageWaitTimeSeconds": "0",
	}
	for k, v := range want {
		if attrs.Attributes[k] != v {
			t.Errorf("%s = %q, want %q", k, attrs.Attributes[k], v)
		}
	}
	if attrs.Attributes["CreatedTimestamp"] == "" || attrs.Attributes["LastModifiedTimestamp"] == "" {
		t.Errorf("timestamps missing: %v", attrs.Attributes)
	}

	if _, err := e.client.SetQueueAttributes(ctx, &awssqs.SetQueueAttributesInput{QueueUrl: url, Attributes: map[string]string{"ReceiveMessageWaitTimeSeconds": "20"}}); err != nil {
		t.Fatal(err)
	}
	one, err := e.client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: url, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameReceiveMessageWaitTimeSeconds}})
	if err != nil || len(one.Attributes) != 1 || one.Attributes["ReceiveMessageWaitTimeSeconds"] != "20" {
		t.Errorf("%v %v", one, err)
	}
	_, err = e.client.SetQueueAttributes(ctx, &awssqs.SetQueueAttributesInput{QueueUrl: url, Attributes: map[string]string{"DelaySeconds": "901"}})
	var typed *types.InvalidAttributeValue
	if code, _ := apiError(t, err); code != "InvalidAttributeValue" || !errors.As(err, &typed) {
		t.Errorf("bad value: %s", code)
	}

	if _, err := e.client.TagQueue(ctx, &awssqs.TagQueueInput{QueueUrl: url, Tags: map[string]string{"env": "dev"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.UntagQueue(ctx, &awssqs.UntagQueueInput{QueueUrl: url, TagKeys: []string{"team"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := e.client.ListQueueTags(ctx, &awssqs.ListQueueTagsInput{QueueUrl: url})
	if err != nil || len(tags.Tags) != 1 || tags.Tags["env"] != "dev" {
		t.Errorf("tags %v %v", tags, err)
	}

	t.Run("purge", func(t *testing.T) {
		if _, err := e.client.PurgeQueue(ctx, &awssqs.PurgeQueueInput{QueueUrl: url}); err != nil {
			t.Fatal(err)
		}
		_, err := e.client.PurgeQueue(ctx, &awssqs.PurgeQueueInput{QueueUrl: url})
		var typed *types.PurgeQueueInProgress
		if code, _ := apiError(t, err); code != "AWS.SimpleQueueService.PurgeQueueInProgress" || !errors.As(err, &typed) {
			t.Errorf("second purge: %s", code)
		}
		a, _ := e.client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: url, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
		if a.Attributes["ApproximateNumberOfMessages"] != "0" || a.Attributes["ApproximateNumberOfMessagesDelayed"] != "0" {
			t.Errorf("after purge %v", a.Attributes)
		}
	})
}

func TestSendReceiveDelete(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	ctx := t.Context()
	url := aws.String(e.createQueue(t, "q", nil))
	attrs := map[string]types.MessageAttributeValue{
		"SellerName": {DataType: aws.String("String"), StringValue: aws.String("Example Store")},
		"blob":       {DataType: aws.String("Binary.gz"), BinaryValue: []byte{0, 1, 2, 255}},
		"n":          {DataType: aws.String("Number"), StringValue: aws.String("-1.5e3")},
	}
	body := `{"Origin":"AutoScalingGroup","ümlaut":"✓"}` + "\n\ttab"
	// The SDK checks MD5OfMessageBody against the body it sent.
	sent, err := e.client.SendMessage(ctx, &awssqs.SendMessageInput{
		QueueUrl: url, MessageBody: aws.String(body), MessageAttributes: attrs,
		MessageSystemAttributes: map[string]types.MessageSystemAttributeValue{"AWSTraceHeader": {DataType: aws.String("String"), StringValue: aws.String("Root=1-5759e988-bd862e3fe1be46a994272793")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(sent.MD5OfMessageAttributes) == "" || aws.ToString(sent.MD5OfMessageSystemAttributes) == "" {
		t.Errorf("attribute digests missing: %+v", sent)
	}

	// The SDK checks MD5OfBody of every message received.
	out, err := e.client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
		QueueUrl: url, MaxNumberOfMessages: 10,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("received %d messages", len(out.Messages))
	}
	m := out.Messages[0]
	if aws.ToString(m.Body) != body || aws.ToString(m.MessageId) != aws.ToString(sent.MessageId) {
		t.Errorf("message %+v", m)
	}
	if aws.ToString(m.MD5OfMessageAttributes) != aws.ToString(sent.MD5OfMessageAttributes) {
		t.Errorf("MD5OfMessageAttributes %s on receive, %s on send", aws.ToString(m.MD5OfMessageAttributes), aws.ToString(sent.MD5OfMessageAttributes))
	}
	if got := m.MessageAttributes["blob"]; aws.ToString(got.DataType) != "Binary.gz" || string(got.BinaryValue) != "\x00\x01\x02\xff" {
		t.Errorf("binary attribute %+v", got)
	}
	for _, k := range []string{"SenderId", "SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp", "AWSTraceHeader"} {
		if m.Attributes[k] == "" {
			t.Errorf("system attribute %s missing: %v", k, m.Attributes)
		}
	}
	if _, err := e.client.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: url, ReceiptHandle: m.ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: url, ReceiptHandle: aws.String("not-a-handle")})
	var typed *types.ReceiptHandleIsInvalid
	if code, _ := apiError(t, err); code != "ReceiptHandleIsInvalid" || !errors.As(err, &typed) {
		t.Errorf("bad handle: %s", code)
	}
	empty, err := e.client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: url})
	if err != nil || len(empty.Messages) != 0 {
		t.Errorf("after delete: %+v %v", empty, err)
	}
}

func TestVisibilityTimeout(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	ctx := t.Context()
	url := aws.String(e.createQueue(t, "q", map[string]string{"VisibilityTimeout": "60"}))
	if _, err := e.client.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: url, MessageBody: aws.String("m")}); err != nil {
		t.Fatal(err)
	}
	receive := func() []types.Message {
		t.Helper()
		out, err := e.client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: url, MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Messages
	}
	first := receive()
	if len(first) != 1 {
		t.Fatal("no message")
	}
	e.clock.Advance(59 * time.Second)
	if got := receive(); len(got) != 0 {
		t.Fatal("visible before its 60 s timeout")
	}
	if _, err := e.client.ChangeMessageVisibility(ctx, &awssqs.ChangeMessageVisibilityInput{QueueUrl: url, ReceiptHandle: first[0].ReceiptHandle, VisibilityTimeout: 120}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(119 * time.Second)
	if got := receive(); len(got) != 0 {
		t.Fatal("visible before the extended timeout")
	}
	e.clock.Advance(time.Second)
	second := receive()
	if len(second) != 1 || second[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("second receive %+v", second)
	}
	if _, err := e.client.ChangeMessageVisibility(ctx, &awssqs.ChangeMessageVisibilityInput{QueueUrl: url, ReceiptHandle: second[0].ReceiptHandle, VisibilityTimeout: 0}); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.ChangeMessageVisibility(ctx, &awssqs.ChangeMessageVisibilityInput{QueueUrl: url, ReceiptHandle: second[0].ReceiptHandle, VisibilityTimeout: 10})
	var typed *types.MessageNotInflight
	if code, _ := apiError(t, err); code != "AWS.SimpleQueueService.MessageNotInflight" || !errors.As(err, &typed) {
		t.Errorf("not in flight: %s", code)
	}
}

// TestLongPollWakesOnSend parks a long-polling receiver (20 s), and sends
// once the world reports it waiting: the receive must return the message,
// well before its wait would have run out.
func TestLongPollWakesOnSend(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	url := aws.String(e.createQueue(t, "q", nil))
	seq := lastSeq(e.w)
	got := make(chan *awssqs.ReceiveMessageOutput, 1)
	go func() {
		out, err := e.client.ReceiveMessage(context.Background(), &awssqs.ReceiveMessageInput{QueueUrl: url, WaitTimeSeconds: 20})
		if err != nil {
			t.Error(err)
		}
		got <- out
	}()
	waitEvent(t, e.w, seq, "long poll waiting q")
	if _, err := e.client.SendMessage(t.Context(), &awssqs.SendMessageInput{QueueUrl: url, MessageBody: aws.String("wake up")}); err != nil {
		t.Fatal(err)
	}
	select {
	case out := <-got:
		if out == nil || len(out.Messages) != 1 || aws.ToString(out.Messages[0].Body) != "wake up" {
			t.Fatalf("got %+v", out)
		}
	case <-time.After(waitBound):
		t.Fatal("the long poll was not woken by the send")
	}
}

func lastSeq(w *messaging.Queues) int64 {
	evs := w.Log().Events(eventlog.All)
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}

// waitEvent waits for an SQS event whose detail starts with prefix.
func waitEvent(t testing.TB, w *messaging.Queues, seq int64, prefix string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	for {
		evs, err := w.Log().Wait(ctx, seq, eventlog.All)
		if err != nil {
			t.Fatalf("waiting for %q: %v", prefix, err)
		}
		for _, ev := range evs {
			seq = ev.Seq
			if ev.Service == "sqs" && strings.HasPrefix(ev.Detail, prefix) {
				return seq
			}
		}
	}
}

// TestConcurrentReceivers runs 20 receivers against one queue over HTTP,
// long-polling while messages arrive: none may get a message another holds
// invisible. Run with -race.
func TestConcurrentReceivers(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	url := aws.String(e.createQueue(t, "q", map[string]string{"VisibilityTimeout": "3600"}))
	const receivers, messages = 20, 200
	ctx, cancel := context.WithTimeout(t.Context(), waitBound)
	defer cancel()
	var (
		mu   sync.Mutex
		seen = map[string][]int{}
		wg   sync.WaitGroup
	)
	total := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen)
	}
	for r := range receivers {
		wg.Go(func() {
			for total() < messages && ctx.Err() == nil {
				out, err := e.client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: url, MaxNumberOfMessages: int32(1 + r%10), WaitTimeSeconds: 1})
				if err != nil {
					if ctx.Err() == nil {
						t.Error(err)
					}
					return
				}
				mu.Lock()
				for _, m := range out.Messages {
					seen[aws.ToString(m.MessageId)] = append(seen[aws.ToString(m.MessageId)], r)
				}
				mu.Unlock()
			}
		})
	}
	for i := 0; i < messages; i += 10 {
		var entries []types.SendMessageBatchRequestEntry
		for j := range 10 {
			entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint("m", j)), MessageBody: aws.String(fmt.Sprint(i + j))})
		}
		out, err := e.client.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: url, Entries: entries})
		if err != nil || len(out.Successful) != 10 {
			t.Fatalf("SendMessageBatch: %+v %v", out, err)
		}
	}
	wg.Wait()
	if len(seen) != messages {
		t.Fatalf("received %d distinct messages, want %d", len(seen), messages)
	}
	for id, by := range seen {
		if len(by) != 1 {
			t.Errorf("message %s went to receivers %v", id, by)
		}
	}
}

func TestDeadLetterRedrive(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	ctx := t.Context()
	dlq := e.createQueue(t, "dlq", nil)
	src := aws.String(e.createQueue(t, "src", map[string]string{
		"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:dlq","maxReceiveCount":3}`,
	}))
	if _, err := e.client.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: src, MessageBody: aws.String("poison")}); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		out, err := e.client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: src})
		if err != nil {
			t.Fatal(err)
		}
		want := 1 // the first three receives return it; the fourth moves it
		if i == 3 {
			want = 0
		}
		if len(out.Messages) != want {
			t.Fatalf("receive %d returned %d messages", i+1, len(out.Messages))
		}
		e.clock.Advance(30 * time.Second) // the default visibility timeout
	}
	out, err := e.client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(dlq), MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameDeadLetterQueueSourceArn}})
	if err != nil || len(out.Messages) != 1 || aws.ToString(out.Messages[0].Body) != "poison" {
		t.Fatalf("dead-letter queue: %+v %v", out, err)
	}
	if got := out.Messages[0].Attributes["DeadLetterQueueSourceArn"]; got != "arn:aws:sqs:us-east-1:123456789012:src" {
		t.Errorf("DeadLetterQueueSourceArn %q", got)
	}
	sources, err := e.client.ListDeadLetterSourceQueues(ctx, &awssqs.ListDeadLetterSourceQueuesInput{QueueUrl: aws.String(dlq)})
	if err != nil || len(sources.QueueUrls) != 1 || sources.QueueUrls[0] != aws.ToString(src) {
		t.Errorf("ListDeadLetterSourceQueues %+v %v", sources, err)
	}
}

func TestFifo(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	ctx := t.Context()
	url := aws.String(e.createQueue(t, "orders.fifo", map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"}))
	send := func(group, body string) *awssqs.SendMessageOutput {
		t.Helper()
		out, err := e.client.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: url, MessageBody: aws.String(body), MessageGroupId: aws.String(group)})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a1 := send("a", "a1")
	if dup := send("a", "a1"); aws.ToString(dup.MessageId) != aws.ToString(a1.MessageId) || aws.ToString(dup.SequenceNumber) != aws.ToString(a1.SequenceNumber) {
		t.Errorf("duplicate: %+v vs %+v", dup, a1)
	}
	send("a", "a2")
	send("b", "b1")
	receive := func(n int32) []string {
		t.Helper()
		out, err := e.client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: url, MaxNumberOfMessages: n, MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		var bodies []string
		for _, m := range out.Messages {
			bodies = append(bodies, aws.ToString(m.Body)+"/"+m.Attributes["MessageGroupId"])
			if aws.ToString(m.Body) == "a1" {
				defer func() {
					if _, err := e.client.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: url, ReceiptHandle: m.ReceiptHandle}); err != nil {
						t.Error(err)
					}
				}()
			}
		}
		return bodies
	}
	if got := receive(1); !slices.Equal(got, []string{"a1/a"}) {
		t.Fatalf("first receive %v", got)
	}
	// a1 was deleted: a2 is next in group a.
	if got := receive(10); !slices.Equal(got, []string{"a2/a", "b1/b"}) {
		t.Fatalf("second receive %v", got)
	}
	_, err := e.client.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: url, MessageBody: aws.String("x")})
	if code, _ := apiError(t, err); code != "MissingParameter" {
		t.Errorf("no group id: %s", code)
	}

	// A receive retried with its ReceiveRequestAttemptId (as after a lost
	// response) gets the same message and receipt handle.
	send("c", "c1")
	attempt := func() *awssqs.ReceiveMessageOutput {
		t.Helper()
		out, err := e.client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: url, MaxNumberOfMessages: 10, ReceiveRequestAttemptId: aws.String("attempt-1")})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	first, again := attempt(), attempt()
	if len(first.Messages) != 1 || len(again.Messages) != 1 || aws.ToString(again.Messages[0].ReceiptHandle) != aws.ToString(first.Messages[0].ReceiptHandle) {
		t.Errorf("retried receive got %+v, first %+v", again.Messages, first.Messages)
	}
	_, err = e.client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: url, ReceiveRequestAttemptId: aws.String(strings.Repeat("x", 129))})
	if code, _ := apiError(t, err); code != "InvalidParameterValue" {
		t.Errorf("attempt id of 129 characters: %s", code)
	}
}

func TestBatches(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	ctx := t.Context()
	url := aws.String(e.createQueue(t, "q", nil))
	out, err := e.client.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: url, Entries: []types.SendMessageBatchRequestEntry{
		{Id: aws.String("ok"), MessageBody: aws.String("fine"), MessageAttributes: map[string]types.MessageAttributeValue{"k": {DataType: aws.String("String"), StringValue: aws.String("v")}}},
		{Id: aws.String("late"), MessageBody: aws.String("too late"), DelaySeconds: 901},
		{Id: aws.String("nul"), MessageBody: aws.String("a\x00b")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Successful) != 1 || aws.ToString(out.Successful[0].Id) != "ok" || aws.ToString(out.Successful[0].MD5OfMessageAttributes) == "" {
		t.Errorf("Successful %+v", out.Successful)
	}
	failed := map[string]string{}
	for _, f := range out.Failed {
		failed[aws.ToString(f.Id)] = aws.ToString(f.Code)
		if !f.SenderFault || aws.ToString(f.Message) == "" {
			t.Errorf("failure %+v", f)
		}
	}
	if failed["late"] != "InvalidParameterValue" || failed["nul"] != "InvalidMessageContents" || len(failed) != 2 {
		t.Errorf("Failed %v", failed)
	}

	_, err = e.client.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: url, Entries: []types.SendMessageBatchRequestEntry{
		{Id: aws.String("x"), MessageBody: aws.String("1")}, {Id: aws.String("x"), MessageBody: aws.String("2")},
	}})
	var notDistinct *types.BatchEntryIdsNotDistinct
	if code, _ := apiError(t, err); code != "AWS.SimpleQueueService.BatchEntryIdsNotDistinct" || !errors.As(err, &notDistinct) {
		t.Errorf("repeated ids: %s", code)
	}
	entries := make([]types.SendMessageBatchRequestEntry, 11)
	for i := range entries {
		entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint("e", i)), MessageBody: aws.String("b")}
	}
	_, err = e.client.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: url, Entries: entries})
	var tooMany *types.TooManyEntriesInBatchRequest
	if code, _ := apiError(t, err); code != "AWS.SimpleQueueService.TooManyEntriesInBatchRequest" || !errors.As(err, &tooMany) {
		t.Errorf("eleven entries: %s", code)
	}

	recv, err := e.client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: url, MaxNumberOfMessages: 10})
	if err != nil || len(recv.Messages) != 1 {
		t.Fatalf("%+v %v", recv, err)
	}
	vis, err := e.client.ChangeMessageVisibilityBatch(ctx, &awssqs.ChangeMessageVisibilityBatchInput{QueueUrl: url, Entries: []types.ChangeMessageVisibilityBatchRequestEntry{
		{Id: aws.String("a"), ReceiptHandle: recv.Messages[0].ReceiptHandle, VisibilityTimeout: 100},
		{Id: aws.String("b"), ReceiptHandle: aws.String("junk"), VisibilityTimeout: 100},
	}})
	if err != nil || len(vis.Successful) != 1 || len(vis.Failed) != 1 || aws.ToString(vis.Failed[0].Code) != "ReceiptHandleIsInvalid" {
		t.Errorf("ChangeMessageVisibilityBatch %+v %v", vis, err)
	}
	del, err := e.client.DeleteMessageBatch(ctx, &awssqs.DeleteMessageBatchInput{QueueUrl: url, Entries: []types.DeleteMessageBatchRequestEntry{
		{Id: aws.String("a"), ReceiptHandle: recv.Messages[0].ReceiptHandle},
	}})
	if err != nil || len(del.Successful) != 1 || len(del.Failed) != 0 {
		t.Errorf("DeleteMessageBatch %+v %v", del, err)
	}
}

func TestJSONErrors(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	tests := []struct {
		name, op, body string
		status         int
		wantType       string
		wantQueryError string
	}{
		{"missing queue", "GetQueueUrl", `{"QueueName":"nope"}`, 400, "com.amazonaws.sqs#QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue;Sender"},
		{"missing parameter", "ReceiveMessage", `{}`, 400, "com.amazonaws.sqs#MissingParameter", "MissingParameter;Sender"},
		{"unknown operation", "AddPermission", `{}`, 400, "com.amazon.coral.service#UnknownOperationException", ""},
		{"malformed body", "ListQueues", `{"MaxResults":"ten"}`, 400, "com.amazon.coral.service#SerializationException", ""},
		{"out of range", "ListQueues", `{"MaxResults":1001}`, 400, "com.amazonaws.sqs#InvalidParameterValue", "InvalidParameterValue;Sender"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := e.jsonCall(t, tt.op, tt.body)
			if status != tt.status || !strings.Contains(body, `"__type":"`+tt.wantType+`"`) || h.Get("x-amzn-query-error") != tt.wantQueryError ||
				!strings.HasPrefix(h.Get("Content-Type"), "application/x-amz-json-1.0") || h.Get("x-amzn-RequestId") == "" {
				t.Errorf("status %d, headers %v, body %s", status, h, body)
			}
		})
	}
	t.Run("the SDK reports the query-compatible code", func(t *testing.T) {
		_, err := e.client.ReceiveMessage(t.Context(), &awssqs.ReceiveMessageInput{QueueUrl: aws.String(e.url + "/123456789012/nope")})
		var typed *types.QueueDoesNotExist
		if code, _ := apiError(t, err); code != "AWS.SimpleQueueService.NonExistentQueue" || !errors.As(err, &typed) {
			t.Errorf("code %s", code)
		}
	})
}
