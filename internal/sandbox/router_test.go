package sandbox_test

import (
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/sandboxtest"
)

// TestInjectedFaultsSpeakEachServicesProtocol throttles every call and
// checks that each service answers in its own envelope, with its own
// throttling code: SQS in the protocol the request used, DynamoDB with the
// checksum its SDK verifies.
func TestInjectedFaultsSpeakEachServicesProtocol(t *testing.T) {
	sb := sandboxtest.Start(t, sandbox.Config{InMemory: true})
	if err := sb.Server.SetFault(sandbox.Fault{Throttle: 1}); err != nil {
		t.Fatal(err)
	}
	form := "application/x-www-form-urlencoded"
	cases := []struct {
		name, target, contentType, body string
		wantType                        string   // Content-Type of the answer
		want                            []string // substrings of the body
		wantHeader                      map[string]string
	}{
		{
			name: "auto scaling", contentType: form, body: "Action=DescribeTags&Version=2011-01-01",
			wantType: "text/xml",
			want:     []string{`<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">`, "<Code>Throttling</Code>", "<Type>Sender</Type>"},
		},
		{
			name: "ec2", contentType: form, body: "Action=DescribeInstances&Version=2016-11-15",
			wantType: "text/xml;charset=UTF-8",
			want:     []string{"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message>", "<RequestID>"},
		},
		{
			name: "sqs query", contentType: form, body: "Action=ListQueues&Version=2012-11-05",
			wantType: "text/xml",
			want:     []string{`<ErrorResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">`, "<Code>RequestThrottled</Code>", "<Detail></Detail>"},
		},
		{
			name: "sqs json", target: "AmazonSQS.ListQueues", contentType: "application/x-amz-json-1.0", body: "{}",
			wantType:   "application/x-amz-json-1.0",
			want:       []string{`"__type":"com.amazonaws.sqs#RequestThrottled"`},
			wantHeader: map[string]string{"x-amzn-query-error": "RequestThrottled;Sender"},
		},
		{
			name: "sns", contentType: form, body: "Action=ListTopics&Version=2010-03-31",
			wantType: "text/xml",
			want:     []string{`<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">`, "<Code>Throttling</Code>"},
		},
		{
			name: "eventbridge", target: "AWSEvents.ListRules", contentType: "application/x-amz-json-1.1", body: "{}",
			wantType: "application/x-amz-json-1.1",
			want:     []string{`"__type":"com.amazonaws.eventbridge#ThrottlingException"`},
		},
		{
			name: "dynamodb", target: "DynamoDB_20120810.ListTables", contentType: "application/x-amz-json-1.0", body: "{}",
			wantType: "application/x-amz-json-1.0",
			want:     []string{`"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException"`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, sb.Endpoint, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", c.contentType)
			if c.target != "" {
				req.Header.Set("X-Amz-Target", c.target)
			}
			resp, err := sb.HTTP.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			body := string(b)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != c.wantType {
				t.Errorf("got %d %q, want 400 %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), c.wantType, body)
			}
			for _, w := range c.want {
				if !strings.Contains(body, w) {
					t.Errorf("body %s\nwant it to contain %s", body, w)
				}
			}
			for k, v := range c.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			crc := resp.Header.Get("X-Amz-Crc32")
			switch {
			case c.name == "dynamodb" && crc != strconv.FormatUint(uint64(crc32.ChecksumIEEE(b)), 10):
				t.Errorf("X-Amz-Crc32 %q, want the CRC32 of the body, %d", crc, crc32.ChecksumIEEE(b))
			case c.name != "dynamodb" && crc != "":
				t.Errorf("X-Amz-Crc32 %q on a service that does not send it", crc)
			}
		})
	}
}
