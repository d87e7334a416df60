// Package eventlog is the sandbox's one ordered log. Every state owner
// (world for Auto Scaling and EC2, messaging for SQS, SNS and EventBridge,
// and the owners added beside them) appends an Event for every change; the
// admin API, the timeline, the demo and the tests read it.
//
// The log keeps two bounded streams under one sequence:
//
//   - Control: lifecycle and control-plane history (groups, instances,
//     hooks, actions, queues and topics created, faults, clock advances).
//   - Data: data-plane traffic (messages sent, received, deleted, SNS and
//     EventBridge deliveries, and later item writes and proxied requests).
//
// Each stream has its own buffer, so however much traffic flows, it never
// evicts lifecycle history. Data events are also counted per kind, and
// those counts are never dropped. A reader that asks for events after a
// sequence number the log no longer holds gets a gap marker (KindGap)
// saying what is missing before the events that follow.
//
// Lock order: the log's lock is always the last one taken. Owners append
// while holding their own lock; the log never calls out while holding its
// own.
package eventlog

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Event is one entry of the log. Group, Instance and Resource identify what
// the event concerns; State, Hook, Token and Result are the attributes of
// lifecycle events (kept as fields: they are the log's stable JSON shape);
// Attrs holds any other attribute.
type Event struct {
	Seq      int64     `json:"seq"`
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Group    string    `json:"group,omitempty"`
	Instance string    `json:"instance,omitempty"`
	Detail   string    `json:"detail,omitempty"`
	// State is the instance's lifecycle state after an instance-state event.
	State string `json:"state,omitempty"`
	// Hook, Token and Result describe lifecycle action events.
	Hook   string `json:"hook,omitempty"`
	Token  string `json:"token,omitempty"`
	Result string `json:"result,omitempty"`
	// Service is the AWS service (autoscaling, ec2, sqs, sns, events) or
	// "sandbox" for the sandbox's own events (clock, faults, gaps).
	Service string `json:"service,omitempty"`
	// Resource is the ARN (or name) of the queue, topic, bus, rule or
	// table the event concerns.
	Resource string            `json:"resource,omitempty"`
	Attrs    map[string]string `json:"attrs,omitempty"`
	// Data is set on events of the data stream.
	Data bool `json:"data,omitempty"`
}

// Stream selects the streams a reader wants.
type Stream uint8

// Streams.
const (
	Control Stream = 1 << iota // lifecycle and control-plane history
	Data                       // data-plane traffic
	All     = Control | Data
)

// KindGap is the kind of the marker a reader gets when it asks for events
// older than a stream still holds. Its Seq is the last sequence number
// the stream dropped (continue after it), Attrs["stream"] names the stream
// and Attrs["dropped"] says how many events the reader missed.
const KindGap = "gap"

// Default bounds of the streams.
const (
	DefaultControlLimit = 100_000
	DefaultDataLimit    = 50_000
)

// Clock is the time source that stamps events (simclock.Clock is one).
type Clock interface{ Now() time.Time }

// Config bounds the log.
type Config struct {
	ControlLimit int // events of the control stream held; DefaultControlLimit when 0
	DataLimit    int // events of the data stream held; DefaultDataLimit when 0
}

// Log is the ordered log. Create it with New; it is safe for concurrent use.
type Log struct {
	clock Clock
	log   *slog.Logger

	mu      sync.Mutex
	seq     int64
	control buffer
	data    buffer
}

// buffer is one stream's bounded window of events. They are held in
// blocks of equal capacity, so that appending never copies what is held
// and evicting the oldest quarter drops whole blocks.
type buffer struct {
	name    string
	limit   int
	size    int       // events a block holds: blockSize, or limit when smaller
	blocks  [][]Event // held events, oldest first, from blocks[0][head]
	head    int       // events at the start of blocks[0] already evicted
	held    int
	dropped int64   // events evicted so far
	chunks  []chunk // what was evicted, oldest first
	counts  map[string]int64
	changed chan struct{} // closed and replaced on every append
}

// blockSize is how many events a block holds (at most the limit).
const blockSize = 512

func newBuffer(name string, limit int) buffer {
	limit = max(limit, 4)
	return buffer{name: name, limit: limit, size: min(blockSize, limit), counts: map[string]int64{}, changed: make(chan struct{})}
}

// chunk is one eviction: n events with sequence numbers first..last.
type chunk struct {
	first, last int64
	lastTime    time.Time
	n           int64
}

// maxChunks bounds the eviction record; older chunks are merged.
const maxChunks = 256

// New returns an empty log stamping events with clock's time. A nil logger
// discards the debug line each event is also logged as.
func New(cfg Config, clock Clock, log *slog.Logger) *Log {
	if cfg.ControlLimit <= 0 {
		cfg.ControlLimit = DefaultControlLimit
	}
	if cfg.DataLimit <= 0 {
		cfg.DataLimit = DefaultDataLimit
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Log{
		clock:   clock,
		log:     log,
		control: newBuffer("control", cfg.ControlLimit),
		data:    newBuffer("data", cfg.DataLimit),
	}
}

// Append records a control-plane event, stamping its sequence number and
// time, and returns it as recorded.
func (l *Log) Append(e Event) Event {
	e.Data = false
	return l.append(&l.control, e)
}

// AppendData records a data-plane event (kept in the data stream and
// counted per kind) and returns it as recorded.
func (l *Log) AppendData(e Event) Event {
	e.Data = true
	return l.append(&l.data, e)
}

func (l *Log) append(b *buffer, e Event) Event {
	l.mu.Lock()
	l.seq++
	e.Seq = l.seq
	e.Time = l.clock.Now().UTC()
	b.add(e)
	l.mu.Unlock()
	if l.log.Enabled(context.Background(), slog.LevelDebug) { // its arguments cost more than the append
		l.log.Debug("event", "seq", e.Seq, "service", e.Service, "kind", e.Kind, "group", e.Group, "instance", e.Instance, "resource", e.Resource, "detail", e.Detail, "state", e.State)
	}
	return e
}

func (b *buffer) add(e Event) {
	if b.held >= b.limit {
		n := b.limit / 4
		first, last := b.at(0), b.at(n-1)
		b.chunks = append(b.chunks, chunk{first: first.Seq, last: last.Seq, lastTime: last.Time, n: int64(n)})
		if len(b.chunks) > maxChunks {
			a, c := b.chunks[0], b.chunks[1]
			b.chunks[1] = chunk{first: a.first, last: c.last, lastTime: c.lastTime, n: a.n + c.n}
			b.chunks = b.chunks[1:]
		}
		b.dropped += int64(n)
		b.evict(n)
	}
	if k := len(b.blocks); k == 0 || len(b.blocks[k-1]) == b.size {
		b.blocks = append(b.blocks, make([]Event, 0, b.size))
	}
	k := len(b.blocks) - 1
	b.blocks[k] = append(b.blocks[k], e)
	b.held++
	b.counts[e.Kind]++
	close(b.changed)
	b.changed = make(chan struct{})
}

// at returns the i-th held event, oldest first.
func (b *buffer) at(i int) Event {
	i += b.head
	return b.blocks[i/b.size][i%b.size]
}

// evict forgets the n oldest held events.
func (b *buffer) evict(n int) {
	b.head += n
	b.held -= n
	gone := b.head / b.size
	clear(b.blocks[:gone])
	b.blocks = append(b.blocks[:0], b.blocks[gone:]...)
	b.head -= gone * b.size
}

// appendFrom appends the held events from the i-th on to out.
func (b *buffer) appendFrom(out []Event, i int) []Event {
	if i >= b.held {
		return out
	}
	i += b.head
	out = slices.Grow(out, b.held+b.head-i)
	for k := i / b.size; k < len(b.blocks); k++ {
		from := 0
		if k == i/b.size {
			from = i % b.size
		}
		out = append(out, b.blocks[k][from:]...)
	}
	return out
}

// since returns the gap marker (if events after after were dropped) and the
// held events with Seq > after.
func (b *buffer) since(after int64) []Event {
	var out []Event
	if n := len(b.chunks); n > 0 && after < b.chunks[n-1].last {
		var missed int64
		exact := true
		for _, c := range b.chunks {
			switch {
			case c.first > after:
				missed += c.n
			case c.last > after:
				missed += c.n // part of this chunk came before after
				exact = false
			}
		}
		last := b.chunks[n-1]
		what := strconv.FormatInt(missed, 10) + " " + b.name + " events"
		if !exact {
			what = "up to " + what
		}
		out = append(out, Event{
			Seq: last.last, Time: last.lastTime, Kind: KindGap, Service: "sandbox",
			Detail: what + " after seq " + strconv.FormatInt(after, 10) + " are no longer held (the log keeps the latest " + strconv.Itoa(b.limit) + "); continue after seq " + strconv.FormatInt(last.last, 10),
			Attrs:  map[string]string{"stream": b.name, "dropped": strconv.FormatInt(missed, 10), "exact": strconv.FormatBool(exact)},
		})
	}
	i := sort.Search(b.held, func(i int) bool { return b.at(i).Seq > after })
	return b.appendFrom(out, i)
}

// Since returns the events of the chosen streams with Seq > after, in
// sequence order, without waiting. When a stream no longer holds every
// event after after, a KindGap marker comes first for it.
func (l *Log) Since(after int64, s Stream) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sinceLocked(after, s)
}

func (l *Log) sinceLocked(after int64, s Stream) []Event {
	var c, d []Event
	if s&Control != 0 {
		c = l.control.since(after)
	}
	if s&Data != 0 {
		d = l.data.since(after)
	}
	return merge(c, d)
}

// merge merges two lists sorted by Seq.
func merge(a, b []Event) []Event {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	out := make([]Event, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0].Seq <= b[0].Seq {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	out = append(out, a...)
	return append(out, b...)
}

// Wait returns what Since returns once it is not empty, waiting for new
// events until ctx ends (then it returns nil and ctx's error).
func (l *Log) Wait(ctx context.Context, after int64, s Stream) ([]Event, error) {
	for {
		l.mu.Lock()
		out := l.sinceLocked(after, s)
		cc, dc := l.control.changed, l.data.changed
		l.mu.Unlock()
		if len(out) > 0 {
			return out, nil
		}
		if s&Control == 0 {
			cc = nil
		}
		if s&Data == 0 {
			dc = nil
		}
		select {
		case <-cc:
		case <-dc:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Events returns a copy of the events the chosen streams hold, in sequence
// order (no gap markers).
func (l *Log) Events(s Stream) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var c, d []Event
	if s&Control != 0 {
		c = l.control.appendFrom(nil, 0)
	}
	if s&Data != 0 {
		d = l.data.appendFrom(nil, 0)
	}
	return merge(c, d)
}

// Stats describes the log: the last sequence number and, per stream, what
// it holds, what it dropped and how many events of each kind it recorded.
type Stats struct {
	Seq     int64       `json:"seq"`
	Control StreamStats `json:"control"`
	Data    StreamStats `json:"data"`
}

// StreamStats describes one stream.
type StreamStats struct {
	Held      int              `json:"held"`
	Limit     int              `json:"limit"`
	Dropped   int64            `json:"dropped"`
	FirstHeld int64            `json:"first_held,omitempty"`
	Counts    map[string]int64 `json:"counts"` // events recorded per kind, dropped ones included
}

// Stats returns the log's current figures.
func (l *Log) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Seq: l.seq, Control: l.control.stats(), Data: l.data.stats()}
}

func (b *buffer) stats() StreamStats {
	s := StreamStats{Held: b.held, Limit: b.limit, Dropped: b.dropped, Counts: make(map[string]int64, len(b.counts))}
	if b.held > 0 {
		s.FirstHeld = b.at(0).Seq
	}
	for k, v := range b.counts {
		s.Counts[k] = v
	}
	return s
}
