package sandbox

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
)

// service is one AWS protocol endpoint the sandbox speaks, recognised by
// its Version parameter (query protocols) or its X-Amz-Target prefix (JSON
// protocols). SQS, which speaks both, is two: its JSON side and its query
// side.
type service struct {
	name     string   // for logs and errors
	version  string   // query services: the Version parameter
	target   string   // JSON services: the X-Amz-Target prefix
	paths    []string // REST services (Lambda): the path prefixes of their operations
	throttle string   // the service's own throttling code
	handler  serviceHandler
}

// serviceHandler serves a service's requests and writes an error in its
// own protocol: the router answers injected faults with it, so each
// service's faults carry its envelope (and DynamoDB's its X-Amz-Crc32).
type serviceHandler interface {
	http.Handler
	WriteError(w http.ResponseWriter, requestID string, e *awsproto.Error)
}

// router sends each request to its service by Version or X-Amz-Target,
// after applying any injected fault for the caller.
type router struct {
	byVersion map[string]*service
	byTarget  map[string]*service
	byPath    map[string]*service // REST services, by path prefix
	faults    *faults
	admin     http.Handler
}

type callerKey struct{}

// withCaller marks requests that arrive on an instance's own API port.
func withCaller(id string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, id)))
	})
}

func callerOf(r *http.Request) string {
	id, _ := r.Context().Value(callerKey{}).(string)
	return id
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_sandbox/") {
		if callerOf(r) != "" {
			// An instance's own API port is the AWS API only: code under
			// test must not be able to clear its own fault or push the
			// clock. The admin API is served on the main endpoint.
			writeProtocolError(w, r, &awsproto.Error{Code: "AccessDenied", Status: http.StatusForbidden,
				Message: "User is not authorized to perform this operation: the lifeguard sandbox serves /_sandbox/ on its main endpoint only, not on an instance's API port."})
			return
		}
		rt.admin.ServeHTTP(w, r)
		return
	}
	svc, err := rt.route(r)
	if err != nil {
		writeProtocolError(w, r, err)
		return
	}
	if rt.faults != nil && !rt.applyFault(w, r, svc) {
		return
	}
	svc.handler.ServeHTTP(w, r)
}

// writeProtocolError answers a request no service handles: as awsJson
// when it carries X-Amz-Target, as the query protocol otherwise.
func writeProtocolError(w http.ResponseWriter, r *http.Request, e *awsproto.Error) {
	reqID := awsproto.NewRequestID()
	if r.Header.Get("X-Amz-Target") != "" {
		awsproto.WriteJSONError(w, awsproto.NSCoral, awsproto.JSON10, reqID, e)
		return
	}
	awsproto.WriteQueryError(w, awsproto.NSAutoScaling, reqID, e)
}

// route finds the service a request is for.
func (rt *router) route(r *http.Request) (*service, *awsproto.Error) {
	for prefix, svc := range rt.byPath {
		if strings.HasPrefix(r.URL.Path, prefix) {
			return svc, nil
		}
	}
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		prefix, op, _ := strings.Cut(t, ".")
		if svc, ok := rt.byTarget[prefix]; ok {
			return svc, nil
		}
		return nil, awsproto.Errorf("UnknownOperationException", "The sandbox does not serve %s (operation %s).", prefix, op)
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return nil, awsproto.Errorf("InvalidAction", "Method %s is not supported; AWS query APIs take POST.", r.Method)
	}
	if err := r.ParseForm(); err != nil {
		return nil, awsproto.Errorf("MalformedQueryString", "The request body could not be parsed: %v", err)
	}
	v := r.Form.Get("Version")
	if v == "" {
		return nil, awsproto.Errorf("MissingParameter", "The request must contain the parameter Version")
	}
	if svc, ok := rt.byVersion[v]; ok {
		return svc, nil
	}
	return nil, awsproto.Errorf("InvalidAction", "Could not find operation %s for version %s", r.Form.Get("Action"), v)
}

// applyFault delays, drops or fails a call as the active faults say. It
// reports whether the call should go on to its service.
func (rt *router) applyFault(w http.ResponseWriter, r *http.Request, svc *service) bool {
	o := rt.faults.decide(callerOf(r))
	if o.latency > 0 {
		t := time.NewTimer(o.latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return false
		}
	}
	if o.cut {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return false
			}
		}
		panic(http.ErrAbortHandler) // the server drops the connection
	}
	reqID := awsproto.NewRequestID()
	switch {
	case o.throttle != "":
		code := o.throttle
		if code == "default" {
			code = svc.throttle
		}
		msg := "Rate exceeded"
		if code == "RequestLimitExceeded" {
			msg = "Request limit exceeded."
		}
		svc.handler.WriteError(w, reqID, &awsproto.Error{Code: code, Message: msg})
		return false
	case o.status != 0:
		svc.handler.WriteError(w, reqID, &awsproto.Error{Code: "ServiceUnavailable", Message: "Service is unavailable. Please try again later.", Status: o.status, Receiver: true})
		return false
	}
	return true
}
