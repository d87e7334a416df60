// Package dynamodb serves the DynamoDB API (awsJson1_0, X-Amz-Target
// DynamoDB_20120810.<Op>) over the sandbox's tables owner. It is a
// stateless translator: it decodes the JSON request, calls *tables.Tables
// and encodes the answer with the member names of the DynamoDB API model.
// Every response carries X-Amz-Crc32, the CRC32 (IEEE) of its body, which
// the Go SDK checks.
//
// It is written from the API model's member names and the wire
// documentation, never from the SDK's generated code, so the sandbox and
// the client under test cannot share a misunderstanding.
package dynamodb

import (
	"errors"
	"net/http"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/tables"
)

// TargetPrefix is the X-Amz-Target prefix of the DynamoDB API.
const TargetPrefix = "DynamoDB_20120810"

// nsValidation is the __type namespace of DynamoDB's ValidationException,
// raised by AWS's validation framework rather than by the service.
const nsValidation = "com.amazon.coral.validate"

// maxBody bounds a request body (an item is at most 400 KB; a request
// carries a few).
const maxBody = 4 << 20

// Handler is the DynamoDB endpoint. It is safe for concurrent use; all
// state lives in the tables owner.
type Handler struct {
	t   *tables.Tables
	svc *awsproto.JSONService
}

// request is one call: its operation and its JSON body.
type request = *awsproto.JSONRequest

type op func(*Handler, request) (any, error)

// ops is every operation the sandbox serves.
var ops = map[string]op{
	"CreateTable":        (*Handler).createTable,
	"DescribeTable":      (*Handler).describeTable,
	"ListTables":         (*Handler).listTables,
	"DeleteTable":        (*Handler).deleteTable,
	"UpdateTimeToLive":   (*Handler).updateTimeToLive,
	"DescribeTimeToLive": (*Handler).describeTimeToLive,
	"GetItem":            (*Handler).getItem,
	"PutItem":            (*Handler).putItem,
	"UpdateItem":         (*Handler).updateItem,
	"DeleteItem":         (*Handler).deleteItem,
	"Query":              (*Handler).query,
}

// New returns the DynamoDB endpoint over t.
func New(t *tables.Tables) *Handler {
	h := &Handler{t: t}
	h.svc = &awsproto.JSONService{
		TargetPrefix: TargetPrefix,
		ContentType:  awsproto.JSON10,
		Namespace:    "com.amazonaws.dynamodb.v20120810",
		MaxBody:      maxBody,
		CRC32:        true,
		Operations:   make(map[string]awsproto.JSONOperation, len(ops)),
	}
	for name, run := range ops {
		h.svc.Operations[name] = func(r request) (any, error) {
			out, err := run(h, r)
			return out, wireError(err)
		}
	}
	return h
}

// ServeHTTP serves one awsJson1_0 request.
func (h *Handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) { h.svc.ServeHTTP(rw, r) }

// WriteError writes e as DynamoDB's awsJson1_0 error, with X-Amz-Crc32
// (for faults the router injects).
func (h *Handler) WriteError(rw http.ResponseWriter, requestID string, e *awsproto.Error) {
	h.svc.WriteError(rw, requestID, e)
}

// wireError turns the owner's errors into wire errors: a ValidationException
// in the validation framework's namespace, a failed condition with the item
// as it was.
func wireError(err error) error {
	var te *tables.Error
	if !errors.As(err, &te) {
		return err
	}
	e := &awsproto.Error{Code: te.Code, Message: te.Message}
	if te.Code == tables.CodeValidation {
		e.Namespace = nsValidation
	}
	if te.Item != nil {
		e.Fields = map[string]any{"Item": encodeItem(te.Item)}
	}
	return e
}

func serialization(msg string) *awsproto.Error {
	return awsproto.Serialization("%s", msg)
}

func validation(msg string) *tables.Error {
	return &tables.Error{Code: tables.CodeValidation, Message: msg}
}

// required is AWS's message for a missing required member.
func required(member string) error {
	return validation("1 validation error detected: Value null at '" + member + "' failed to satisfy constraint: Member must not be null")
}

// notModelled fails loudly on a request member the sandbox does not model.
func notModelled(op string, members map[string]bool) error {
	for _, m := range sortedTrue(members) {
		return validation("The lifeguard sandbox does not model " + m + " in " + op + "; leave it out (the sandbox's DynamoDB section lists what it serves).")
	}
	return nil
}

func sortedTrue(m map[string]bool) []string {
	var out []string
	for k, v := range m {
		if v {
			out = append(out, k)
		}
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
