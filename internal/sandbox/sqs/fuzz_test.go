package sqs_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/sqs"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// fuzzDeadline ends every fuzzed request quickly: a long poll would
// otherwise hold one for up to 20 s.
const fuzzDeadline = 2 * time.Millisecond

// fuzzWorld has a standard queue "q" with a message in flight, a FIFO
// queue "f.fifo" and a dead-letter queue "dlq" behind "q", so that
// requests reach deep paths.
func fuzzWorld(t *testing.T) *messaging.Queues {
	w := messaging.New(messaging.Config{RelaxLimits: true}, simclock.NewSim(), nil, nil).Queues()
	t.Cleanup(w.Close)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.CreateQueue(messaging.CreateQueueInput{Name: "dlq"}))
	must(w.CreateQueue(messaging.CreateQueueInput{Name: "q", Attributes: map[string]string{
		"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:dlq","maxReceiveCount":1}`,
	}}))
	must(w.CreateQueue(messaging.CreateQueueInput{Name: "f.fifo", Attributes: map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"}}))
	for _, body := range []string{"one", "two"} {
		_, err := w.SendMessage("q", messaging.SendMessageInput{Body: body, Attributes: map[string]messaging.MessageAttribute{"k": {DataType: "String", StringValue: "v"}}})
		must(err)
	}
	_, err := w.ReceiveMessage(context.Background(), "q", messaging.ReceiveMessageInput{})
	must(err)
	return w
}

const fuzzURL = "http://localhost/123456789012/q"

var jsonSeeds = []struct{ op, body string }{
	{"CreateQueue", `{"QueueName":"n","Attributes":{"VisibilityTimeout":"60","RedrivePolicy":"{\"deadLetterTargetArn\":\"arn:aws:sqs:us-east-1:123456789012:dlq\",\"maxReceiveCount\":\"2\"}"},"tags":{"a":"b"}}`},
	{"CreateQueue", `{"QueueName":"n.fifo","Attributes":{"FifoQueue":"true","DeduplicationScope":"messageGroup"}}`},
	{"GetQueueUrl", `{"QueueName":"q","QueueOwnerAWSAccountId":"123456789012"}`},
	{"ListQueues", `{"QueueNamePrefix":"q","MaxResults":1,"NextToken":"cQ"}`},
	{"DeleteQueue", `{"QueueUrl":"` + fuzzURL + `"}`},
	{"GetQueueAttributes", `{"QueueUrl":"` + fuzzURL + `","AttributeNames":["All"]}`},
	{"SetQueueAttributes", `{"QueueUrl":"` + fuzzURL + `","Attributes":{"DelaySeconds":"5","Policy":"{}"}}`},
	{"TagQueue", `{"QueueUrl":"` + fuzzURL + `","Tags":{"k":"v"}}`},
	{"UntagQueue", `{"QueueUrl":"` + fuzzURL + `","TagKeys":["k"]}`},
	{"ListQueueTags", `{"QueueUrl":"` + fuzzURL + `"}`},
	{"PurgeQueue", `{"QueueUrl":"` + fuzzURL + `"}`},
	{"ListDeadLetterSourceQueues", `{"QueueUrl":"http://localhost/123456789012/dlq","MaxResults":5}`},
	{"SendMessage", `{"QueueUrl":"` + fuzzURL + `","MessageBody":"hi","DelaySeconds":3,"MessageAttributes":{"a":{"DataType":"Binary","BinaryValue":"AAE="},"n":{"DataType":"Number","StringValue":"1"}},"MessageSystemAttributes":{"AWSTraceHeader":{"DataType":"String","StringValue":"Root=1"}}}`},
	{"SendMessage", `{"QueueUrl":"http://localhost/123456789012/f.fifo","MessageBody":"hi","MessageGroupId":"g","MessageDeduplicationId":"d"}`},
	{"SendMessageBatch", `{"QueueUrl":"` + fuzzURL + `","Entries":[{"Id":"a","MessageBody":"x"},{"Id":"b","MessageBody":"y","DelaySeconds":901}]}`},
	{"ReceiveMessage", `{"QueueUrl":"` + fuzzURL + `","MaxNumberOfMessages":10,"VisibilityTimeout":0,"WaitTimeSeconds":1,"AttributeNames":["All"],"MessageSystemAttributeNames":["SenderId"],"MessageAttributeNames":[".*"]}`},
	{"DeleteMessage", `{"QueueUrl":"` + fuzzURL + `","ReceiptHandle":"AQEBcQA="}`},
	{"DeleteMessageBatch", `{"QueueUrl":"` + fuzzURL + `","Entries":[{"Id":"a","ReceiptHandle":"x"}]}`},
	{"ChangeMessageVisibility", `{"QueueUrl":"` + fuzzURL + `","ReceiptHandle":"x","VisibilityTimeout":10}`},
	{"ChangeMessageVisibilityBatch", `{"QueueUrl":"` + fuzzURL + `","Entries":[{"Id":"a","ReceiptHandle":"x","VisibilityTimeout":10}]}`},
	{"AddPermission", `{}`},
	{"SendMessage", `not json`},
	{"SendMessage", `{"QueueUrl":7}`},
}

// FuzzJSONHandler feeds arbitrary JSON-protocol requests to the handler:
// it must never panic, and must answer 200 with a JSON object or an error
// status with a JSON error naming its __type.
func FuzzJSONHandler(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add(s.op, s.body)
	}
	f.Fuzz(func(t *testing.T, op, body string) {
		h := sqs.New(fuzzWorld(t))
		ctx, cancel := context.WithTimeout(context.Background(), fuzzDeadline)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "http://localhost/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		req.Header.Set("X-Amz-Target", "AmazonSQS."+op)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("status %d, body is not a JSON object: %v: %s", rec.Code, err, rec.Body)
		}
		if rec.Code == http.StatusOK {
			return
		}
		if rec.Code < 400 || rec.Code >= 600 {
			t.Fatalf("status %d", rec.Code)
		}
		if typ, _ := out["__type"].(string); !strings.Contains(typ, "#") || out["message"] == nil {
			t.Fatalf("malformed error: %s", rec.Body)
		}
	})
}

var querySeeds = []string{
	"Action=CreateQueue&Version=2012-11-05&QueueName=n&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=60&Tag.1.Key=k&Tag.1.Value=v",
	"Action=CreateQueue&Version=2012-11-05&QueueName=n.fifo&Attribute.1.Name=FifoQueue&Attribute.1.Value=true",
	"Action=GetQueueUrl&Version=2012-11-05&QueueName=q",
	"Action=ListQueues&Version=2012-11-05&MaxResults=1",
	"Action=DeleteQueue&Version=2012-11-05&QueueUrl=http%3A%2F%2Flocalhost%2F123456789012%2Fq",
	"Action=GetQueueAttributes&Version=2012-11-05&QueueUrl=q&AttributeName.1=All",
	"Action=SetQueueAttributes&Version=2012-11-05&QueueUrl=q&Attribute.1.Name=RedrivePolicy&Attribute.1.Value=",
	"Action=TagQueue&Version=2012-11-05&QueueUrl=q&Tag.1.Key=k&Tag.1.Value=v",
	"Action=UntagQueue&Version=2012-11-05&QueueUrl=q&TagKey.1=k",
	"Action=ListQueueTags&Version=2012-11-05&QueueUrl=q",
	"Action=PurgeQueue&Version=2012-11-05&QueueUrl=q",
	"Action=ListDeadLetterSourceQueues&Version=2012-11-05&QueueUrl=dlq",
	"Action=SendMessage&Version=2012-11-05&QueueUrl=q&MessageBody=hi&MessageAttribute.1.Name=a&MessageAttribute.1.Value.DataType=Binary&MessageAttribute.1.Value.BinaryValue=AAE%3D",
	"Action=SendMessage&Version=2012-11-05&QueueUrl=f.fifo&MessageBody=hi&MessageGroupId=g",
	"Action=SendMessageBatch&Version=2012-11-05&QueueUrl=q&SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=x",
	"Action=ReceiveMessage&Version=2012-11-05&QueueUrl=q&AttributeName.1=All&MessageAttributeName.1=All&MaxNumberOfMessages=10&VisibilityTimeout=0",
	"Action=ReceiveMessage&Version=2012-11-05&QueueUrl=q&WaitTimeSeconds=20",
	"Action=DeleteMessage&Version=2012-11-05&QueueUrl=q&ReceiptHandle=x",
	"Action=DeleteMessageBatch&Version=2012-11-05&QueueUrl=q&DeleteMessageBatchRequestEntry.1.Id=a&DeleteMessageBatchRequestEntry.1.ReceiptHandle=x",
	"Action=ChangeMessageVisibility&Version=2012-11-05&QueueUrl=q&ReceiptHandle=x&VisibilityTimeout=5",
	"Action=ChangeMessageVisibilityBatch&Version=2012-11-05&QueueUrl=q&ChangeMessageVisibilityBatchRequestEntry.1.Id=a&ChangeMessageVisibilityBatchRequestEntry.1.ReceiptHandle=x",
	"Action=AddPermission&Version=2012-11-05",
	"Version=2012-11-05",
	"Action=SendMessage&Bad=%zz",
}

// FuzzQueryHandler feeds arbitrary query-protocol bodies to the handler:
// it must never panic, and must answer 200 with a well-formed <OpResponse>
// or an error status with an <ErrorResponse> carrying a code.
func FuzzQueryHandler(f *testing.F) {
	for _, s := range querySeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		h := sqs.New(fuzzWorld(t))
		ctx, cancel := context.WithTimeout(context.Background(), fuzzDeadline)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "http://localhost/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK {
			if err := wellFormed(rec.Body.Bytes()); err != nil {
				t.Fatalf("malformed XML: %v: %s", err, rec.Body)
			}
			return
		}
		var env struct {
			XMLName xml.Name `xml:"ErrorResponse"`
			Error   struct{ Code, Message string }
		}
		if err := xml.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Error.Code == "" || rec.Code < 400 || rec.Code >= 600 {
			t.Fatalf("status %d, malformed error (%v): %s", rec.Code, err, rec.Body)
		}
	})
}

// wellFormed reads every token of an XML document.
func wellFormed(b []byte) error {
	d := xml.NewDecoder(strings.NewReader(string(b)))
	for {
		if _, err := d.Token(); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
	}
}
