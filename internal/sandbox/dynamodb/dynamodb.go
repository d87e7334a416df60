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
	"bytes"
	"encoding/json"
	"errors"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/tables"
)

// TargetPrefix is the X-Amz-Target prefix of the DynamoDB API.
const TargetPrefix = "DynamoDB_20120810"

// Error type namespaces: the service's own errors, the validation
// framework's and the service framework's (unknown operation, undecodable
// body).
const (
	nsService    = "com.amazonaws.dynamodb.v20120810"
	nsValidation = "com.amazon.coral.validate"
	nsCoral      = "com.amazon.coral.service"
)

// maxBody bounds a request body (an item is at most 400 KB; a request
// carries a few).
const maxBody = 4 << 20

// Handler is the DynamoDB endpoint. It is safe for concurrent use; all
// state lives in the tables owner.
type Handler struct {
	t *tables.Tables
}

// New returns the DynamoDB endpoint over t.
func New(t *tables.Tables) http.Handler { return &Handler{t: t} }

type op func(*Handler, []byte) (any, error)

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

// ServeHTTP serves one awsJson1_0 request.
func (h *Handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	reqID := awsproto.NewRequestID()
	target := r.Header.Get("X-Amz-Target")
	prefix, name, _ := strings.Cut(target, ".")
	serve, ok := ops[name]
	if prefix != TargetPrefix || !ok {
		writeError(rw, reqID, unknownOperation(target))
		return
	}
	if r.Method != http.MethodPost {
		writeError(rw, reqID, &tables.Error{Code: "UnknownOperationException", Message: "DynamoDB operations take POST, not " + r.Method + "."})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxBody))
	if err != nil {
		writeError(rw, reqID, serialization("the request body could not be read: "+err.Error()))
		return
	}
	result, err := serve(h, body)
	if err != nil {
		writeError(rw, reqID, err)
		return
	}
	out, err := json.Marshal(result)
	if err != nil {
		writeError(rw, reqID, &tables.Error{Code: "InternalFailure", Message: err.Error()})
		return
	}
	writeBody(rw, http.StatusOK, reqID, out)
}

// writeBody writes a response with the checksum the SDK validates.
func writeBody(rw http.ResponseWriter, status int, reqID string, body []byte) {
	hd := rw.Header()
	hd.Set("Content-Type", awsproto.JSON10)
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	hd.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	hd.Set("x-amzn-RequestId", reqID)
	rw.WriteHeader(status)
	_, _ = rw.Write(body)
}

func writeError(rw http.ResponseWriter, reqID string, err error) {
	var te *tables.Error
	if !errors.As(err, &te) {
		te = &tables.Error{Code: "InternalFailure", Message: err.Error()}
	}
	ns := nsService
	status := http.StatusBadRequest
	switch te.Code {
	case tables.CodeValidation:
		ns = nsValidation
	case "UnknownOperationException", "SerializationException":
		ns = nsCoral
	case "InternalFailure":
		ns, status = nsCoral, http.StatusInternalServerError
	}
	body := map[string]any{"__type": ns + "#" + te.Code, "message": te.Message}
	if te.Item != nil {
		body["Item"] = encodeItem(te.Item)
	}
	out, _ := json.Marshal(body)
	writeBody(rw, status, reqID, out)
}

func unknownOperation(target string) *tables.Error {
	if target == "" {
		return &tables.Error{Code: "UnknownOperationException", Message: "The request has no X-Amz-Target header; DynamoDB takes DynamoDB_20120810.<Operation>."}
	}
	return &tables.Error{Code: "UnknownOperationException", Message: "The lifeguard sandbox does not serve " + target + "."}
}

func serialization(msg string) *tables.Error {
	return &tables.Error{Code: "SerializationException", Message: msg}
}

func validation(msg string) *tables.Error {
	return &tables.Error{Code: tables.CodeValidation, Message: msg}
}

// decode reads a request body into v; an empty body is an empty object.
func decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return serialization("Unexpected value for member " + te.Field + ": expected " + te.Type.String() + ".")
		}
		return serialization("The request body is not valid JSON: " + err.Error())
	}
	return nil
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
