package demo

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/loadgen"
	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/functions"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// demo is one run: the sandbox, the timeline and what the summary needs.
type demo struct {
	out      io.Writer
	srv      *sandbox.Server
	endpoint string
	bin      string
	start    time.Time
	tgARN    string
	appPort  int // the web app's port on each instance's private IP
	lbAddr   string
	load     *loadgen.Load

	mu sync.Mutex
	// pending holds the timeline's lines until they are old enough to be
	// printed in time order (flush); n orders lines of the same time.
	pending []line
	n       int64
	// What the summary counts.
	launched, terminated, heartbeats int
	invocations                      int             // of the controller's Lambda function
	held, drained                    []time.Duration // launch and termination waits
	waitSince                        map[string]time.Time
	targetState                      map[string]string // instance → its target's last state
	rows                             []row
}

// line is a line of the timeline and when it happened.
type line struct {
	at   time.Time
	n    int64
	text string
}

// reorderWindow is how long a line waits before it is printed: the
// sandbox's events and the instances' consoles are read by different
// goroutines, the consoles every sweep, so a line may arrive after a later
// one.
const (
	reorderWindow = 300 * time.Millisecond
	sweep         = 100 * time.Millisecond
)

func newDemo(out io.Writer, srv *sandbox.Server, endpoint, bin string) *demo {
	return &demo{out: out, srv: srv, endpoint: endpoint, bin: bin, start: time.Now(), waitSince: map[string]time.Time{}, targetState: map[string]string{}}
}

// add queues a timeline line for what happened at at.
func (d *demo) add(at time.Time, format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n++
	d.pending = append(d.pending, line{at: at, n: d.n, text: fmt.Sprintf(format, args...)})
}

// printf queues a line of the demo's own, happening now.
func (d *demo) printf(format string, args ...any) { d.add(time.Now(), format, args...) }

// flush prints, in time order, the queued lines from before before; every
// line when before is zero.
func (d *demo) flush(before time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	slices.SortFunc(d.pending, func(a, b line) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.n, b.n)
	})
	i := 0
	for ; i < len(d.pending) && (before.IsZero() || d.pending[i].at.Before(before)); i++ {
		l := d.pending[i]
		fmt.Fprintf(d.out, "%6.1fs  %s\n", max(0, l.at.Sub(d.start).Seconds()), l.text)
	}
	d.pending = d.pending[i:]
}

// printer prints the queued lines once they are reorderWindow old, until
// ctx ends.
func (d *demo) printer(ctx context.Context) {
	tick := time.NewTicker(sweep)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			d.flush(time.Now().Add(-reorderWindow))
		}
	}
}

// events prints the sandbox's control events worth a newcomer's eye:
// instance states, lifecycle actions and heartbeats, spot notices, targets
// registered, draining and healthy, and the controller's invocations.
func (d *demo) events(ctx context.Context) {
	var seq int64
	for {
		evs, err := d.srv.Events().Wait(ctx, seq, eventlog.All)
		if err != nil {
			return
		}
		for _, e := range evs {
			seq = e.Seq
			d.event(e)
		}
	}
}

func (d *demo) event(e eventlog.Event) {
	id := e.Instance
	switch e.Kind {
	case world.EvInstanceLaunched:
		d.mu.Lock()
		d.launched++
		d.mu.Unlock()
		d.add(e.Time, "%s  launched in group %s", id, e.Group)
	case world.EvInstanceState:
		if e.State == "" {
			return
		}
		d.mu.Lock()
		switch e.State {
		case world.StatePendingWait, world.StateTerminatingWait:
			d.waitSince[id] = e.Time
		case world.StatePendingProceed:
			if t, ok := d.waitSince[id]; ok {
				d.held = append(d.held, e.Time.Sub(t))
			}
		case world.StateTerminatingProceed:
			if t, ok := d.waitSince[id]; ok {
				d.drained = append(d.drained, e.Time.Sub(t))
			}
		case world.StateTerminated:
			d.terminated++
		}
		d.mu.Unlock()
		d.add(e.Time, "%s  → %s", id, e.State)
	case world.EvActionHeartbeat:
		d.mu.Lock()
		d.heartbeats++
		d.mu.Unlock()
		d.add(e.Time, "%s  heartbeat for %s", id, e.Hook)
	case world.EvActionCompleted:
		d.add(e.Time, "%s  %s completed with %s", id, e.Hook, e.Result)
	case functions.EvEnvironment:
		d.add(e.Time, "LAMBDA  %s", e.Detail)
	case functions.EvInvoke:
		if e.Attrs["result"] == "throttled" {
			d.add(e.Time, "LAMBDA  an event for %s waits: its one environment is busy (reserved concurrency 1)", controllerFn)
			return
		}
		d.mu.Lock()
		d.invocations++
		d.mu.Unlock()
		d.add(e.Time, "LAMBDA  %s ran (%s invocation): %s", controllerFn, e.Attrs["type"], e.Attrs["result"])
	case functions.EvInvokeRetry, functions.EvInvokeFailed:
		d.add(e.Time, "LAMBDA  %s", e.Detail)
	case world.EvSpotNotice:
		d.add(e.Time, "%s  spot interruption notice: %s", id, e.Detail)
	case "lb-target":
		if e.Resource != d.tgARN || id == "" {
			return
		}
		if e.State == "" {
			d.add(e.Time, "%s  %s in target group %s at %s", id, e.Detail, webGroup, e.Attrs["address"])
			return
		}
		d.mu.Lock()
		same := d.targetState[id] == e.State
		d.targetState[id] = e.State
		d.mu.Unlock()
		if !same {
			d.add(e.Time, "%s  target %s%s", id, e.State, map[bool]string{true: " (" + e.Attrs["reason"] + ")"}[e.Attrs["reason"] != ""])
		}
	}
}

// consoles prints the agents' and the apps' lines worth showing from each
// instance's console and app log as they appear.
func (d *demo) consoles(ctx context.Context) {
	offsets := map[string]int64{}
	read := func(key, path, id string, app bool) {
		f, err := os.Open(path)
		if err != nil {
			return
		}
		defer f.Close()
		if _, err := f.Seek(offsets[key], io.SeekStart); err != nil {
			return
		}
		r := bufio.NewReader(f)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			offsets[key] += int64(len(l))
			if l = strings.TrimSpace(l); app && !strings.HasPrefix(l, "app: ") && !strings.HasPrefix(l, "user data: ") {
				l = "app: " + l // the app's own errors
			}
			if msg, at, ok := interesting(l); ok {
				d.add(at, "%s  %s", id, msg)
			}
		}
	}
	sweepAll := func() {
		for _, in := range d.srv.Instances() {
			read(in.ID+"/console", filepath.Join(in.Dir, "console.log"), in.ID, false)
			read(in.ID+"/app", filepath.Join(in.Dir, "app.log"), in.ID, true)
		}
	}
	tick := time.NewTicker(sweep)
	defer tick.Stop()
	for {
		sweepAll()
		select {
		case <-ctx.Done():
			sweepAll() // what the instances printed last
			return
		case <-tick.C:
		}
	}
}

// interesting picks the log lines worth showing, shortens them and returns
// when they were logged (their time attribute; now for other lines).
func interesting(l string) (string, time.Time, bool) {
	l = strings.TrimSpace(l)
	if strings.HasPrefix(l, "app: ") || strings.HasPrefix(l, "user data: ") {
		return l, time.Now(), true
	}
	attr := func(k string) string {
		i := strings.Index(l, " "+k+"=")
		if i < 0 {
			return ""
		}
		v := l[i+len(k)+2:]
		if strings.HasPrefix(v, `"`) {
			if j := strings.Index(v[1:], `"`); j >= 0 {
				return v[1 : j+1]
			}
		}
		v, _, _ = strings.Cut(v, " ")
		return v
	}
	at, err := time.Parse(time.RFC3339Nano, attr("time"))
	if err != nil {
		at = time.Now()
	}
	switch msg := attr("msg"); msg {
	case "step started":
		return fmt.Sprintf("agent: step %s started", attr("step")), at, true
	case "step finished":
		return fmt.Sprintf("agent: step %s finished (exit %s)", attr("step"), attr("exit_code")), at, true
	case "agent started":
		return fmt.Sprintf("agent: started (pid %s)", attr("pid")), at, true
	case "leading":
		if tok := attr("token"); tok != "" && tok != "0" {
			return "agent: leading with fencing token " + tok, at, true
		}
		return "agent: leading", at, true
	case "no longer leading":
		return "agent: no longer leading", at, true
	case "leadership handed off":
		return fmt.Sprintf("agent: leadership handed off (%s)", attr("reason")), at, true
	case "scheduled run ended":
		return fmt.Sprintf("agent: leader-only job %s ran with fencing token %s: %s", attr("job"), attr("token"), attr("outcome")), at, true
	}
	return "", time.Time{}, false
}
