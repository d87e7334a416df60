package lambda_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/sandboxtest"
)

// FuzzLambdaRequests: no method, path or body makes the Lambda API answer
// a server error.
func FuzzLambdaRequests(f *testing.F) {
	f.Add("POST", "/2015-03-31/functions", []byte(`{"FunctionName":"f","Runtime":"provided.al2023","Role":"arn:aws:iam::123456789012:role/r","Code":{"ZipFile":"UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}}`))
	f.Add("GET", "/2015-03-31/functions/", []byte(nil))
	f.Add("POST", "/2015-03-31/functions/f/invocations", []byte(`{}`))
	f.Add("PUT", "/2015-03-31/functions/f/configuration", []byte(`{"Timeout":"x"}`))
	f.Add("PUT", "/2017-10-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af/concurrency", []byte(`{"ReservedConcurrentExecutions":-1}`))
	f.Add("DELETE", "/2015-03-31/functions/f/policy/sid", []byte(nil))
	f.Add("POST", "/2015-03-31/functions/f/policy", []byte(`{"StatementId":"a b"}`))
	f.Add("GET", "/2017-03-31/tags/arn:aws:lambda:us-east-1:123456789012:function:f", []byte(nil))
	sb := sandboxtest.Start(f, sandbox.Config{InMemory: true})
	f.Fuzz(func(t *testing.T, method, path string, body []byte) {
		if !strings.HasPrefix(path, "/20") {
			path = "/2015-03-31/" + path
		}
		req, err := http.NewRequestWithContext(t.Context(), method, sb.Endpoint+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		resp, err := sb.HTTP.Do(req)
		if err != nil {
			return
		}
		_ = resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Errorf("%s %s %q: status %d", method, path, body, resp.StatusCode)
		}
	})
}
