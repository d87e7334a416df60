package sns_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
)

func TestSQSSubscription(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	topic := e.createTopic(t, "t", nil)
	queue := e.createQueue(t, "q", nil)
	sub, err := e.client.Subscribe(ctx, &awssns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String("sqs"), Endpoint: aws.String(queue)})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(sub.SubscriptionArn)
	if !regexp.MustCompile(`^` + topic + `:[0-9a-f-]{36}$`).MatchString(arn) {
		t.Fatalf("SubscriptionArn %s", arn)
	}
	t.Run("subscribe is idempotent", func(t *testing.T) {
		again, err := e.client.Subscribe(ctx, &awssns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String("sqs"), Endpoint: aws.String(queue)})
		if err != nil || aws.ToString(again.SubscriptionArn) != arn {
			t.Errorf("second Subscribe: %v %v", aws.ToString(again.SubscriptionArn), err)
		}
		_, err = e.client.Subscribe(ctx, &awssns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String("sqs"), Endpoint: aws.String(queue),
			Attributes: map[string]string{"RawMessageDelivery": "true"}})
		wantCode(t, "Subscribe with other attributes", err, "InvalidParameter", "Subscription already exists with different attributes")
	})
	t.Run("attributes", func(t *testing.T) {
		out, err := e.client.GetSubscriptionAttributes(ctx, &awssns.GetSubscriptionAttributesInput{SubscriptionArn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]string{
			"SubscriptionArn": arn, "TopicArn": topic, "Protocol": "sqs", "Endpoint": queue, "Owner": "123456789012",
			"PendingConfirmation": "false", "ConfirmationWasAuthenticated": "true", "RawMessageDelivery": "false",
		} {
			if out.Attributes[k] != want {
				t.Errorf("%s = %q, want %q", k, out.Attributes[k], want)
			}
		}
		if _, ok := out.Attributes["FilterPolicyScope"]; ok {
			t.Errorf("FilterPolicyScope shown without a FilterPolicy")
		}
		set := func(name, value string) error {
			_, err := e.client.SetSubscriptionAttributes(ctx, &awssns.SetSubscriptionAttributesInput{SubscriptionArn: aws.String(arn), AttributeName: aws.String(name), AttributeValue: aws.String(value)})
			return err
		}
		if err := set("FilterPolicy", `{"a":["b"]}`); err != nil {
			t.Fatal(err)
		}
		out, _ = e.client.GetSubscriptionAttributes(ctx, &awssns.GetSubscriptionAttributesInput{SubscriptionArn: aws.String(arn)})
		if out.Attributes["FilterPolicy"] != `{"a":["b"]}` || out.Attributes["FilterPolicyScope"] != "MessageAttributes" {
			t.Errorf("after setting a policy: %v", out.Attributes)
		}
		wantCode(t, "nested policy in the attribute scope", set("FilterPolicy", `{"a":{"b":["c"]}}`), "InvalidParameter",
			"Invalid parameter: FilterPolicy: Filter policy scope MessageAttributes does not support nested filter policy")
		wantCode(t, "bad operator", set("FilterPolicy", `{"a":[{"numeric":["<"]}]}`), "InvalidParameter", "Invalid parameter: FilterPolicy: Value of < must be numeric")
		wantCode(t, "bad scope", set("FilterPolicyScope", "Body"), "InvalidParameter", "FilterPolicyScope: Invalid value [Body]")
		wantCode(t, "bad raw", set("RawMessageDelivery", "yes"), "InvalidParameter", "RawMessageDelivery")
		wantCode(t, "unknown attribute", set("Colour", "red"), "InvalidParameter", "Invalid parameter: AttributeName")
		if err := set("FilterPolicyScope", "MessageBody"); err != nil {
			t.Fatal(err)
		}
		if err := set("FilterPolicy", `{"a":{"b":["c"]}}`); err != nil {
			t.Errorf("nested policy in the body scope: %v", err)
		}
		wantCode(t, "back to the attribute scope with a nested policy", set("FilterPolicyScope", "MessageAttributes"), "InvalidParameter", "does not support nested filter policy")
		if err := set("FilterPolicy", ""); err != nil {
			t.Fatal(err)
		}
		out, _ = e.client.GetSubscriptionAttributes(ctx, &awssns.GetSubscriptionAttributesInput{SubscriptionArn: aws.String(arn)})
		if _, ok := out.Attributes["FilterPolicy"]; ok {
			t.Errorf("FilterPolicy still set after clearing: %v", out.Attributes)
		}
	})
	t.Run("lists", func(t *testing.T) {
		all, err := e.client.ListSubscriptions(ctx, &awssns.ListSubscriptionsInput{})
		if err != nil {
			t.Fatal(err)
		}
		byTopic, err := e.client.ListSubscriptionsByTopic(ctx, &awssns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topic)})
		if err != nil {
			t.Fatal(err)
		}
		for _, subs := range [][]types.Subscription{all.Subscriptions, byTopic.Subscriptions} {
			if len(subs) != 1 || aws.ToString(subs[0].SubscriptionArn) != arn || aws.ToString(subs[0].Endpoint) != queue ||
				aws.ToString(subs[0].Protocol) != "sqs" || aws.ToString(subs[0].TopicArn) != topic || aws.ToString(subs[0].Owner) != "123456789012" {
				t.Errorf("listed %+v", subs)
			}
		}
	})
	t.Run("unsubscribe", func(t *testing.T) {
		if _, err := e.client.Unsubscribe(ctx, &awssns.UnsubscribeInput{SubscriptionArn: aws.String(arn)}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.Unsubscribe(ctx, &awssns.UnsubscribeInput{SubscriptionArn: aws.String(arn)}); err != nil {
			t.Errorf("unsubscribing twice: %v", err)
		}
		_, err := e.client.GetSubscriptionAttributes(ctx, &awssns.GetSubscriptionAttributesInput{SubscriptionArn: aws.String(arn)})
		wantCode(t, "attributes of a deleted subscription", err, "NotFound", "Subscription does not exist")
		_, err = e.client.Unsubscribe(ctx, &awssns.UnsubscribeInput{SubscriptionArn: aws.String("pending confirmation")})
		wantCode(t, "Unsubscribe malformed", err, "InvalidParameter", "SubscriptionArn")
		out, _ := e.client.GetTopicAttributes(ctx, &awssns.GetTopicAttributesInput{TopicArn: aws.String(topic)})
		if out.Attributes["SubscriptionsDeleted"] != "1" || out.Attributes["SubscriptionsConfirmed"] != "0" {
			t.Errorf("counts after unsubscribe: %v", out.Attributes)
		}
	})
}

func TestSubscribeEndpoints(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	topic := e.createTopic(t, "t", nil)
	for _, c := range []struct {
		protocol, endpoint, msg string
	}{
		{"sqs", "https://sqs.us-east-1.amazonaws.com/123456789012/q", "Invalid parameter: SQS endpoint ARN"},
		{"sqs", "arn:aws:sqs:us-east-1:123456789012:q.fifo", "FIFO SQS Queues can not be subscribed to standard SNS topics"},
		{"http", "https://example.com/", "Invalid parameter: Endpoint must match the specified protocol"},
		{"https", "not a url", "Invalid parameter: Endpoint must match the specified protocol"},
		{"lambda", "arn:aws:sqs:us-east-1:123456789012:q", "Invalid parameter: Lambda endpoint ARN"},
		{"email", "ops@example.com", "does not deliver to email endpoints"},
		{"carrier-pigeon", "coop", "Amazon SNS does not support this protocol string: carrier-pigeon"},
	} {
		_, err := e.client.Subscribe(ctx, &awssns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String(c.protocol), Endpoint: aws.String(c.endpoint)})
		wantCode(t, "Subscribe "+c.protocol+" "+c.endpoint, err, "InvalidParameter", c.msg)
	}
	_, err := e.client.Subscribe(ctx, &awssns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String("lambda"),
		Endpoint: aws.String("arn:aws:lambda:us-east-1:123456789012:function:drain"), Attributes: map[string]string{"RawMessageDelivery": "true"}})
	wantCode(t, "raw lambda", err, "InvalidParameter", "does not support raw message delivery")

	// Lambda subscriptions are confirmed at once and invoke the function:
	// here there is none, so the delivery fails, naming it.
	fn := "arn:aws:lambda:us-east-1:123456789012:function:drain"
	sub, err := e.client.Subscribe(ctx, &awssns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String("lambda"), Endpoint: aws.String(fn)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.client.ListSubscriptionsByTopic(ctx, &awssns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topic)})
	if err != nil || len(out.Subscriptions) != 1 || aws.ToString(out.Subscriptions[0].SubscriptionArn) != aws.ToString(sub.SubscriptionArn) {
		t.Fatalf("lambda subscription listed as %+v (%v)", out.Subscriptions, err)
	}
	pub, err := e.client.Publish(ctx, &awssns.PublishInput{TopicArn: aws.String(topic), Message: aws.String("m")})
	if err != nil {
		t.Fatal(err)
	}
	e.waitEvent(t, "delivery of "+aws.ToString(pub.MessageId)+" to "+aws.ToString(sub.SubscriptionArn)+" (function "+fn+") failed: ResourceNotFoundException: Function not found: "+fn)
}

// waitEvent consumes the world's events until an SNS event whose detail
// contains part.
func (e *env) waitEvent(t *testing.T, part string) eventlog.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	for {
		evs, err := e.m.Log().Wait(ctx, e.seq, eventlog.All)
		if err != nil {
			t.Fatalf("waiting for an event with %q: %v", part, err)
		}
		for _, ev := range evs {
			e.seq = ev.Seq
			if ev.Service == "sns" && strings.Contains(ev.Detail, part) {
				return ev
			}
		}
	}
}

var (
	timestampRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	base64RE    = regexp.MustCompile(`^[A-Za-z0-9+/]+={0,2}$`)
)

// document decodes an SNS JSON document and checks the generated fields.
func document(t *testing.T, body string) map[string]string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("not JSON: %v: %s", err, body)
	}
	out := map[string]string{}
	for k, v := range doc {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	if !timestampRE.MatchString(out["Timestamp"]) || !base64RE.MatchString(out["Signature"]) {
		t.Errorf("Timestamp %q, Signature %q", out["Timestamp"], out["Signature"])
	}
	return out
}

func TestHTTPSubscriptionHandshake(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	topic := e.createTopic(t, "events", nil)
	s := newSubscriber(t, true)
	sub, err := e.client.Subscribe(ctx, &awssns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String("http"), Endpoint: aws.String(s.url)})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(sub.SubscriptionArn); got != "pending confirmation" {
		t.Errorf("Subscribe returned %q, want pending confirmation", got)
	}

	// The confirmation, which the subscriber has confirmed by the time it
	// is recorded.
	c := s.next(t)
	for h, want := range map[string]string{
		"X-Amz-Sns-Message-Type": "SubscriptionConfirmation",
		"X-Amz-Sns-Topic-Arn":    topic,
		"Content-Type":           "text/plain; charset=UTF-8",
		"User-Agent":             "Amazon Simple Notification Service Agent",
	} {
		if got := c.header.Get(h); got != want {
			t.Errorf("confirmation header %s = %q, want %q", h, got, want)
		}
	}
	doc := document(t, c.body)
	if doc["Type"] != "SubscriptionConfirmation" || doc["TopicArn"] != topic || doc["MessageId"] != c.header.Get("X-Amz-Sns-Message-Id") ||
		doc["SignatureVersion"] != "1" || len(doc["Token"]) < 64 ||
		doc["Message"] != "You have chosen to subscribe to the topic "+topic+".\nTo confirm the subscription, visit the SubscribeURL included in this message." ||
		doc["SubscribeURL"] != e.url+"/?Action=ConfirmSubscription&TopicArn="+topic+"&Token="+doc["Token"]+"&Version=2010-03-31" ||
		doc["SigningCertURL"] != e.url+"/SimpleNotificationService-lifeguard-sandbox.pem" {
		t.Errorf("confirmation document %s", c.body)
	}
	if !strings.HasPrefix(c.body, "{\n  \"Type\" : \"SubscriptionConfirmation\",\n  \"MessageId\" : ") {
		t.Errorf("confirmation is not formatted as SNS formats it: %s", c.body)
	}

	list, err := e.client.ListSubscriptionsByTopic(ctx, &awssns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topic)})
	if err != nil || len(list.Subscriptions) != 1 {
		t.Fatalf("subscriptions %+v %v", list.Subscriptions, err)
	}
	arn := aws.ToString(list.Subscriptions[0].SubscriptionArn)
	if !strings.HasPrefix(arn, topic+":") {
		t.Fatalf("confirmed subscription listed as %q", arn)
	}
	attrs, err := e.client.GetSubscriptionAttributes(ctx, &awssns.GetSubscriptionAttributesInput{SubscriptionArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if attrs.Attributes["PendingConfirmation"] != "false" || attrs.Attributes["ConfirmationWasAuthenticated"] != "false" ||
		!strings.Contains(attrs.Attributes["EffectiveDeliveryPolicy"], "text/plain; charset=UTF-8") {
		t.Errorf("attributes after confirmation %v", attrs.Attributes)
	}
	// Confirming again with the same token answers the same ARN.
	again, err := e.client.ConfirmSubscription(ctx, &awssns.ConfirmSubscriptionInput{TopicArn: aws.String(topic), Token: aws.String(doc["Token"])})
	if err != nil || aws.ToString(again.SubscriptionArn) != arn {
		t.Errorf("second confirmation: %v %v", aws.ToString(again.SubscriptionArn), err)
	}

	// The notification, exactly as SNS writes it.
	pub, err := e.client.Publish(ctx, &awssns.PublishInput{
		TopicArn: aws.String(topic), Subject: aws.String("Hi <there> & you"), Message: aws.String("line1\nline2 \"quoted\" <b>"),
		MessageAttributes: map[string]types.MessageAttributeValue{
			"n":     {DataType: aws.String("Number"), StringValue: aws.String("42")},
			"color": {DataType: aws.String("String"), StringValue: aws.String("blue")},
			"raw":   {DataType: aws.String("Binary"), BinaryValue: []byte{0xff, 0x00}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := s.next(t)
	for h, want := range map[string]string{
		"X-Amz-Sns-Message-Type":     "Notification",
		"X-Amz-Sns-Message-Id":       aws.ToString(pub.MessageId),
		"X-Amz-Sns-Topic-Arn":        topic,
		"X-Amz-Sns-Subscription-Arn": arn,
		"Content-Type":               "text/plain; charset=UTF-8",
		"X-Amz-Sns-Rawdelivery":      "",
	} {
		if got := n.header.Get(h); got != want {
			t.Errorf("notification header %s = %q, want %q", h, got, want)
		}
	}
	got := document(t, n.body)
	want := strings.NewReplacer("{ID}", aws.ToString(pub.MessageId), "{TOPIC}", topic, "{TS}", got["Timestamp"], "{SIG}", got["Signature"],
		"{URL}", e.url, "{SUB}", arn, "{RAWB64}", base64.StdEncoding.EncodeToString([]byte{0xff, 0x00})).Replace(`{
  "Type" : "Notification",
  "MessageId" : "{ID}",
  "TopicArn" : "{TOPIC}",
  "Subject" : "Hi <there> & you",
  "Message" : "line1\nline2 \"quoted\" <b>",
  "Timestamp" : "{TS}",
  "SignatureVersion" : "1",
  "Signature" : "{SIG}",
  "SigningCertURL" : "{URL}/SimpleNotificationService-lifeguard-sandbox.pem",
  "UnsubscribeURL" : "{URL}/?Action=Unsubscribe&SubscriptionArn={SUB}&Version=2010-03-31",
  "MessageAttributes" : {
    "color" : {"Type":"String","Value":"blue"},
    "n" : {"Type":"Number","Value":"42"},
    "raw" : {"Type":"Binary","Value":"{RAWB64}"}
  }
}`)
	if n.body != want {
		t.Errorf("notification body\n%s\nwant\n%s", n.body, want)
	}

	// Without a subject or attributes those fields are left out.
	if _, err := e.client.Publish(ctx, &awssns.PublishInput{TopicArn: aws.String(topic), Message: aws.String("plain")}); err != nil {
		t.Fatal(err)
	}
	plain := s.next(t).body
	if strings.Contains(plain, `"Subject"`) || strings.Contains(plain, `"MessageAttributes"`) || !strings.Contains(plain, `"Message" : "plain",`) {
		t.Errorf("plain notification %s", plain)
	}

	// Raw delivery posts the message itself.
	if _, err := e.client.SetSubscriptionAttributes(ctx, &awssns.SetSubscriptionAttributesInput{SubscriptionArn: aws.String(arn), AttributeName: aws.String("RawMessageDelivery"), AttributeValue: aws.String("true")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Publish(ctx, &awssns.PublishInput{TopicArn: aws.String(topic), Message: aws.String(`{"raw":true}`)}); err != nil {
		t.Fatal(err)
	}
	raw := s.next(t)
	if raw.body != `{"raw":true}` || raw.header.Get("X-Amz-Sns-Rawdelivery") != "true" || raw.header.Get("X-Amz-Sns-Message-Type") != "Notification" {
		t.Errorf("raw delivery %v %s", raw.header, raw.body)
	}

	// The UnsubscribeURL unsubscribes with a GET.
	resp, err := e.http.Get(e.url + "/?Action=Unsubscribe&SubscriptionArn=" + arn + "&Version=2010-03-31")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET UnsubscribeURL: %s", resp.Status)
	}
	if _, err := e.client.Publish(ctx, &awssns.PublishInput{TopicArn: aws.String(topic), Message: aws.String("after")}); err != nil {
		t.Fatal(err)
	}
	e.m.Close() // waits for every delivery in flight
	s.none(t)
}

func TestHTTPSubscriptionPending(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	topic := e.createTopic(t, "events", nil)
	s := newSubscriber(t, false)
	sub, err := e.client.Subscribe(ctx, &awssns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String("https"),
		Endpoint: aws.String(strings.Replace(s.url, "http://", "https://", 1)), ReturnSubscriptionArn: true})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(sub.SubscriptionArn)
	list, err := e.client.ListSubscriptions(ctx, &awssns.ListSubscriptionsInput{})
	if err != nil || len(list.Subscriptions) != 1 || aws.ToString(list.Subscriptions[0].SubscriptionArn) != "PendingConfirmation" {
		t.Fatalf("pending subscription listed as %+v (%v)", list.Subscriptions, err)
	}
	attrs, err := e.client.GetSubscriptionAttributes(ctx, &awssns.GetSubscriptionAttributesInput{SubscriptionArn: aws.String(arn)})
	if err != nil || attrs.Attributes["PendingConfirmation"] != "true" {
		t.Fatalf("pending attributes %v %v", attrs, err)
	}
	topicAttrs, _ := e.client.GetTopicAttributes(ctx, &awssns.GetTopicAttributesInput{TopicArn: aws.String(topic)})
	if topicAttrs.Attributes["SubscriptionsPending"] != "1" {
		t.Errorf("SubscriptionsPending %s", topicAttrs.Attributes["SubscriptionsPending"])
	}
	// The https endpoint is a plain HTTP server, so the confirmation POST
	// fails; the attempt is recorded and retried on the world's clock.
	e.waitEvent(t, "delivery 1 of subscription confirmation")
	if _, err := e.client.Publish(ctx, &awssns.PublishInput{TopicArn: aws.String(topic), Message: aws.String("m")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.ConfirmSubscription(ctx, &awssns.ConfirmSubscriptionInput{TopicArn: aws.String(topic), Token: aws.String("0123")})
	wantCode(t, "wrong token", err, "InvalidParameter", "Invalid parameter: Token")
	// Unconfirmed subscriptions are deleted after 48 hours.
	e.clock.Advance(48 * time.Hour)
	e.waitEvent(t, "unconfirmed subscription expired "+arn)
	_, err = e.client.GetSubscriptionAttributes(ctx, &awssns.GetSubscriptionAttributesInput{SubscriptionArn: aws.String(arn)})
	wantCode(t, "expired subscription", err, "NotFound", "Subscription does not exist")
	e.m.Close()
	s.none(t) // nothing reached the plain-HTTP server over https
}

func TestConfirmSubscriptionThroughTheAPI(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	topic := e.createTopic(t, "events", nil)
	other := e.createTopic(t, "other", nil)
	s := newSubscriber(t, false)
	if _, err := e.client.Subscribe(ctx, &awssns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String("http"), Endpoint: aws.String(s.url)}); err != nil {
		t.Fatal(err)
	}
	token := document(t, s.next(t).body)["Token"]
	// Pending subscriptions get no messages.
	if _, err := e.client.Publish(ctx, &awssns.PublishInput{TopicArn: aws.String(topic), Message: aws.String("before")}); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.ConfirmSubscription(ctx, &awssns.ConfirmSubscriptionInput{TopicArn: aws.String(other), Token: aws.String(token)})
	wantCode(t, "token of another topic", err, "InvalidParameter", "Invalid parameter: Token")
	out, err := e.client.ConfirmSubscription(ctx, &awssns.ConfirmSubscriptionInput{TopicArn: aws.String(topic), Token: aws.String(token), AuthenticateOnUnsubscribe: aws.String("true")})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := e.client.GetSubscriptionAttributes(ctx, &awssns.GetSubscriptionAttributesInput{SubscriptionArn: out.SubscriptionArn})
	if err != nil {
		t.Fatal(err)
	}
	if attrs.Attributes["PendingConfirmation"] != "false" || attrs.Attributes["ConfirmationWasAuthenticated"] != "true" {
		t.Errorf("after a signed confirmation: %v", attrs.Attributes)
	}
	if _, err := e.client.Publish(ctx, &awssns.PublishInput{TopicArn: aws.String(topic), Message: aws.String("now")}); err != nil {
		t.Fatal(err)
	}
	if n := s.next(t); n.header.Get("X-Amz-Sns-Message-Type") != "Notification" || !strings.Contains(n.body, `"Message" : "now"`) {
		t.Errorf("after confirmation got %s", n.body)
	}
}

func TestHTTPDeliveryRetries(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	topic := e.createTopic(t, "events", nil)
	s := newSubscriber(t, true)
	if _, err := e.client.Subscribe(ctx, &awssns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String("http"), Endpoint: aws.String(s.url)}); err != nil {
		t.Fatal(err)
	}
	s.next(t) // confirmed
	s.answer(http.StatusInternalServerError)
	pub, err := e.client.Publish(ctx, &awssns.PublishInput{TopicArn: aws.String(topic), Message: aws.String("m")})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(pub.MessageId)
	for attempt := 1; attempt <= 4; attempt++ {
		p := s.next(t)
		if p.header.Get("X-Amz-Sns-Message-Id") != id {
			t.Fatalf("attempt %d delivered %s", attempt, p.header.Get("X-Amz-Sns-Message-Id"))
		}
		if attempt < 4 {
			e.waitEvent(t, "retrying in 1s")
			e.clock.Advance(time.Second)
		}
	}
	ev := e.waitEvent(t, "failed after 4 attempts")
	if !strings.Contains(ev.Detail, "HTTP 500") {
		t.Errorf("final event %q", ev.Detail)
	}
	// A 4xx other than 429 is not retried.
	s.answer(http.StatusForbidden)
	if _, err := e.client.Publish(ctx, &awssns.PublishInput{TopicArn: aws.String(topic), Message: aws.String("m2")}); err != nil {
		t.Fatal(err)
	}
	s.next(t)
	e.waitEvent(t, "failed after 1 attempts: HTTP 403")
}
