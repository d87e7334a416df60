package awsproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"hash/crc32"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// Content types of the JSON protocols.
const (
	JSON10 = "application/x-amz-json-1.0"
	JSON11 = "application/x-amz-json-1.1"
)

// defaultMaxJSONBody bounds a JSON request when the service sets no
// bound of its own.
const defaultMaxJSONBody = 1 << 20

// JSONService serves one awsJson1_0 or awsJson1_1 API: it routes a POST by
// its X-Amz-Target header ("<TargetPrefix>.<Operation>") to the operation
// of that name, hands it the body, and writes the operation's result as
// JSON, or its error as {"__type": "<namespace>#<Code>", "message": …}.
// A target it does not serve answers UnknownOperationException; a body
// that is too large or does not decode answers SerializationException.
//
// Declare one per service, with its operations, and serve it:
//
//	svc := &awsproto.JSONService{
//		TargetPrefix: "DynamoDB_20120810",
//		ContentType:  awsproto.JSON10,
//		Namespace:    "com.amazonaws.dynamodb.v20120810",
//		CRC32:        true,
//		Operations: map[string]awsproto.JSONOperation{
//			"GetItem": awsproto.JSONOp(h.getItem), // func(*awsproto.JSONRequest, getItemIn) (any, error)
//		},
//	}
//
// A JSONService is safe for concurrent use once its fields are set; they
// must not change while it serves.
type JSONService struct {
	// TargetPrefix is the service part of X-Amz-Target: "AWSEvents",
	// "AmazonSQS", "DynamoDB_20120810".
	TargetPrefix string
	// ContentType is JSON10 or JSON11; every response carries it.
	ContentType string
	// Namespace is the __type namespace of the service's own errors
	// ("com.amazonaws.eventbridge"); an Error with a Namespace of its own
	// keeps it.
	Namespace string
	// ParamCode is the code a ParamError becomes ("ValidationException"
	// when empty).
	ParamCode string
	// MaxBody bounds a request body in bytes (1 MiB when zero).
	MaxBody int64
	// CRC32 adds X-Amz-Crc32 (the decimal CRC32-IEEE of the body) to every
	// response, as DynamoDB does; its client checks it.
	CRC32 bool
	// Operations maps an operation name to its handler.
	Operations map[string]JSONOperation
	// MapError, when set, rewrites the service's own errors (those without
	// a Namespace) before they are written: SQS uses it to send its JSON
	// shape names with the query-compatible code in QueryCode.
	MapError func(*Error) *Error
}

// JSONOperation serves one operation. It returns the value to marshal as
// the response body (nil writes {}) or an error, usually an *Error; any
// other error is a 500 InternalFailure.
type JSONOperation func(*JSONRequest) (any, error)

// JSONRequest is one awsJson call as an operation sees it.
type JSONRequest struct {
	// Operation is the operation's name ("PutItem").
	Operation string
	// Body is the request body, read in full.
	Body []byte
	// HTTP is the request itself, for its context and Host; its body has
	// been read.
	HTTP *http.Request
}

// JSONOp returns an operation whose input is decoded into In with
// encoding/json (In's field names are the API's member names) before run
// is called. An empty body decodes as In's zero value; a body that is not
// JSON, or has a member of the wrong type, answers SerializationException
// naming the member.
func JSONOp[In any](run func(*JSONRequest, In) (any, error)) JSONOperation {
	return func(r *JSONRequest) (any, error) {
		var in In
		if err := DecodeJSON(r.Body, &in); err != nil {
			return nil, err
		}
		return run(r, in)
	}
}

// DecodeJSON decodes an awsJson body into v. An empty body leaves v as it
// is; a body that does not decode is a SerializationException in AWS's
// wording ("STRING_VALUE can not be converted to an Integer", "Start of
// list found where not expected"), naming the member, never a Go type.
func DecodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			msg := mismatch(te)
			if path := memberPath(reflect.TypeOf(v), te.Field); path != "" {
				msg += " (member " + path + ")"
			}
			return Serialization("%s", msg)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return Serialization("The request body is not valid JSON (at byte %d).", se.Offset)
		}
		return Serialization("The request body is not valid JSON.")
	}
	return nil
}

// memberPath is the member path of a decoding error's field ("Entries.Id")
// without the names of embedded Go structs, which encoding/json puts in
// it but which no client ever sent.
func memberPath(t reflect.Type, field string) string {
	if field == "" {
		return ""
	}
	var out []string
	for _, seg := range strings.Split(field, ".") {
		for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map) {
			t = t.Elem()
		}
		if t != nil && t.Kind() == reflect.Struct {
			if f, ok := t.FieldByName(seg); ok && f.Anonymous && f.Tag.Get("json") == "" {
				t = f.Type
				continue // an embedded struct: its members are the parent's
			}
			if f, ok := jsonField(t, seg); ok {
				t = f.Type
			} else {
				t = nil
			}
		} else {
			t = nil
		}
		out = append(out, seg)
	}
	return strings.Join(out, ".")
}

// jsonField finds the field of t, embedded ones included, that a JSON
// member name decodes into.
func jsonField(t reflect.Type, name string) (reflect.StructField, bool) {
	return t.FieldByNameFunc(func(n string) bool {
		f, _ := t.FieldByName(n)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag != "" {
			return tag == name
		}
		return n == name
	})
}

// mismatch words a JSON value of the wrong type as AWS's JSON protocols do.
func mismatch(te *json.UnmarshalTypeError) string {
	value, _, _ := strings.Cut(te.Value, " ") // "number 1.5" → "number"
	switch value {
	case "array":
		return "Start of list found where not expected"
	case "object":
		return "Start of structure or map found where not expected"
	case "string":
		value = "STRING_VALUE"
	case "number":
		value = "NUMBER_VALUE"
	case "bool":
		value = "BOOLEAN_VALUE"
	default:
		value = strings.ToUpper(value) + "_VALUE"
	}
	return value + " can not be converted to " + wireType(te.Type)
}

// wireType names a Go type by the API shape it stands for.
func wireType(t reflect.Type) string {
	if t == nil {
		return "the member's type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a String"
	case reflect.Bool:
		return "a Boolean"
	case reflect.Int64, reflect.Uint64:
		return "a Long"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return "an Integer"
	case reflect.Float32, reflect.Float64:
		return "a Double"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a Blob"
		}
		return "a List"
	case reflect.Map:
		return "a Map"
	case reflect.Pointer:
		return wireType(t.Elem())
	}
	return "a Structure"
}

// ReadError is the SerializationException for a request body that could
// not be read: too large for the service's bound, or cut short.
func ReadError(err error, limit int64) *Error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return Serialization("The request body is larger than the %d bytes this API accepts.", limit)
	}
	return Serialization("The request body could not be read in full.")
}

// ServeHTTP serves one awsJson request.
func (s *JSONService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := NewRequestID()
	target := r.Header.Get("X-Amz-Target")
	prefix, name, _ := strings.Cut(target, ".")
	op, ok := s.Operations[name]
	switch {
	case target == "":
		s.WriteError(w, reqID, &Error{Code: "UnknownOperationException", Message: "The request has no X-Amz-Target header; this API takes " + s.TargetPrefix + ".<Operation>.", Namespace: NSCoral})
		return
	case prefix != s.TargetPrefix || !ok:
		s.WriteError(w, reqID, &Error{Code: "UnknownOperationException", Message: "The lifeguard sandbox does not serve operation " + target + ".", Namespace: NSCoral})
		return
	case r.Method != http.MethodPost:
		s.WriteError(w, reqID, &Error{Code: "UnknownOperationException", Message: s.TargetPrefix + " operations take POST, not " + r.Method + ".", Namespace: NSCoral})
		return
	}
	limit := s.MaxBody
	if limit <= 0 {
		limit = defaultMaxJSONBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		s.WriteError(w, reqID, ReadError(err, limit))
		return
	}
	out, err := op(&JSONRequest{Operation: name, Body: body, HTTP: r})
	if err != nil {
		code := s.ParamCode
		if code == "" {
			code = "ValidationException"
		}
		e := AsError(err, code)
		if e.Namespace == "" && s.MapError != nil {
			e = s.MapError(e)
		}
		s.WriteError(w, reqID, e)
		return
	}
	writeJSON(w, s.ContentType, reqID, out, s.CRC32)
}

// WriteError writes e as this service's error response. The router uses
// it for faults injected before a request reaches its operation.
func (s *JSONService) WriteError(w http.ResponseWriter, requestID string, e *Error) {
	writeJSONError(w, s.Namespace, s.ContentType, requestID, e, s.CRC32)
}

// WriteJSON writes an awsJson success response (200). A nil v writes {}.
func WriteJSON(w http.ResponseWriter, contentType, requestID string, v any) {
	writeJSON(w, contentType, requestID, v, false)
}

func writeJSON(w http.ResponseWriter, contentType, requestID string, v any, crc bool) {
	body := []byte("{}")
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			writeJSONError(w, NSCoral, contentType, requestID, Internal(err), crc)
			return
		}
		body = b
	}
	writeJSONBody(w, http.StatusOK, contentType, requestID, body, crc)
}

func writeJSONBody(w http.ResponseWriter, status int, contentType, requestID string, body []byte, crc bool) {
	if crc {
		w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	}
	writeBody(w, status, contentType, requestID, body)
}
