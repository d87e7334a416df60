// Package lifecycletest holds hand-written fakes of lifecycle's interfaces,
// shared by the tests of lifecycle and of the packages built on it.
package lifecycletest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// errUnexpected is what a fake returns for a call the test did not expect
// (after failing the test).
var errUnexpected = errors.New("unexpected call to a lifecycletest fake")

// Call is one call to a fake Completer.
type Call struct {
	Op     string // "heartbeat" or "complete"
	At     time.Time
	Action lifecycle.Action
	Result lifecycle.Result // for "complete"
}

// Completer is a fake lifecycle.Completer that records its calls and
// answers them through OnHeartbeat and OnComplete. A call whose hook is nil
// fails the test (through T) and returns an error: a test states every call
// it expects. n counts the calls to the method, from 0. Safe for concurrent
// use.
type Completer struct {
	T           testing.TB
	OnHeartbeat func(ctx context.Context, n int, a lifecycle.Action) error
	OnComplete  func(ctx context.Context, n int, a lifecycle.Action, r lifecycle.Result) error

	mu    sync.Mutex
	calls []Call
}

var _ lifecycle.Completer = (*Completer)(nil)

// HeartbeatOK is an OnHeartbeat hook that accepts every heartbeat.
func HeartbeatOK(context.Context, int, lifecycle.Action) error { return nil }

// CompleteOK is an OnComplete hook that accepts every completion.
func CompleteOK(context.Context, int, lifecycle.Action, lifecycle.Result) error { return nil }

// Heartbeat records the call and answers through OnHeartbeat.
func (c *Completer) Heartbeat(ctx context.Context, a lifecycle.Action) error {
	n := c.record(Call{Op: "heartbeat", Action: a})
	if c.OnHeartbeat == nil {
		c.T.Errorf("unexpected Heartbeat(%v) at %v", a.Key(), time.Now())
		return errUnexpected
	}
	return c.OnHeartbeat(ctx, n, a)
}

// Complete records the call and answers through OnComplete.
func (c *Completer) Complete(ctx context.Context, a lifecycle.Action, r lifecycle.Result) error {
	n := c.record(Call{Op: "complete", Action: a, Result: r})
	if c.OnComplete == nil {
		c.T.Errorf("unexpected Complete(%v, %s) at %v", a.Key(), r, time.Now())
		return errUnexpected
	}
	return c.OnComplete(ctx, n, a, r)
}

// record appends call and returns how many calls of its kind came before.
func (c *Completer) record(call Call) int {
	call.At = time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, prev := range c.calls {
		if prev.Op == call.Op {
			n++
		}
	}
	c.calls = append(c.calls, call)
	return n
}

// Calls returns every call so far, in order.
func (c *Completer) Calls() []Call { return c.filter("") }

// Heartbeats returns the Heartbeat calls so far.
func (c *Completer) Heartbeats() []Call { return c.filter("heartbeat") }

// Completions returns the Complete calls so far.
func (c *Completer) Completions() []Call { return c.filter("complete") }

func (c *Completer) filter(op string) []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Call
	for _, call := range c.calls {
		if op == "" || call.Op == op {
			out = append(out, call)
		}
	}
	return out
}
