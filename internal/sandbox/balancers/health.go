package balancers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// member is one registered target of a target group, or one instance of
// a classic load balancer: its address, health and traffic.
type member struct {
	id   string
	port int    // the target's port (target groups); 0 for a classic instance
	ip   string // where it is reached
	// reg numbers this registration: a target registered again after it
	// left, or another one at the same address, gets a new number.
	reg uint64

	state       string // initial, healthy, unhealthy, draining
	reason      string
	description string
	ok, fail    int // consecutive health check results

	inflight int
	gen      int // bumped on every change that voids pending timers and checks
	timer    simclock.Timer
	drain    simclock.Timer
	waiters  []func() // called once draining ends

	requests, errors5xx int64
	// failures counts the data plane's own 502/504 answers by their cause
	// (the transport error), so a failed request says what happened.
	failures map[string]int64
}

// ELBv2 target states and the reasons the sandbox gives.
const (
	StateInitial   = "initial"
	StateHealthy   = "healthy"
	StateUnhealthy = "unhealthy"
	StateUnused    = "unused"
	StateDraining  = "draining"

	ReasonRegistration   = "Elb.RegistrationInProgress"
	ReasonInitialCheck   = "Elb.InitialHealthChecking"
	ReasonFailed         = "Target.FailedHealthChecks"
	ReasonTimeout        = "Target.Timeout"
	ReasonCodeMismatch   = "Target.ResponseCodeMismatch"
	ReasonNotRegistered  = "Target.NotRegistered"
	ReasonNotInUse       = "Target.NotInUse"
	ReasonDeregistration = "Target.DeregistrationInProgress"
)

func (m *member) stop() {
	m.gen++
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
	if m.drain != nil {
		m.drain.Stop()
		m.drain = nil
	}
}

func (m *member) set(state, reason, description string) bool {
	changed := m.state != state || m.reason != reason
	m.state, m.reason, m.description = state, reason, description
	return changed
}

// probe is one health check's settings.
type probe struct {
	tcp                bool
	https              bool
	path               string
	port               int // 0: the member's own port
	timeout, interval  time.Duration
	healthy, unhealthy int
	matcher            string // "200", "200-299", "200,202"
}

// result is one health check's outcome.
type result struct {
	ok          bool
	reason      string // why it failed
	description string
}

// pool is what members belong to: a target group or a classic load
// balancer. Its methods run under the owner's lock.
type pool interface {
	// probeLocked returns the current health check, false when no check
	// should run (no listener uses the target group).
	probeLocked() (probe, bool)
	// resultLocked applies a check's result to m and returns callbacks to
	// run once the lock is released.
	resultLocked(m *member, r result) []func()
	// resource names it in events: a target group's ARN, a classic load
	// balancer's name.
	resource() string
}

// checkLaterLocked schedules m's next health check d from now.
func (b *Balancers) checkLaterLocked(p pool, m *member, d time.Duration) {
	gen := m.gen
	if m.timer != nil {
		m.timer.Stop()
	}
	m.timer = b.after(d, func() []func() {
		if m.gen != gen {
			return nil
		}
		pr, ok := p.probeLocked()
		if !ok {
			return nil
		}
		port := pr.port
		if port == 0 {
			port = m.port
		}
		addr := net.JoinHostPort(m.ip, strconv.Itoa(port))
		b.wg.Go(func() {
			r := b.check(pr, addr)
			b.mu.Lock()
			var calls []func()
			if !b.closed && m.gen == gen {
				calls = p.resultLocked(m, r)
				b.checkLaterLocked(p, m, pr.interval)
				outcome := "ok"
				if !r.ok {
					outcome = r.reason
				}
				b.events.AppendData(eventlog.Event{Service: "elasticloadbalancing", Kind: EvHealthCheck, Resource: p.resource(), Instance: m.id, Result: outcome})
			}
			b.mu.Unlock()
			for _, c := range calls {
				c()
			}
		})
		return nil
	})
}

// check sends one health check: a GET of the path (or a TCP connect),
// bounded by the check's timeout in real time (a check is transport: the
// simulated clock paces the checks, not the wire).
func (b *Balancers) check(pr probe, addr string) result {
	ctx, cancel := context.WithTimeout(b.ctx, pr.timeout)
	defer cancel()
	if pr.tcp {
		c, err := b.dial(ctx, "tcp", addr)
		if err != nil {
			return failure(ctx, err)
		}
		_ = c.Close()
		return result{ok: true}
	}
	scheme := "http"
	if pr.https {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+pr.path, nil)
	if err != nil {
		return result{reason: ReasonFailed, description: "Health checks failed"}
	}
	req.Header.Set("User-Agent", "ELB-HealthChecker/2.0")
	resp, err := b.client.Do(req)
	if err != nil {
		return failure(ctx, err)
	}
	_ = resp.Body.Close()
	if !matches(pr.matcher, resp.StatusCode) {
		return result{reason: ReasonCodeMismatch, description: fmt.Sprintf("Health checks failed with these codes: [%d]", resp.StatusCode)}
	}
	return result{ok: true}
}

func failure(ctx context.Context, err error) result {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return result{reason: ReasonTimeout, description: "Request timed out"}
	}
	return result{reason: ReasonFailed, description: "Health checks failed"}
}

// matches reports whether code satisfies a matcher: codes and ranges
// separated by commas ("200", "200-299", "200,202").
func matches(matcher string, code int) bool {
	for part := range strings.SplitSeq(matcher, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		l, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		h := l
		if isRange {
			if h, err = strconv.Atoi(hi); err != nil {
				continue
			}
		}
		if code >= l && code <= h {
			return true
		}
	}
	return false
}

// validMatcher checks an HttpCode matcher: 200 to 499, as AWS allows for
// HTTP target groups.
func validMatcher(matcher string) bool {
	if matcher == "" {
		return false
	}
	for part := range strings.SplitSeq(matcher, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		for i, s := range []string{lo, hi} {
			if i == 1 && !isRange {
				break
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 200 || n > 499 {
				return false
			}
		}
	}
	return true
}

// step applies a result to a member's counters and says which state the
// thresholds put it in: "" when it stays where it is.
func step(m *member, pr probe, r result) string {
	if r.ok {
		m.ok, m.fail = m.ok+1, 0
	} else {
		m.ok, m.fail = 0, m.fail+1
	}
	switch {
	case r.ok && m.state != StateHealthy && m.ok >= pr.healthy:
		return StateHealthy
	case !r.ok && m.state != StateUnhealthy && m.fail >= pr.unhealthy:
		return StateUnhealthy
	}
	return ""
}
