package balancers

import (
	"maps"
	"net"
	"slices"
	"strconv"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
)

// Pick is where one request goes: a target's address, or none (Addr ""),
// when the load balancer has no healthy target. Call Done once the
// request has ended.
type Pick struct {
	// Addr is host:port of the target; "" when there is none.
	Addr string
	// Target is the target's id (an instance id or an IP address).
	Target string
	// Registration identifies this registration of the target: a target
	// registered again after it left, or another one at the same address
	// (a private IP the sandbox handed out again), has another. The data
	// plane keeps its connections per registration, so a request never
	// travels over a connection opened to an earlier backend.
	Registration uint64
	// Classic is true for a classic load balancer (its 503 differs).
	Classic bool
	// Error is why the data plane itself answered 502 or 504 (the
	// transport's error reaching the target); "" when the target answered.
	Error string

	b        *Balancers
	resource string
	l        *listener
	c        *counts
	m        *member
}

// Route picks the target for a request that arrived on the listener with
// this data-plane key: round robin over the healthy targets, never a
// draining one. ok is false when the key serves nothing any more.
func (b *Balancers) Route(key string) (p Pick, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.keys[key]
	if !ok || b.closed {
		return Pick{}, false
	}
	p = Pick{b: b}
	var members []*member
	var next *int
	port := r.port
	switch {
	case r.listener != nil:
		p.l, p.resource = r.listener, r.listener.LoadBalancerARN
		r.listener.requests++
		tg := b.tgs[r.listener.TargetGroupARN]
		if tg != nil {
			members, next = tg.targets, &tg.next
		}
	default:
		p.c, p.resource, p.Classic = r.counts, r.classic.Name, true
		members, next = r.classic.instances, &r.classic.next
	}
	healthy := slices.DeleteFunc(slices.Clone(members), func(m *member) bool { return m.state != StateHealthy })
	if len(healthy) == 0 {
		return p, true
	}
	m := healthy[*next%len(healthy)]
	*next++
	if port == 0 {
		port = m.port
	}
	m.inflight++
	m.requests++
	p.m, p.Addr, p.Target, p.Registration = m, net.JoinHostPort(m.ip, strconv.Itoa(port)), m.id, m.reg
	return p, true
}

// Done records the request's outcome (its status, 503 when there was no
// target, 502 when the target failed, with p.Error saying why) and, for a
// draining target whose last request this was, completes its
// deregistration.
func (p Pick) Done(status int) {
	if p.b == nil {
		return
	}
	b := p.b
	b.mu.Lock()
	var calls []func()
	if p.l != nil {
		if status >= 500 {
			p.l.errors5xx++
		}
		if p.m == nil {
			p.l.noTarget++
		}
	}
	if p.c != nil {
		p.c.requests++
		if status >= 500 {
			p.c.errors5xx++
		}
		if p.m == nil {
			p.c.noTarget++
		}
	}
	if m := p.m; m != nil {
		m.inflight--
		if status >= 500 {
			m.errors5xx++
		}
		if p.Error != "" {
			if m.failures == nil {
				m.failures = map[string]int64{}
			}
			m.failures[p.Error]++
		}
		if m.state == StateDraining && m.inflight == 0 && !b.closed {
			calls = b.finishDrainedLocked(m)
		}
	}
	attrs := map[string]string{"status": strconv.Itoa(status)}
	if p.Error != "" {
		attrs["error"] = p.Error
	}
	b.events.AppendData(eventlog.Event{Service: "elasticloadbalancing", Kind: EvRequest, Resource: p.resource, Instance: p.Target, Attrs: attrs})
	b.mu.Unlock()
	run(calls)
}

// finishDrainedLocked completes the deregistration of a draining member
// wherever it drains.
func (b *Balancers) finishDrainedLocked(m *member) []func() {
	for _, tg := range b.tgs {
		if slices.Contains(tg.targets, m) {
			return b.finishLocked(tg, m)
		}
	}
	for _, c := range b.classics {
		if slices.Contains(c.instances, m) {
			return b.finishInstanceLocked(c, m)
		}
	}
	return nil
}

// TargetStats are one target's data-plane counts.
type TargetStats struct {
	ID        string `json:"id"`
	Address   string `json:"address"`
	State     string `json:"state"`
	InFlight  int    `json:"in_flight"`
	Requests  int64  `json:"requests"`
	Errors5xx int64  `json:"errors_5xx"`
	// Failures counts the 502/504 answers the data plane gave for this
	// target by their cause (the error reaching it).
	Failures map[string]int64 `json:"failures,omitempty"`
}

// ListenerStats are one listener's data-plane counts.
type ListenerStats struct {
	// Key is the listener's ARN, or classic/<name>/<port>.
	Key string `json:"key"`
	// Port is the listener's own port (as in DescribeListeners); Address
	// is the loopback address clients connect to.
	Port      int    `json:"port"`
	Address   string `json:"address"`
	Requests  int64  `json:"requests"`
	Errors5xx int64  `json:"errors_5xx"`
	// NoTarget counts the requests answered 503 for want of a healthy target.
	NoTarget int64 `json:"no_target"`
}

// BalancerStats are a load balancer's data-plane counts.
type BalancerStats struct {
	Name      string          `json:"name"`
	Type      string          `json:"type"` // application or classic
	ARN       string          `json:"arn,omitempty"`
	DNSName   string          `json:"dns_name"`
	Listeners []ListenerStats `json:"listeners"`
	Targets   []TargetStats   `json:"targets"`
}

// Stats returns every load balancer's listeners, addresses and counts,
// sorted by name.
func (b *Balancers) Stats() []BalancerStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []BalancerStats
	for _, lb := range b.lbs {
		s := BalancerStats{Name: lb.Name, Type: "application", ARN: lb.ARN, DNSName: lb.DNSName, Listeners: []ListenerStats{}, Targets: []TargetStats{}}
		seen := map[*member]bool{}
		for _, l := range b.listenersOfLocked(lb.ARN) {
			s.Listeners = append(s.Listeners, ListenerStats{Key: l.ARN, Port: l.Port, Address: l.Address, Requests: l.requests, Errors5xx: l.errors5xx, NoTarget: l.noTarget})
			if tg := b.tgs[l.TargetGroupARN]; tg != nil {
				for _, m := range tg.targets {
					if !seen[m] {
						seen[m] = true
						s.Targets = append(s.Targets, memberStats(m, m.port))
					}
				}
			}
		}
		out = append(out, s)
	}
	for _, c := range b.classics {
		s := BalancerStats{Name: c.Name, Type: "classic", DNSName: c.DNSName, Listeners: []ListenerStats{}, Targets: []TargetStats{}}
		for _, l := range c.Listeners {
			n := c.counts[l.LoadBalancerPort]
			s.Listeners = append(s.Listeners, ListenerStats{Key: c.key(l.LoadBalancerPort), Port: l.LoadBalancerPort, Address: l.Address,
				Requests: n.requests, Errors5xx: n.errors5xx, NoTarget: n.noTarget})
		}
		for _, m := range c.instances {
			s.Targets = append(s.Targets, memberStats(m, c.Listeners[0].InstancePort))
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y BalancerStats) int {
		if x.Name != y.Name {
			if x.Name < y.Name {
				return -1
			}
			return 1
		}
		if x.Type < y.Type {
			return -1
		}
		return 1
	})
	return out
}

func memberStats(m *member, port int) TargetStats {
	return TargetStats{ID: m.id, Address: net.JoinHostPort(m.ip, strconv.Itoa(port)), State: m.state, InFlight: m.inflight, Requests: m.requests, Errors5xx: m.errors5xx,
		Failures: maps.Clone(m.failures)}
}
