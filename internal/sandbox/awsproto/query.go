package awsproto

import (
	"net/http"
)

// QueryService serves one awsquery or ec2query API: it reads the form
// (Action, Version and the operation's parameters, from the POST body or
// the URL), calls the operation the Action names, and writes its result in
// the protocol's XML envelope, or its error in the protocol's error
// envelope. An Action it does not serve answers InvalidAction (MissingAction
// when there is none) with AWS's text; a body that is not a form answers
// MalformedQueryString.
//
// awsquery (Auto Scaling, SNS, SQS's query mode, ELB) writes
//
//	<OpResponse xmlns=Namespace><OpResult>…</OpResult><ResponseMetadata><RequestId>…
//
// and errors as <ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/>.
// ec2query (EC2) writes the result's fields directly under
// <OpResponse xmlns=NSEC2><requestId>…, errors as
// <Response><Errors><Error>…</Errors><RequestID/>, reads parameters from the
// POST body only, and answers DryRun=true with DryRunOperation (412)
// without calling the operation.
//
// Declare one per service, with its operations, and serve it:
//
//	svc := &awsproto.QueryService{
//		Version:   "2015-12-01",
//		Namespace: awsproto.NSELBv2,
//		ParamCode: "ValidationError",
//		Operations: map[string]awsproto.QueryOperation{
//			"DescribeTargetHealth": h.describeTargetHealth, // func(*awsproto.QueryRequest) (any, error)
//		},
//	}
//
// A QueryService is safe for concurrent use once its fields are set; they
// must not change while it serves.
type QueryService struct {
	// Version is the API version served, for InvalidAction's text. The
	// router has matched it before the request arrives here.
	Version string
	// Namespace is the XML namespace of awsquery responses and errors
	// (NSAutoScaling, …). ec2query always uses NSEC2.
	Namespace string
	// EC2 selects the ec2query protocol.
	EC2 bool
	// ParamCode is the code a ParamError (a malformed number, boolean or
	// timestamp) becomes: "ValidationError" for Auto Scaling,
	// "InvalidParameter" for SNS, "InvalidParameterValue" for SQS and EC2.
	ParamCode string
	// Operations maps an Action to its handler.
	Operations map[string]QueryOperation
	// MapError, when set, rewrites an operation's error before it is
	// written (SQS's query protocol words NonExistentQueue differently).
	MapError func(*Error) *Error
}

// QueryOperation serves one Action. It returns the result to marshal as
// <OpResult> (awsquery) or as the children of <OpResponse> (ec2query), or
// an error, usually an *Error; a ParamError becomes the service's
// ParamCode, any other error a 500 InternalFailure. An awsquery result of
// nil writes an empty <OpResult/>; NoOutput{} writes no Result element.
type QueryOperation func(*QueryRequest) (any, error)

// QueryRequest is one query-protocol call as an operation sees it.
type QueryRequest struct {
	// Params are the request's parameters.
	Params
	// Action is the operation's name.
	Action string
	// HTTP is the request itself, for its context, Host, path and headers;
	// its form has been parsed.
	HTTP *http.Request
}

// ServeHTTP serves one query-protocol request. ParseForm is idempotent, so
// the router may have parsed the form already to read Version.
func (s *QueryService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w = negotiated{ResponseWriter: w, gzip: acceptsGzip(r.Header)}
	reqID := NewRequestID()
	if err := r.ParseForm(); err != nil {
		s.WriteError(w, reqID, Errorf("MalformedQueryString", "The request body could not be parsed: %v", err))
		return
	}
	form := r.Form
	if s.EC2 {
		form = r.PostForm
	}
	p := NewParams(form)
	action := form.Get("Action")
	op, ok := s.Operations[action]
	if !ok {
		s.WriteError(w, reqID, s.invalidAction(action))
		return
	}
	if s.EC2 {
		dry, _, err := p.Bool("DryRun")
		if err != nil {
			s.WriteError(w, reqID, AsError(err, s.ParamCode))
			return
		}
		if dry {
			s.WriteError(w, reqID, &Error{Code: "DryRunOperation", Message: "Request would have succeeded, but DryRun flag is set.", Status: http.StatusPreconditionFailed})
			return
		}
	}
	result, err := op(&QueryRequest{Params: p, Action: action, HTTP: r})
	if err != nil {
		e := AsError(err, s.ParamCode)
		if s.MapError != nil {
			e = s.MapError(e)
		}
		s.WriteError(w, reqID, e)
		return
	}
	if s.EC2 {
		WriteEC2(w, action, reqID, result)
		return
	}
	WriteQuery(w, s.Namespace, action, reqID, result)
}

// WriteError writes e in this service's error envelope. The router uses it
// for faults injected before a request reaches its operation.
func (s *QueryService) WriteError(w http.ResponseWriter, requestID string, e *Error) {
	if s.EC2 {
		WriteEC2Error(w, requestID, e)
		return
	}
	WriteQueryError(w, s.Namespace, requestID, e)
}

// invalidAction is the service's answer to an Action it does not serve,
// in AWS's words.
func (s *QueryService) invalidAction(action string) *Error {
	if s.EC2 && action != "" {
		return Errorf("InvalidAction", "The action %s is not valid for this web service.", action)
	}
	return InvalidAction(action, s.Version)
}
