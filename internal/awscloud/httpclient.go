package awscloud

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// OwnRequestBodies makes every client built from cfg hand net/http a
// request body of its own. The SDK closes the body it built as soon as the
// response headers arrive; when net/http's write loop has not yet made its
// last read of that body (it reads once more after Content-Length bytes to
// find the end), the closed body answers that read with io.EOF (from
// WriteTo), net/http takes it for a write error and closes the connection
// under the response still being read: the call fails with "use of closed
// network connection" on a 200 and is retried after a backoff of up to a
// second. It happens whenever a server answers before that last read, which
// a server on the same host often does, and the response is larger than
// the transport's first 4 KiB read (the sandbox gzips query answers, which
// keeps most of them under it; larger ones, and servers that do not
// compress, still meet it). A body of its own is closed by no one but
// net/http, so its last read finds the end whenever it comes.
func OwnRequestBodies(cfg *aws.Config) {
	next := cfg.HTTPClient
	if next == nil {
		next = awshttp.NewBuildableClient()
	}
	cfg.HTTPClient = ownBodies{next: next}
}

type ownBodies struct{ next aws.HTTPClient }

func (o ownBodies) Do(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return o.next.Do(req)
	}
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	req = req.Clone(req.Context())
	req.Body = io.NopCloser(bytes.NewReader(b))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return o.next.Do(req)
}
