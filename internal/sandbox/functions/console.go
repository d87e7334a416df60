package functions

import (
	"bytes"
	"context"
	"time"
)

// consoleLimit is how much of a function's output its console keeps.
const consoleLimit = 1 << 20

// console is a function's output: every environment's lines, in the order
// they were read, the oldest dropped past consoleLimit. Guarded by
// Functions.mu.
type console struct {
	buf     []byte
	dropped int64 // bytes dropped from the front
	wake    chan struct{}
}

func (c *console) add(line []byte) {
	c.buf = append(c.buf, line...)
	c.buf = append(c.buf, '\n')
	if over := len(c.buf) - consoleLimit; over > 0 {
		if i := bytes.IndexByte(c.buf[over:], '\n'); i >= 0 {
			over += i + 1
		}
		c.buf = append(c.buf[:0], c.buf[over:]...)
		c.dropped += int64(over)
	}
	if c.wake != nil {
		close(c.wake)
		c.wake = nil
	}
}

// Logs returns what a function has printed, START, END and REPORT lines
// included, as its console keeps it (the last MiB).
func (f *Functions) Logs(name string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn, err := f.lookupLocked(name)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(fn.console.buf), nil
}

// WaitLogs waits until a function's console holds substr, and returns the
// console. It fails when ctx ends first or the function is deleted.
func (f *Functions) WaitLogs(ctx context.Context, name, substr string) ([]byte, error) {
	for {
		f.mu.Lock()
		fn, err := f.lookupLocked(name)
		if err != nil {
			f.mu.Unlock()
			return nil, err
		}
		if bytes.Contains(fn.console.buf, []byte(substr)) {
			out := bytes.Clone(fn.console.buf)
			f.mu.Unlock()
			return out, nil
		}
		if fn.console.wake == nil {
			fn.console.wake = make(chan struct{})
		}
		wake := fn.console.wake
		f.mu.Unlock()
		t := time.NewTimer(time.Second) // a deleted function never wakes its waiters
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		t.Stop()
	}
}
