package awsproto

import (
	"bytes"
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
)

// NewRequestID returns a random UUID, the form of AWS request ids.
func NewRequestID() string { return UUID() }

// UUID returns a random version-4 UUID.
func UUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Namespaces of the query services' XML.
const (
	NSAutoScaling = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
	NSEC2         = "http://ec2.amazonaws.com/doc/2016-11-15/"
	NSELBv2       = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
	NSELB         = "http://elasticloadbalancing.amazonaws.com/doc/2012-06-01/"
	NSSNS         = "http://sns.amazonaws.com/doc/2010-03-31/"
	NSSQS         = "http://queue.amazonaws.com/doc/2012-11-05/"
)

// NoOutput marks an awsquery operation without an output shape: its
// response carries only ResponseMetadata.
type NoOutput struct{}

// WriteQuery writes an awsquery success envelope:
// <OpResponse xmlns><OpResult>result</OpResult><ResponseMetadata>…</OpResponse>.
// A nil result writes an empty <OpResult/>; NoOutput writes no Result element.
func WriteQuery(w http.ResponseWriter, ns, op, requestID string, result any) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<%sResponse xmlns="%s">`, op, ns)
	enc := xml.NewEncoder(&buf)
	switch result.(type) {
	case NoOutput, *NoOutput:
	case nil:
		fmt.Fprintf(&buf, "<%sResult/>", op)
	default:
		if err := enc.EncodeElement(result, xml.StartElement{Name: xml.Name{Local: op + "Result"}}); err != nil {
			WriteQueryError(w, ns, requestID, Internal(err))
			return
		}
		_ = enc.Flush()
	}
	fmt.Fprintf(&buf, "<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>", requestID, op)
	writeBody(w, http.StatusOK, "text/xml", requestID, buf.Bytes())
}

// WriteEC2 writes an ec2query success envelope: no Result wrapper, the
// result's fields directly under <OpResponse>, after <requestId>.
func WriteEC2(w http.ResponseWriter, op, requestID string, result any) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<%sResponse xmlns="%s"><requestId>%s</requestId>`, op, NSEC2, requestID)
	if result != nil {
		// The result is a struct whose fields become the response's children:
		// marshal it under a throwaway element and keep only its content.
		var inner bytes.Buffer
		if err := xml.NewEncoder(&inner).EncodeElement(result, xml.StartElement{Name: xml.Name{Local: "x"}}); err != nil {
			WriteEC2Error(w, requestID, Internal(err))
			return
		}
		b := inner.Bytes()
		if bytes.HasPrefix(b, []byte("<x>")) && bytes.HasSuffix(b, []byte("</x>")) {
			buf.Write(b[3 : len(b)-4])
		}
	}
	fmt.Fprintf(&buf, "</%sResponse>", op)
	writeBody(w, http.StatusOK, "text/xml;charset=UTF-8", requestID, buf.Bytes())
}

func writeBody(w http.ResponseWriter, status int, contentType, requestID string, body []byte) {
	h := w.Header()
	if nw, ok := w.(negotiated); ok {
		h.Set("Vary", "Accept-Encoding")
		if nw.gzip && len(body) >= gzipMin {
			body = gzipBytes(body)
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if requestID != "" {
		h.Set("x-amzn-RequestId", requestID)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
