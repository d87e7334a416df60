package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// maxLoggedForeign caps the ids of unparsable shared-queue messages
	// remembered so that each is logged once.
	maxLoggedForeign = 1024
)

// sqsLoop is the loop's state for source sqs; only Run's goroutine
// touches it.
type sqsLoop struct {
	q       Queue
	retry   backoff
	notices chan notice
	stop    context.CancelFunc // stops the receiver
	held    map[lifecycle.Key]map[string]Message
	tokens  map[lifecycle.Key]string
	term    bool  // a terminate message for this instance arrived
	fatal   error // the queue cannot be used; Run returns it
}

// notice is a message for this instance's lifecycle action.
type notice struct {
	m Message
	n Notice
}

func newSQSLoop(interval time.Duration) *sqsLoop {
	return &sqsLoop{
		retry:   backoff{interval: interval},
		notices: make(chan notice),
		held:    make(map[lifecycle.Key]map[string]Message),
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
	return l.sqs != nil && l.sqs.term && l.group != ""
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
	l.log.Info("receiving lifecycle notifications", "queue_url", l.a.cfg.SQS.QueueURL, "topic_arn", l.a.cfg.SQS.TopicARN)
	rctx, cancel := context.WithCancel(l.ctx)
	s.stop = cancel
	shared := l.a.cfg.SQS.QueueURL != ""
	id, log := l.instanceID, l.log
	l.wg.Go(func() { receive(rctx, log, q, id, shared, s.notices) })
}

// receive long-polls q until ctx ends, sending this instance's lifecycle
// action messages to out. On a shared queue another instance's message,
// and one that cannot be parsed, is handed back at once (never deleted);
// on the per-instance queue they are deleted. Test notifications and
// notifications that are not lifecycle actions are deleted.
func receive(ctx context.Context, log *slog.Logger, q Queue, instanceID string, shared bool, out chan<- notice) {
	wait := receiveRetry
	logged := make(map[string]bool)
	for ctx.Err() == nil {
		msgs, err := q.Receive(ctx)
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
		for _, m := range msgs {
			n, err := ParseMessage(m.Body)
			switch {
			case err != nil && shared:
				if !logged[m.ID] && len(logged) < maxLoggedForeign {
					logged[m.ID] = true
					log.Warn("unparsable message on the shared queue; handed back", "message_id", m.ID, keyErr, err, "body", truncate(m.Body, 256))
				}
				settle(ctx, log, q.Release, m, "hand back")
			case err != nil:
				log.Warn("unparsable message deleted", "message_id", m.ID, keyErr, err, "body", truncate(m.Body, 256))
				settle(ctx, log, q.Delete, m, "delete")
			case n.Kind == NoticeTest:
				log.Info("test notification deleted", "message_id", m.ID, keyGroup, n.Group)
				settle(ctx, log, q.Delete, m, "delete")
			case n.InstanceID != instanceID && shared:
				log.Debug("another instance's message handed back", "message_id", m.ID, keyInstance, n.InstanceID)
				settle(ctx, log, q.Release, m, "hand back")
			case n.InstanceID != instanceID:
				log.Warn("another instance's message on this instance's queue deleted", "message_id", m.ID, "for", n.InstanceID)
				settle(ctx, log, q.Delete, m, "delete")
			case n.Kind != NoticeAction:
				log.Info("notification that is not a lifecycle action deleted", "message_id", m.ID, "event", n.Event)
				settle(ctx, log, q.Delete, m, "delete")
			default:
				select {
				case out <- notice{m: m, n: n}:
				case <-ctx.Done():
					return
				}
			}
		}
	}
}

// settle deletes or releases m on a bounded context that outlives ctx.
func settle(ctx context.Context, log *slog.Logger, op func(context.Context, Message) error, m Message, what string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sqsCallBound)
	defer cancel()
	if err := op(cctx, m); err != nil {
		log.Warn(what+" message failed", "message_id", m.ID, keyErr, err)
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
	if s.held[key] == nil {
		s.held[key] = make(map[string]Message)
	}
	_, again := s.held[key][nt.m.ID]
	s.held[key][nt.m.ID] = nt.m // the latest receipt deletes it
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
	switch n.Transition {
	case lifecycle.TransitionLaunching:
		if l.term == nil && l.launching == nil && !l.launched {
			l.state = statePendingWait
			l.a.update(func(s *snapshot) { s.LifecycleState = statePendingWait })
		}
	case lifecycle.TransitionTerminating:
		s.term = true
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
		case st == nil && key.Transition == lifecycle.TransitionLaunching && !l.launched && l.term == nil:
			continue // the launch has not started yet
		case st == nil && key.Transition == lifecycle.TransitionTerminating && l.term == nil:
			continue
		}
		if key.Transition == lifecycle.TransitionLaunching {
			l.describe = true // learn the state the launch led to
		}
		for _, m := range msgs {
			settle(l.ctx, l.log, s.q.Delete, m, "delete")
			l.log.Info("lifecycle message deleted", keyHook, key.Hook, keyTransition, string(key.Transition), "message_id", m.ID)
		}
		delete(s.held, key)
	}
}

// closeQueue runs when Run returns, after every goroutine has: once the
// termination has completed it deletes the messages still held and
// removes the per-instance queue and its subscription.
func (l *loop) closeQueue() {
	s := l.sqs
	if s == nil || s.q == nil {
		return
	}
	s.stop()
	defer func() { s.q = nil }()
	if l.term == nil || !l.term.closed {
		return // drained without a confirmed termination: keep the queue
	}
	for _, st := range l.term.actions {
		if !l.a.isDone(st) {
			return
		}
	}
	l.settleMessages()
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
