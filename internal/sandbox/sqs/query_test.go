package sqs_test

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
)

const ns = "http://queue.amazonaws.com/doc/2012-11-05/"

// decode unmarshals an XML response, failing on a non-200 status.
func decode(t *testing.T, status int, body string, v any) {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	if err := xml.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
}

type xmlAttr struct{ Name, Value string }

type xmlMessage struct {
	MessageId, ReceiptHandle, MD5OfBody, Body, MD5OfMessageAttributes string
	Attribute                                                         []xmlAttr
	MessageAttribute                                                  []struct {
		Name  string
		Value struct{ StringValue, BinaryValue, DataType string }
	}
}

// TestQueryProtocol drives SQS's query protocol with the bodies AWS CLI
// 2.9 sends, and reads the XML as the CLI does.
func TestQueryProtocol(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	var created struct {
		XMLName xml.Name `xml:"CreateQueueResponse"`
		NS      string   `xml:"xmlns,attr"`
		URL     string   `xml:"CreateQueueResult>QueueUrl"`
		ReqID   string   `xml:"ResponseMetadata>RequestId"`
	}
	status, body := e.query(t, "Action=CreateQueue&Version=2012-11-05&QueueName=lifecycle-q&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=60&Tag.1.Key=team&Tag.1.Value=infra")
	decode(t, status, body, &created)
	if created.NS != ns || created.URL != e.url+"/123456789012/lifecycle-q" || created.ReqID == "" {
		t.Fatalf("CreateQueue: %+v", created)
	}
	queueURL := created.URL

	var sent struct {
		MD5OfMessageBody       string `xml:"SendMessageResult>MD5OfMessageBody"`
		MD5OfMessageAttributes string `xml:"SendMessageResult>MD5OfMessageAttributes"`
		MessageId              string `xml:"SendMessageResult>MessageId"`
	}
	msgBody := `{"LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING","EC2InstanceId":"i-0598c7d356eba48d7"}`
	status, body = e.query(t, "Action=SendMessage&Version=2012-11-05&"+form(
		"QueueUrl", queueURL, "MessageBody", msgBody,
		"MessageAttribute.1.Name", "SellerName", "MessageAttribute.1.Value.DataType", "String", "MessageAttribute.1.Value.StringValue", "Example Store",
	))
	decode(t, status, body, &sent)
	sum := md5.Sum([]byte(msgBody))
	if sent.MD5OfMessageBody != hex.EncodeToString(sum[:]) || sent.MD5OfMessageAttributes != "cd28f3b68aeee4b2eac9c66f2f694b58" || sent.MessageId == "" {
		t.Fatalf("SendMessage: %+v", sent)
	}

	var received struct {
		Messages []xmlMessage `xml:"ReceiveMessageResult>Message"`
	}
	status, body = e.query(t, "Action=ReceiveMessage&Version=2012-11-05&"+form("QueueUrl", queueURL)+"&AttributeName.1=All&MessageAttributeName.1=All&WaitTimeSeconds=1")
	decode(t, status, body, &received)
	if len(received.Messages) != 1 {
		t.Fatalf("ReceiveMessage: %s", body)
	}
	m := received.Messages[0]
	if m.Body != msgBody || m.MD5OfBody != sent.MD5OfMessageBody || m.MessageId != sent.MessageId || m.MD5OfMessageAttributes != sent.MD5OfMessageAttributes {
		t.Errorf("message %+v", m)
	}
	attrs := map[string]string{}
	for _, a := range m.Attribute {
		attrs[a.Name] = a.Value
	}
	if attrs["ApproximateReceiveCount"] != "1" || attrs["SentTimestamp"] == "" || attrs["SenderId"] != "123456789012" {
		t.Errorf("attributes %v", attrs)
	}
	if len(m.MessageAttribute) != 1 || m.MessageAttribute[0].Name != "SellerName" || m.MessageAttribute[0].Value.DataType != "String" || m.MessageAttribute[0].Value.StringValue != "Example Store" {
		t.Errorf("message attributes %+v", m.MessageAttribute)
	}

	status, body = e.query(t, "Action=DeleteMessage&Version=2012-11-05&"+form("QueueUrl", queueURL, "ReceiptHandle", m.ReceiptHandle))
	want := regexp.MustCompile(`^<\?xml version="1.0" encoding="UTF-8"\?>\s*<DeleteMessageResponse xmlns="` + regexp.QuoteMeta(ns) + `"><ResponseMetadata><RequestId>[0-9a-f-]{36}</RequestId></ResponseMetadata></DeleteMessageResponse>$`)
	if status != 200 || !want.MatchString(body) {
		t.Errorf("DeleteMessage: %d %s", status, body)
	}

	t.Run("GetQueueAttributes flattens Attribute", func(t *testing.T) {
		var out struct {
			Attributes []xmlAttr `xml:"GetQueueAttributesResult>Attribute"`
		}
		status, body := e.query(t, "Action=GetQueueAttributes&Version=2012-11-05&"+form("QueueUrl", queueURL)+"&AttributeName.1=VisibilityTimeout&AttributeName.2=QueueArn")
		decode(t, status, body, &out)
		if len(out.Attributes) != 2 || out.Attributes[0] != (xmlAttr{"QueueArn", "arn:aws:sqs:us-east-1:123456789012:lifecycle-q"}) || out.Attributes[1] != (xmlAttr{"VisibilityTimeout", "60"}) {
			t.Errorf("%s", body)
		}
	})
	t.Run("ListQueues flattens QueueUrl", func(t *testing.T) {
		var out struct {
			URLs []string `xml:"ListQueuesResult>QueueUrl"`
		}
		status, body := e.query(t, "Action=ListQueues&Version=2012-11-05&QueueNamePrefix=life")
		decode(t, status, body, &out)
		if len(out.URLs) != 1 || out.URLs[0] != queueURL {
			t.Errorf("%s", body)
		}
	})
	t.Run("ListQueueTags flattens Tag", func(t *testing.T) {
		var out struct {
			Tags []struct{ Key, Value string } `xml:"ListQueueTagsResult>Tag"`
		}
		status, body := e.query(t, "Action=ListQueueTags&Version=2012-11-05&"+form("QueueUrl", queueURL))
		decode(t, status, body, &out)
		if len(out.Tags) != 1 || out.Tags[0].Key != "team" || out.Tags[0].Value != "infra" {
			t.Errorf("%s", body)
		}
	})
	t.Run("SendMessageBatch reports each entry", func(t *testing.T) {
		var out struct {
			OK []struct {
				Id, MessageId, MD5OfMessageBody string
			} `xml:"SendMessageBatchResult>SendMessageBatchResultEntry"`
			Failed []struct {
				Id, Code, Message string
				SenderFault       bool
			} `xml:"SendMessageBatchResult>BatchResultErrorEntry"`
		}
		status, body := e.query(t, "Action=SendMessageBatch&Version=2012-11-05&"+form("QueueUrl", queueURL,
			"SendMessageBatchRequestEntry.1.Id", "a", "SendMessageBatchRequestEntry.1.MessageBody", "one",
			"SendMessageBatchRequestEntry.2.Id", "b", "SendMessageBatchRequestEntry.2.MessageBody", "two", "SendMessageBatchRequestEntry.2.DelaySeconds", "1000",
		))
		decode(t, status, body, &out)
		if len(out.OK) != 1 || out.OK[0].Id != "a" || out.OK[0].MD5OfMessageBody != "f97c5d29941bfb1b2fdab0874906ab82" ||
			len(out.Failed) != 1 || out.Failed[0].Id != "b" || out.Failed[0].Code != "InvalidParameterValue" || !out.Failed[0].SenderFault {
			t.Errorf("%s", body)
		}
	})
	t.Run("a queue named by the request path", func(t *testing.T) {
		status, _, body := e.post(t, "/123456789012/lifecycle-q", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, "Action=PurgeQueue&Version=2012-11-05")
		if status != 200 || !strings.Contains(body, "<PurgeQueueResponse") {
			t.Errorf("%d %s", status, body)
		}
	})
}

func TestQueryErrors(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	tests := []struct {
		name, form string
		status     int
		code, msg  string
	}{
		{"missing queue", "Action=GetQueueUrl&Version=2012-11-05&QueueName=nope", 400,
			"AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist for this wsdl version."},
		{"queue exists with other attributes", "Action=CreateQueue&Version=2012-11-05&QueueName=q&Attribute.1.Name=DelaySeconds&Attribute.1.Value=5", 400,
			"QueueAlreadyExists", "A queue already exists with the same name and a different value for attribute DelaySeconds"},
		{"unknown action", "Action=AddPermission&Version=2012-11-05", 400, "InvalidAction", "Could not find operation AddPermission for version 2012-11-05"},
		{"no action", "Version=2012-11-05", 400, "MissingAction", "The request must contain the parameter Action."},
		{"missing QueueUrl", "Action=ReceiveMessage&Version=2012-11-05", 400, "MissingParameter", "The request must contain the parameter QueueUrl."},
		{"bad integer", "Action=ReceiveMessage&Version=2012-11-05&QueueUrl=q&MaxNumberOfMessages=lots", 400, "InvalidParameterValue", "Value lots for parameter MaxNumberOfMessages is invalid. Reason: Must be an integer."},
		{"out of range", "Action=ReceiveMessage&Version=2012-11-05&QueueUrl=q&MaxNumberOfMessages=11", 400, "InvalidParameterValue", "Value 11 for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided."},
		{"receipt handle", "Action=DeleteMessage&Version=2012-11-05&QueueUrl=q&ReceiptHandle=x", 404, "ReceiptHandleIsInvalid", `The input receipt handle "x" is not a valid receipt handle.`},
	}
	e.createQueue(t, "q", nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.query(t, tt.form)
			var env struct {
				XMLName xml.Name `xml:"ErrorResponse"`
				NS      string   `xml:"xmlns,attr"`
				Error   struct{ Type, Code, Message string }
				ReqID   string `xml:"RequestId"`
			}
			if err := xml.Unmarshal([]byte(body), &env); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if status != tt.status || env.NS != ns || env.Error.Type != "Sender" || env.Error.Code != tt.code || env.Error.Message != tt.msg || env.ReqID == "" {
				t.Errorf("status %d, %+v", status, env)
			}
		})
	}
}
