package awsproto

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
)

// Error is an AWS API error as it goes on the wire.
type Error struct {
	Code    string
	Message string
	// Status is the HTTP status; 400 when zero.
	Status int
	// Receiver marks a server-side fault (Type Receiver); Sender otherwise.
	Receiver bool
	// QueryCode, for awsJson services with a query-compatible code (SQS),
	// is sent in the x-amzn-query-error header.
	QueryCode string
	// Namespace, for awsJson, is the namespace of the error's __type when
	// it is not the service's own: NSCoral for the protocol layer's errors
	// (UnknownOperationException, SerializationException, InternalFailure),
	// "com.amazon.coral.validate" for DynamoDB's ValidationException.
	Namespace string
	// Fields, for awsJson, are further members of the error body besides
	// __type and message (DynamoDB's Item, CancellationReasons).
	Fields map[string]any
}

// NSCoral is the __type namespace of errors raised by AWS's request
// framework rather than by a service.
const NSCoral = "com.amazon.coral.service"

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// HTTPStatus returns the status to send.
func (e *Error) HTTPStatus() int {
	if e.Status == 0 {
		return http.StatusBadRequest
	}
	return e.Status
}

// Errorf returns a 400 Sender error with the given code and message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Validation returns Auto Scaling's ValidationError.
func Validation(format string, args ...any) *Error {
	return Errorf("ValidationError", format, args...)
}

// Internal wraps an unexpected failure as a 500 InternalFailure.
func Internal(err error) *Error {
	return &Error{Code: "InternalFailure", Message: err.Error(), Status: http.StatusInternalServerError, Receiver: true, Namespace: NSCoral}
}

// Serialization is awsJson's SerializationException: a request body that
// cannot be read or decoded.
func Serialization(format string, args ...any) *Error {
	return &Error{Code: "SerializationException", Message: fmt.Sprintf(format, args...), Namespace: NSCoral}
}

// InvalidAction is what an awsquery service answers for an operation it
// does not know (or the sandbox does not model).
func InvalidAction(action, version string) *Error {
	if action == "" {
		return Errorf("MissingAction", "The request must contain the parameter Action.")
	}
	return Errorf("InvalidAction", "Could not find operation %s for version %s", action, version)
}

// AsError turns any error into an *Error: AWS errors pass through, a
// ParamError becomes ValidationError (or the given code), the rest are 500.
func AsError(err error, paramCode string) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var pe *ParamError
	if errors.As(err, &pe) {
		return Errorf(paramCode, "Invalid value %q for parameter %s: must be %s.", pe.Value, pe.Name, pe.Want)
	}
	return Internal(err)
}

func (e *Error) faultType() string {
	if e.Receiver {
		return "Receiver"
	}
	return "Sender"
}

// WriteQueryError writes the awsquery <ErrorResponse>.
func WriteQueryError(w http.ResponseWriter, ns, requestID string, e *Error) {
	type errElem struct {
		Type    string    `xml:"Type"`
		Code    string    `xml:"Code"`
		Message string    `xml:"Message"`
		Detail  *struct{} `xml:"Detail"`
	}
	type envelope struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		NS        string   `xml:"xmlns,attr"`
		Error     errElem  `xml:"Error"`
		RequestID string   `xml:"RequestId"`
	}
	el := errElem{Type: e.faultType(), Code: e.Code, Message: e.Message}
	if ns == NSSQS {
		el.Detail = &struct{}{} // SQS's query errors carry an empty <Detail/>
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	_ = xml.NewEncoder(&buf).Encode(envelope{NS: ns, Error: el, RequestID: requestID})
	writeBody(w, e.HTTPStatus(), "text/xml", requestID, buf.Bytes())
}

// WriteEC2Error writes EC2's <Response><Errors>… envelope (RequestID with a
// capital D).
func WriteEC2Error(w http.ResponseWriter, requestID string, e *Error) {
	type errElem struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	type envelope struct {
		XMLName   xml.Name  `xml:"Response"`
		Errors    []errElem `xml:"Errors>Error"`
		RequestID string    `xml:"RequestID"`
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	_ = xml.NewEncoder(&buf).Encode(envelope{Errors: []errElem{{e.Code, e.Message}}, RequestID: requestID})
	writeBody(w, e.HTTPStatus(), "text/xml;charset=UTF-8", requestID, buf.Bytes())
}

// WriteJSONError writes an awsJson error: {"__type": "<ns>#<Code>",
// "message": …} plus the error's Fields, with the x-amzn-query-error header
// when the error has a query-compatible code. The namespace is the error's
// own when it has one, else typeNamespace.
func WriteJSONError(w http.ResponseWriter, typeNamespace, contentType, requestID string, e *Error) {
	writeJSONError(w, typeNamespace, contentType, requestID, e, false)
}

func writeJSONError(w http.ResponseWriter, typeNamespace, contentType, requestID string, e *Error, crc bool) {
	if e.QueryCode != "" {
		w.Header().Set("x-amzn-query-error", e.QueryCode+";"+e.faultType())
	}
	if e.Namespace != "" {
		typeNamespace = e.Namespace
	}
	var body []byte
	if len(e.Fields) == 0 {
		body, _ = json.Marshal(map[string]string{"__type": typeNamespace + "#" + e.Code, "message": e.Message})
	} else {
		m := make(map[string]any, len(e.Fields)+2)
		for k, v := range e.Fields {
			m[k] = v
		}
		m["__type"], m["message"] = typeNamespace+"#"+e.Code, e.Message
		var err error
		if body, err = json.Marshal(m); err != nil {
			body, _ = json.Marshal(map[string]string{"__type": NSCoral + "#InternalFailure", "message": err.Error()})
		}
	}
	writeJSONBody(w, e.HTTPStatus(), contentType, requestID, body, crc)
}
