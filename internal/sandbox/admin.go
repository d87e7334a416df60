package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
)

// The admin API lives under /_sandbox/, a path no AWS API uses, on the
// main endpoint only (an instance's own API port answers 403 AccessDenied,
// so code under test cannot clear its own fault):
//
//	GET  /_sandbox/health                 {"status":"ok"}
//	GET  /_sandbox/clock                  {"now":…, "offset":"…"}
//	POST /_sandbox/clock                  {"advance":"1h"} pushes simulated time forward
//	GET  /_sandbox/faults                 the active faults
//	POST /_sandbox/faults                 a Fault (network/API), or {"instance":"i-…","spot":"2m"}
//	DELETE /_sandbox/faults[?instance=i-…] clears one instance's fault, or all
//	GET  /_sandbox/events[?after=N][&follow=true][&data=1]  the event log as JSON lines
//	GET  /_sandbox/events/stats           what the log holds, dropped and counted per kind
//	GET  /_sandbox/instances              every instance with its endpoints and directory
//	GET  /_sandbox/calls                  each instance's calls to its API port and IMDS: {"i-…":{"api":n,"imds":m}}
//	GET  /_sandbox/balancers              every load balancer: its listeners' loopback addresses, per-target counts
//	GET  /_sandbox/functions/{name}/logs  what a Lambda function printed (text, START/END/REPORT included)
//	GET  /_sandbox/functions/{name}/code  a Lambda function's zip (GetFunction's Code.Location)
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_sandbox/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /_sandbox/clock", s.getClock)
	mux.HandleFunc("POST /_sandbox/clock", s.postClock)
	mux.HandleFunc("GET /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"faults": s.faults.list()})
	})
	mux.HandleFunc("POST /_sandbox/faults", s.postFault)
	mux.HandleFunc("DELETE /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("instance")
		s.faults.clear(id, id == "")
		s.events.Append(eventlog.Event{Service: "sandbox", Kind: EvFault, Instance: id, Detail: "faults cleared"})
		writeJSON(w, http.StatusOK, map[string]any{"faults": s.faults.list()})
	})
	mux.HandleFunc("GET /_sandbox/events", s.getEvents)
	mux.HandleFunc("GET /_sandbox/events/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.events.Stats())
	})
	mux.HandleFunc("GET /_sandbox/instances", s.getInstances)
	mux.HandleFunc("GET /_sandbox/calls", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.InstanceCalls())
	})
	mux.HandleFunc("GET /_sandbox/balancers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"balancers": s.lbs.Stats()})
	})
	mux.HandleFunc("GET /_sandbox/functions/{name}/logs", func(w http.ResponseWriter, r *http.Request) {
		s.writeFunctionBytes(w, r.PathValue("name"), "text/plain; charset=utf-8", s.fns.Logs)
	})
	mux.HandleFunc("GET /_sandbox/functions/{name}/code", func(w http.ResponseWriter, r *http.Request) {
		s.writeFunctionBytes(w, r.PathValue("name"), "application/zip", s.fns.Code)
	})
	mux.HandleFunc("/_sandbox/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no admin endpoint " + r.Method + " " + r.URL.Path + "; see /_sandbox/health, clock, faults, events, instances, calls, events/stats, functions/{name}/logs"})
	})
	return mux
}

// writeFunctionBytes answers with one of a function's byte streams, or
// 404 naming the function.
func (s *Server) writeFunctionBytes(w http.ResponseWriter, name, contentType string, get func(string) ([]byte, error)) {
	b, err := get(name)
	if err != nil {
		writeJSON(w, http.StatusNotFound, adminError{Code: "ResourceNotFoundException", Field: "name", Error: err.Error()})
		return
	}
	w.Header().Set("Content-Type", contentType)
	_, _ = w.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// adminError is the admin API's error body: AWS's shape (a code and a
// message, here under "error" as the CLI reads it) and the request field
// at fault, when there is one.
type adminError struct {
	Code  string `json:"code"`
	Field string `json:"field,omitempty"`
	Error string `json:"error"`
}

// badRequest answers 400 ValidationException. The message starts with the
// field it names ("advance: …") when field is set.
func badRequest(w http.ResponseWriter, format string, args ...any) {
	fieldError(w, "", format, args...)
}

func fieldError(w http.ResponseWriter, field, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = field + ": " + msg
	}
	writeJSON(w, http.StatusBadRequest, adminError{Code: "ValidationException", Field: field, Error: msg})
}

// decodeAdmin decodes an admin request body into v, refusing unknown
// fields. The members named in durations are read first, each on its own,
// so that a bad duration names the member it was given in.
func decodeAdmin(w http.ResponseWriter, r *http.Request, v any, durations ...string) (field string, err error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<16))
	if err != nil {
		return "", fmt.Errorf("the body is larger than 64 KiB")
	}
	if len(durations) > 0 {
		var members map[string]json.RawMessage
		if json.Unmarshal(body, &members) == nil {
			for _, name := range durations {
				if raw, ok := members[name]; ok {
					var d Duration
					if err := d.UnmarshalJSON(raw); err != nil {
						return name, err
					}
				}
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return "", err
	}
	return "", nil
}

// ClockState is the admin API's view of the simulated clock.
type ClockState struct {
	Now    time.Time `json:"now"`
	Offset Duration  `json:"offset"`
}

func (s *Server) clockState() ClockState {
	return ClockState{Now: s.clock.Now().UTC(), Offset: Duration(s.clock.Offset())}
}

func (s *Server) getClock(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.clockState())
}

func (s *Server) postClock(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Advance *Duration `json:"advance"`
	}
	if field, err := decodeAdmin(w, r, &req, "advance"); err != nil {
		if field != "" {
			fieldError(w, field, "%v", err)
			return
		}
		badRequest(w, "clock: want {\"advance\": \"1h\"}: %v", err)
		return
	}
	switch {
	case req.Advance == nil:
		fieldError(w, "advance", "missing; send {\"advance\": \"1h\"}")
		return
	case *req.Advance <= 0:
		fieldError(w, "advance", "must be a positive duration such as \"90s\" or \"1h\" (time never goes back)")
		return
	}
	if err := s.AdvanceClock(time.Duration(*req.Advance)); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			fieldError(w, fe.Field, "%s", fe.Msg)
			return
		}
		badRequest(w, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, s.clockState())
}

// FieldError is a request the sandbox refuses, naming the field at fault.
type FieldError struct {
	Field string // "advance"
	Msg   string // what is wrong and how to fix it
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// AdvanceClock pushes the simulated time forward, firing every timeout
// due. It refuses, with a *FieldError naming "advance", a d that is not
// positive or that would carry the clock's offset past what a
// time.Duration holds (about 292 years in all): time would wrap around to
// the past.
func (s *Server) AdvanceClock(d time.Duration) error {
	if d <= 0 {
		return &FieldError{Field: "advance", Msg: fmt.Sprintf("%s is not a positive duration (time never goes back)", d)}
	}
	s.advanceMu.Lock()
	defer s.advanceMu.Unlock()
	if off := s.clock.Offset(); d > math.MaxInt64-off {
		return &FieldError{Field: "advance", Msg: fmt.Sprintf("%s would carry the clock past the latest time it can hold (it is %s ahead of the wall clock; at most %s more)",
			d, off, time.Duration(math.MaxInt64-off).Truncate(time.Second))}
	}
	s.events.Append(eventlog.Event{Service: "sandbox", Kind: EvClock, Detail: "advanced by " + d.String()})
	s.clock.Advance(d)
	return nil
}

// faultRequest is a Fault, or a spot interruption when Spot is set.
type faultRequest struct {
	Fault
	Spot *Duration `json:"spot,omitempty"`
}

func (s *Server) postFault(w http.ResponseWriter, r *http.Request) {
	var req faultRequest
	if field, err := decodeAdmin(w, r, &req, "latency", "spot"); err != nil {
		if field != "" {
			fieldError(w, field, "%v", err)
			return
		}
		badRequest(w, "fault: %v", err)
		return
	}
	if req.Spot != nil {
		if err := s.InjectSpot(req.Instance, time.Duration(*req.Spot)); err != nil {
			badRequest(w, "%v", err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"spot": map[string]string{"instance": req.Instance, "notice": time.Duration(*req.Spot).String()}})
		return
	}
	if err := s.SetFault(req.Fault); err != nil {
		badRequest(w, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"faults": s.faults.list()})
}

// SetFault installs a fault (replacing the target's previous one).
func (s *Server) SetFault(f Fault) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if f.Instance != "" {
		if _, ok := s.world.InstanceMetadata(f.Instance); !ok {
			return fmt.Errorf("instance: %s is not an instance of this sandbox", f.Instance)
		}
	}
	s.faults.set(f)
	b, _ := json.Marshal(f)
	s.events.Append(eventlog.Event{Service: "sandbox", Kind: EvFault, Instance: f.Instance, Detail: string(b)})
	return nil
}

// InjectSpot posts a spot interruption notice for an instance.
func (s *Server) InjectSpot(instance string, notice time.Duration) error {
	if instance == "" {
		return fmt.Errorf("instance: a spot interruption needs the instance id")
	}
	if notice < 0 {
		return fmt.Errorf("spot: notice %s is negative", notice)
	}
	return s.world.InjectSpotInterruption(instance, notice)
}

// getEvents writes the log as JSON lines: the control stream, with the
// data stream merged in when data is set. An after older than what a
// stream still holds starts with a gap marker (kind "gap").
func (s *Server) getEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var after int64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			badRequest(w, "after: %q is not an event sequence number", v)
			return
		}
		after = n
	}
	streams := eventlog.Control
	switch v := q.Get("data"); v {
	case "", "0", "false":
	case "1", "true":
		streams = eventlog.All
	default:
		badRequest(w, "data: %q is not true or false (data=1 adds messages and deliveries)", v)
		return
	}
	follow := q.Get("follow") == "true" || q.Get("follow") == "1"
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	if !follow {
		for _, e := range s.events.Since(after, streams) {
			_ = enc.Encode(e)
		}
		return
	}
	if flusher != nil {
		flusher.Flush() // the client has its headers before the first event
	}
	for {
		evs, err := s.events.Wait(r.Context(), after, streams)
		if err != nil {
			return
		}
		for _, e := range evs {
			if err := enc.Encode(e); err != nil {
				return
			}
			after = e.Seq
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// InstanceInfo is the admin API's view of an instance.
type InstanceInfo struct {
	ID        string `json:"id"`
	Group     string `json:"group,omitempty"`
	State     string `json:"lifecycle_state,omitempty"`
	EC2State  string `json:"ec2_state"`
	PrivateIP string `json:"private_ip"`
	API       string `json:"api_endpoint,omitempty"`
	IMDS      string `json:"imds_endpoint,omitempty"`
	Dir       string `json:"dir,omitempty"` // where its user data runs; none when it runs nothing
}

// Instances lists every instance the sandbox knows.
func (s *Server) Instances() []InstanceInfo {
	insts, _ := s.world.EC2().Instances(nil, nil)
	out := make([]InstanceInfo, 0, len(insts))
	for _, in := range insts {
		info := InstanceInfo{ID: in.ID, Group: in.Group, State: in.State, EC2State: in.EC2State, PrivateIP: in.PrivateIP, Dir: s.host.instanceDir(in.ID)}
		info.API, info.IMDS, _ = s.host.endpoints(in.ID)
		out = append(out, info)
	}
	return out
}

// InstanceCalls returns, for every instance booted and not yet forgotten
// (a terminated instance is forgotten once EC2 no longer shows it), how
// many requests it made to its own API port and to its IMDS.
func (s *Server) InstanceCalls() map[string]CallCount { return s.host.callCounts() }

func (s *Server) getInstances(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"instances": s.Instances()})
}
