package functions

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
)

var base64Std = base64.StdEncoding

// Invocation types.
const (
	RequestResponse = "RequestResponse"
	Event           = "Event"
	DryRun          = "DryRun"
)

// maxAsyncPayload is Lambda's limit on an asynchronous invocation's event.
const maxAsyncPayload = 256 * 1024

// tailBytes is how much of the log an invocation with LogType Tail gets.
const tailBytes = 4096

// InvokeInput is an Invoke call.
type InvokeInput struct {
	Name          string
	Type          string // RequestResponse (when empty), Event or DryRun
	Payload       []byte
	Tail          bool   // LogType Tail: the last 4 KB of the invocation's log
	ClientContext string // base64, passed to the runtime as it is
}

// InvokeOutput is an invocation's result.
type InvokeOutput struct {
	Status        int // 200, 202 (Event) or 204 (DryRun)
	RequestID     string
	Payload       []byte
	FunctionError string // "Unhandled" for a function error
	LogResult     string // base64, with Tail
}

// ErrNoProcesses is what Invoke answers in a sandbox that runs no
// processes.
func noProcesses(name string) *awsproto.Error {
	return conflict("The lifeguard sandbox runs no processes (it is in memory or started with --no-processes): function %s cannot be invoked. Start the sandbox with processes to invoke functions.", name)
}

func throttled() *awsproto.Error {
	return &awsproto.Error{Code: "TooManyRequestsException", Message: "Rate Exceeded.", Status: http.StatusTooManyRequests,
		Fields: map[string]any{"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"}}
}

// Invoke invokes a function: synchronously (RequestResponse), by queueing
// the event (Event: retried twice on a function error), or only checking
// that it could (DryRun).
func (f *Functions) Invoke(ctx context.Context, in InvokeInput) (InvokeOutput, error) {
	typ := in.Type
	if typ == "" {
		typ = RequestResponse
	}
	if typ != RequestResponse && typ != Event && typ != DryRun {
		return InvokeOutput{}, validation(typ, "invocationType", "Member must satisfy enum value set: [Event, RequestResponse, DryRun]")
	}
	payload := in.Payload
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	limit, op := maxPayload, "InvokeFunction"
	if typ == Event {
		limit, op = maxAsyncPayload, "InvokeAsync"
	}
	if len(payload) > limit {
		return InvokeOutput{}, &awsproto.Error{Code: "RequestTooLargeException", Status: http.StatusRequestEntityTooLarge,
			Message: fmt.Sprintf("Request must be smaller than %d bytes for the %s operation", limit, op)}
	}
	if !json.Valid(payload) {
		return InvokeOutput{}, awsproto.Errorf("InvalidRequestContentException", "Could not parse request body into json: the payload is not valid JSON.")
	}
	f.mu.Lock()
	fn, err := f.lookupLocked(in.Name)
	if err != nil {
		f.mu.Unlock()
		return InvokeOutput{}, err
	}
	reserved := fn.Reserved
	id := f.uuidLocked()
	f.mu.Unlock()
	switch {
	case typ == DryRun:
		return InvokeOutput{Status: http.StatusNoContent, RequestID: id}, nil
	case !f.cfg.Processes:
		return InvokeOutput{}, noProcesses(in.Name)
	case typ == Event:
		if reserved != nil && *reserved == 0 {
			return InvokeOutput{}, throttled()
		}
		f.queue(in.Name, id, payload)
		return InvokeOutput{Status: http.StatusAccepted, RequestID: id}, nil
	}
	o, err := f.invokeOnce(ctx, in.Name, id, payload, in.ClientContext, RequestResponse)
	if err != nil {
		return InvokeOutput{}, err
	}
	out := InvokeOutput{Status: http.StatusOK, RequestID: id, Payload: o.payload}
	if o.failed {
		out.FunctionError = "Unhandled"
	}
	if in.Tail {
		t := o.logTail
		if len(t) > tailBytes {
			t = t[len(t)-tailBytes:]
		}
		out.LogResult = base64.StdEncoding.EncodeToString(t)
	}
	return out, nil
}

// InvokeAsync queues an event for a function named by ARN, as SNS and
// EventBridge do. It fails when the function does not exist or the
// sandbox runs no processes.
func (f *Functions) InvokeAsync(functionARN string, payload []byte) error {
	name, err := f.ParseName(functionARN, "")
	if err != nil {
		return err
	}
	_, err = f.Invoke(context.Background(), InvokeInput{Name: name, Type: Event, Payload: payload})
	return err
}

// queue runs an asynchronous invocation in the background: throttled
// attempts wait for a free environment, a function error is retried
// after RetryDelays[0] and RetryDelays[1], then dropped.
func (f *Functions) queue(name, id string, payload []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.wg.Go(func() {
		const maxAge = 6 * time.Hour
		deadline := f.clock.Now().Add(maxAge)
		for attempt := 0; ; {
			o, err := f.invokeOnce(context.Background(), name, id, payload, "", Event)
			if err != nil {
				if e, ok := err.(*awsproto.Error); ok && e.Code == "TooManyRequestsException" && f.clock.Now().Before(deadline) {
					if !f.sleep(time.Second) {
						return
					}
					continue
				}
				f.data(EvInvokeFailed, name, fmt.Sprintf("event %s for %s dropped: %v", id, name, err), map[string]string{"request": id})
				return
			}
			if !o.failed {
				return
			}
			if attempt == 2 {
				f.data(EvInvokeFailed, name, fmt.Sprintf("event %s for %s failed 3 times (%s); dropped", id, name, o.errType), map[string]string{"request": id})
				return
			}
			delay := f.cfg.RetryDelays[attempt]
			attempt++
			f.data(EvInvokeRetry, name, fmt.Sprintf("event %s for %s failed (%s); retry %d in %s", id, name, o.errType, attempt, delay), map[string]string{"request": id})
			if !f.sleep(delay) {
				return
			}
		}
	})
}

// sleep waits d on the sandbox clock; false when the owner closed first.
func (f *Functions) sleep(d time.Duration) bool {
	ch := make(chan struct{})
	t := f.clock.AfterFunc(d, func() { close(ch) })
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-f.done:
		return false
	}
}

func (f *Functions) data(kind, name, detail string, attrs map[string]string) {
	f.events.AppendData(eventlog.Event{Service: "lambda", Kind: kind, Resource: f.arn(name), Detail: detail, Attrs: attrs})
}

// invokeOnce runs one invocation in a warm environment, or a new one:
// throttled when the function's reserved concurrency is in use.
func (f *Functions) invokeOnce(ctx context.Context, name, id string, payload []byte, clientContext, typ string) (outcome, error) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return outcome{}, &awsproto.Error{Code: "ServiceException", Message: "The sandbox is shutting down.", Status: 500, Receiver: true}
	}
	fn, err := f.lookupLocked(name)
	if err != nil {
		f.mu.Unlock()
		return outcome{}, err
	}
	if fn.Reserved != nil && fn.active >= *fn.Reserved {
		f.mu.Unlock()
		f.data(EvInvoke, name, fmt.Sprintf("%s invocation %s of %s throttled (reserved concurrency %d)", typ, id, name, *fn.Reserved), map[string]string{"type": typ, "result": "throttled", "request": id})
		return outcome{}, throttled()
	}
	var e *env
	for len(fn.idle) > 0 {
		e = fn.idle[len(fn.idle)-1]
		fn.idle = fn.idle[:len(fn.idle)-1]
		e.idleTimer.Stop()
		break
	}
	fn.active++
	cfg, codeDir, version := fn.snapshot(), fn.codeDir, fn.version
	var envID string
	if e == nil {
		f.envN++
		envID = fmt.Sprintf("%s-%d", name, f.envN)
	}
	f.mu.Unlock()

	cold := e == nil
	var o outcome
	if cold {
		e, err = f.startEnv(fn, cfg, codeDir, version, envID)
		if err != nil {
			b, _ := json.Marshal(map[string]string{"errorType": "Runtime.InvalidEntrypoint", "errorMessage": "RequestId: " + id + " Error: " + err.Error()})
			o = outcome{payload: b, failed: true, errType: "Runtime.InvalidEntrypoint"}
			f.mu.Lock()
			fn.active--
			fn.console.add(fmt.Appendf(nil, "INIT_REPORT Init Duration: 0.00 ms Phase: init Status: error Error Type: Runtime.InvalidEntrypoint (%v)", err))
			f.mu.Unlock()
			f.recordInvoke(name, id, typ, o, cold)
			return o, nil
		}
		f.mu.Lock()
		f.envs[e] = true
		closed := f.closed
		f.mu.Unlock()
		if closed {
			e.stop("the sandbox is shutting down")
		}
	}
	o = e.run(&invocation{id: id, payload: payload, clientContext: clientContext, done: make(chan outcome, 1)}, cold)

	f.mu.Lock()
	fn.active--
	reuse := !e.isBroken() && !f.closed && f.fns[name] == fn && fn.version == e.version
	if reuse {
		fn.idle = append(fn.idle, e)
		f.armIdleLocked(fn, e)
	} else {
		delete(f.envs, e)
	}
	f.mu.Unlock()
	if !reuse {
		why := "its invocation failed (" + o.errType + ")"
		if !e.isBroken() {
			why = "the function changed or was deleted"
		}
		e.stop(why)
	}
	f.recordInvoke(name, id, typ, o, cold)
	_ = ctx
	return o, nil
}

func (f *Functions) recordInvoke(name, id, typ string, o outcome, cold bool) {
	result := "ok"
	if o.failed {
		result = o.errType
		if result == "" {
			result = "Unhandled"
		}
	}
	start := "warm"
	if cold {
		start = "cold"
	}
	f.data(EvInvoke, name, fmt.Sprintf("%s invocation %s of %s (%s): %s", typ, id, name, start, result),
		map[string]string{"type": typ, "result": result, "request": id, "start": start})
}

// armIdleLocked stops an idle environment after IdleTimeout unless an
// invocation takes it first.
func (f *Functions) armIdleLocked(fn *function, e *env) {
	e.idleTimer = f.clock.AfterFunc(f.cfg.IdleTimeout, func() {
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			return
		}
		found := false
		for i, x := range fn.idle {
			if x == e {
				fn.idle = append(fn.idle[:i], fn.idle[i+1:]...)
				found = true
				break
			}
		}
		if !found {
			f.mu.Unlock()
			return
		}
		delete(f.envs, e)
		f.wg.Add(1)
		f.mu.Unlock()
		defer f.wg.Done()
		e.stop(fmt.Sprintf("idle for %s", f.cfg.IdleTimeout))
	})
}
