// Package sqs serves the SQS API over the sandbox's messaging owner, in both
// of the protocols SQS clients speak: awsJson1_0 (X-Amz-Target: AmazonSQS.<Op>,
// used by the Go SDK since sqs v1.28 and by current botocore) and awsquery
// (Action=<Op>&Version=2012-11-05, used by older clients such as AWS CLI
// 2.9). It is a stateless translator: it decodes a request, calls
// *messaging.Queues, and encodes the result. Operations it does not serve
// answer UnknownOperationException (JSON) or InvalidAction (query).
//
// It is written from the wire documentation and captured bodies, never
// from the SDK's generated code, so the sandbox and the client under test
// cannot share a misunderstanding.
package sqs

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
)

// version is the API version of SQS's query protocol.
const version = "2012-11-05"

// TargetPrefix is the X-Amz-Target prefix of SQS's JSON protocol.
const TargetPrefix = "AmazonSQS"

// maxJSONBody bounds a JSON request: a 1 MiB message with base64 binary
// attributes fits with room to spare.
const maxJSONBody = 4 << 20

// Handler is the SQS endpoint. It is safe for concurrent use; all state
// lives in the messaging. A ReceiveMessage that long-polls holds its request
// open for up to 20 seconds without holding the broker's lock.
type Handler struct {
	q     *messaging.Queues
	json  *awsproto.JSONService
	query *awsproto.QueryService
}

// New returns a handler over q.
func New(q *messaging.Queues) *Handler {
	h := &Handler{q: q}
	h.json = &awsproto.JSONService{
		TargetPrefix: TargetPrefix,
		ContentType:  awsproto.JSON10,
		Namespace:    "com.amazonaws.sqs",
		ParamCode:    "InvalidParameterValue",
		MaxBody:      maxJSONBody,
		Operations:   make(map[string]awsproto.JSONOperation, len(ops)),
		MapError:     jsonError,
	}
	h.query = &awsproto.QueryService{
		Version:    version,
		Namespace:  awsproto.NSSQS,
		ParamCode:  "InvalidParameterValue",
		Operations: make(map[string]awsproto.QueryOperation, len(ops)),
		MapError:   queryError,
	}
	for name, o := range ops {
		h.json.Operations[name] = func(r *awsproto.JSONRequest) (any, error) {
			out, err := o.fromJSON(h, callOf(r.HTTP), r.Body)
			if err != nil {
				return nil, err
			}
			return out.jsonBody(), nil
		}
		h.query.Operations[name] = func(r *awsproto.QueryRequest) (any, error) {
			out, err := o.fromQuery(h, callOf(r.HTTP), r.Params)
			if err != nil {
				return nil, err
			}
			return out.xmlResult(), nil
		}
	}
	return h
}

// Protocol is one of SQS's two protocols as the router registers it: it
// serves requests and writes the errors of faults injected before them.
type Protocol interface {
	http.Handler
	WriteError(w http.ResponseWriter, requestID string, e *awsproto.Error)
}

// JSON returns SQS's awsJson1_0 side (requests with X-Amz-Target).
func (h *Handler) JSON() Protocol { return jsonSide{h.json} }

// Query returns SQS's awsquery side (Action and Version in a form).
func (h *Handler) Query() Protocol { return h.query }

// ServeHTTP serves one SQS request: JSON when it carries X-Amz-Target,
// query otherwise.
func (h *Handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Amz-Target") != "" {
		h.json.ServeHTTP(rw, r)
		return
	}
	h.query.ServeHTTP(rw, r)
}

// jsonSide writes an injected fault's error with its code also as the
// query-compatible code (x-amzn-query-error), so that a client reports
// the same code whichever protocol it speaks.
type jsonSide struct{ *awsproto.JSONService }

func (s jsonSide) WriteError(w http.ResponseWriter, requestID string, e *awsproto.Error) {
	je := *e
	if je.QueryCode == "" {
		je.QueryCode = e.Code
	}
	s.JSONService.WriteError(w, requestID, &je)
}

// call is what every operation sees of its request.
type call struct {
	ctx  context.Context
	base string // scheme://host of the request, for queue URLs
	path string // the request path: query clients may name the queue there
}

// output is an operation's result in both encodings.
type output interface {
	// jsonBody returns the value to marshal as the JSON body.
	jsonBody() any
	// xmlResult returns the <OpResult> content, or awsproto.NoOutput{}.
	xmlResult() any
}

// operation serves one SQS operation from either protocol.
type operation interface {
	fromJSON(h *Handler, c call, body []byte) (output, error)
	fromQuery(h *Handler, c call, p awsproto.Params) (output, error)
}

// op is an operation whose input In is decoded from JSON by encoding/json
// (In's field names are the JSON member names) or from the query form by
// query.
type op[In any] struct {
	query func(awsproto.Params) (In, error)
	run   func(*Handler, call, In) (output, error)
}

func (o op[In]) fromJSON(h *Handler, c call, body []byte) (output, error) {
	var in In
	if err := awsproto.DecodeJSON(body, &in); err != nil {
		return nil, err // a SerializationException
	}
	return o.run(h, c, in)
}

func (o op[In]) fromQuery(h *Handler, c call, p awsproto.Params) (output, error) {
	in, err := o.query(p)
	if err != nil {
		return nil, err
	}
	return o.run(h, c, in)
}

var ops = map[string]operation{
	"CreateQueue":                  op[createQueueIn]{createQueueQuery, (*Handler).createQueue},
	"GetQueueUrl":                  op[getQueueURLIn]{getQueueURLQuery, (*Handler).getQueueURL},
	"ListQueues":                   op[listQueuesIn]{listQueuesQuery, (*Handler).listQueues},
	"DeleteQueue":                  op[queueIn]{queueQuery, (*Handler).deleteQueue},
	"GetQueueAttributes":           op[getQueueAttributesIn]{getQueueAttributesQuery, (*Handler).getQueueAttributes},
	"SetQueueAttributes":           op[setQueueAttributesIn]{setQueueAttributesQuery, (*Handler).setQueueAttributes},
	"TagQueue":                     op[tagQueueIn]{tagQueueQuery, (*Handler).tagQueue},
	"UntagQueue":                   op[untagQueueIn]{untagQueueQuery, (*Handler).untagQueue},
	"ListQueueTags":                op[queueIn]{queueQuery, (*Handler).listQueueTags},
	"PurgeQueue":                   op[queueIn]{queueQuery, (*Handler).purgeQueue},
	"ListDeadLetterSourceQueues":   op[listDLQSourcesIn]{listDLQSourcesQuery, (*Handler).listDeadLetterSourceQueues},
	"SendMessage":                  op[sendMessageIn]{sendMessageQuery, (*Handler).sendMessage},
	"SendMessageBatch":             op[sendMessageBatchIn]{sendMessageBatchQuery, (*Handler).sendMessageBatch},
	"ReceiveMessage":               op[receiveMessageIn]{receiveMessageQuery, (*Handler).receiveMessage},
	"DeleteMessage":                op[receiptIn]{receiptQuery, (*Handler).deleteMessage},
	"DeleteMessageBatch":           op[receiptBatchIn]{deleteBatchQuery, (*Handler).deleteMessageBatch},
	"ChangeMessageVisibility":      op[receiptIn]{receiptQuery, (*Handler).changeMessageVisibility},
	"ChangeMessageVisibilityBatch": op[receiptBatchIn]{changeVisibilityBatchQuery, (*Handler).changeMessageVisibilityBatch},
}

// callOf is what an operation sees of its HTTP request.
func callOf(r *http.Request) call {
	return call{ctx: r.Context(), base: baseURL(r), path: r.URL.Path}
}

// jsonTypes maps SQS's query error codes, which the broker uses, to the
// JSON protocol's error shape names where they differ by more than the
// AWS.SimpleQueueService. prefix.
var jsonTypes = map[string]string{
	messaging.SQSNonExistentQueue: "QueueDoesNotExist",
	"QueueAlreadyExists":          "QueueNameExists",
}

// jsonType returns the JSON error shape name of a query error code.
func jsonType(code string) string {
	if t, ok := jsonTypes[code]; ok {
		return t
	}
	return strings.TrimPrefix(code, "AWS.SimpleQueueService.")
}

// jsonError gives one of SQS's own errors its JSON shape name, with the
// query code in x-amzn-query-error (the SDK reports that code).
func jsonError(e *awsproto.Error) *awsproto.Error {
	je := *e
	je.Code, je.QueryCode = jsonType(e.Code), e.Code
	return &je
}

// queryError words NonExistentQueue as SQS's query protocol does.
func queryError(e *awsproto.Error) *awsproto.Error {
	if e.Code != messaging.SQSNonExistentQueue {
		return e
	}
	qe := *e
	qe.Message = "The specified queue does not exist for this wsdl version."
	return &qe
}

// Queue URLs ------------------------------------------------------------------

// baseURL is the scheme and host the client reached us on: queue URLs
// point back to it, so a URL an instance gets through its own port works
// wherever it is used.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		host = "localhost"
	}
	return scheme + "://" + host
}

func (h *Handler) queueURL(c call, name string) string {
	return c.base + "/" + h.q.Account() + "/" + name
}

// queueName resolves a queue URL to the queue's name: its last path
// segment, whatever the host. Query clients may instead post to the
// queue's own path with no QueueUrl parameter.
func (c call) queueName(queueURL string) (string, error) {
	if queueURL == "" && c.path != "" && c.path != "/" {
		queueURL = c.path
	}
	if queueURL == "" {
		return "", missing("QueueUrl")
	}
	path := queueURL
	if u, err := url.Parse(queueURL); err == nil && u.Path != "" {
		path = u.Path
	}
	path = strings.TrimRight(path, "/")
	name := path[strings.LastIndexByte(path, '/')+1:]
	if name == "" {
		return "", awsproto.Errorf(messaging.SQSNonExistentQueue, "The specified queue does not exist.")
	}
	return name, nil
}

func missing(param string) error {
	return awsproto.Errorf("MissingParameter", "The request must contain the parameter %s.", param)
}

func invalidValue(param string, value any, reason string) error {
	return awsproto.Errorf("InvalidParameterValue", "Value %v for parameter %s is invalid. Reason: %s", value, param, reason)
}

// Simple outputs ---------------------------------------------------------------

// noOutput is the result of an operation without an output shape.
type noOutput struct{}

func (noOutput) jsonBody() any  { return nil }
func (noOutput) xmlResult() any { return awsproto.NoOutput{} }

// same is an output whose JSON and XML forms are one struct.
type same struct{ v any }

func (s same) jsonBody() any  { return s.v }
func (s same) xmlResult() any { return s.v }
