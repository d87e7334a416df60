// Package messaging is the sandbox's owner of SQS queues, SNS topics and
// EventBridge buses, rules and targets. They deliver to each other (SNS to
// SQS, EventBridge to SQS, SNS and other buses), and Auto Scaling reaches
// them through Notify and PutAutoScalingEvent, which the sandbox wires
// into the world as its Messaging.
//
// Every change goes through a method of Queues, Topics or Buses (the SQS,
// SNS and EventBridge sides of one Broker) under the broker's one mutex,
// and appends to the sandbox's event log: queue, topic and subscription
// changes to the control stream, messages and deliveries to the data
// stream. Protocol handlers (packages sqs, sns and events) are stateless
// translators from the wire to these methods. The pure matchers (filter
// policies, event patterns, input templates) live in package pattern.
//
// Lock order: world's lock, then the broker's, then the event log's. The
// world may call Notify and PutAutoScalingEvent while holding its own lock
// (PutLifecycleHook checks its notification target synchronously); the
// broker never calls into the world, and the log calls no one.
//
// Lambda functions (SNS lambda subscriptions, EventBridge Lambda targets)
// are reached through the Invoker the sandbox sets, never while the
// broker's lock is held: a delivery is decided under the lock and handed
// to a goroutine of the broker's, which invokes, then takes the lock again
// to record the outcome. So the functions owner's lock is never taken
// inside the broker's (nor the world's).
package messaging

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// Config sets the broker's identity and knobs.
type Config struct {
	Region  string // default us-east-1
	Account string // default 123456789012
	// RelaxLimits lowers every time minimum (queue name reuse, purge
	// interval) to one second.
	RelaxLimits bool
	// Seed makes message ids and receive order repeatable.
	Seed uint64
}

// Broker owns the sandbox's queues, topics and buses. Create it with New;
// stop it with Close, which waits for deliveries in flight.
type Broker struct {
	cfg    Config
	clock  simclock.Clock
	events *eventlog.Log
	log    *slog.Logger

	wg sync.WaitGroup // HTTP deliveries and Lambda invocations in flight

	mu      sync.Mutex
	closed  bool
	invoker Invoker
	rng     *rand.Rand
	sqs     sqsState
	sns     snsState
	bus     busState

	queues *Queues
	topics *Topics
	buses  *Buses
}

// Queues is the SQS side of a Broker.
type Queues struct{ *Broker }

// Topics is the SNS side of a Broker.
type Topics struct{ *Broker }

// Buses is the EventBridge side of a Broker.
type Buses struct{ *Broker }

// New returns an empty broker appending to events (a log of its own when
// nil), on clock (real time when nil).
func New(cfg Config, clock simclock.Clock, events *eventlog.Log, log *slog.Logger) *Broker {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Account == "" {
		cfg.Account = "123456789012"
	}
	if clock == nil {
		clock = simclock.Real{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if events == nil {
		events = eventlog.New(eventlog.Config{}, clock, log)
	}
	b := &Broker{
		cfg: cfg, clock: clock, events: events, log: log,
		rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x6a09e667f3bcc908)),
	}
	b.queues, b.topics, b.buses = &Queues{b}, &Topics{b}, &Buses{b}
	b.sqs.init()
	b.sns.init()
	b.bus.init()
	return b
}

// Queues returns the SQS side.
func (b *Broker) Queues() *Queues { return b.queues }

// Topics returns the SNS side.
func (b *Broker) Topics() *Topics { return b.topics }

// Buses returns the EventBridge side.
func (b *Broker) Buses() *Buses { return b.buses }

// Log returns the event log the broker appends to.
func (b *Broker) Log() *eventlog.Log { return b.events }

// Close stops timers from acting and waits for deliveries in flight.
func (b *Broker) Close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.wg.Wait()
}

// Invoker runs Lambda functions: the sandbox's functions owner. messaging
// declares it so that it need not import that owner.
type Invoker interface {
	// InvokeAsync queues an asynchronous (Event) invocation of the
	// function named by ARN. It fails when the function does not exist or
	// cannot run.
	InvokeAsync(functionARN string, payload []byte) error
}

// SetInvoker sets who runs Lambda functions. Without one, Lambda
// deliveries are only recorded.
func (b *Broker) SetInvoker(inv Invoker) {
	b.mu.Lock()
	b.invoker = inv
	b.mu.Unlock()
}

// invokeLocked hands payload to a Lambda function from a goroutine of the
// broker's, without its lock; done then records the outcome under the
// lock (unless the broker closed meanwhile). It reports false, calling
// nothing, when no Invoker is set.
func (b *Broker) invokeLocked(functionARN string, payload []byte, done func(error)) bool {
	inv := b.invoker
	if inv == nil {
		return false
	}
	b.goHost(func() {
		err := inv.InvokeAsync(functionARN, payload)
		b.mu.Lock()
		defer b.mu.Unlock()
		if !b.closed {
			done(err)
		}
	})
	return true
}

// autoScalingSender is the SenderId of the messages Auto Scaling sends.
const autoScalingSender = "AROAAUTOSCALING:AutoScaling"

// Notify delivers a notification from Auto Scaling: the body goes to an
// SQS queue, or is published to an SNS topic with the subject, both named
// by ARN. It fails when the target does not exist or is neither.
func (b *Broker) Notify(targetARN, subject, body string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case strings.HasPrefix(targetARN, "arn:aws:sqs:"):
		return b.queues.deliverLocked(targetARN, Delivery{Body: body, SenderID: autoScalingSender})
	case strings.HasPrefix(targetARN, "arn:aws:sns:"):
		_, err := b.topics.publishLocked(targetARN, PublishInput{Subject: subject, Message: body})
		return err
	}
	return fmt.Errorf("%s is not an SQS queue or SNS topic ARN", targetARN)
}

// PutAutoScalingEvent puts an aws.autoscaling event on the default bus,
// delivering it to every matching rule's targets.
func (b *Broker) PutAutoScalingEvent(detailType string, resources []string, detail map[string]any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buses.putAutoScalingEventLocked(AutoScalingEvent{DetailType: detailType, Resources: resources, Detail: detail})
}

// minimum returns AWS's minimum for a time limit, or one second when limits
// are relaxed.
func (b *Broker) minimum(aws int) int {
	if b.cfg.RelaxLimits && aws > 1 {
		return 1
	}
	return aws
}

// after schedules f under the broker's lock once d has elapsed on its
// clock. The callback is skipped once the broker is closed.
func (b *Broker) after(d time.Duration, f func()) simclock.Timer {
	return b.clock.AfterFunc(d, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.closed {
			return
		}
		f()
	})
}

// goHost runs an outbound call in the background, owned by the broker's
// WaitGroup.
func (b *Broker) goHost(f func()) { b.wg.Go(f) }

// emitLocked appends a control-plane event (a queue, topic or
// subscription changed).
func (b *Broker) emitLocked(e eventlog.Event) { b.events.Append(e) }

// dataLocked appends a data-plane event (a message or a delivery).
func (b *Broker) dataLocked(e eventlog.Event) { b.events.AppendData(e) }

// hexIDLocked returns prefix + n random hex digits from the seeded source.
func (b *Broker) hexIDLocked(prefix string, n int) string {
	const hexd = "0123456789abcdef"
	var s strings.Builder
	s.WriteString(prefix)
	for range n {
		s.WriteByte(hexd[b.rng.IntN(16)])
	}
	return s.String()
}

// uuidLocked returns a UUID drawn from the seeded source.
func (b *Broker) uuidLocked() string {
	var u [16]byte
	for i := range u {
		u[i] = byte(b.rng.IntN(256))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Region returns the simulated region.
func (b *Broker) Region() string { return b.cfg.Region }

// Account returns the simulated account id.
func (b *Broker) Account() string { return b.cfg.Account }
