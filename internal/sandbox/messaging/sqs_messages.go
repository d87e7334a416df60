package messaging

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
)

// This file holds SQS messages: sending, receiving (with long polling),
// deleting, changing visibility and dead-letter redrive.
//
// A message's state is computed from the sandbox's clock when it is looked at,
// never by timers: it is visible once visibleAt has passed, in flight while
// it has been received and visibleAt is still ahead, delayed while it has
// never been received and visibleAt is still ahead, and gone once the
// queue's retention period has passed since it was enqueued.

// sqsMessage is one message on a queue.
type sqsMessage struct {
	id        string
	body      string
	md5Body   string
	attrs     map[string]MessageAttribute
	system    map[string]MessageAttribute // AWSTraceHeader
	senderID  string
	groupID   string
	dedupID   string
	seq       string // FIFO sequence number
	dlqSource string // ARN of the queue it was moved from

	sent     time.Time // SentTimestamp
	enqueued time.Time // retention counts from here
	// visibleAt is when the message can next be received: the end of its
	// delay, then of its visibility timeout.
	visibleAt    time.Time
	received     int
	firstReceive time.Time
	receivedAt   time.Time // of the latest receive
	handle       string    // of the latest receive

	// Positions in the queue's structures (-1 when not in one).
	readyIdx, waitIdx, ageIdx int
	order                     uint64 // when it was added to its queue
	changes                   int    // ChangeMessageVisibility calls
	// FIFO: its group, and its neighbours there in send order.
	group      *sqsGroup
	prev, next *sqsMessage
}

func (m *sqsMessage) inFlight(now time.Time) bool {
	return m.received > 0 && m.visibleAt.After(now)
}

// sqsDedup remembers a FIFO message for its deduplication window.
type sqsDedup struct {
	messageID, seq string
	expires        time.Time
}

// Message system attribute names.
const (
	sqsSysSenderID     = "SenderId"
	sqsSysSent         = "SentTimestamp"
	sqsSysReceiveCount = "ApproximateReceiveCount"
	sqsSysFirstReceive = "ApproximateFirstReceiveTimestamp"
	sqsSysGroupID      = "MessageGroupId"
	sqsSysDedupID      = "MessageDeduplicationId"
	sqsSysSequence     = "SequenceNumber"
	sqsSysTraceHeader  = "AWSTraceHeader"
	sqsSysDLQSource    = "DeadLetterQueueSourceArn"
)

// sqsSequenceBase makes FIFO sequence numbers look like SQS's: 20 digits.
const sqsSequenceBase = 10_000_000_000_000_000_000

// SendMessageInput is one message to send.
type SendMessageInput struct {
	Body string
	// DelaySeconds overrides the queue's delay (standard queues only).
	DelaySeconds *int
	Attributes   map[string]MessageAttribute
	// SystemAttributes may hold AWSTraceHeader (DataType String).
	SystemAttributes map[string]MessageAttribute
	// GroupID and DedupID are MessageGroupId and MessageDeduplicationId.
	GroupID, DedupID string
	// SenderID is recorded as SenderId; the account id when empty.
	SenderID string
}

// SentMessage is what SendMessage reports for one message.
type SentMessage struct {
	MessageID                    string
	MD5OfMessageBody             string
	MD5OfMessageAttributes       string // "" without attributes
	MD5OfMessageSystemAttributes string // "" without system attributes
	SequenceNumber               string // FIFO queues only
}

// SendMessageBatchEntry is one entry of SendMessageBatch.
type SendMessageBatchEntry struct {
	ID string
	SendMessageInput
}

// SendMessageBatchResult is the outcome of one batch entry: Err is nil on
// success.
type SendMessageBatchResult struct {
	ID string
	SentMessage
	Err *awsproto.Error
}

// ReceiveMessageInput is a ReceiveMessage request. Nil fields take the
// queue's settings (MaxNumberOfMessages: 1).
type ReceiveMessageInput struct {
	MaxNumberOfMessages *int
	VisibilityTimeout   *int
	WaitTimeSeconds     *int
	// AttributeNames are the system attributes to return (All for every
	// one); unknown names are ignored.
	AttributeNames []string
	// MessageAttributeNames select message attributes: a name, All or .*
	// for every one, or "prefix.*".
	MessageAttributeNames []string
	// AttemptID is ReceiveRequestAttemptId (FIFO queues only): a receive
	// retried with the same id within five minutes returns the same
	// messages and receipt handles, and restarts their visibility timeout,
	// as long as none of them was deleted, received again or had its
	// visibility changed since; otherwise it is a new receive.
	AttemptID string
}

// ReceivedMessage is a message as ReceiveMessage returns it.
type ReceivedMessage struct {
	MessageID     string
	ReceiptHandle string
	Body          string
	MD5OfBody     string
	// Attributes are the requested system attributes.
	Attributes map[string]string
	// MessageAttributes are the requested message attributes, and
	// MD5OfMessageAttributes their digest ("" when there are none).
	MessageAttributes      map[string]MessageAttribute
	MD5OfMessageAttributes string
}

// ReceiptEntry is one entry of DeleteMessageBatch or
// ChangeMessageVisibilityBatch.
type ReceiptEntry struct {
	ID                string
	ReceiptHandle     string
	VisibilityTimeout int // ChangeMessageVisibilityBatch only
}

// ReceiptResult is the outcome of one ReceiptEntry: Err is nil on success.
type ReceiptResult struct {
	ID  string
	Err *awsproto.Error
}

// deliverLocked puts a message on the queue named by its ARN: the contract
// other services (SNS, EventBridge, Auto Scaling) use with the lock held.
// It fails with AWS.SimpleQueueService.NonExistentQueue when there is no
// such queue, and with the queue's own checks (size, FIFO group and
// deduplication ids) otherwise.
func (qs *Queues) deliverLocked(queueARN string, d Delivery) error {
	q, ok := qs.sqsQueueByARNLocked(queueARN)
	if !ok {
		return sqsNoQueue()
	}
	in := SendMessageInput{Body: d.Body, Attributes: d.Attributes, GroupID: d.GroupID, DedupID: d.DedupID, SenderID: d.SenderID}
	if _, err := qs.sqsSendLocked(q, in, qs.clock.Now()); err != nil {
		return err
	}
	q.notifyLocked()
	return nil
}

// SendMessage puts one message on a queue.
func (qs *Queues) SendMessage(queue string, in SendMessageInput) (SentMessage, error) {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	q, err := qs.sqsQueueLocked(queue)
	if err != nil {
		return SentMessage{}, err
	}
	sent, e := qs.sqsSendLocked(q, in, qs.clock.Now())
	if e != nil {
		return SentMessage{}, e
	}
	q.notifyLocked()
	return sent, nil
}

// SendMessageBatch sends up to ten messages. Batch-level problems (no
// entries, more than ten, ids repeated or malformed, more than 1 MiB in
// all) fail the call; a problem with one message fails only its entry.
func (qs *Queues) SendMessageBatch(queue string, entries []SendMessageBatchEntry) ([]SendMessageBatchResult, error) {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	q, err := qs.sqsQueueLocked(queue)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(entries))
	total := 0
	for i, e := range entries {
		ids[i] = e.ID
		total += sqsMessageSize(e.Body, e.Attributes)
	}
	if err := sqsCheckBatch(ids, "SendMessageBatchRequestEntry"); err != nil {
		return nil, err
	}
	if total > sqsMaxPayload {
		return nil, sqsErr("AWS.SimpleQueueService.BatchRequestTooLong", "Batch requests cannot be longer than %d bytes. You have sent %d bytes.", sqsMaxPayload, total)
	}
	now := qs.clock.Now()
	out := make([]SendMessageBatchResult, len(entries))
	for i, e := range entries {
		sent, err := qs.sqsSendLocked(q, e.SendMessageInput, now)
		out[i] = SendMessageBatchResult{ID: e.ID, SentMessage: sent, Err: err}
	}
	q.notifyLocked()
	return out, nil
}

// sqsCheckBatch applies SQS's batch-level rules to the entries' ids.
func sqsCheckBatch(ids []string, entryName string) error {
	if len(ids) == 0 {
		return sqsErr("AWS.SimpleQueueService.EmptyBatchRequest", "There should be at least one %s in the request.", entryName)
	}
	if len(ids) > sqsMaxBatchEntries {
		return sqsErr("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", "Maximum number of entries per request are %d. You have sent %d.", sqsMaxBatchEntries, len(ids))
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if !sqsValidBatchID(id) {
			return sqsErr("AWS.SimpleQueueService.InvalidBatchEntryId", "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.")
		}
		if seen[id] {
			return sqsErr("AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "Id %s repeated.", id)
		}
		seen[id] = true
	}
	return nil
}

func sqsValidBatchID(id string) bool {
	if id == "" || len(id) > sqsMaxNameLen {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// sqsSendLocked checks and enqueues one message. The caller notifies
// receivers.
func (qs *Queues) sqsSendLocked(q *sqsQueue, in SendMessageInput, now time.Time) (SentMessage, *awsproto.Error) {
	qs.sqsExpireLocked(q, now)
	if err := sqsCheckSend(q, &in); err != nil {
		return SentMessage{}, err
	}
	sent := SentMessage{
		MD5OfMessageBody:             sqsMD5(in.Body),
		MD5OfMessageAttributes:       sqsAttributesMD5(in.Attributes),
		MD5OfMessageSystemAttributes: sqsAttributesMD5(in.SystemAttributes),
	}
	var dedupKey string
	if q.fifo {
		if in.DedupID == "" {
			sum := sha256.Sum256([]byte(in.Body))
			in.DedupID = hex.EncodeToString(sum[:])
		}
		dedupKey = in.DedupID
		if q.attrs[sqsAttrDedupScope] == sqsDedupScopeGroup {
			dedupKey = in.GroupID + "\x00" + in.DedupID
		}
		if d, ok := q.dedup[dedupKey]; ok && now.Before(d.expires) {
			// A duplicate within the window is accepted and dropped.
			sent.MessageID, sent.SequenceNumber = d.messageID, d.seq
			return sent, nil
		}
	}
	delay := q.seconds(sqsAttrDelay)
	if in.DelaySeconds != nil {
		delay = time.Duration(*in.DelaySeconds) * time.Second
	}
	senderID := in.SenderID
	if senderID == "" {
		senderID = qs.cfg.Account
	}
	m := &sqsMessage{
		id: qs.uuidLocked(), body: in.Body, md5Body: sent.MD5OfMessageBody,
		attrs: maps.Clone(in.Attributes), system: maps.Clone(in.SystemAttributes),
		senderID: senderID, groupID: in.GroupID, dedupID: in.DedupID,
		sent: now, enqueued: now, visibleAt: now.Add(delay),
	}
	if q.fifo {
		m.seq = q.nextSeqLocked()
		q.recordDedupLocked(dedupKey, sqsDedup{messageID: m.id, seq: m.seq, expires: now.Add(sqsDedupWindow)})
	}
	q.addLocked(m)
	sent.MessageID, sent.SequenceNumber = m.id, m.seq
	qs.dataLocked(eventlog.Event{Service: "sqs", Kind: EvMessageSent, Resource: q.arn, Detail: "message sent " + q.name + " " + m.id})
	return sent, nil
}

func (q *sqsQueue) nextSeqLocked() string {
	q.seq++
	return strconv.FormatUint(sqsSequenceBase+q.seq, 10)
}

// sqsCheckSend applies SQS's rules for one message on a queue.
func sqsCheckSend(q *sqsQueue, in *SendMessageInput) *awsproto.Error {
	if in.Body == "" {
		return sqsMissing("MessageBody")
	}
	if r, ok := sqsInvalidRune(in.Body); ok {
		return sqsErr("InvalidMessageContents", "Invalid binary character '#x%X' was found in the message body, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF", r)
	}
	if err := sqsCheckMessageAttributes(in.Attributes); err != nil {
		return err
	}
	if err := sqsCheckSystemAttributes(in.SystemAttributes); err != nil {
		return err
	}
	if limit := q.num(sqsAttrMaxSize); sqsMessageSize(in.Body, in.Attributes) > limit {
		return sqsErr(sqsInvalidParameter, "One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", limit)
	}
	if d := in.DelaySeconds; d != nil {
		if *d < 0 || *d > sqsMaxDelay {
			return sqsInvalidValue("DelaySeconds", *d, "DelaySeconds must be >= 0 and <= 900.")
		}
		if q.fifo && *d != 0 {
			return sqsInvalidValue("DelaySeconds", *d, "The request include parameter that is not valid for this queue type.")
		}
	}
	if in.GroupID != "" && !sqsValidFifoID(in.GroupID) {
		return sqsInvalidValue("MessageGroupId", in.GroupID, "MessageGroupId can only include alphanumeric and punctuation characters. 1 to 128 in length.")
	}
	if in.DedupID != "" && !sqsValidFifoID(in.DedupID) {
		return sqsInvalidValue("MessageDeduplicationId", in.DedupID, "MessageDeduplicationId can only include alphanumeric and punctuation characters. 1 to 128 in length.")
	}
	if !q.fifo {
		if in.DedupID != "" {
			return sqsInvalidValue("MessageDeduplicationId", in.DedupID, "The request include parameter that is not valid for this queue type.")
		}
		return nil
	}
	if in.GroupID == "" {
		return sqsMissing("MessageGroupId")
	}
	if in.DedupID == "" && q.attrs[sqsAttrContentDedup] != "true" {
		return sqsErr(sqsInvalidParameter, "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly")
	}
	return nil
}

// sqsValidFifoID checks a group or deduplication id: 1 to 128 printable ASCII
// characters.
func sqsValidFifoID(s string) bool {
	if len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '!' || s[i] > '~' {
			return false
		}
	}
	return true
}

// sqsInvalidRune returns the first character SQS does not accept in a
// message: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000
// to #x10FFFF, in valid UTF-8.
func sqsInvalidRune(s string) (rune, bool) {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return rune(s[i]), true
		}
		i += size
		switch {
		case r == 0x9 || r == 0xA || r == 0xD,
			r >= 0x20 && r <= 0xD7FF,
			r >= 0xE000 && r <= 0xFFFD,
			r >= 0x10000 && r <= 0x10FFFF:
			continue
		}
		return r, true
	}
	return 0, false
}

// sqsTransportType returns the MD5 transport byte of a data type: 1 for
// String and Number (and their custom types), 2 for Binary, 0 otherwise.
func sqsTransportType(dataType string) byte {
	base, _, _ := strings.Cut(dataType, ".")
	switch base {
	case "String", "Number":
		return 1
	case "Binary":
		return 2
	}
	return 0
}

func sqsCheckMessageAttributes(attrs map[string]MessageAttribute) *awsproto.Error {
	if len(attrs) > sqsMaxAttributes {
		return sqsErr(sqsInvalidParameter, "Number of message attributes [%d] exceeds the allowed maximum [%d].", len(attrs), sqsMaxAttributes)
	}
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		a := attrs[name]
		if !sqsValidAttributeName(name) {
			return sqsErr(sqsInvalidParameter, "Message (user) attribute name '%s' is invalid. Names can contain alphanumeric characters, hyphens, underscores and periods, must not start or end with a period or repeat it, must not start with 'AWS.' or 'Amazon.', and can be up to 256 characters long.", name)
		}
		if err := sqsCheckAttributeValue("message (user)", name, a); err != nil {
			return err
		}
	}
	return nil
}

func sqsCheckSystemAttributes(attrs map[string]MessageAttribute) *awsproto.Error {
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		a := attrs[name]
		if name != sqsSysTraceHeader {
			return sqsErr(sqsInvalidParameter, "Message system attribute name '%s' is invalid.", name)
		}
		if a.DataType != "String" {
			return sqsErr(sqsInvalidParameter, "The type of message system attribute '%s' is invalid. You must use only the following supported type: String.", name)
		}
		if err := sqsCheckAttributeValue("message system", name, a); err != nil {
			return err
		}
	}
	return nil
}

func sqsCheckAttributeValue(kind, name string, a MessageAttribute) *awsproto.Error {
	tt := sqsTransportType(a.DataType)
	if tt == 0 || len(a.DataType) > 256 || strings.HasSuffix(a.DataType, ".") {
		return sqsErr(sqsInvalidParameter, "The type of %s attribute '%s' is invalid. You must use only the following supported type prefixes: Binary, Number, String.", kind, name)
	}
	if tt == 2 && len(a.BinaryValue) == 0 || tt == 1 && a.StringValue == "" {
		return sqsErr(sqsInvalidParameter, "%s attribute '%s' must contain a non-empty value of %s attribute type '%s'.", sqsUpperFirst(kind), name, kind, a.DataType)
	}
	if tt == 1 {
		if r, bad := sqsInvalidRune(a.StringValue); bad {
			return sqsErr(sqsInvalidParameter, "%s attribute '%s' contains the invalid character '#x%X'.", sqsUpperFirst(kind), name, r)
		}
	}
	if strings.HasPrefix(a.DataType, "Number") {
		if f, err := strconv.ParseFloat(strings.TrimSpace(a.StringValue), 64); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return sqsErr(sqsInvalidParameter, "Can't cast the value of %s attribute '%s' to a number.", kind, name)
		}
	}
	return nil
}

func sqsUpperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func sqsValidAttributeName(name string) bool {
	if name == "" || len(name) > 256 || name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") {
		return false
	}
	lower := strings.ToLower(name)
	if strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon.") {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// sqsMessageSize is what counts against MaximumMessageSize: the body and
// every attribute's name, type and value.
func sqsMessageSize(body string, attrs map[string]MessageAttribute) int {
	n := len(body)
	for name, a := range attrs {
		n += len(name) + len(a.DataType) + len(a.StringValue) + len(a.BinaryValue)
	}
	return n
}

func sqsMD5(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// sqsAttributesMD5 is SQS's digest of message attributes: for each, in
// name order, the name, the data type, a transport byte (1 String or
// Number, 2 Binary) and the value, strings and values each preceded by
// their length as four big-endian bytes. No attributes digest to "".
func sqsAttributesMD5(attrs map[string]MessageAttribute) string {
	if len(attrs) == 0 {
		return ""
	}
	h := md5.New()
	field := func(b []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		a := attrs[name]
		field([]byte(name))
		field([]byte(a.DataType))
		tt := sqsTransportType(a.DataType)
		h.Write([]byte{tt})
		if tt == 2 {
			field(a.BinaryValue)
		} else {
			field([]byte(a.StringValue))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Receipt handles are opaque to clients: "AQEB" and the base64 of the
// queue name, the message id, the receive number and a random nonce. A
// handle names one receive of one message on one queue.
const sqsHandlePrefix = "AQEB"

func (qs *Queues) sqsReceiptHandleLocked(q *sqsQueue, m *sqsMessage) string {
	raw := strings.Join([]string{q.name, m.id, strconv.Itoa(m.received), qs.hexIDLocked("", 16)}, "\x00")
	return sqsHandlePrefix + base64.StdEncoding.EncodeToString([]byte(raw))
}

// parseHandle returns the message id a receipt handle names, or
// ReceiptHandleIsInvalid when it is not a handle of this queue.
func (q *sqsQueue) parseHandle(h string) (string, *awsproto.Error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, sqsHandlePrefix))
	parts := strings.Split(string(raw), "\x00")
	if !strings.HasPrefix(h, sqsHandlePrefix) || err != nil || len(parts) != 4 || parts[0] != q.name {
		e := sqsErr("ReceiptHandleIsInvalid", "The input receipt handle %q is not a valid receipt handle.", h)
		e.Status = 404
		return "", e
	}
	return parts[1], nil
}

// DeleteMessage deletes the message a receipt handle was issued for. As
// SQS documents, a handle of a message that is gone (deleted, expired,
// purged) succeeds, and an older handle of a message received again since
// succeeds without deleting it.
func (qs *Queues) DeleteMessage(queue, handle string) error {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	q, err := qs.sqsQueueLocked(queue)
	if err != nil {
		return err
	}
	if e := qs.sqsDeleteLocked(q, handle); e != nil {
		return e
	}
	return nil
}

// DeleteMessageBatch deletes up to ten messages; see DeleteMessage.
func (qs *Queues) DeleteMessageBatch(queue string, entries []ReceiptEntry) ([]ReceiptResult, error) {
	return qs.sqsReceiptBatch(queue, entries, "DeleteMessageBatchRequestEntry", func(q *sqsQueue, e ReceiptEntry) *awsproto.Error {
		return qs.sqsDeleteLocked(q, e.ReceiptHandle)
	})
}

func (qs *Queues) sqsReceiptBatch(queue string, entries []ReceiptEntry, entryName string, f func(*sqsQueue, ReceiptEntry) *awsproto.Error) ([]ReceiptResult, error) {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	q, err := qs.sqsQueueLocked(queue)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.ID
	}
	if err := sqsCheckBatch(ids, entryName); err != nil {
		return nil, err
	}
	out := make([]ReceiptResult, len(entries))
	for i, e := range entries {
		out[i] = ReceiptResult{ID: e.ID, Err: f(q, e)}
	}
	return out, nil
}

func (qs *Queues) sqsDeleteLocked(q *sqsQueue, handle string) *awsproto.Error {
	if handle == "" {
		return sqsMissing("ReceiptHandle")
	}
	id, e := q.parseHandle(handle)
	if e != nil {
		return e
	}
	m, ok := q.byID[id]
	if !ok || m.handle != handle {
		return nil
	}
	q.removeLocked(m)
	q.notifyLocked() // a FIFO group may be free again
	qs.dataLocked(eventlog.Event{Service: "sqs", Kind: EvMessageDeleted, Resource: q.arn, Detail: "message deleted " + q.name + " " + id})
	return nil
}

// ChangeMessageVisibility makes an in-flight message visible again after
// timeout seconds (0 to 43200, and no later than 12 hours after it was
// received). A handle that is not the message's latest, or a message not
// in flight, fails with AWS.SimpleQueueService.MessageNotInflight.
func (qs *Queues) ChangeMessageVisibility(queue, handle string, timeout int) error {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	q, err := qs.sqsQueueLocked(queue)
	if err != nil {
		return err
	}
	if e := qs.sqsChangeVisibilityLocked(q, handle, timeout); e != nil {
		return e
	}
	return nil
}

// ChangeMessageVisibilityBatch changes up to ten messages' visibility; see
// ChangeMessageVisibility.
func (qs *Queues) ChangeMessageVisibilityBatch(queue string, entries []ReceiptEntry) ([]ReceiptResult, error) {
	return qs.sqsReceiptBatch(queue, entries, "ChangeMessageVisibilityBatchRequestEntry", func(q *sqsQueue, e ReceiptEntry) *awsproto.Error {
		return qs.sqsChangeVisibilityLocked(q, e.ReceiptHandle, e.VisibilityTimeout)
	})
}

func (qs *Queues) sqsChangeVisibilityLocked(q *sqsQueue, handle string, timeout int) *awsproto.Error {
	if handle == "" {
		return sqsMissing("ReceiptHandle")
	}
	if timeout < 0 || timeout > sqsMaxVisibility {
		return sqsInvalidValue("VisibilityTimeout", timeout, "Must be between 0 and 43200, if provided.")
	}
	id, e := q.parseHandle(handle)
	if e != nil {
		return e
	}
	now := qs.clock.Now()
	qs.sqsExpireLocked(q, now)
	m, ok := q.byID[id]
	if !ok || m.handle != handle || !m.inFlight(now) {
		return sqsErr("AWS.SimpleQueueService.MessageNotInflight", "Message does not exist or is not available for visibility timeout change.")
	}
	until := now.Add(time.Duration(timeout) * time.Second)
	if until.After(m.receivedAt.Add(sqsMaxVisibility * time.Second)) {
		return sqsInvalidValue("VisibilityTimeout", timeout, fmt.Sprintf("Total VisibilityTimeout for the message is beyond the limit [%d seconds]", sqsMaxVisibility))
	}
	q.setVisibleAtLocked(m, until)
	m.changes++
	q.notifyLocked()
	return nil
}

// sqsExpireLocked drops the messages older than the retention period and the
// FIFO deduplication records older than their window.
func (qs *Queues) sqsExpireLocked(q *sqsQueue, now time.Time) {
	q.expireLocked(now)
}

// countsLocked returns the approximate counts: visible, in flight, delayed.
// It costs what the messages that became visible since the last receive
// cost to promote, not the queue's depth.
func (q *sqsQueue) countsLocked(now time.Time) (visible, inFlight, delayed int) {
	q.promoteLocked(now)
	waiting := len(q.waiting.ms)
	return len(q.byID) - waiting, q.waitingRcv, waiting - q.waitingRcv
}
