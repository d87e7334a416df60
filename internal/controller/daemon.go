package controller

import (
	"context"
	"sync"
	"time"
)

// Message is one message of the daemon's queue.
type Message struct {
	Body   string
	Handle string
}

// Queue is the daemon's SQS queue, fed by the groups' notification topic
// or an EventBridge rule.
type Queue interface {
	// Receive long-polls for up to wait.
	Receive(ctx context.Context, wait time.Duration) ([]Message, error)
	// Delete deletes a message once its groups are reconciled.
	Delete(ctx context.Context, m Message) error
}

// DaemonConfig configures Run.
type DaemonConfig struct {
	// Interval is the periodic reconcile of every opted-in group (default
	// one minute).
	Interval time.Duration
	// Wait is the long poll of each Receive (default 20 s).
	Wait time.Duration
}

// Defaults of DaemonConfig.
const (
	DefaultInterval = time.Minute
	DefaultWait     = 20 * time.Second
	// retryAfter is the wait after a failed Receive or reconcile.
	retryAfter = 5 * time.Second
	// deleteTimeout bounds the deletion of a message on shutdown.
	deleteTimeout = 10 * time.Second
)

// Run is the daemon: it reads q (nil: periodic reconciles only),
// reconciles the groups each message names, every opted-in group every
// Interval, and a group again when an earlier reconcile of it failed. A
// burst of events for one group becomes one or two reconciles (a group
// asked for while it is being reconciled is reconciled once more
// afterwards); different groups are reconciled at once. A message is
// deleted when the reconciles it asked for have ended (a failed one is
// retried by the daemon and the periodic reconcile). Run returns when ctx
// ends, after its reconciles have returned.
func (c *Controller) Run(ctx context.Context, q Queue, dc DaemonConfig) error {
	if dc.Interval <= 0 {
		dc.Interval = DefaultInterval
	}
	if dc.Wait <= 0 {
		dc.Wait = DefaultWait
	}
	d := &dispatcher{c: c, ctx: ctx, state: map[string]*groupRun{}}
	var wg sync.WaitGroup
	defer d.wg.Wait() // after the receiver, which asks for reconciles
	defer wg.Wait()
	if q != nil {
		wg.Go(func() { d.receive(q, dc.Wait) })
	}
	t := time.NewTicker(dc.Interval)
	defer t.Stop()
	for {
		d.all()
		if err := d.c.SweepQueues(ctx); err != nil && ctx.Err() == nil {
			d.c.log.Error("queues of gone instances not swept", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// dispatcher runs at most one reconcile per group at a time, and one more
// when the group was asked for meanwhile.
type dispatcher struct {
	c   *Controller
	ctx context.Context
	wg  sync.WaitGroup

	mu    sync.Mutex
	state map[string]*groupRun
}

type groupRun struct {
	running, again bool
	waiters        []chan struct{} // closed when the run that covers them ends
}

// all asks for every opted-in group.
func (d *dispatcher) all() {
	names, err := d.c.resolve(d.ctx, Trigger{All: true})
	if err != nil {
		if d.ctx.Err() == nil {
			d.c.log.Error("opted-in groups not listed", "err", err)
		}
		return
	}
	for _, g := range names {
		d.ask(g)
	}
}

// ask schedules a reconcile of group; the channel closes when one that
// started after the call has ended.
func (d *dispatcher) ask(group string) <-chan struct{} {
	done := make(chan struct{})
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx.Err() != nil {
		close(done)
		return done
	}
	r, ok := d.state[group]
	if !ok {
		r = &groupRun{}
		d.state[group] = r
	}
	r.waiters = append(r.waiters, done)
	if r.running {
		r.again = true
		return done
	}
	r.running = true
	d.wg.Go(func() { d.loop(group, r) })
	return done
}

func (d *dispatcher) loop(group string, r *groupRun) {
	for {
		d.mu.Lock()
		waiters := r.waiters
		r.waiters, r.again = nil, false
		d.mu.Unlock()
		err := d.c.Reconcile(d.ctx, group)
		if err != nil && d.ctx.Err() == nil {
			d.c.log.Error("reconcile failed", "group", group, "err", err, "retry_in", retryAfter.String())
		}
		for _, w := range waiters {
			close(w)
		}
		d.mu.Lock()
		if err != nil && d.ctx.Err() == nil {
			r.again = true
		}
		if !r.again || d.ctx.Err() != nil {
			r.running = false
			for _, w := range r.waiters {
				close(w)
			}
			r.waiters = nil
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
		if err != nil && sleep(d.ctx, retryAfter) != nil {
			d.mu.Lock()
			r.running = false
			for _, w := range r.waiters {
				close(w)
			}
			r.waiters = nil
			d.mu.Unlock()
			return
		}
	}
}

// receive reads q until ctx ends.
func (d *dispatcher) receive(q Queue, wait time.Duration) {
	log := d.c.log
	var pending sync.WaitGroup
	defer pending.Wait()
	for d.ctx.Err() == nil {
		ms, err := q.Receive(d.ctx, wait)
		if err != nil {
			if d.ctx.Err() != nil {
				return
			}
			log.Error("queue not read", "err", err, "retry_in", retryAfter.String())
			_ = sleep(d.ctx, retryAfter)
			continue
		}
		for _, m := range ms {
			t, err := ParseEvent([]byte(m.Body))
			if err != nil {
				log.Warn("message not understood (the groups it names, if any, are reconciled)", "err", err)
			}
			var dones []<-chan struct{}
			if t.All {
				names, err := d.c.resolve(d.ctx, t)
				if err == nil {
					t.Groups = names
				}
			}
			for _, g := range t.Groups {
				dones = append(dones, d.ask(g))
			}
			pending.Go(func() {
				for _, ch := range dones {
					<-ch
				}
				dctx, cancel := context.WithTimeout(context.WithoutCancel(d.ctx), deleteTimeout)
				defer cancel()
				if err := q.Delete(dctx, m); err != nil {
					log.Warn("message not deleted", "err", err)
				}
			})
		}
	}
}
