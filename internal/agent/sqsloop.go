package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptrace"
	"sync/atomic"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

const (
	// sqsCleanupBound bounds deleting the last messages and removing the
	// per-instance queue once the termination has completed.
	sqsCleanupBound = 30 * time.Second
	// sqsCallBound bounds one Delete or Release.
	sqsCallBound = 30 * time.Second
	// receiveRetry is the first wait after a failed receive (doubling up
	// to maxBackoff).
	receiveRetry = time.Second
	// sweepBound bounds the last look for this instance's own messages on
	// a shared queue once its termination has completed (sweepOwn).
	sweepBound = 5 * time.Second
	// sweepWait is the long-poll wait of each receive of that look.
	sweepWait = time.Second
)

// sqsLoop is the loop's state for source sqs; only Run's goroutine
// touches it.
type sqsLoop struct {
	q       Queue
	retry   backoff
	notices chan notice
	stop    context.CancelFunc // stops the receiver after its current receive
	abort   context.CancelFunc // also ends the current receive
	recv    chan struct{}      // closed when the receiver has returned
	keep    *time.Ticker       // keeps held messages hidden; nil until the queue is open
	// keepEvery is keep's period: sqs.visibility_timeout/3.
	keepEvery time.Duration
	held      map[lifecycle.Key]map[string]heldMessage
	got       map[lifecycle.Key]bool // a message for the key arrived
	// lost are keys whose message this agent received but no longer holds
	// a current receipt handle for (ErrStaleReceipt): deleting it needs a
	// fresh receive, by the receiver or by sweepOwn.
	lost   map[lifecycle.Key]bool
	tokens map[lifecycle.Key]string
	fatal  error // the queue cannot be used; Run returns it
}

// notice is a message for this instance's lifecycle action.
type notice struct {
	m  Message
	n  Notice
	at time.Time // when the receive that brought it started
}

// heldMessage is a message of this instance held until its action ends.
type heldMessage struct {
	m Message
	// hidden is until when the message surely stays hidden with m's
	// receipt handle: sqs.visibility_timeout after the start of the call
	// (receive or keep) that hid it last, which SQS handled later.
	hidden time.Time
}

func newSQSLoop(interval time.Duration) *sqsLoop {
	return &sqsLoop{
		retry:   backoff{interval: interval},
		notices: make(chan notice),
		held:    make(map[lifecycle.Key]map[string]heldMessage),
		got:     make(map[lifecycle.Key]bool),
		lost:    make(map[lifecycle.Key]bool),
		tokens:  make(map[lifecycle.Key]string),
	}
}

// noticeC returns the channel of this instance's messages; nil (never
// ready) unless the source is sqs.
func (l *loop) noticeC() <-chan notice {
	if l.sqs == nil {
		return nil
	}
	return l.sqs.notices
}

// keepC returns the channel that says when to keep the held messages
// hidden; nil (never ready) until the queue is open and while no message
// is held, so that an idle agent does not wake for it (a ticker whose
// channel nobody waits on wakes nothing).
func (l *loop) keepC() <-chan time.Time {
	if l.sqs == nil || l.sqs.keep == nil || len(l.sqs.held) == 0 {
		return nil
	}
	return l.sqs.keep.C
}

// keepHeld hides the held messages for another visibility timeout, so
// that no other agent receives them (which would make this agent's
// receipt handles stale: SQS then accepts DeleteMessage and deletes
// nothing).
func (l *loop) keepHeld() {
	s := l.sqs
	if s == nil || s.q == nil {
		return
	}
	for key, msgs := range s.held {
		for id, h := range msgs {
			if l.keep(key, h.m) {
				continue
			}
			delete(msgs, id)
			if len(msgs) == 0 {
				delete(s.held, key)
			}
		}
	}
}

// keep keeps held message m of key hidden and reports whether its receipt
// handle is still current. When it is not (ErrStaleReceipt: the message's
// visibility lapsed, say while the agent was starved of CPU, and another
// agent received it since), m can no longer be deleted with it: the key is
// marked lost, so that the message is looked for again before the agent
// exits (sweepOwn), unless the receiver brings it back first.
func (l *loop) keep(key lifecycle.Key, m Message) bool {
	s := l.sqs
	cctx, cancel := context.WithTimeout(context.WithoutCancel(l.ctx), sqsCallBound)
	defer cancel()
	at := time.Now()
	err := s.q.Keep(cctx, m)
	switch {
	case err == nil:
		if h, ok := s.held[key][m.ID]; ok && h.m.Receipt == m.Receipt {
			h.hidden = at.Add(time.Duration(l.a.cfg.SQS.VisibilityTimeout))
			s.held[key][m.ID] = h
		}
		return true
	case errors.Is(err, ErrStaleReceipt):
		l.log.Warn("held message received elsewhere since; it is looked for again", "message_id", m.ID, keyHook, key.Hook, keyErr, err)
		s.lost[key] = true
		return false
	default:
		l.log.Warn("keep hidden message failed", "message_id", m.ID, keyErr, err)
		return true
	}
}

// token returns the LifecycleActionToken a message gave for key, if any.
func (l *loop) token(key lifecycle.Key) string {
	if l.sqs == nil {
		return ""
	}
	return l.sqs.tokens[key]
}

// messageTerminating reports whether a terminate message for this
// instance arrived (and the group is known).
func (l *loop) messageTerminating() bool {
	if l.sqs == nil || l.group == "" {
		return false
	}
	for key := range l.sqs.got {
		if key.Transition == lifecycle.TransitionTerminating {
			return true
		}
	}
	return false
}

// openQueue opens the queue once the instance id is known and starts the
// receiver.
func (l *loop) openQueue() {
	s := l.sqs
	if s == nil || s.q != nil || s.fatal != nil || l.instanceID == "" || !s.retry.due() {
		return
	}
	q, err := l.a.inbox.Open(l.ctx, l.instanceID)
	switch {
	case err == nil:
	case errors.Is(err, ErrSharedRedrive):
		s.fatal = fmt.Errorf("sqs.queue_url %s: %w", l.a.cfg.SQS.QueueURL, err)
		return
	case l.ctx.Err() != nil:
		return
	default:
		l.log.Warn("open queue failed", keyErr, err, keyRetryIn, s.retry.fail())
		return
	}
	s.retry.ok()
	s.q = q
	// Three chances to keep a held message hidden before it shows again,
	// counted from when the first message is held (onNotice).
	s.keepEvery = max(time.Duration(l.a.cfg.SQS.VisibilityTimeout)/3, 100*time.Millisecond)
	s.keep = time.NewTicker(s.keepEvery)
	l.log.Info("receiving lifecycle notifications", "queue_url", l.a.cfg.SQS.QueueURL, "topic_arn", l.a.cfg.SQS.TopicARN)
	rctx, cancel := context.WithCancel(l.ctx)
	pctx, abort := context.WithCancel(context.WithoutCancel(l.ctx))
	s.stop, s.abort, s.recv = cancel, abort, make(chan struct{})
	r := receiver{
		log: l.log, q: q, instanceID: l.instanceID, shared: l.a.cfg.SQS.QueueURL != "", out: s.notices,
		bound: time.Duration(l.a.cfg.SQS.WaitTime) + sqsCallBound,
	}
	if waiting := l.a.waiting; waiting != nil {
		quiet := &l.a.quiet
		r.quiet = quiet
		r.trace = &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) {
			if quiet.Load() {
				waiting()
			}
		}}
	}
	// Not in l.wg: Run stops it after the actions' goroutines have
	// returned, once it knows whether the termination has completed
	// (stopReceiving).
	go func() {
		defer close(s.recv)
		defer abort()
		r.run(rctx, pctx)
	}()
}

// stopReceiving stops the receiver and waits for it; Run calls it after
// its other goroutines have returned. On a shared queue, once the
// termination has completed, the receiver's current long poll is let
// finish (at most sqs.wait_time), and what it brings handed back or swept:
// cancelled, the poll's messages would stay hidden for
// sqs.visibility_timeout, from this agent's last look for its own messages
// and from the other agents. Otherwise the poll is cancelled: a
// per-instance queue is deleted next, and when the agent merely stops the
// next agent receives the messages after the visibility timeout (the
// journal keeps any step from running twice).
func (l *loop) stopReceiving() {
	s := l.sqs
	if s == nil || s.q == nil {
		return
	}
	s.stop()
	if l.a.cfg.SQS.QueueURL == "" || !l.terminated() {
		s.abort()
	}
	<-s.recv
}

// receiver long-polls the queue for Run.
type receiver struct {
	log        *slog.Logger
	q          Queue
	instanceID string
	shared     bool
	out        chan<- notice
	bound      time.Duration // bounds one receive
	// trace, when set, goes with every receive: its WroteRequest calls
	// Deps.Waiting while quiet holds, once the long poll is sent. The
	// receiver clears quiet when it gets a notification for this
	// instance, before the loop can.
	trace *httptrace.ClientTrace
	quiet *atomic.Bool
}

// run long-polls until ctx ends, each receive on a context derived from
// poll (which ends only when the receive must be abandoned), sending this
// instance's lifecycle action messages to out. On a shared queue another
// instance's message is handed back at once, in one call for the whole
// batch (never deleted); on the per-instance queue it is deleted. Test
// notifications, bodies that cannot be parsed (logged with the body) and
// this instance's notifications that are not lifecycle actions are
// deleted. Messages of this instance not yet passed on when ctx ends are
// handed back, so that the next agent receives them at once.
func (r receiver) run(ctx, poll context.Context) {
	log, q := r.log, r.q
	wait := receiveRetry
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(poll, r.bound)
		if r.trace != nil {
			pctx = httptrace.WithClientTrace(pctx, r.trace)
		}
		at := time.Now()
		msgs, err := q.Receive(pctx, 0)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("receive messages failed", keyErr, err, keyRetryIn, wait)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			wait = min(2*wait, maxBackoff)
			continue
		}
		wait = receiveRetry
		var back []Message
		var mine []notice
		for _, m := range msgs {
			n, err := ParseMessage(m.Body)
			switch {
			case err != nil:
				log.Warn("unparsable message deleted", "message_id", m.ID, keyErr, err, "body", truncate(m.Body, 256))
				settle(ctx, log, q.Delete, m, "delete")
			case n.Kind == NoticeTest:
				log.Info("test notification deleted", "message_id", m.ID, keyGroup, n.Group)
				settle(ctx, log, q.Delete, m, "delete")
			case n.InstanceID != r.instanceID && r.shared:
				log.Debug("another instance's message handed back", "message_id", m.ID, keyInstance, n.InstanceID)
				back = append(back, m)
			case n.InstanceID != r.instanceID:
				log.Warn("another instance's message on this instance's queue deleted", "message_id", m.ID, "for", n.InstanceID)
				settle(ctx, log, q.Delete, m, "delete")
			case n.Kind != NoticeAction:
				log.Info("notification that is not a lifecycle action deleted", "message_id", m.ID, "event", n.Event)
				settle(ctx, log, q.Delete, m, "delete")
			default:
				mine = append(mine, notice{m: m, n: n, at: at})
			}
		}
		release(ctx, log, q, back)
		if len(mine) > 0 && r.quiet != nil {
			r.quiet.Store(false)
		}
		for i, nt := range mine {
			select {
			case r.out <- nt:
			case <-ctx.Done():
				rest := make([]Message, 0, len(mine)-i)
				for _, nt := range mine[i:] {
					rest = append(rest, nt.m)
				}
				release(ctx, log, q, rest)
				return
			}
		}
	}
}

// settle deletes or keeps m on a bounded context that outlives ctx.
func settle(ctx context.Context, log *slog.Logger, op func(context.Context, Message) error, m Message, what string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sqsCallBound)
	defer cancel()
	if err := op(cctx, m); err != nil {
		log.Warn(what+" message failed", "message_id", m.ID, keyErr, err)
	}
}

// release hands ms back on a bounded context that outlives ctx.
func release(ctx context.Context, log *slog.Logger, q Queue, ms []Message) {
	if len(ms) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sqsCallBound)
	defer cancel()
	if err := q.Release(cctx, ms); err != nil {
		log.Warn("hand back messages failed; they are visible again after sqs.visibility_timeout", "message_count", len(ms), keyErr, err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// onNotice takes in a lifecycle action message for this instance: it is
// held until the action has ended, its token is used to complete, and it
// starts the launch or terminate flow as the IMDS source would.
func (l *loop) onNotice(nt notice) {
	s, n := l.sqs, nt.n
	key := lifecycle.Key{Instance: l.instanceID, Transition: n.Transition, Hook: n.Hook}
	if len(s.held) == 0 && s.keep != nil {
		// Nothing was held: the ticker ran unwatched. The first keep is
		// due a period after this message was hidden.
		s.keep.Reset(s.keepEvery)
	}
	if s.held[key] == nil {
		s.held[key] = make(map[string]heldMessage)
	}
	_, again := s.held[key][nt.m.ID]
	// The latest receipt deletes it.
	s.held[key][nt.m.ID] = heldMessage{m: nt.m, hidden: nt.at.Add(time.Duration(l.a.cfg.SQS.VisibilityTimeout))}
	s.got[key] = true
	delete(s.lost, key)
	if again {
		return
	}
	l.log.Info("lifecycle message received", keyHook, n.Hook, keyTransition, string(n.Transition), keyToken, n.Token, "message_id", nt.m.ID)
	if n.Token != "" && s.tokens[key] == "" {
		s.tokens[key] = n.Token
	}
	if l.group == "" && n.Group != "" {
		l.group, l.hooksOK = n.Group, false
		l.log = l.a.log.With(keyInstance, l.instanceID, keyGroup, n.Group)
		l.a.update(func(s *snapshot) { s.Group = n.Group })
	}
	// The message says the instance is in Pending:Wait, unless Auto
	// Scaling said it is past that (a message delivered late, or again):
	// decide takes it as Pending:Wait, and the lifecycle state stays what
	// Auto Scaling said, so it is never reported for an instance in
	// service.
	if n.Transition == lifecycle.TransitionLaunching && (l.state == "" || l.state == statePending) {
		l.launchMessage = true
	}
}

// settleMessages deletes the held messages whose action has ended, or for
// which no action will run.
func (l *loop) settleMessages() {
	s := l.sqs
	if s == nil || s.q == nil {
		return
	}
	for key, msgs := range s.held {
		st := l.a.tracked(key)
		switch {
		case st != nil && !l.a.isDone(st):
			continue
		case st == nil && key.Transition == lifecycle.TransitionLaunching && !l.launched && l.term == nil && (l.state == "" || pendingState(l.state)):
			continue // the launch has not started yet
		case st == nil && key.Transition == lifecycle.TransitionTerminating && l.term == nil:
			continue
		}
		if key.Transition == lifecycle.TransitionLaunching {
			l.describe = true // learn the state the launch led to
		}
		for _, h := range msgs {
			// SQS accepts a delete with a stale receipt handle and deletes
			// nothing. A message whose visibility may have lapsed (the
			// agent was starved of CPU past its keeps) is kept first:
			// that fails on a stale handle (the key is then lost, and the
			// message looked for again) and otherwise leaves it hidden
			// until the delete.
			if !time.Now().Before(h.hidden) && !l.keep(key, h.m) {
				continue
			}
			settle(l.ctx, l.log, s.q.Delete, h.m, "delete")
			l.log.Info("lifecycle message deleted", keyHook, key.Hook, keyTransition, string(key.Transition), "message_id", h.m.ID)
		}
		delete(s.held, key)
	}
}

// closeQueue runs when Run returns, after every goroutine has. Once the
// termination has completed it deletes the messages still held, on a
// shared queue looks once more for this instance's messages that never
// reached it (sweepOwn), and removes the per-instance queue and its
// subscription. Otherwise (the agent stops, or a drain Auto Scaling has
// not confirmed) it hands the held messages back, so that the next agent
// receives them at once.
func (l *loop) closeQueue() {
	s := l.sqs
	if s == nil || s.q == nil {
		return
	}
	s.keep.Stop()
	defer func() { s.q = nil }()
	if !l.terminated() {
		var ms []Message
		for _, msgs := range s.held {
			for _, h := range msgs {
				ms = append(ms, h.m)
			}
		}
		release(l.ctx, l.log, s.q, ms)
		return
	}
	l.settleMessages()
	if l.a.cfg.SQS.QueueURL != "" {
		l.sweepOwn()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.ctx), sqsCleanupBound)
	defer cancel()
	if err := s.q.Remove(ctx); err != nil {
		l.log.Warn("remove queue failed", keyErr, err)
		return
	}
	if l.a.cfg.SQS.TopicARN != "" {
		l.log.Info("instance queue removed")
	}
}

// terminated reports whether Auto Scaling confirmed the termination and
// every terminate action has ended.
func (l *loop) terminated() bool {
	if l.term == nil || !l.term.closed {
		return false
	}
	for _, st := range l.term.actions {
		if !l.a.isDone(st) {
			return false
		}
	}
	return true
}

// sweepOwn deletes, from the shared queue, this instance's messages for
// terminate actions that ended before their message reached the agent
// (it learned of the termination from Auto Scaling at start, and the
// plan was quick), or whose receipt handle went stale (lost). Left there,
// such a message would be received and handed back by every other agent
// until the queue's retention period drops it. It receives for at most sweepBound, handing the other
// instances' messages back at once as the receiver does (holding them
// would hide them from their own agents, which may be sweeping too).
// Every message of this instance is moot now and is deleted.
func (l *loop) sweepOwn() {
	s := l.sqs
	missing := make(map[lifecycle.Key]bool)
	for _, st := range l.term.actions {
		if st.key.Hook != NoHook && (!s.got[st.key] || s.lost[st.key]) {
			missing[st.key] = true
		}
	}
	if len(missing) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.ctx), sweepBound)
	defer cancel()
	for len(missing) > 0 && ctx.Err() == nil {
		msgs, err := s.q.Receive(ctx, sweepWait)
		if err != nil {
			if ctx.Err() == nil {
				l.log.Warn("receive messages failed", keyErr, err)
			}
			break
		}
		var others []Message
		for _, m := range msgs {
			n, err := ParseMessage(m.Body)
			if err != nil || n.InstanceID != l.instanceID || n.Kind != NoticeAction {
				others = append(others, m)
				continue
			}
			settle(l.ctx, l.log, s.q.Delete, m, "delete")
			key := lifecycle.Key{Instance: l.instanceID, Transition: n.Transition, Hook: n.Hook}
			delete(missing, key)
			l.log.Info("lifecycle message deleted", keyHook, n.Hook, keyTransition, string(n.Transition), "message_id", m.ID)
		}
		release(l.ctx, l.log, s.q, others)
	}
	if len(missing) > 0 {
		l.log.Info("lifecycle messages not found on the shared queue; the queue's retention period drops them", "missing", len(missing))
	}
}

// sqsFatal returns the error that stops Run: a shared queue with a
// RedrivePolicy.
func (l *loop) sqsFatal() error {
	if l.sqs == nil {
		return nil
	}
	return l.sqs.fatal
}

// tracked returns the action handled under key, nil if none.
func (a *Agent) tracked(key lifecycle.Key) *actionState {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := len(a.actions) - 1; i >= 0; i-- {
		if a.actions[i].key == key {
			return a.actions[i]
		}
	}
	return nil
}

func (a *Agent) isDone(st *actionState) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return st.done
}

// sqsSource reports whether cfg reads a queue.
func sqsSource(cfg config.Agent) bool { return cfg.Source == config.SourceSQS }
