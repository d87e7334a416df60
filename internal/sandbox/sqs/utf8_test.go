package sqs_test

import (
	"html"
	"net/url"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
)

// invalidContents is SQS's InvalidMessageContents text for a body with the
// byte 0xFF, which is not UTF-8.
const invalidContents = "Invalid binary character '#xFF' was found in the message body, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF"

// TestInvalidUTF8IsRefusedInBothProtocols: a body that is not UTF-8 used to
// be stored through the JSON protocol with U+FFFD in place of the bad
// bytes, while the query protocol refused it. Both answer SQS's
// InvalidMessageContents, and nothing is stored.
func TestInvalidUTF8IsRefusedInBothProtocols(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	q := e.createQueue(t, "utf8", nil)

	status, h, body := e.jsonCall(t, "SendMessage", `{"QueueUrl":"`+q+`","MessageBody":"a`+"\xff"+`b"}`)
	if status != 400 || !strings.Contains(body, `"__type":"com.amazonaws.sqs#InvalidMessageContents"`) || !strings.Contains(body, invalidContents) ||
		h.Get("x-amzn-query-error") != "InvalidMessageContents;Sender" {
		t.Errorf("JSON SendMessage with 0xFF: %d %s", status, body)
	}
	status, body = e.query(t, "Action=SendMessage&Version=2012-11-05&QueueUrl="+url.QueryEscape(q)+"&MessageBody=a%FFb")
	if status != 400 || !strings.Contains(body, "<Code>InvalidMessageContents</Code>") || !strings.Contains(html.UnescapeString(body), invalidContents) {
		t.Errorf("query SendMessage with 0xFF: %d %s", status, body)
	}
	// A batch refuses the entry, not the batch.
	status, _, body = e.jsonCall(t, "SendMessageBatch", `{"QueueUrl":"`+q+`","Entries":[{"Id":"bad","MessageBody":"`+"\xfe"+`"},{"Id":"ok","MessageBody":"fine"}]}`)
	if status != 200 || !strings.Contains(body, `"Id":"bad"`) || !strings.Contains(body, `"Code":"InvalidMessageContents"`) || !strings.Contains(body, "'#xFE'") {
		t.Errorf("JSON SendMessageBatch with 0xFE: %d %s", status, body)
	}
	// A lone surrogate is not a character either; a pair is.
	status, _, body = e.jsonCall(t, "SendMessage", `{"QueueUrl":"`+q+`","MessageBody":"\ud800"}`)
	if status != 400 || !strings.Contains(body, "InvalidMessageContents") {
		t.Errorf("JSON SendMessage with a lone surrogate: %d %s", status, body)
	}
	status, _, body = e.jsonCall(t, "SendMessage", `{"QueueUrl":"`+q+`","MessageBody":"\ud83d\ude00 \u00e9\n\"\\\/"}`)
	if status != 200 {
		t.Fatalf("JSON SendMessage with escapes: %d %s", status, body)
	}
	status, _, body = e.jsonCall(t, "ReceiveMessage", `{"QueueUrl":"`+q+`","MaxNumberOfMessages":10}`)
	if status != 200 || strings.Count(body, `"MessageId"`) != 2 || !strings.Contains(body, "😀 é\\n\\\"\\\\/") || strings.Contains(body, "\ufffd") {
		t.Errorf("ReceiveMessage: %d %s, want the batch's fine message and the escaped one, nothing replaced", status, body)
	}
}

// TestSerializationErrorsSpeakAWS: a body that does not decode answers
// SerializationException in AWS's words, never Go's.
func TestSerializationErrorsSpeakAWS(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	cases := []struct{ name, op, body, want string }{
		{"array for the input", "ListQueues", `[]`, "Start of list found where not expected"},
		{"string for a number", "ListQueues", `{"MaxResults":"ten"}`, "STRING_VALUE can not be converted to an Integer (member MaxResults)"},
		{"object for a string", "GetQueueUrl", `{"QueueName":{}}`, "Start of structure or map found where not expected (member QueueName)"},
		{"number for the body", "SendMessage", `{"QueueUrl":"q","MessageBody":5}`, "NUMBER_VALUE can not be converted to a String (member MessageBody)"},
		{"not JSON", "ListQueues", `{"MaxResults":`, "The request body is not valid JSON"},
		{"too large", "ListQueues", `{"QueueNamePrefix":"` + strings.Repeat("a", 5<<20) + `"}`, "The request body is larger than the 4194304 bytes this API accepts."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, _, body := e.jsonCall(t, c.op, c.body)
			if status != 400 || !strings.Contains(body, `"__type":"com.amazon.coral.service#SerializationException"`) || !strings.Contains(body, c.want) {
				t.Errorf("%d %s, want SerializationException %q", status, body, c.want)
			}
			for _, leak := range []string{"Go value", "sqs.", "http:", "json:", "unexpected end"} {
				if strings.Contains(body, leak) {
					t.Errorf("%s leaks %q", body, leak)
				}
			}
		})
	}
}
