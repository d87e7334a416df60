package sns_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"
)

func TestTopicLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	arn := e.createTopic(t, "orders", map[string]string{"DisplayName": "Orders"})
	if arn != "arn:aws:sns:us-east-1:123456789012:orders" {
		t.Fatalf("TopicArn %s", arn)
	}
	t.Run("create is idempotent", func(t *testing.T) {
		if again := e.createTopic(t, "orders", map[string]string{"DisplayName": "Orders"}); again != arn {
			t.Errorf("second CreateTopic returned %s", again)
		}
		if again := e.createTopic(t, "orders", nil); again != arn {
			t.Errorf("CreateTopic without attributes returned %s", again)
		}
	})
	t.Run("create with different attributes fails", func(t *testing.T) {
		_, err := e.client.CreateTopic(ctx, &awssns.CreateTopicInput{Name: aws.String("orders"), Attributes: map[string]string{"DisplayName": "Other"}})
		wantCode(t, "CreateTopic", err, "InvalidParameter", "Topic already exists with different attributes")
	})
	t.Run("attributes", func(t *testing.T) {
		out, err := e.client.GetTopicAttributes(ctx, &awssns.GetTopicAttributesInput{TopicArn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		a := out.Attributes
		for k, want := range map[string]string{
			"TopicArn": arn, "Owner": "123456789012", "DisplayName": "Orders",
			"SubscriptionsConfirmed": "0", "SubscriptionsPending": "0", "SubscriptionsDeleted": "0",
		} {
			if a[k] != want {
				t.Errorf("%s = %q, want %q", k, a[k], want)
			}
		}
		if !strings.Contains(a["Policy"], `"Resource":"`+arn+`"`) || !strings.Contains(a["EffectiveDeliveryPolicy"], `"numRetries":3`) {
			t.Errorf("Policy %s, EffectiveDeliveryPolicy %s", a["Policy"], a["EffectiveDeliveryPolicy"])
		}
		if _, ok := a["FifoTopic"]; ok {
			t.Errorf("standard topic has FifoTopic")
		}
		if _, err := e.client.SetTopicAttributes(ctx, &awssns.SetTopicAttributesInput{TopicArn: aws.String(arn), AttributeName: aws.String("DisplayName"), AttributeValue: aws.String("Renamed")}); err != nil {
			t.Fatal(err)
		}
		out, _ = e.client.GetTopicAttributes(ctx, &awssns.GetTopicAttributesInput{TopicArn: aws.String(arn)})
		if out.Attributes["DisplayName"] != "Renamed" {
			t.Errorf("DisplayName after set: %q", out.Attributes["DisplayName"])
		}
		_, err = e.client.SetTopicAttributes(ctx, &awssns.SetTopicAttributesInput{TopicArn: aws.String(arn), AttributeName: aws.String("FifoTopic"), AttributeValue: aws.String("true")})
		wantCode(t, "SetTopicAttributes FifoTopic", err, "InvalidParameter", "Invalid parameter: AttributeName")
		_, err = e.client.SetTopicAttributes(ctx, &awssns.SetTopicAttributesInput{TopicArn: aws.String(arn), AttributeName: aws.String("Policy"), AttributeValue: aws.String("{")})
		wantCode(t, "SetTopicAttributes bad Policy", err, "InvalidParameter", "Policy")
	})
	t.Run("delete", func(t *testing.T) {
		if _, err := e.client.DeleteTopic(ctx, &awssns.DeleteTopicInput{TopicArn: aws.String(arn)}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.DeleteTopic(ctx, &awssns.DeleteTopicInput{TopicArn: aws.String(arn)}); err != nil {
			t.Errorf("deleting a deleted topic: %v, want success", err)
		}
		_, err := e.client.GetTopicAttributes(ctx, &awssns.GetTopicAttributesInput{TopicArn: aws.String(arn)})
		var nf *types.NotFoundException
		if !errors.As(err, &nf) || nf.ErrorMessage() != "Topic does not exist" {
			t.Errorf("GetTopicAttributes after delete: %v, want NotFound", err)
		}
	})
}

func TestTopicNamesAndARNs(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	for _, c := range []struct {
		name  string
		attrs map[string]string
		want  string
	}{
		{"has space", nil, "Invalid parameter: Topic Name"},
		{strings.Repeat("a", 257), nil, "Invalid parameter: Topic Name"},
		{"x.fifo", nil, "Invalid parameter: Topic Name"},
		{"notfifo", map[string]string{"FifoTopic": "true"}, "Fifo Topic names must end with .fifo"},
		{"t", map[string]string{"Colour": "red"}, "Invalid parameter: AttributeName"},
		{"t", map[string]string{"ContentBasedDeduplication": "true"}, "can only be set for FIFO topics"},
	} {
		_, err := e.client.CreateTopic(ctx, &awssns.CreateTopicInput{Name: aws.String(c.name), Attributes: c.attrs})
		wantCode(t, "CreateTopic "+c.name, err, "InvalidParameter", c.want)
	}
	for _, c := range []struct {
		arn, code, msg string
	}{
		{"not-an-arn", "InvalidParameter", "Invalid parameter: TopicArn"},
		{"arn:aws:sns:eu-west-1:123456789012:t", "InvalidParameter", "Invalid parameter: TopicArn"},
		{"arn:aws:sns:us-east-1:210987654321:t", "AuthorizationError", "is not authorized to perform: SNS:GetTopicAttributes"},
		{"arn:aws:sns:us-east-1:123456789012:missing", "NotFound", "Topic does not exist"},
	} {
		_, err := e.client.GetTopicAttributes(ctx, &awssns.GetTopicAttributesInput{TopicArn: aws.String(c.arn)})
		wantCode(t, "GetTopicAttributes "+c.arn, err, c.code, c.msg)
	}
}

func TestListTopicsPages(t *testing.T) {
	e := newEnv(t)
	var want []string
	for i := range 105 {
		want = append(want, e.createTopic(t, fmt.Sprintf("t%03d", i), nil))
	}
	var got []string
	pages := 0
	p := awssns.NewListTopicsPaginator(e.client, &awssns.ListTopicsInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, tp := range out.Topics {
			got = append(got, aws.ToString(tp.TopicArn))
		}
	}
	if pages != 2 || !slices.Equal(got, want) {
		t.Errorf("%d pages, %d topics; want 2 pages of the %d topics in order", pages, len(got), len(want))
	}
	_, err := e.client.ListTopics(t.Context(), &awssns.ListTopicsInput{NextToken: aws.String("%%%")})
	wantCode(t, "ListTopics bad token", err, "InvalidParameter", "NextToken")
}

func TestFIFOTopic(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	arn := e.createTopic(t, "orders.fifo", map[string]string{"FifoTopic": "true"})
	out, err := e.client.GetTopicAttributes(ctx, &awssns.GetTopicAttributesInput{TopicArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if out.Attributes["FifoTopic"] != "true" || out.Attributes["ContentBasedDeduplication"] != "false" {
		t.Errorf("FIFO attributes %v", out.Attributes)
	}
	_, err = e.client.Publish(ctx, &awssns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("m")})
	wantCode(t, "Publish without group", err, "InvalidParameter", "The MessageGroupId parameter is required for FIFO topics")
	_, err = e.client.Publish(ctx, &awssns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("m"), MessageGroupId: aws.String("g")})
	wantCode(t, "Publish without dedup id", err, "InvalidParameter", "ContentBasedDeduplication enabled or MessageDeduplicationId")

	queue := e.createQueue(t, "orders.fifo", map[string]string{"FifoQueue": "true"})
	if _, err := e.client.Subscribe(ctx, &awssns.SubscribeInput{TopicArn: aws.String(arn), Protocol: aws.String("sqs"), Endpoint: aws.String(queue),
		Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	standard := e.createQueue(t, "standard", nil)
	if _, err := e.client.Subscribe(ctx, &awssns.SubscribeInput{TopicArn: aws.String(arn), Protocol: aws.String("sqs"), Endpoint: aws.String(standard),
		Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.Subscribe(ctx, &awssns.SubscribeInput{TopicArn: aws.String(arn), Protocol: aws.String("http"), Endpoint: aws.String("http://127.0.0.1:1/")})
	wantCode(t, "Subscribe http to FIFO", err, "InvalidParameter", "FIFO topics deliver only to Amazon SQS queues")

	first, err := e.client.Publish(ctx, &awssns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("one"), MessageGroupId: aws.String("g"), MessageDeduplicationId: aws.String("d1")})
	if err != nil {
		t.Fatal(err)
	}
	dup, err := e.client.Publish(ctx, &awssns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("one again"), MessageGroupId: aws.String("g"), MessageDeduplicationId: aws.String("d1")})
	if err != nil {
		t.Fatal(err)
	}
	second, err := e.client.Publish(ctx, &awssns.PublishInput{TopicArn: aws.String(arn), Message: aws.String("two"), MessageGroupId: aws.String("g"), MessageDeduplicationId: aws.String("d2")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(first.SequenceNumber) == "" || aws.ToString(second.SequenceNumber) <= aws.ToString(first.SequenceNumber) {
		t.Errorf("sequence numbers %v then %v", aws.ToString(first.SequenceNumber), aws.ToString(second.SequenceNumber))
	}
	if aws.ToString(dup.MessageId) != aws.ToString(first.MessageId) {
		t.Errorf("duplicate got message id %s, want the original's %s", aws.ToString(dup.MessageId), aws.ToString(first.MessageId))
	}
	var bodies []string
	for _, m := range e.receive(t, "orders.fifo") {
		bodies = append(bodies, m.Body)
	}
	if !slices.Equal(bodies, []string{"one", "two"}) {
		t.Errorf("received %q, want one and two in order, without the duplicate", bodies)
	}
	if got := e.receive(t, "standard"); len(got) != 2 {
		t.Errorf("the standard queue received %d messages, want 2", len(got))
	}
}

func TestTags(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	out, err := e.client.CreateTopic(ctx, &awssns.CreateTopicInput{Name: aws.String("tagged"), Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("sre")}}})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.TopicArn)
	_, err = e.client.CreateTopic(ctx, &awssns.CreateTopicInput{Name: aws.String("tagged"), Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("dev")}}})
	wantCode(t, "CreateTopic with other tags", err, "InvalidParameter", "Topic already exists with different tags")
	if _, err := e.client.TagResource(ctx, &awssns.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{
		{Key: aws.String("env"), Value: aws.String("prod")}, {Key: aws.String("team"), Value: aws.String("ops")},
	}}); err != nil {
		t.Fatal(err)
	}
	list := func() string {
		t.Helper()
		out, err := e.client.ListTagsForResource(ctx, &awssns.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, tg := range out.Tags {
			s = append(s, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
		}
		return strings.Join(s, ",")
	}
	if got := list(); got != "env=prod,team=ops" {
		t.Errorf("tags %s", got)
	}
	if _, err := e.client.UntagResource(ctx, &awssns.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: []string{"team", "absent"}}); err != nil {
		t.Fatal(err)
	}
	if got := list(); got != "env=prod" {
		t.Errorf("tags after untag %s", got)
	}
	_, err = e.client.TagResource(ctx, &awssns.TagResourceInput{ResourceArn: aws.String(arn), Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("a"), Value: aws.String("2")}}})
	wantCode(t, "duplicate keys", err, "InvalidParameter", "Duplicated keys are not allowed.")
	var many []types.Tag
	for i := range 50 {
		many = append(many, types.Tag{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")})
	}
	_, err = e.client.TagResource(ctx, &awssns.TagResourceInput{ResourceArn: aws.String(arn), Tags: many})
	wantCode(t, "51 tags", err, "TagLimitExceeded", "tag quota")
	_, err = e.client.ListTagsForResource(ctx, &awssns.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:sns:us-east-1:123456789012:nope")})
	wantCode(t, "tags of a missing topic", err, "ResourceNotFound", "Resource does not exist")
}

func TestUnknownActionAndRawQuery(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		query, status, body string
	}{
		{"Action=CreatePlatformApplication&Version=2010-03-31", "400", "<Code>InvalidAction</Code>"},
		{"Version=2010-03-31", "400", "<Code>MissingAction</Code>"},
		{"Action=ListTopics&Version=2010-03-31", "200", "<ListTopicsResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><ListTopicsResult><Topics></Topics></ListTopicsResult>"},
		{"Action=Publish&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Anope&Message=x&Version=2010-03-31", "404", "<Code>NotFound</Code>"},
		{"Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:123456789012:nope&Token=00&Version=2010-03-31", "404", "<Code>NotFound</Code>"},
	} {
		resp, err := e.http.Get(e.url + "/?" + c.query)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.HasPrefix(resp.Status, c.status) || !strings.Contains(string(b), c.body) {
			t.Errorf("GET ?%s: %s %s; want %s with %s", c.query, resp.Status, b, c.status, c.body)
		}
	}
	// A form POST with a parameter given twice takes the first value.
	resp, err := e.http.PostForm(e.url+"/", url.Values{"Action": {"CreateTopic"}, "Name": {"a", "b"}, "Version": {"2010-03-31"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), ":a</TopicArn>") {
		t.Errorf("CreateTopic form: %s %s", resp.Status, b)
	}
}
