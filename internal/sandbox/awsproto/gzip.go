package awsproto

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Query-protocol answers are gzipped for a client whose Accept-Encoding
// admits it, as EC2's endpoints do. Go's net/http asks for gzip on every
// request that does not say otherwise, so aws-sdk-go-v2's query clients
// (Auto Scaling, EC2, ELB, ELBv2, SNS, SQS's query mode) get it; botocore
// and the AWS CLI send identity and get the body as it is.
//
// That is also what keeps those Go clients from retrying against a sandbox
// on the same host. The SDK closes a request's body as soon as the
// response headers arrive; net/http's write loop, once it has sent
// Content-Length bytes, reads the body once more to find its end, the
// SDK's closed body answers that read with io.EOF (from WriteTo), and
// net/http takes it for a write error: it closes the connection under the
// response. The sandbox often answers before the client's write loop is
// back on a CPU (AWS and moto are milliseconds away), and an answer the
// client had not yet read whole from the socket then fails with "use of
// closed network connection" on a 200 and is retried after a backoff. An
// answer of at most 4 KiB, headers included, leaves the server in one write
// and is read whole into the transport's 4 KiB buffer with its headers, so
// the close cannot reach it: gzip brings a DescribeAutoScalingGroups of
// about 200 instances, or a DescribeInstances of about 60, under that size.
// Larger answers still depend on the client (internal/awscloud's
// OwnRequestBodies).

// gzipMin is the smallest body worth compressing: below it the response
// already arrives in one read, and compression would only cost time.
const gzipMin = 1024

// negotiated is the ResponseWriter a QueryService hands its writers:
// writeBody says the answer varies with Accept-Encoding, and compresses
// bodies of gzipMin bytes or more when gzip is true.
type negotiated struct {
	http.ResponseWriter
	gzip bool // the request's Accept-Encoding admits gzip
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w negotiated) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// acceptsGzip reports whether an Accept-Encoding header admits gzip: a
// gzip, x-gzip or * coding whose q-value is not 0 (RFC 9110 §12.5.3).
func acceptsGzip(h http.Header) bool {
	for _, v := range h.Values("Accept-Encoding") {
		for coding := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(coding, ";")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "gzip", "x-gzip", "*":
				if !zeroQ(params) {
					return true
				}
			}
		}
	}
	return false
}

// zeroQ reports whether a coding's parameters say q=0 (not acceptable).
func zeroQ(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && q == 0
		}
	}
	return false
}

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return w
}}

// gzipBytes returns b compressed.
func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b)/4 + 64)
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(&buf)
	_, _ = zw.Write(b) // a bytes.Buffer does not fail
	_ = zw.Close()
	gzipWriters.Put(zw)
	return buf.Bytes()
}
