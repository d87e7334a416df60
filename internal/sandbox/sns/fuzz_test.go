package sns_test

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/sns"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// fuzzSeeds are request bodies as the Go SDK and the AWS CLI send them,
// against the fuzz world's topic "t" with an SQS subscription to queue "q"
// and a lambda subscription.
var fuzzSeeds = []string{
	"Action=CreateTopic&Attributes.entry.1.key=DisplayName&Attributes.entry.1.value=x&Name=t2&Tags.member.1.Key=k&Tags.member.1.Value=v&Version=2010-03-31",
	"Action=CreateTopic&Attributes.entry.1.key=FifoTopic&Attributes.entry.1.value=true&Attributes.entry.2.key=ContentBasedDeduplication&Attributes.entry.2.value=true&Name=f.fifo&Version=2010-03-31",
	"Action=DeleteTopic&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At&Version=2010-03-31",
	"Action=ListTopics&NextToken=YXJu&Version=2010-03-31",
	"Action=GetTopicAttributes&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At&Version=2010-03-31",
	"Action=SetTopicAttributes&AttributeName=DeliveryPolicy&AttributeValue=%7B%7D&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At&Version=2010-03-31",
	"Action=Subscribe&Attributes.entry.1.key=FilterPolicy&Attributes.entry.1.value=%7B%22a%22%3A%5B%7B%22numeric%22%3A%5B%22%3E%22%2C1%5D%7D%5D%7D&Endpoint=arn%3Aaws%3Asqs%3Aus-east-1%3A123456789012%3Aq2&Protocol=sqs&ReturnSubscriptionArn=true&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At&Version=2010-03-31",
	"Action=Subscribe&Endpoint=http%3A%2F%2F127.0.0.1%3A1%2F&Protocol=http&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At&Version=2010-03-31",
	"Action=ConfirmSubscription&Token=abc&TopicArn=arn:aws:sns:us-east-1:123456789012:t&Version=2010-03-31",
	"Action=Unsubscribe&SubscriptionArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At%3Ax&Version=2010-03-31",
	"Action=ListSubscriptions&Version=2010-03-31",
	"Action=ListSubscriptionsByTopic&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At&Version=2010-03-31",
	"Action=GetSubscriptionAttributes&SubscriptionArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At%3Ax&Version=2010-03-31",
	"Action=SetSubscriptionAttributes&AttributeName=FilterPolicyScope&AttributeValue=MessageBody&SubscriptionArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At%3Ax&Version=2010-03-31",
	"Action=Publish&Message=%7B%22LifecycleTransition%22%3A%22autoscaling%3AEC2_INSTANCE_TERMINATING%22%7D&Subject=Auto+Scaling%3A+Lifecycle+action+%27TERMINATING%27+for+instance+i-0598c7d356eba48d7+in+progress.&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At&Version=2010-03-31",
	"Action=Publish&Message=%7B%22default%22%3A%22d%22%2C%22sqs%22%3A%22s%22%7D&MessageAttributes.entry.1.Name=a&MessageAttributes.entry.1.Value.DataType=Number&MessageAttributes.entry.1.Value.StringValue=2&MessageAttributes.entry.2.Name=b&MessageAttributes.entry.2.Value.BinaryValue=AAE%3D&MessageAttributes.entry.2.Value.DataType=Binary&MessageStructure=json&TargetArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At&Version=2010-03-31",
	"Action=PublishBatch&PublishBatchRequestEntries.member.1.Id=a&PublishBatchRequestEntries.member.1.Message=m&PublishBatchRequestEntries.member.2.Id=b&PublishBatchRequestEntries.member.2.Message=n&PublishBatchRequestEntries.member.2.Subject=&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At&Version=2010-03-31",
	"Action=TagResource&ResourceArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At&Tags.member.1.Key=a&Tags.member.1.Value=b&Version=2010-03-31",
	"Action=UntagResource&ResourceArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At&TagKeys.member.1=a&Version=2010-03-31",
	"Action=ListTagsForResource&ResourceArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At&Version=2010-03-31",
	"Action=CreatePlatformApplication&Version=2010-03-31",
	"Version=2010-03-31",
	"Action=Publish&Bad=%zz",
}

// fuzzWorld has topic "t" with a raw SQS subscription to queue "q" and a
// lambda subscription, so that requests reach deep paths.
func fuzzWorld(t *testing.T) *messaging.Broker {
	w := messaging.New(messaging.Config{RelaxLimits: true}, simclock.NewSim(), nil, nil)
	topic, err := w.Topics().CreateTopic(messaging.CreateTopicInput{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Queues().CreateQueue(messaging.CreateQueueInput{Name: "q"}); err != nil {
		t.Fatal(err)
	}
	for _, in := range []messaging.SubscribeInput{
		{TopicARN: topic, Protocol: "sqs", Endpoint: "arn:aws:sqs:us-east-1:123456789012:q", Attributes: map[string]string{"RawMessageDelivery": "true"}},
		{TopicARN: topic, Protocol: "lambda", Endpoint: "arn:aws:lambda:us-east-1:123456789012:function:f"},
	} {
		if _, err := w.Topics().Subscribe(in); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

type errorResponse struct {
	Error struct {
		Code    string
		Message string
	}
}

func FuzzQueryHandler(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		w := fuzzWorld(t)
		defer w.Close()
		// Subscriptions to HTTP endpoints post in the background: keep
		// them on a loopback port where nothing listens.
		if v, err := url.ParseQuery(body); err == nil {
			if p := v.Get("Protocol"); p == "http" || p == "https" {
				v.Set("Endpoint", p+"://127.0.0.1:1/")
				body = v.Encode()
			}
		}
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		sns.New(w.Topics()).ServeHTTP(rec, req)

		root, err := wellFormed(rec.Body.String())
		if err != nil {
			t.Fatalf("status %d, body is not well-formed XML (%v): %s", rec.Code, err, rec.Body)
		}
		switch {
		case rec.Code == http.StatusOK:
			if root == "ErrorResponse" || !strings.HasSuffix(root, "Response") {
				t.Fatalf("200 with root <%s>: %s", root, rec.Body)
			}
		case rec.Code >= 400 && rec.Code < 600:
			var e errorResponse
			if err := xml.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || root != "ErrorResponse" {
				t.Fatalf("status %d without an <ErrorResponse> carrying a code (%v): %s", rec.Code, err, rec.Body)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}

// wellFormed reads a whole XML document and returns its root element's name.
func wellFormed(doc string) (string, error) {
	d := xml.NewDecoder(strings.NewReader(doc))
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			if root == "" {
				return "", errors.New("no root element")
			}
			return root, nil
		}
		if err != nil {
			return "", err
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
}
