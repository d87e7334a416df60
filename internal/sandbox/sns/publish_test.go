package sns_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

func strAttr(v string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
}

func TestPublishValidation(t *testing.T) {
	e := newEnv(t)
	topic := e.createTopic(t, "t", nil)
	long := strings.Repeat("x", 256*1024)
	cases := []struct {
		name string
		in   awssns.PublishInput
		code string
		msg  string
	}{
		{"empty message", awssns.PublishInput{Message: aws.String("")}, "InvalidParameter", "Invalid parameter: Empty message"},
		{"message too long", awssns.PublishInput{Message: aws.String(long + "x")}, "InvalidParameter", "Invalid parameter: Message too long"},
		{"attributes count toward the size", awssns.PublishInput{Message: aws.String(long), MessageAttributes: map[string]types.MessageAttributeValue{"a": strAttr("b")}}, "InvalidParameter", "Message too long"},
		{"empty subject", awssns.PublishInput{Message: aws.String("m"), Subject: aws.String("")}, "InvalidParameter", "Invalid parameter: Subject"},
		{"subject too long", awssns.PublishInput{Message: aws.String("m"), Subject: aws.String(strings.Repeat("s", 101))}, "InvalidParameter", "Invalid parameter: Subject"},
		{"subject with a line break", awssns.PublishInput{Message: aws.String("m"), Subject: aws.String("a\nb")}, "InvalidParameter", "Invalid parameter: Subject"},
		{"structure without default", awssns.PublishInput{Message: aws.String(`{"sqs":"x"}`), MessageStructure: aws.String("json")}, "InvalidParameter", "Invalid parameter: Message Structure - No default entry in JSON message body"},
		{"structure not JSON", awssns.PublishInput{Message: aws.String(`nope`), MessageStructure: aws.String("json")}, "InvalidParameter", "Invalid parameter: Message Structure - JSON message body failed to parse"},
		{"unknown structure", awssns.PublishInput{Message: aws.String(`m`), MessageStructure: aws.String("xml")}, "InvalidParameter", "Invalid parameter: MessageStructure"},
		{"attribute type", awssns.PublishInput{Message: aws.String("m"), MessageAttributes: map[string]types.MessageAttributeValue{"a": {DataType: aws.String("Str"), StringValue: aws.String("v")}}},
			"ParameterValueInvalid", "The message attribute 'a' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."},
		{"attribute value", awssns.PublishInput{Message: aws.String("m"), MessageAttributes: map[string]types.MessageAttributeValue{"a": {DataType: aws.String("String"), StringValue: aws.String("")}}},
			"ParameterValueInvalid", "The message attribute 'a' must contain non-empty message attribute value for message attribute type 'String'."},
		{"attribute number", awssns.PublishInput{Message: aws.String("m"), MessageAttributes: map[string]types.MessageAttributeValue{"n": {DataType: aws.String("Number"), StringValue: aws.String("ten")}}},
			"ParameterValueInvalid", "Could not cast message attribute 'n' value to number."},
		{"attribute name", awssns.PublishInput{Message: aws.String("m"), MessageAttributes: map[string]types.MessageAttributeValue{"a..b": strAttr("v")}},
			"ParameterValueInvalid", "Message attribute name can not have successive '.' character."},
		{"group id on a standard topic", awssns.PublishInput{Message: aws.String("m"), MessageGroupId: aws.String("g")}, "InvalidParameter", "MessageGroupId Reason: The request includes MessageGroupId parameter that is not valid for this topic type"},
		{"topic and target", awssns.PublishInput{Message: aws.String("m"), TargetArn: aws.String(topic)}, "InvalidParameter", "Only one of TopicArn and TargetArn"},
		{"phone number", awssns.PublishInput{Message: aws.String("m"), TopicArn: aws.String(""), PhoneNumber: aws.String("+15555550100")}, "InvalidParameter", "PhoneNumber"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := c.in
			if in.TopicArn == nil {
				in.TopicArn = aws.String(topic)
			} else if aws.ToString(in.TopicArn) == "" {
				in.TopicArn = nil
			}
			_, err := e.client.Publish(t.Context(), &in)
			wantCode(t, "Publish", err, c.code, c.msg)
		})
	}
	t.Run("TargetArn names the topic", func(t *testing.T) {
		out, err := e.client.Publish(t.Context(), &awssns.PublishInput{TargetArn: aws.String(topic), Message: aws.String("m")})
		if err != nil || aws.ToString(out.MessageId) == "" || out.SequenceNumber != nil {
			t.Errorf("Publish with TargetArn: %+v %v", out, err)
		}
	})
}

// TestSNSToSQSRawAndEnveloped delivers through SQS subscriptions: raw (the message is the
// body, attributes become SQS message attributes) and enveloped (the body
// is SNS's JSON envelope, attributes inside it).
func TestSNSToSQSRawAndEnveloped(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	topic := e.createTopic(t, "t", nil)
	for _, q := range []struct {
		name string
		raw  bool
	}{{"raw", true}, {"wrapped", false}} {
		arn := e.createQueue(t, q.name, nil)
		in := &awssns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String("sqs"), Endpoint: aws.String(arn)}
		if q.raw {
			in.Attributes = map[string]string{"RawMessageDelivery": "true"}
		}
		if _, err := e.client.Subscribe(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := e.client.Publish(ctx, &awssns.PublishInput{
		TopicArn: aws.String(topic), Subject: aws.String("Greeting"), Message: aws.String(`{"hello":"world"}`),
		MessageAttributes: map[string]types.MessageAttributeValue{
			"kind":  strAttr("greeting"),
			"count": {DataType: aws.String("Number"), StringValue: aws.String("2")},
			"bin":   {DataType: aws.String("Binary"), BinaryValue: []byte("\x00\x01")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	raw := e.receive(t, "raw")
	if len(raw) != 1 || raw[0].Body != `{"hello":"world"}` {
		t.Fatalf("raw queue got %+v", raw)
	}
	attrs := raw[0].MessageAttributes
	if attrs["kind"].StringValue != "greeting" || attrs["count"].DataType != "Number" || attrs["count"].StringValue != "2" || string(attrs["bin"].BinaryValue) != "\x00\x01" {
		t.Errorf("raw message attributes %+v", attrs)
	}
	if sender := raw[0].Attributes["SenderId"]; sender != "" && sender != "AIDAIT2UOQQY3AUEKVGXU" {
		t.Errorf("SenderId %s", sender)
	}
	wrapped := e.receive(t, "wrapped")
	if len(wrapped) != 1 || len(wrapped[0].MessageAttributes) != 0 {
		t.Fatalf("wrapped queue got %+v", wrapped)
	}
	var env struct {
		Type, MessageId, TopicArn, Subject, Message, Timestamp, SignatureVersion, Signature, SigningCertURL, UnsubscribeURL string
		MessageAttributes                                                                                                   map[string]struct{ Type, Value string }
	}
	if err := json.Unmarshal([]byte(wrapped[0].Body), &env); err != nil {
		t.Fatalf("envelope: %v: %s", err, wrapped[0].Body)
	}
	if env.Type != "Notification" || env.MessageId != aws.ToString(pub.MessageId) || env.TopicArn != topic || env.Subject != "Greeting" ||
		env.Message != `{"hello":"world"}` || env.SignatureVersion != "1" || !strings.HasPrefix(env.UnsubscribeURL, e.url+"/?Action=Unsubscribe&SubscriptionArn="+topic+":") {
		t.Errorf("envelope %s", wrapped[0].Body)
	}
	if a := env.MessageAttributes; a["kind"] != (struct{ Type, Value string }{"String", "greeting"}) || a["count"].Type != "Number" || a["bin"].Value != "AAE=" {
		t.Errorf("envelope attributes %+v", a)
	}
}

func TestMessageStructureJSON(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	topic := e.createTopic(t, "t", nil)
	queue := e.createQueue(t, "q", nil)
	if _, err := e.client.Subscribe(ctx, &awssns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String("sqs"), Endpoint: aws.String(queue), Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	s := newSubscriber(t, true)
	if _, err := e.client.Subscribe(ctx, &awssns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String("http"), Endpoint: aws.String(s.url), Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	s.next(t) // confirmed
	if _, err := e.client.Publish(ctx, &awssns.PublishInput{TopicArn: aws.String(topic), MessageStructure: aws.String("json"),
		Message: aws.String(`{"default":"for everyone","sqs":"for queues","email":"for people","lambda":{"not":"a string"}}`)}); err != nil {
		t.Fatal(err)
	}
	if got := e.receive(t, "q"); len(got) != 1 || got[0].Body != "for queues" {
		t.Errorf("queue got %+v", got)
	}
	if got := s.next(t).body; got != "for everyone" {
		t.Errorf("http endpoint got %q, want the default", got)
	}
}

func TestFilterPoliciesSelectDeliveries(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	topic := e.createTopic(t, "t", nil)
	subscribe := func(queue string, attrs map[string]string) {
		t.Helper()
		attrs["RawMessageDelivery"] = "true"
		if _, err := e.client.Subscribe(ctx, &awssns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String("sqs"),
			Endpoint: aws.String(e.createQueue(t, queue, nil)), Attributes: attrs}); err != nil {
			t.Fatalf("Subscribe %s: %v", queue, err)
		}
	}
	subscribe("big-orders", map[string]string{"FilterPolicy": `{"event":["order"],"total":[{"numeric":[">=",100]}]}`})
	subscribe("not-orders", map[string]string{"FilterPolicy": `{"event":[{"anything-but":"order"}]}`})
	subscribe("i-1", map[string]string{"FilterPolicy": `{"EC2InstanceId":["i-1"]}`, "FilterPolicyScope": "MessageBody"})
	_, err := e.client.Subscribe(ctx, &awssns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String("sqs"),
		Endpoint: aws.String("arn:aws:sqs:us-east-1:123456789012:x"), Attributes: map[string]string{"FilterPolicy": `{"a":"b"}`}})
	wantCode(t, "Subscribe with a bad policy", err, "InvalidParameter", `Invalid parameter: FilterPolicy: "a" must be an object or an array`)

	publish := func(body string, attrs map[string]types.MessageAttributeValue) {
		t.Helper()
		if _, err := e.client.Publish(ctx, &awssns.PublishInput{TopicArn: aws.String(topic), Message: aws.String(body), MessageAttributes: attrs}); err != nil {
			t.Fatal(err)
		}
	}
	num := func(v string) types.MessageAttributeValue {
		return types.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(v)}
	}
	publish("small", map[string]types.MessageAttributeValue{"event": strAttr("order"), "total": num("5")})
	publish("big", map[string]types.MessageAttributeValue{"event": strAttr("order"), "total": num("250.5")})
	publish("refund", map[string]types.MessageAttributeValue{"event": strAttr("refund")})
	publish(`{"EC2InstanceId":"i-1","LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING"}`, nil)
	publish(`{"EC2InstanceId":"i-2","LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING"}`, nil)

	bodies := func(queue string) []string {
		var out []string
		for _, m := range e.receive(t, queue) {
			out = append(out, m.Body)
		}
		slices.Sort(out)
		return out
	}
	for queue, want := range map[string][]string{
		"big-orders": {"big"},
		"not-orders": {"refund"},
		"i-1":        {`{"EC2InstanceId":"i-1","LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING"}`},
	} {
		if got := bodies(queue); !slices.Equal(got, want) {
			t.Errorf("%s got %q, want %q", queue, got, want)
		}
	}
}

func TestPublishBatch(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	topic := e.createTopic(t, "t", nil)
	queue := e.createQueue(t, "q", nil)
	if _, err := e.client.Subscribe(ctx, &awssns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String("sqs"), Endpoint: aws.String(queue), Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	entry := func(id, msg string) types.PublishBatchRequestEntry {
		return types.PublishBatchRequestEntry{Id: aws.String(id), Message: aws.String(msg)}
	}
	bad := entry("bad", "m")
	bad.MessageAttributes = map[string]types.MessageAttributeValue{"a": {DataType: aws.String("Bool"), StringValue: aws.String("x")}}
	emptySubject := entry("nosubject", "m")
	emptySubject.Subject = aws.String("")
	out, err := e.client.PublishBatch(ctx, &awssns.PublishBatchInput{TopicArn: aws.String(topic), PublishBatchRequestEntries: []types.PublishBatchRequestEntry{
		entry("one", "first"), bad, entry("two", "second"), emptySubject,
	}})
	if err != nil {
		t.Fatal(err)
	}
	var ok []string
	for _, s := range out.Successful {
		if aws.ToString(s.MessageId) == "" {
			t.Errorf("entry %s without a message id", aws.ToString(s.Id))
		}
		ok = append(ok, aws.ToString(s.Id))
	}
	if !slices.Equal(ok, []string{"one", "two"}) {
		t.Errorf("successful %v", ok)
	}
	failed := map[string]types.BatchResultErrorEntry{}
	for _, f := range out.Failed {
		failed[aws.ToString(f.Id)] = f
	}
	if f := failed["bad"]; aws.ToString(f.Code) != "ParameterValueInvalid" || !f.SenderFault || !strings.Contains(aws.ToString(f.Message), "invalid message attribute type") {
		t.Errorf("failed entry bad: %+v", f)
	}
	if f := failed["nosubject"]; aws.ToString(f.Code) != "InvalidParameter" || aws.ToString(f.Message) != "Invalid parameter: Subject" {
		t.Errorf("failed entry nosubject: %s %q", aws.ToString(f.Code), aws.ToString(f.Message))
	}
	var bodies []string
	for _, m := range e.receive(t, "q") {
		bodies = append(bodies, m.Body)
	}
	slices.Sort(bodies)
	if !slices.Equal(bodies, []string{"first", "second"}) {
		t.Errorf("queue got %q", bodies)
	}

	var eleven []types.PublishBatchRequestEntry
	for i := range 11 {
		eleven = append(eleven, entry(string(rune('a'+i)), "m"))
	}
	for _, c := range []struct {
		name    string
		entries []types.PublishBatchRequestEntry
		code    string
	}{
		{"empty", []types.PublishBatchRequestEntry{}, "EmptyBatchRequest"},
		{"eleven", eleven, "TooManyEntriesInBatchRequest"},
		{"same ids", []types.PublishBatchRequestEntry{entry("a", "m"), entry("a", "m")}, "BatchEntryIdsNotDistinct"},
		{"bad id", []types.PublishBatchRequestEntry{entry("a b", "m")}, "InvalidBatchEntryId"},
		{"too long in all", []types.PublishBatchRequestEntry{entry("a", strings.Repeat("x", 200*1024)), entry("b", strings.Repeat("x", 100*1024))}, "BatchRequestTooLong"},
	} {
		_, err := e.client.PublishBatch(ctx, &awssns.PublishBatchInput{TopicArn: aws.String(topic), PublishBatchRequestEntries: c.entries})
		if got := apiCode(err); got != c.code {
			t.Errorf("%s: %v, want %s", c.name, err, c.code)
		}
	}
}

// TestAutoScalingPublishes checks the contract Auto Scaling uses: a
// lifecycle hook whose target is a topic gets its test notification
// delivered through the topic's subscriptions, and a missing topic fails
// PutLifecycleHook.
func TestAutoScalingPublishes(t *testing.T) {
	e := newEnv(t)
	topic := e.createTopic(t, "asg", nil)
	queue := e.createQueue(t, "q", nil)
	if _, err := e.client.Subscribe(t.Context(), &awssns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String("sqs"), Endpoint: aws.String(queue)}); err != nil {
		t.Fatal(err)
	}
	if err := e.w.CreateLaunchConfiguration(world.LaunchConfiguration{Name: "lc", ImageID: "ami-0abcdef1234567890", InstanceType: "t3.micro"}); err != nil {
		t.Fatal(err)
	}
	zero, one := 0, 1
	if err := e.w.CreateAutoScalingGroup(world.CreateGroupInput{Name: "g", LaunchConfiguration: "lc", MinSize: &zero, MaxSize: &one, AvailabilityZones: []string{"us-east-1a"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.w.PutNotificationConfiguration("g", topic, []string{world.NotifyLaunch}); err != nil {
		t.Fatal(err)
	}
	msgs := e.receive(t, "q")
	if len(msgs) != 1 {
		t.Fatalf("queue got %d messages, want the test notification", len(msgs))
	}
	var env struct{ Subject, Message string }
	if err := json.Unmarshal([]byte(msgs[0].Body), &env); err != nil {
		t.Fatal(err)
	}
	if env.Subject != `Auto Scaling: test notification for group "g"` || !strings.Contains(env.Message, `"Event":"autoscaling:TEST_NOTIFICATION"`) {
		t.Errorf("test notification %s", msgs[0].Body)
	}
	if err := e.w.PutNotificationConfiguration("g", "arn:aws:sns:us-east-1:123456789012:missing", []string{world.NotifyLaunch}); err == nil || !strings.Contains(err.Error(), "Topic does not exist") {
		t.Errorf("notification configuration for a missing topic: %v", err)
	}
}
