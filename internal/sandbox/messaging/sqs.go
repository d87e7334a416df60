package messaging

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
)

// This file holds SQS queues: their life cycle, attributes and tags.
// sqs_messages.go holds what happens to messages on them.
//
// Errors carry SQS's query-protocol codes (the codes the SDKs report, for
// example AWS.SimpleQueueService.NonExistentQueue); the JSON handler maps
// them to the JSON protocol's shape names.

// SQS limits and defaults.
const (
	sqsMaxNameLen        = 80
	sqsMaxBatchEntries   = 10
	sqsMaxVisibility     = 43200 // seconds, 12 hours
	sqsMaxWait           = 20    // seconds of long polling
	sqsMaxDelay          = 900   // seconds
	sqsMaxPayload        = 1 << 20
	sqsMaxAttributes     = 10
	sqsMaxTags           = 50
	sqsMaxListResults    = 1000
	sqsMaxReceiveCount   = 1000
	sqsDedupWindow       = 5 * time.Minute
	sqsDefaultRetention  = 345600
	sqsDefaultVisibility = 30
)

// Queue attribute names.
const (
	sqsAttrDelay          = "DelaySeconds"
	sqsAttrMaxSize        = "MaximumMessageSize"
	sqsAttrRetention      = "MessageRetentionPeriod"
	sqsAttrWait           = "ReceiveMessageWaitTimeSeconds"
	sqsAttrVisibility     = "VisibilityTimeout"
	sqsAttrPolicy         = "Policy"
	sqsAttrRedrive        = "RedrivePolicy"
	sqsAttrRedriveAllow   = "RedriveAllowPolicy"
	sqsAttrFifo           = "FifoQueue"
	sqsAttrContentDedup   = "ContentBasedDeduplication"
	sqsAttrKmsKey         = "KmsMasterKeyId"
	sqsAttrKmsReuse       = "KmsDataKeyReusePeriodSeconds"
	sqsAttrManagedSSE     = "SqsManagedSseEnabled"
	sqsAttrDedupScope     = "DeduplicationScope"
	sqsAttrThroughput     = "FifoThroughputLimit"
	sqsAttrArn            = "QueueArn"
	sqsAttrCreated        = "CreatedTimestamp"
	sqsAttrModified       = "LastModifiedTimestamp"
	sqsAttrVisible        = "ApproximateNumberOfMessages"
	sqsAttrNotVisible     = "ApproximateNumberOfMessagesNotVisible"
	sqsAttrDelayed        = "ApproximateNumberOfMessagesDelayed"
	sqsAttrAll            = "All"
	sqsDedupScopeQueue    = "queue"
	sqsDedupScopeGroup    = "messageGroup"
	sqsThroughputQueue    = "perQueue"
	sqsThroughputPerGroup = "perMessageGroupId"
)

// sqsAttrSpec describes one settable queue attribute.
type sqsAttrSpec struct {
	fifoOnly   bool // only FIFO queues accept it
	createOnly bool // CreateQueue accepts it, SetQueueAttributes does not
	// normalize checks a value and returns it as GetQueueAttributes shows it.
	normalize func(string) (string, bool)
}

func sqsIntRange(lo, hi int) func(string) (string, bool) {
	return func(v string) (string, bool) {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < lo || n > hi {
			return "", false
		}
		return strconv.Itoa(n), true
	}
}

func sqsBool(v string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return "true", true
	case "false":
		return "false", true
	}
	return "", false
}

func sqsOneOf(values ...string) func(string) (string, bool) {
	return func(v string) (string, bool) { return v, slices.Contains(values, v) }
}

func sqsAny(v string) (string, bool) { return v, true }

// sqsJSONOrEmpty accepts a JSON document, or "" to clear the attribute.
func sqsJSONOrEmpty(v string) (string, bool) { return v, v == "" || json.Valid([]byte(v)) }

var sqsAttrSpecs = map[string]sqsAttrSpec{
	sqsAttrDelay:        {normalize: sqsIntRange(0, sqsMaxDelay)},
	sqsAttrMaxSize:      {normalize: sqsIntRange(1024, sqsMaxPayload)},
	sqsAttrRetention:    {normalize: sqsIntRange(60, 1209600)},
	sqsAttrWait:         {normalize: sqsIntRange(0, sqsMaxWait)},
	sqsAttrVisibility:   {normalize: sqsIntRange(0, sqsMaxVisibility)},
	sqsAttrPolicy:       {normalize: sqsJSONOrEmpty},
	sqsAttrRedrive:      {normalize: sqsAny}, // checked by sqsParseRedriveLocked
	sqsAttrRedriveAllow: {normalize: sqsJSONOrEmpty},
	sqsAttrKmsKey:       {normalize: sqsAny},
	sqsAttrKmsReuse:     {normalize: sqsIntRange(60, 86400)},
	sqsAttrManagedSSE:   {normalize: sqsBool},
	sqsAttrFifo:         {createOnly: true, normalize: sqsBool},
	sqsAttrContentDedup: {fifoOnly: true, normalize: sqsBool},
	sqsAttrDedupScope:   {fifoOnly: true, normalize: sqsOneOf(sqsDedupScopeQueue, sqsDedupScopeGroup)},
	sqsAttrThroughput:   {fifoOnly: true, normalize: sqsOneOf(sqsThroughputQueue, sqsThroughputPerGroup)},
}

// sqsReadOnlyAttrs are the attributes GetQueueAttributes computes.
var sqsReadOnlyAttrs = []string{sqsAttrArn, sqsAttrCreated, sqsAttrModified, sqsAttrVisible, sqsAttrNotVisible, sqsAttrDelayed}

// sqsState holds the simulated SQS queues. All of it is guarded by qs.mu.
type sqsState struct {
	queues map[string]*sqsQueue // by name
	// deleted records when each name was last deleted, for
	// QueueDeletedRecently.
	deleted map[string]time.Time
}

func (s *sqsState) init() {
	s.queues = map[string]*sqsQueue{}
	s.deleted = map[string]time.Time{}
}

// sqsQueue is one queue and its messages.
type sqsQueue struct {
	name, arn string
	fifo      bool
	attrs     map[string]string // settable attributes, normalized
	redrive   *sqsRedrive
	created   time.Time
	modified  time.Time
	tags      map[string]string

	// Messages: see sqs_store.go.
	byID       map[string]*sqsMessage
	ages       msgHeap              // every message, by enqueue time
	waiting    msgHeap              // the messages not visible, by visibleAt
	waitingRcv int                  // of waiting, how many were received (in flight, not delayed)
	ready      []*sqsMessage        // standard: the visible messages, in no order
	groups     map[string]*sqsGroup // FIFO: by MessageGroupId
	heads      groupHeap            // FIFO: the groups that can deliver
	added      uint64               // messages ever added (their order)
	dedup      map[string]sqsDedup  // FIFO: by deduplication key
	dedupOrder []sqsDedupExpiry     // FIFO: the records by expiry
	seq        uint64               // FIFO: last sequence number issued
	// FIFO: receives by ReceiveRequestAttemptId, and their ids by expiry.
	attempts     map[string]*sqsAttempt
	attemptOrder []sqsDedupExpiry

	lastPurge time.Time
	// changed is closed and replaced whenever a receiver waiting on the
	// queue may find something new: a message sent, a visibility changed,
	// a FIFO group released, the queue deleted.
	changed chan struct{}
}

type sqsRedrive struct {
	targetARN       string
	maxReceiveCount int
}

// notifyLocked wakes every long-polling receiver of the queue.
func (q *sqsQueue) notifyLocked() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// num returns a numeric attribute (always set, normalized at create).
func (q *sqsQueue) num(name string) int {
	n, _ := strconv.Atoi(q.attrs[name])
	return n
}

func (q *sqsQueue) seconds(name string) time.Duration {
	return time.Duration(q.num(name)) * time.Second
}

// sqsErr returns an SQS error with its query-protocol code.
func sqsErr(code, format string, args ...any) *awsproto.Error {
	return awsproto.Errorf(code, format, args...)
}

// SQS error codes the handlers may need to recognise.
const (
	SQSNonExistentQueue = "AWS.SimpleQueueService.NonExistentQueue"
	sqsInvalidParameter = "InvalidParameterValue"
	sqsMissingParameter = "MissingParameter"
)

func sqsNoQueue() *awsproto.Error {
	return sqsErr(SQSNonExistentQueue, "The specified queue does not exist.")
}

func sqsInvalidValue(param string, value any, reason string) *awsproto.Error {
	return sqsErr(sqsInvalidParameter, "Value %v for parameter %s is invalid. Reason: %s", value, param, reason)
}

func sqsMissing(param string) *awsproto.Error {
	return sqsErr(sqsMissingParameter, "The request must contain the parameter %s.", param)
}

// sqsQueueLocked returns the named queue or NonExistentQueue.
func (qs *Queues) sqsQueueLocked(name string) (*sqsQueue, error) {
	q, ok := qs.sqs.queues[name]
	if !ok {
		return nil, sqsNoQueue()
	}
	return q, nil
}

func (qs *Queues) sqsARN(name string) string {
	return "arn:aws:sqs:" + qs.cfg.Region + ":" + qs.cfg.Account + ":" + name
}

// sqsQueueByARNLocked returns the queue an ARN names, if it is in this
// sandbox's region and account.
func (qs *Queues) sqsQueueByARNLocked(arn string) (*sqsQueue, bool) {
	name, ok := strings.CutPrefix(arn, "arn:aws:sqs:"+qs.cfg.Region+":"+qs.cfg.Account+":")
	if !ok {
		return nil, false
	}
	q, ok := qs.sqs.queues[name]
	return q, ok
}

// sqsValidQueueName checks SQS's naming rule: 1 to 80 characters of
// [A-Za-z0-9_-], FIFO queues with the .fifo suffix counted in.
func sqsValidQueueName(name string, fifo bool) error {
	base := name
	if fifo {
		var ok bool
		if base, ok = strings.CutSuffix(name, ".fifo"); !ok || base == "" {
			return sqsErr(sqsInvalidParameter, "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.")
		}
	}
	ok := name != "" && len(name) <= sqsMaxNameLen
	for _, c := range base {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			ok = false
		}
	}
	if ok {
		return nil
	}
	if fifo {
		return sqsErr(sqsInvalidParameter, "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.")
	}
	return sqsErr(sqsInvalidParameter, "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
}

// sqsNormalizeAttrsLocked checks attributes for a queue of the given type and
// returns them normalized, and the redrive policy if one is set. create
// allows the attributes only CreateQueue takes.
func (qs *Queues) sqsNormalizeAttrsLocked(attrs map[string]string, fifo, create bool) (map[string]string, *sqsRedrive, error) {
	out := make(map[string]string, len(attrs))
	var redrive *sqsRedrive
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		v := attrs[name]
		spec, ok := sqsAttrSpecs[name]
		if !ok || spec.fifoOnly && !fifo || spec.createOnly && !create {
			return nil, nil, sqsErr("InvalidAttributeName", "Unknown Attribute %s.", name)
		}
		norm, ok := spec.normalize(v)
		if !ok {
			return nil, nil, sqsErr("InvalidAttributeValue", "Invalid value for the parameter %s.", name)
		}
		if name == sqsAttrRedrive {
			var err error
			if redrive, norm, err = qs.sqsParseRedriveLocked(v, fifo); err != nil {
				return nil, nil, err
			}
		}
		out[name] = norm
	}
	return out, redrive, nil
}

// sqsParseRedriveLocked checks a RedrivePolicy and returns it with its
// normalized JSON. "" clears the policy.
func (qs *Queues) sqsParseRedriveLocked(v string, fifo bool) (*sqsRedrive, string, error) {
	if v == "" {
		return nil, "", nil
	}
	invalid := func(reason string) error { return sqsInvalidValue(sqsAttrRedrive, v, reason) }
	var raw struct {
		Target *string          `json:"deadLetterTargetArn"`
		Max    *json.RawMessage `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(v), &raw); err != nil {
		return nil, "", invalid("Redrive policy is not a valid JSON map.")
	}
	if raw.Target == nil {
		return nil, "", invalid("Redrive policy does not contain mandatory attribute: deadLetterTargetArn.")
	}
	if raw.Max == nil {
		return nil, "", invalid("Redrive policy does not contain mandatory attribute: maxReceiveCount.")
	}
	// maxReceiveCount may be a number or a numeric string.
	s := strings.Trim(string(*raw.Max), `"`)
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > sqsMaxReceiveCount {
		return nil, "", invalid("Invalid value for maxReceiveCount: " + s + ", valid values are from 1 to 1000 both inclusive.")
	}
	dlq, ok := qs.sqsQueueByARNLocked(*raw.Target)
	if !ok {
		return nil, "", invalid("Dead letter target does not exist.")
	}
	if dlq.fifo != fifo {
		return nil, "", invalid("Dead-letter queue must be same type of queue as the source.")
	}
	norm, _ := json.Marshal(struct {
		Target string `json:"deadLetterTargetArn"`
		Max    int    `json:"maxReceiveCount"`
	}{*raw.Target, n})
	return &sqsRedrive{targetARN: *raw.Target, maxReceiveCount: n}, string(norm), nil
}

func sqsValidQueueTags(tags map[string]string) error {
	for k, v := range tags {
		if k == "" || len(k) > 128 || len(v) > 256 {
			return sqsErr(sqsInvalidParameter, "Tag keys must be 1 to 128 characters and tag values at most 256 characters: %q.", k)
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return sqsErr(sqsInvalidParameter, "Tag keys starting with 'aws:' are reserved for internal use: %q.", k)
		}
	}
	if len(tags) > sqsMaxTags {
		return sqsErr(sqsInvalidParameter, "Too many tags: a queue can have at most %d.", sqsMaxTags)
	}
	return nil
}

// CreateQueueInput is a CreateQueue request.
type CreateQueueInput struct {
	Name       string
	Attributes map[string]string
	Tags       map[string]string
}

// CreateQueue creates a queue. Creating a queue that exists succeeds when
// every attribute given has the queue's current value (tags are then
// ignored) and fails with QueueAlreadyExists otherwise. A name deleted less
// than 60 seconds ago (1 s with RelaxLimits) fails with
// AWS.SimpleQueueService.QueueDeletedRecently.
func (qs *Queues) CreateQueue(in CreateQueueInput) error {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	fifo := false
	if v, ok := in.Attributes[sqsAttrFifo]; ok {
		b, ok := sqsBool(v)
		if !ok {
			return sqsErr("InvalidAttributeValue", "Invalid value for the parameter %s.", sqsAttrFifo)
		}
		fifo = b == "true"
	}
	if in.Name == "" {
		return sqsMissing("QueueName")
	}
	if err := sqsValidQueueName(in.Name, fifo); err != nil {
		return err
	}
	attrs, redrive, err := qs.sqsNormalizeAttrsLocked(in.Attributes, fifo, true)
	if err != nil {
		return err
	}
	delete(attrs, sqsAttrFifo) // the queue's type, not a stored attribute
	if q, ok := qs.sqs.queues[in.Name]; ok {
		if q.fifo != fifo {
			return sqsErr("QueueAlreadyExists", "A queue already exists with the same name and a different value for attribute %s", sqsAttrFifo)
		}
		for _, name := range slices.Sorted(maps.Keys(attrs)) {
			if q.attrs[name] != attrs[name] {
				return sqsErr("QueueAlreadyExists", "A queue already exists with the same name and a different value for attribute %s", name)
			}
		}
		return nil
	}
	if err := sqsValidQueueTags(in.Tags); err != nil {
		return err
	}
	now := qs.clock.Now()
	if at, ok := qs.sqs.deleted[in.Name]; ok && now.Sub(at) < time.Duration(qs.minimum(60))*time.Second {
		return sqsErr("AWS.SimpleQueueService.QueueDeletedRecently", "You must wait %d seconds after deleting a queue before you can create another with the same name.", qs.minimum(60))
	}
	delete(qs.sqs.deleted, in.Name)
	q := &sqsQueue{
		name: in.Name, arn: qs.sqsARN(in.Name), fifo: fifo,
		attrs: map[string]string{
			sqsAttrDelay:      "0",
			sqsAttrMaxSize:    strconv.Itoa(sqsMaxPayload),
			sqsAttrRetention:  strconv.Itoa(sqsDefaultRetention),
			sqsAttrWait:       "0",
			sqsAttrVisibility: strconv.Itoa(sqsDefaultVisibility),
			sqsAttrManagedSSE: "true",
		},
		created: now, modified: now,
		tags:     maps.Clone(in.Tags),
		dedup:    map[string]sqsDedup{},
		attempts: map[string]*sqsAttempt{},
		changed:  make(chan struct{}),
	}
	q.resetStoreLocked()
	if q.tags == nil {
		q.tags = map[string]string{}
	}
	if fifo {
		q.attrs[sqsAttrContentDedup] = "false"
		q.attrs[sqsAttrDedupScope] = sqsDedupScopeQueue
		q.attrs[sqsAttrThroughput] = sqsThroughputQueue
	}
	q.setAttrsLocked(attrs, redrive)
	qs.sqs.queues[in.Name] = q
	qs.emitLocked(eventlog.Event{Service: "sqs", Kind: EvSQS, Resource: qs.sqsARN(in.Name), Detail: "queue created " + in.Name})
	return nil
}

// setAttrsLocked applies normalized attributes; "" clears the string
// attributes that can be cleared.
func (q *sqsQueue) setAttrsLocked(attrs map[string]string, redrive *sqsRedrive) {
	for name, v := range attrs {
		switch name {
		case sqsAttrPolicy, sqsAttrRedrive, sqsAttrRedriveAllow, sqsAttrKmsKey:
			if v == "" {
				delete(q.attrs, name)
				continue
			}
		}
		q.attrs[name] = v
	}
	if _, ok := attrs[sqsAttrRedrive]; ok {
		q.redrive = redrive
	}
	if _, ok := attrs[sqsAttrKmsKey]; ok && q.attrs[sqsAttrKmsKey] != "" {
		if _, ok := q.attrs[sqsAttrKmsReuse]; !ok {
			q.attrs[sqsAttrKmsReuse] = "300"
		}
		if _, ok := attrs[sqsAttrManagedSSE]; !ok {
			q.attrs[sqsAttrManagedSSE] = "false"
		}
	}
}

// QueueInfo identifies a queue.
type QueueInfo struct {
	Name string
	ARN  string
}

// GetQueue returns the named queue, or NonExistentQueue. A non-empty owner
// must be the sandbox's account.
func (qs *Queues) GetQueue(name, owner string) (QueueInfo, error) {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	if name == "" {
		return QueueInfo{}, sqsMissing("QueueName")
	}
	if owner != "" && owner != qs.cfg.Account {
		return QueueInfo{}, sqsNoQueue()
	}
	q, err := qs.sqsQueueLocked(name)
	if err != nil {
		return QueueInfo{}, err
	}
	return QueueInfo{Name: q.name, ARN: q.arn}, nil
}

// ListQueues returns the names of the queues whose names start with
// prefix, in name order. With max > 0 it returns at most max (1..1000) and
// a token for the next page ("" on the last); token continues a listing.
// Without max it returns at most 1000 names and no token, as SQS does.
func (qs *Queues) ListQueues(prefix string, max int, token string) ([]string, string, error) {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	var names []string
	for name := range qs.sqs.queues {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return sqsPage(names, max, token)
}

// DeadLetterSourceQueues returns the names of the queues whose redrive
// policy targets the named queue, paged as ListQueues.
func (qs *Queues) DeadLetterSourceQueues(name string, max int, token string) ([]string, string, error) {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	dlq, err := qs.sqsQueueLocked(name)
	if err != nil {
		return nil, "", err
	}
	var names []string
	for _, q := range qs.sqs.queues {
		if q.redrive != nil && q.redrive.targetARN == dlq.arn {
			names = append(names, q.name)
		}
	}
	slices.Sort(names)
	return sqsPage(names, max, token)
}

// sqsPage pages sorted names; tokens are the last name returned,
// base64url-encoded.
func sqsPage(names []string, max int, token string) ([]string, string, error) {
	if max < 0 || max > sqsMaxListResults {
		return nil, "", sqsInvalidValue("MaxResults", max, "MaxResults must be an integer between 1 and 1000.")
	}
	start := 0
	if token != "" {
		last, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || len(last) == 0 {
			return nil, "", sqsErr(sqsInvalidParameter, "Invalid NextToken value.")
		}
		start, _ = slices.BinarySearch(names, string(last)+"\x00")
	}
	limit := max
	if limit == 0 {
		limit = sqsMaxListResults
	}
	end := min(start+limit, len(names))
	page := names[start:end]
	next := ""
	if max > 0 && end < len(names) {
		next = base64.RawURLEncoding.EncodeToString([]byte(names[end-1]))
	}
	return page, next, nil
}

// DeleteQueue deletes a queue and its messages at once (AWS takes up to
// 60 seconds). Its name cannot be reused for 60 seconds (1 s with
// RelaxLimits). Receivers waiting on it return NonExistentQueue.
func (qs *Queues) DeleteQueue(name string) error {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	q, err := qs.sqsQueueLocked(name)
	if err != nil {
		return err
	}
	delete(qs.sqs.queues, name)
	qs.sqs.deleted[name] = qs.clock.Now()
	q.notifyLocked()
	qs.emitLocked(eventlog.Event{Service: "sqs", Kind: EvSQS, Resource: qs.sqsARN(name), Detail: "queue deleted " + name})
	return nil
}

// GetQueueAttributes returns the named attributes ("All" for every one)
// of a queue. Attributes that are not set (Policy, RedrivePolicy, …) are
// left out; an unknown name fails with InvalidAttributeName.
func (qs *Queues) GetQueueAttributes(name string, names []string) (map[string]string, error) {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	q, err := qs.sqsQueueLocked(name)
	if err != nil {
		return nil, err
	}
	now := qs.clock.Now()
	qs.sqsExpireLocked(q, now)
	visible, notVisible, delayed := q.countsLocked(now)
	computed := map[string]string{
		sqsAttrArn:        q.arn,
		sqsAttrCreated:    strconv.FormatInt(q.created.Unix(), 10),
		sqsAttrModified:   strconv.FormatInt(q.modified.Unix(), 10),
		sqsAttrVisible:    strconv.Itoa(visible),
		sqsAttrNotVisible: strconv.Itoa(notVisible),
		sqsAttrDelayed:    strconv.Itoa(delayed),
	}
	if q.fifo {
		computed[sqsAttrFifo] = "true"
	}
	out := map[string]string{}
	for _, n := range names {
		if n == sqsAttrAll {
			maps.Copy(out, q.attrs)
			maps.Copy(out, computed)
			continue
		}
		_, settable := sqsAttrSpecs[n]
		if !settable && !slices.Contains(sqsReadOnlyAttrs, n) {
			return nil, sqsErr("InvalidAttributeName", "Unknown Attribute %s.", n)
		}
		if v, ok := computed[n]; ok {
			out[n] = v
		} else if v, ok := q.attrs[n]; ok {
			out[n] = v
		}
	}
	return out, nil
}

// SetQueueAttributes changes a queue's attributes; every one is checked
// before any is set.
func (qs *Queues) SetQueueAttributes(name string, attrs map[string]string) error {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	q, err := qs.sqsQueueLocked(name)
	if err != nil {
		return err
	}
	if len(attrs) == 0 {
		return sqsMissing("Attributes")
	}
	norm, redrive, err := qs.sqsNormalizeAttrsLocked(attrs, q.fifo, false)
	if err != nil {
		return err
	}
	q.setAttrsLocked(norm, redrive)
	q.modified = qs.clock.Now()
	q.notifyLocked()
	qs.emitLocked(eventlog.Event{Service: "sqs", Kind: EvSQS, Resource: qs.sqsARN(name), Detail: "queue attributes set " + name + " " + strings.Join(slices.Sorted(maps.Keys(norm)), ",")})
	return nil
}

// TagQueue adds or replaces tags on a queue.
func (qs *Queues) TagQueue(name string, tags map[string]string) error {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	q, err := qs.sqsQueueLocked(name)
	if err != nil {
		return err
	}
	if len(tags) == 0 {
		return sqsMissing("Tags")
	}
	merged := maps.Clone(q.tags)
	maps.Copy(merged, tags)
	if err := sqsValidQueueTags(merged); err != nil {
		return err
	}
	q.tags = merged
	return nil
}

// UntagQueue removes tags from a queue; keys it does not have are ignored.
func (qs *Queues) UntagQueue(name string, keys []string) error {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	q, err := qs.sqsQueueLocked(name)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return sqsMissing("TagKeys")
	}
	for _, k := range keys {
		delete(q.tags, k)
	}
	return nil
}

// QueueTags returns a copy of a queue's tags.
func (qs *Queues) QueueTags(name string) (map[string]string, error) {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	q, err := qs.sqsQueueLocked(name)
	if err != nil {
		return nil, err
	}
	return maps.Clone(q.tags), nil
}

// PurgeQueue deletes every message of a queue, in flight or not. A second
// purge within 60 seconds (1 s with RelaxLimits) fails with
// AWS.SimpleQueueService.PurgeQueueInProgress.
func (qs *Queues) PurgeQueue(name string) error {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	q, err := qs.sqsQueueLocked(name)
	if err != nil {
		return err
	}
	now := qs.clock.Now()
	if !q.lastPurge.IsZero() && now.Sub(q.lastPurge) < time.Duration(qs.minimum(60))*time.Second {
		e := sqsErr("AWS.SimpleQueueService.PurgeQueueInProgress", "Only one PurgeQueue operation on %s is allowed every %d seconds.", name, qs.minimum(60))
		e.Status = 403
		return e
	}
	q.lastPurge = now
	n := len(q.byID)
	q.resetStoreLocked()
	qs.emitLocked(eventlog.Event{Service: "sqs", Kind: EvSQS, Resource: qs.sqsARN(name), Detail: "queue purged " + name + " (" + strconv.Itoa(n) + " messages)"})
	return nil
}
