// Package lambda serves AWS Lambda's API (restJson1) from the sandbox's
// functions owner: functions created from zips whose bootstrap runs as a
// local process, their configuration, resource policies and reserved
// concurrency, and Invoke. It is a stateless translator from the wire to
// package functions.
//
// Requests are recognised by their path: /2015-03-31/ (functions,
// invocations, policies), /2017-10-31/ and /2019-09-30/ (concurrency),
// /2017-03-31/tags/. Errors are JSON bodies {"Type", "Message"} with the
// code in the X-Amzn-ErrorType header, as Lambda sends them.
package lambda

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/functions"
)

// PathPrefixes are the path prefixes of Lambda's operations, for the
// router.
var PathPrefixes = []string{"/2015-03-31/", "/2017-10-31/", "/2019-09-30/", "/2017-03-31/tags/"}

// maxBody bounds a request body: a 50 MB zip, base64-encoded, in JSON.
const maxBody = 70 * 1024 * 1024

// Handler serves the Lambda API.
type Handler struct {
	f *functions.Functions
	// Endpoint returns the sandbox's endpoint, for GetFunction's code
	// location.
	Endpoint func() string
}

// New returns a handler serving f.
func New(f *functions.Functions, endpoint func() string) *Handler {
	return &Handler{f: f, Endpoint: endpoint}
}

type request struct {
	*http.Request
	id   string
	name string   // the function, from the path
	rest []string // path segments after the function's name
}

// route is one operation: its method, path shape and handler.
type route struct {
	method, version string
	sub             string // "" (the function), "code", "configuration", "invocations", "policy", "policy/*", "concurrency"
	run             func(*Handler, http.ResponseWriter, *request) error
}

var routes = []route{
	{"GET", "2015-03-31", "", (*Handler).getFunction},
	{"DELETE", "2015-03-31", "", (*Handler).deleteFunction},
	{"GET", "2015-03-31", "configuration", (*Handler).getConfiguration},
	{"PUT", "2015-03-31", "configuration", (*Handler).updateConfiguration},
	{"PUT", "2015-03-31", "code", (*Handler).updateCode},
	{"POST", "2015-03-31", "invocations", (*Handler).invoke},
	{"POST", "2015-03-31", "policy", (*Handler).addPermission},
	{"GET", "2015-03-31", "policy", (*Handler).getPolicy},
	{"DELETE", "2015-03-31", "policy/*", (*Handler).removePermission},
	{"PUT", "2017-10-31", "concurrency", (*Handler).putConcurrency},
	{"DELETE", "2017-10-31", "concurrency", (*Handler).deleteConcurrency},
	{"GET", "2019-09-30", "concurrency", (*Handler).getConcurrency},
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := &request{Request: r, id: awsproto.NewRequestID()}
	if err := h.dispatch(w, req); err != nil {
		h.WriteError(w, req.id, awsproto.AsError(err, "InvalidParameterValueException"))
	}
}

func (h *Handler) dispatch(w http.ResponseWriter, r *request) error {
	segs := strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/")
	for i, s := range segs {
		if u, err := url.PathUnescape(s); err == nil {
			segs[i] = u
		}
	}
	unknown := &awsproto.Error{Code: "UnknownOperationException", Status: http.StatusNotFound,
		Message: fmt.Sprintf("The lifeguard sandbox's Lambda does not serve %s %s.", r.Method, r.URL.Path)}
	if len(segs) < 2 {
		return unknown
	}
	version := segs[0]
	if version == "2017-03-31" && segs[1] == "tags" && len(segs) == 3 {
		return h.tags(w, r, segs[2])
	}
	if segs[1] != "functions" {
		return unknown
	}
	if len(segs) == 2 && version == "2015-03-31" {
		switch r.Method {
		case http.MethodPost:
			return h.createFunction(w, r)
		case http.MethodGet:
			return h.listFunctions(w, r)
		}
		return unknown
	}
	if len(segs) < 3 {
		return unknown
	}
	r.rest = segs[3:]
	sub := strings.Join(r.rest, "/")
	if len(r.rest) == 2 && r.rest[0] == "policy" {
		sub = "policy/*"
	}
	for _, rt := range routes {
		if rt.method == r.Method && rt.version == version && rt.sub == sub {
			name, err := h.f.ParseName(segs[2], r.URL.Query().Get("Qualifier"))
			if err != nil {
				return err
			}
			r.name = name
			return rt.run(h, w, r)
		}
	}
	return unknown
}

// WriteError writes a Lambda error: the code in X-Amzn-ErrorType, a body
// with Type (User or Service) and Message, and any further fields.
func (h *Handler) WriteError(w http.ResponseWriter, requestID string, e *awsproto.Error) {
	body := map[string]any{"Type": "User", "Message": e.Message}
	if e.Receiver || e.HTTPStatus() >= 500 {
		body["Type"] = "Service"
	}
	maps.Copy(body, e.Fields)
	b, _ := json.Marshal(body)
	w.Header().Set("X-Amzn-ErrorType", e.Code)
	writeBody(w, e.HTTPStatus(), requestID, b)
}

func writeBody(w http.ResponseWriter, status int, requestID string, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-RequestId", requestID)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeJSON(w http.ResponseWriter, status int, r *request, v any) error {
	if v == nil {
		w.Header().Set("X-Amzn-RequestId", r.id)
		w.WriteHeader(status)
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	writeBody(w, status, r.id, b)
	return nil
}

// decode reads a JSON request body into v.
func decode(r *request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return awsproto.Serialization("The request body could not be read: %v", err)
	}
	if len(body) > maxBody {
		return &awsproto.Error{Code: "RequestEntityTooLargeException", Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("Request must be smaller than %d bytes for the %s operation", maxBody, "CreateFunction")}
	}
	if err := awsproto.DecodeJSON(body, v); err != nil {
		e := awsproto.AsError(err, "InvalidParameterValueException")
		e.Namespace = ""
		return e
	}
	return nil
}

// Wire shapes -------------------------------------------------------------------

type environment struct {
	Variables map[string]string `json:"Variables"`
}

type configuration struct {
	FunctionName     string            `json:"FunctionName"`
	FunctionArn      string            `json:"FunctionArn"`
	Runtime          string            `json:"Runtime"`
	Role             string            `json:"Role"`
	Handler          string            `json:"Handler,omitempty"`
	CodeSize         int64             `json:"CodeSize"`
	Description      string            `json:"Description"`
	Timeout          int               `json:"Timeout"`
	MemorySize       int               `json:"MemorySize"`
	LastModified     string            `json:"LastModified"`
	CodeSha256       string            `json:"CodeSha256"`
	Version          string            `json:"Version"`
	Environment      *environment      `json:"Environment,omitempty"`
	TracingConfig    map[string]string `json:"TracingConfig"`
	RevisionID       string            `json:"RevisionId"`
	State            string            `json:"State"`
	LastUpdateStatus string            `json:"LastUpdateStatus"`
	PackageType      string            `json:"PackageType"`
	Architectures    []string          `json:"Architectures"`
	EphemeralStorage map[string]int    `json:"EphemeralStorage"`
	LoggingConfig    map[string]string `json:"LoggingConfig"`
	SnapStart        map[string]string `json:"SnapStart"`
}

func toWire(fn functions.Function) configuration {
	c := configuration{
		FunctionName: fn.Name, FunctionArn: fn.ARN, Runtime: fn.Runtime, Role: fn.Role, Handler: fn.Handler,
		CodeSize: fn.CodeSize, Description: fn.Description, Timeout: fn.Timeout, MemorySize: fn.MemorySize,
		LastModified: fn.LastModified.UTC().Format("2006-01-02T15:04:05.000+0000"), CodeSha256: fn.CodeSha256,
		Version: "$LATEST", TracingConfig: map[string]string{"Mode": "PassThrough"}, RevisionID: fn.RevisionID,
		State: "Active", LastUpdateStatus: "Successful", PackageType: "Zip", Architectures: []string{"x86_64"},
		EphemeralStorage: map[string]int{"Size": 512},
		LoggingConfig:    map[string]string{"LogFormat": "Text", "LogGroup": "/aws/lambda/" + fn.Name},
		SnapStart:        map[string]string{"ApplyOn": "None", "OptimizationStatus": "Off"},
	}
	if len(fn.Environment) > 0 {
		c.Environment = &environment{Variables: fn.Environment}
	}
	return c
}

// Functions ---------------------------------------------------------------------

type codeIn struct {
	ZipFile         []byte `json:"ZipFile"`
	S3Bucket        string `json:"S3Bucket"`
	S3Key           string `json:"S3Key"`
	ImageURI        string `json:"ImageUri"`
	S3ObjectVersion string `json:"S3ObjectVersion"`
}

func (c codeIn) check() error {
	if c.S3Bucket != "" || c.S3Key != "" || c.ImageURI != "" {
		return awsproto.Errorf("InvalidParameterValueException", "The lifeguard sandbox takes function code as Code.ZipFile only (no S3 object or container image): pass the zip's bytes.")
	}
	return nil
}

func (h *Handler) createFunction(w http.ResponseWriter, r *request) error {
	var in struct {
		FunctionName string            `json:"FunctionName"`
		Runtime      string            `json:"Runtime"`
		Role         string            `json:"Role"`
		Handler      string            `json:"Handler"`
		Description  string            `json:"Description"`
		Timeout      *int              `json:"Timeout"`
		MemorySize   *int              `json:"MemorySize"`
		Code         *codeIn           `json:"Code"`
		Environment  *environment      `json:"Environment"`
		Tags         map[string]string `json:"Tags"`
		PackageType  string            `json:"PackageType"`
		Publish      bool              `json:"Publish"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.PackageType == "Image" {
		return awsproto.Errorf("InvalidParameterValueException", "The lifeguard sandbox runs Zip functions only; PackageType Image is not supported.")
	}
	if in.Code == nil {
		return awsproto.Errorf("ValidationException", "1 validation error detected: Value null at 'code' failed to satisfy constraint: Member must not be null")
	}
	if err := in.Code.check(); err != nil {
		return err
	}
	var env map[string]string
	if in.Environment != nil {
		env = in.Environment.Variables
	}
	fn, err := h.f.Create(functions.CreateInput{
		Name: in.FunctionName, Runtime: in.Runtime, Role: in.Role, Handler: in.Handler, Description: in.Description,
		Timeout: in.Timeout, MemorySize: in.MemorySize, Environment: env, ZipFile: in.Code.ZipFile, Tags: in.Tags,
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, r, toWire(fn))
}

func (h *Handler) getFunction(w http.ResponseWriter, r *request) error {
	fn, err := h.f.Get(r.name)
	if err != nil {
		return err
	}
	out := map[string]any{
		"Configuration": toWire(fn),
		"Code":          map[string]string{"RepositoryType": "S3", "Location": h.Endpoint() + "/_sandbox/functions/" + url.PathEscape(fn.Name) + "/code"},
	}
	if len(fn.Tags) > 0 {
		out["Tags"] = fn.Tags
	}
	if fn.Reserved != nil {
		out["Concurrency"] = map[string]int{"ReservedConcurrentExecutions": *fn.Reserved}
	}
	return writeJSON(w, http.StatusOK, r, out)
}

func (h *Handler) getConfiguration(w http.ResponseWriter, r *request) error {
	fn, err := h.f.Get(r.name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, r, toWire(fn))
}

func (h *Handler) listFunctions(w http.ResponseWriter, r *request) error {
	q := r.URL.Query()
	limit := 50
	if s := q.Get("MaxItems"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			return awsproto.Errorf("ValidationException", "1 validation error detected: Value '%s' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 10000", s)
		}
		limit = min(n, 50)
	}
	all := h.f.List()
	start := 0
	if m := q.Get("Marker"); m != "" {
		start = slices.IndexFunc(all, func(fn functions.Function) bool { return fn.Name > m })
		if start < 0 {
			start = len(all)
		}
	}
	page := all[start:min(start+limit, len(all))]
	out := struct {
		Functions  []configuration `json:"Functions"`
		NextMarker string          `json:"NextMarker,omitempty"`
	}{Functions: []configuration{}}
	for _, fn := range page {
		out.Functions = append(out.Functions, toWire(fn))
	}
	if start+limit < len(all) {
		out.NextMarker = page[len(page)-1].Name
	}
	return writeJSON(w, http.StatusOK, r, out)
}

func (h *Handler) deleteFunction(w http.ResponseWriter, r *request) error {
	if err := h.f.Delete(r.name); err != nil {
		return err
	}
	return writeJSON(w, http.StatusNoContent, r, nil)
}

func (h *Handler) updateCode(w http.ResponseWriter, r *request) error {
	var in struct {
		codeIn
		DryRun  bool `json:"DryRun"`
		Publish bool `json:"Publish"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := in.check(); err != nil {
		return err
	}
	if in.DryRun {
		fn, err := h.f.Get(r.name)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, r, toWire(fn))
	}
	fn, err := h.f.UpdateCode(r.name, in.ZipFile)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, r, toWire(fn))
}

func (h *Handler) updateConfiguration(w http.ResponseWriter, r *request) error {
	var in struct {
		Runtime     *string      `json:"Runtime"`
		Role        *string      `json:"Role"`
		Handler     *string      `json:"Handler"`
		Description *string      `json:"Description"`
		Timeout     *int         `json:"Timeout"`
		MemorySize  *int         `json:"MemorySize"`
		Environment *environment `json:"Environment"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	ci := functions.ConfigInput{Runtime: in.Runtime, Role: in.Role, Handler: in.Handler, Description: in.Description, Timeout: in.Timeout, MemorySize: in.MemorySize}
	if in.Environment != nil {
		v := in.Environment.Variables
		if v == nil {
			v = map[string]string{}
		}
		ci.Environment = &v
	}
	fn, err := h.f.UpdateConfig(r.name, ci)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, r, toWire(fn))
}

// Invoke ------------------------------------------------------------------------

func (h *Handler) invoke(w http.ResponseWriter, r *request) error {
	payload, err := io.ReadAll(io.LimitReader(r.Body, 6*1024*1024+1))
	if err != nil {
		return awsproto.Serialization("The request body could not be read: %v", err)
	}
	logType := r.Header.Get("X-Amz-Log-Type")
	if logType != "" && logType != "None" && logType != "Tail" {
		return awsproto.Errorf("ValidationException", "1 validation error detected: Value '%s' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [None, Tail]", logType)
	}
	cc := r.Header.Get("X-Amz-Client-Context")
	if cc != "" {
		if _, err := base64.StdEncoding.DecodeString(cc); err != nil {
			return awsproto.Errorf("InvalidRequestContentException", "Client context must be a valid Base64-encoded JSON object.")
		}
	}
	out, err := h.f.Invoke(r.Context(), functions.InvokeInput{
		Name: r.name, Type: r.Header.Get("X-Amz-Invocation-Type"), Payload: payload, Tail: logType == "Tail", ClientContext: cc,
	})
	if err != nil {
		return err
	}
	hd := w.Header()
	hd.Set("X-Amzn-RequestId", out.RequestID)
	if out.Status != http.StatusOK {
		w.WriteHeader(out.Status)
		return nil
	}
	hd.Set("Content-Type", "application/json")
	hd.Set("X-Amz-Executed-Version", "$LATEST")
	if out.FunctionError != "" {
		hd.Set("X-Amz-Function-Error", out.FunctionError)
	}
	if out.LogResult != "" {
		hd.Set("X-Amz-Log-Result", out.LogResult)
	}
	hd.Set("Content-Length", strconv.Itoa(len(out.Payload)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.Payload)
	return nil
}

// Permissions and concurrency ---------------------------------------------------

func (h *Handler) addPermission(w http.ResponseWriter, r *request) error {
	var in struct {
		StatementID    string `json:"StatementId"`
		Action         string `json:"Action"`
		Principal      string `json:"Principal"`
		SourceArn      string `json:"SourceArn"`
		SourceAccount  string `json:"SourceAccount"`
		PrincipalOrgID string `json:"PrincipalOrgID"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	st, err := h.f.AddPermission(r.name, functions.Statement{
		Sid: in.StatementID, Action: in.Action, Principal: in.Principal,
		SourceARN: in.SourceArn, SourceAccount: in.SourceAccount, PrincipalOrgID: in.PrincipalOrgID,
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, r, map[string]string{"Statement": st})
}

func (h *Handler) getPolicy(w http.ResponseWriter, r *request) error {
	p, rev, err := h.f.Policy(r.name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, r, map[string]string{"Policy": p, "RevisionId": rev})
}

func (h *Handler) removePermission(w http.ResponseWriter, r *request) error {
	if err := h.f.RemovePermission(r.name, r.rest[1]); err != nil {
		return err
	}
	return writeJSON(w, http.StatusNoContent, r, nil)
}

func (h *Handler) putConcurrency(w http.ResponseWriter, r *request) error {
	var in struct {
		Reserved *int `json:"ReservedConcurrentExecutions"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Reserved == nil {
		return awsproto.Errorf("ValidationException", "1 validation error detected: Value null at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must not be null")
	}
	if err := h.f.SetConcurrency(r.name, in.Reserved); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, r, map[string]int{"ReservedConcurrentExecutions": *in.Reserved})
}

func (h *Handler) deleteConcurrency(w http.ResponseWriter, r *request) error {
	if err := h.f.SetConcurrency(r.name, nil); err != nil {
		return err
	}
	return writeJSON(w, http.StatusNoContent, r, nil)
}

func (h *Handler) getConcurrency(w http.ResponseWriter, r *request) error {
	fn, err := h.f.Get(r.name)
	if err != nil {
		return err
	}
	if fn.Reserved == nil {
		return writeJSON(w, http.StatusOK, r, map[string]any{})
	}
	return writeJSON(w, http.StatusOK, r, map[string]int{"ReservedConcurrentExecutions": *fn.Reserved})
}

// tags serves TagResource, UntagResource and ListTags for a function ARN.
func (h *Handler) tags(w http.ResponseWriter, r *request, resource string) error {
	name, err := h.f.ParseName(resource, "")
	if err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet:
		fn, err := h.f.Get(name)
		if err != nil {
			return err
		}
		tags := fn.Tags
		if tags == nil {
			tags = map[string]string{}
		}
		return writeJSON(w, http.StatusOK, r, map[string]any{"Tags": tags})
	case http.MethodPost:
		var in struct {
			Tags map[string]string `json:"Tags"`
		}
		if err := decode(r, &in); err != nil {
			return err
		}
		if err := h.f.SetTags(name, in.Tags, nil); err != nil {
			return err
		}
		return writeJSON(w, http.StatusNoContent, r, nil)
	case http.MethodDelete:
		if err := h.f.SetTags(name, nil, r.URL.Query()["tagKeys"]); err != nil {
			return err
		}
		return writeJSON(w, http.StatusNoContent, r, nil)
	}
	return &awsproto.Error{Code: "UnknownOperationException", Status: http.StatusNotFound, Message: "The lifeguard sandbox's Lambda does not serve " + r.Method + " " + r.URL.Path + "."}
}
