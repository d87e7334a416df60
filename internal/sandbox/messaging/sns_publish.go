package messaging

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
)

// HTTP/S delivery: each attempt is bounded by snsPostTimeout; a failed
// attempt (network error, 5xx or 429) is retried snsRetries times,
// snsRetryDelay seconds apart on the sandbox's clock (1 s with RelaxLimits),
// as AWS's default delivery policy does (3 retries, 20 s linear).
const (
	snsPostTimeout = 5 * time.Second
	snsRetries     = 3
	snsRetryDelay  = 20
	snsUserAgent   = "Amazon Simple Notification Service Agent"
)

// PublishRequest is a Publish call (or one PublishBatch entry).
type PublishRequest struct {
	// TopicARN is the TopicArn or TargetArn parameter.
	TopicARN string
	Subject  string
	Message  string
	// MessageStructure "json" makes Message a JSON object of per-protocol
	// messages with a "default" key.
	MessageStructure string
	Attributes       map[string]MessageAttribute
	// GroupID and DedupID are FIFO topics' MessageGroupId and
	// MessageDeduplicationId.
	GroupID, DedupID string
}

// PublishResult is what Publish returns.
type PublishResult struct {
	MessageID string
	// SequenceNumber is set for FIFO topics.
	SequenceNumber string
}

// PublishBatchEntry is one entry of PublishBatch; its TopicARN is ignored.
type PublishBatchEntry struct {
	ID string
	PublishRequest
	// Err, when set, is a problem the caller found decoding the entry: the
	// entry counts in the batch's checks and fails with it.
	Err error
}

// PublishBatchResult is one entry's outcome: a result or an error.
type PublishBatchResult struct {
	ID string
	PublishResult
	Err *awsproto.Error
}

// publishLocked publishes a message to the topic named by its ARN and
// returns the message id. It is how other services (Auto Scaling) publish.
func (ts *Topics) publishLocked(topicARN string, in PublishInput) (string, error) {
	t, ok := ts.sns.topics[topicARN]
	if !ok {
		return "", snsTopicNotFound()
	}
	res, err := ts.snsPublishLocked(t, PublishRequest{TopicARN: topicARN, Subject: in.Subject, Message: in.Message, Attributes: in.Attributes})
	return res.MessageID, err
}

// Publish publishes a message to a topic and delivers it, synchronously to
// SQS queues and in the background to HTTP/S endpoints, to every confirmed
// subscription whose filter policy it passes. Subjects are 1–100
// characters without control characters; the message with its attributes
// is at most 256 KiB.
func (ts *Topics) Publish(r PublishRequest) (PublishResult, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, err := ts.snsTopicLocked(r.TopicARN, "TopicArn", "Publish")
	if err != nil {
		return PublishResult{}, err
	}
	return ts.snsPublishLocked(t, r)
}

// PublishBatch publishes up to 10 messages to a topic. Problems with the
// batch as a whole are errors; problems with an entry are that entry's Err.
func (ts *Topics) PublishBatch(topicARN string, entries []PublishBatchEntry) ([]PublishBatchResult, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, err := ts.snsTopicLocked(topicARN, "TopicArn", "Publish")
	if err != nil {
		return nil, err
	}
	switch {
	case len(entries) == 0:
		return nil, awsproto.Errorf("EmptyBatchRequest", "The batch request doesn't contain any entries")
	case len(entries) > snsMaxBatch:
		return nil, awsproto.Errorf("TooManyEntriesInBatchRequest", "The batch request contains more entries than permissible.")
	}
	seen := map[string]bool{}
	total := 0
	for _, e := range entries {
		if !snsValidBatchID(e.ID) {
			return nil, awsproto.Errorf("InvalidBatchEntryId", "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.")
		}
		if seen[e.ID] {
			return nil, awsproto.Errorf("BatchEntryIdsNotDistinct", "Two or more batch entries in the request have the same Id.")
		}
		seen[e.ID] = true
		total += snsMessageSize(e.Message, e.Attributes)
	}
	if total > snsMaxMessageBytes {
		return nil, awsproto.Errorf("BatchRequestTooLong", "The length of all the messages put together is more than the limit.")
	}
	out := make([]PublishBatchResult, 0, len(entries))
	for _, e := range entries {
		r := e.PublishRequest
		r.TopicARN = topicARN
		err := e.Err
		var res PublishResult
		if err == nil {
			res, err = ts.snsPublishLocked(t, r)
		}
		br := PublishBatchResult{ID: e.ID, PublishResult: res}
		if err != nil {
			br.Err = awsproto.AsError(err, "InvalidParameter")
		}
		out = append(out, br)
	}
	return out, nil
}

func snsValidBatchID(id string) bool {
	if id == "" || len(id) > 80 {
		return false
	}
	for _, c := range id {
		if !(c == '-' || c == '_' || c < 128 && (unicode.IsLetter(c) || unicode.IsDigit(c))) {
			return false
		}
	}
	return true
}

// snsMessageSize is what counts against the 256 KiB limit: the message and
// every attribute's name, type and value.
func snsMessageSize(msg string, attrs map[string]MessageAttribute) int {
	n := len(msg)
	for k, a := range attrs {
		n += len(k) + len(a.DataType) + len(a.StringValue) + len(a.BinaryValue)
	}
	return n
}

// snsCheckSubject enforces SNS's subject rules: 1–100 characters, no line
// breaks or other control characters, starting with a letter, digit or
// punctuation mark.
func snsCheckSubject(s string) error {
	if s == "" {
		return nil
	}
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > snsMaxSubjectRunes {
		return snsInvalid("Subject")
	}
	for i, r := range s {
		if unicode.IsControl(r) || i == 0 && unicode.IsSpace(r) {
			return snsInvalid("Subject")
		}
	}
	return nil
}

// snsCheckAttributes validates attribute names, types and values.
func snsCheckAttributes(attrs map[string]MessageAttribute) error {
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		a := attrs[name]
		if err := snsCheckAttributeName(name); err != nil {
			return err
		}
		if a.DataType == "" {
			return snsInvalidValue("The message attribute '%s' must contain non-empty message attribute type.", name)
		}
		base, custom, hasCustom := strings.Cut(a.DataType, ".")
		if base != "String" && base != "Number" && base != "Binary" || hasCustom && custom == "" || len(a.DataType) > 256 {
			return snsInvalidValue("The message attribute '%s' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.", name)
		}
		switch {
		case base == "Binary" && len(a.BinaryValue) == 0, base != "Binary" && a.StringValue == "":
			return snsInvalidValue("The message attribute '%s' must contain non-empty message attribute value for message attribute type '%s'.", name, a.DataType)
		case base == "Number":
			if _, err := strconv.ParseFloat(strings.TrimSpace(a.StringValue), 64); err != nil {
				return snsInvalidValue("Could not cast message attribute '%s' value to number.", name)
			}
		case a.DataType == "String.Array":
			var arr []any
			if err := json.Unmarshal([]byte(a.StringValue), &arr); err != nil {
				return snsInvalidValue("The message attribute '%s' with type 'String.Array' must be a JSON array.", name)
			}
		}
	}
	return nil
}

func snsCheckAttributeName(name string) error {
	switch {
	case name == "":
		return snsInvalidValue("The message attribute name must not be empty.")
	case len(name) > 256:
		return snsInvalidValue("Length of message attribute name must be less than 256 bytes.")
	case name[0] == '.':
		return snsInvalidValue("Invalid message attribute name starting with character '.' was found.")
	case name[len(name)-1] == '.':
		return snsInvalidValue("Invalid message attribute name ending with character '.' was found.")
	case strings.Contains(name, ".."):
		return snsInvalidValue("Message attribute name can not have successive '.' character.")
	}
	for _, c := range name {
		if !(c == '-' || c == '_' || c == '.' || c < 128 && (unicode.IsLetter(c) || unicode.IsDigit(c))) {
			return snsInvalidValue("Invalid non-alphanumeric character '#x%X' was found in the message attribute name. Can only include alphanumeric characters, hyphens, underscores, or dots.", c)
		}
	}
	return nil
}

// snsPerProtocol splits a MessageStructure=json message into its per-protocol
// messages (string values only; others are ignored, as AWS does).
func snsPerProtocol(msg string) (map[string]string, error) {
	var raw map[string]any
	if err := json.Unmarshal([]byte(msg), &raw); err != nil {
		return nil, snsInvalid("Message Structure - JSON message body failed to parse")
	}
	out := map[string]string{}
	for k, v := range raw {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	if _, ok := out["default"]; !ok {
		return nil, snsInvalid("Message Structure - No default entry in JSON message body")
	}
	return out, nil
}

// snsPublishLocked validates a message, records it and delivers it to the
// topic's confirmed subscriptions.
func (ts *Topics) snsPublishLocked(t *snsTopic, r PublishRequest) (PublishResult, error) {
	if r.Message == "" {
		return PublishResult{}, snsInvalid("Empty message")
	}
	if snsMessageSize(r.Message, r.Attributes) > snsMaxMessageBytes {
		return PublishResult{}, snsInvalid("Message too long")
	}
	if err := snsCheckSubject(r.Subject); err != nil {
		return PublishResult{}, err
	}
	var messages map[string]string
	switch r.MessageStructure {
	case "":
	case "json":
		m, err := snsPerProtocol(r.Message)
		if err != nil {
			return PublishResult{}, err
		}
		messages = m
	default:
		return PublishResult{}, snsInvalid("MessageStructure")
	}
	if err := snsCheckAttributes(r.Attributes); err != nil {
		return PublishResult{}, err
	}
	now := ts.clock.Now().UTC()
	var res PublishResult
	dedupID := r.DedupID
	if t.fifo {
		if r.GroupID == "" {
			return PublishResult{}, snsInvalid("The MessageGroupId parameter is required for FIFO topics")
		}
		if len(r.GroupID) > 128 || len(r.DedupID) > 128 {
			return PublishResult{}, snsInvalid("MessageGroupId and MessageDeduplicationId must be at most 128 characters long")
		}
		if dedupID == "" {
			if t.attrs["ContentBasedDeduplication"] != "true" {
				return PublishResult{}, snsInvalid("The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly")
			}
			sum := sha256.Sum256([]byte(r.Message))
			dedupID = hex.EncodeToString(sum[:])
		}
		for len(t.dedupOrder) > 0 {
			k := t.dedupOrder[0]
			if d, ok := t.dedup[k]; ok && now.Sub(d.at) < snsDedupWindow {
				break
			}
			delete(t.dedup, k)
			t.dedupOrder[0] = ""
			t.dedupOrder = t.dedupOrder[1:]
		}
		if d, ok := t.dedup[dedupID]; ok {
			ts.dataLocked(eventlog.Event{Service: "sns", Kind: EvSNSDuplicate, Resource: t.arn, Detail: fmt.Sprintf("duplicate of %s on %s (deduplication id %s) not delivered", d.id, t.arn, dedupID)})
			return PublishResult{MessageID: d.id, SequenceNumber: d.sequenceNo}, nil
		}
		t.seq++
		res.SequenceNumber = strconv.FormatUint(10_000_000_000_000_000_000+t.seq, 10)
	} else {
		if r.DedupID != "" {
			return PublishResult{}, snsInvalid("MessageDeduplicationId Reason: The request includes MessageDeduplicationId parameter that is not valid for this topic type")
		}
		if r.GroupID != "" {
			return PublishResult{}, snsInvalid("MessageGroupId Reason: The request includes MessageGroupId parameter that is not valid for this topic type")
		}
	}
	res.MessageID = ts.uuidLocked()
	if t.fifo {
		t.dedup[dedupID] = snsDedup{at: now, id: res.MessageID, sequenceNo: res.SequenceNumber}
		t.dedupOrder = append(t.dedupOrder, dedupID)
	}
	ts.dataLocked(eventlog.Event{Service: "sns", Kind: EvPublished, Resource: t.arn, Detail: fmt.Sprintf("published %s to %s (%d subscriptions)", res.MessageID, t.arn, len(t.subs))})
	n := snsNotification{
		id: res.MessageID, seq: res.SequenceNumber, topic: t.arn, subject: r.Subject,
		attrs: r.Attributes, timestamp: now, groupID: r.GroupID, dedupID: dedupID,
		signatureVersion: cmp.Or(t.attrs["SignatureVersion"], "1"),
	}
	for _, s := range slices.Clone(t.subs) {
		if s.pending {
			continue
		}
		n.message = r.Message
		if messages != nil {
			n.message = cmp.Or(messages[s.protocol], messages["default"])
		}
		ts.snsSendLocked(s, n)
	}
	return res, nil
}

// snsNotification is one published message on its way to subscriptions.
type snsNotification struct {
	id, seq, topic, subject, message string
	attrs                            map[string]MessageAttribute
	timestamp                        time.Time
	groupID, dedupID                 string
	signatureVersion                 string
}

// snsSendLocked delivers a message to one subscription, if its
// filter policy lets it through.
func (ts *Topics) snsSendLocked(s *snsSub, n snsNotification) {
	if !s.filter.Match(n.attrs, n.message) {
		ts.dataLocked(eventlog.Event{Service: "sns", Kind: EvSNSFiltered, Resource: s.arn, Detail: fmt.Sprintf("message %s filtered out for %s", n.id, s.arn)})
		return
	}
	raw := s.attrs["RawMessageDelivery"] == "true"
	switch s.protocol {
	case ProtocolSQS:
		d := Delivery{Body: n.message, SenderID: snsSenderID}
		if strings.HasSuffix(s.endpoint, ".fifo") {
			// A FIFO topic passes its ids on to FIFO queues only.
			d.GroupID, d.DedupID = n.groupID, n.dedupID
		}
		if raw {
			d.Attributes = maps.Clone(n.attrs)
		} else {
			d.Body = string(ts.snsEnvelope(s, n))
		}
		kind, detail := EvSNSDelivered, fmt.Sprintf("delivered %s to %s (queue %s)", n.id, s.arn, s.endpoint)
		if err := ts.queues.deliverLocked(s.endpoint, d); err != nil {
			kind, detail = EvSNSDeliveryFailed, fmt.Sprintf("delivery of %s to %s (queue %s) failed: %v", n.id, s.arn, s.endpoint, err)
		}
		ts.dataLocked(eventlog.Event{Service: "sns", Kind: kind, Resource: s.arn, Detail: detail})
	case ProtocolHTTP, ProtocolHTTPS:
		body := []byte(n.message)
		if !raw {
			body = ts.snsEnvelope(s, n)
		}
		h := http.Header{}
		h.Set("x-amz-sns-message-type", "Notification")
		h.Set("x-amz-sns-message-id", n.id)
		h.Set("x-amz-sns-topic-arn", n.topic)
		h.Set("x-amz-sns-subscription-arn", s.arn)
		if raw {
			h.Set("x-amz-sns-rawdelivery", "true")
		}
		ts.snsPostLocked(snsPost{sub: s, url: s.endpoint, header: h, body: body, what: "message " + n.id})
	case ProtocolLambda:
		arn, id := s.arn, n.id
		ok := ts.invokeLocked(s.endpoint, ts.snsLambdaEvent(s, n), func(err error) {
			kind, detail := EvSNSDelivered, fmt.Sprintf("delivered %s to %s (function %s)", id, arn, s.endpoint)
			if err != nil {
				kind, detail = EvSNSDeliveryFailed, fmt.Sprintf("delivery of %s to %s (function %s) failed: %v", id, arn, s.endpoint, err)
			}
			ts.dataLocked(eventlog.Event{Service: "sns", Kind: kind, Resource: arn, Detail: detail})
		})
		if !ok {
			ts.dataLocked(eventlog.Event{Service: "sns", Kind: EvSNSDeliveryFailed, Resource: s.arn, Detail: fmt.Sprintf("message %s not delivered to %s: this sandbox runs no Lambda functions (%s)", n.id, s.arn, s.endpoint)})
		}
	default:
		ts.dataLocked(eventlog.Event{Service: "sns", Kind: EvSNSDeliveryFailed, Resource: s.arn, Detail: fmt.Sprintf("message %s not delivered to %s: the sandbox does not invoke %s endpoints (%s)", n.id, s.arn, s.protocol, s.endpoint)})
	}
}

// Envelopes --------------------------------------------------------------------

// snsBaseURL is where a subscription's SubscribeURL and UnsubscribeURL point.
func (ts *Topics) snsBaseURL(s *snsSub) string {
	if s.baseURL != "" {
		return s.baseURL
	}
	return "https://sns." + ts.cfg.Region + ".amazonaws.com"
}

// snsQueryEscape escapes a query value as AWS writes it in its URLs (ARN
// colons stay as they are).
func snsQueryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "%3A", ":")
}

// SubscribeURL is the URL whose GET confirms the subscription: this
// sandbox's own endpoint, with Version so that the router sends it to SNS.
func (ts *Topics) snsSubscribeURL(s *snsSub) string {
	return ts.snsBaseURL(s) + "/?Action=ConfirmSubscription&TopicArn=" + snsQueryEscape(s.topic.arn) + "&Token=" + snsQueryEscape(s.token) + "&Version=2010-03-31"
}

func (ts *Topics) snsUnsubscribeURL(s *snsSub) string {
	return ts.snsBaseURL(s) + "/?Action=Unsubscribe&SubscriptionArn=" + snsQueryEscape(s.arn) + "&Version=2010-03-31"
}

func (ts *Topics) snsSigningCertURL(s *snsSub) string {
	return ts.snsBaseURL(s) + "/SimpleNotificationService-lifeguard-sandbox.pem"
}

// snsField is one "Key" : value line of an SNS JSON document.
type snsField struct {
	key   string
	value string // already JSON
}

// snsJSONString encodes s as a JSON string without Go's HTML escaping.
func snsJSONString(s string) string {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	_ = e.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// snsWriteDocument writes fields as SNS formats its JSON documents:
// two-space indent and a space on each side of the colon.
func snsWriteDocument(fields []snsField) []byte {
	var b bytes.Buffer
	b.WriteString("{\n")
	for i, f := range fields {
		fmt.Fprintf(&b, "  %s : %s", snsJSONString(f.key), f.value)
		if i < len(fields)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("}")
	return b.Bytes()
}

// snsSignature is a stand-in for SNS's RSA signature: base64 of a digest of
// the signed fields. It does not verify against any certificate.
func snsSignature(fields []snsField) string {
	h := sha256.New()
	for _, f := range fields {
		h.Write([]byte(f.key + "\n" + f.value + "\n"))
	}
	sum := h.Sum(nil)
	again := sha256.Sum256(sum)
	return base64.StdEncoding.EncodeToString(append(sum, again[:]...))
}

// snsEnvelope is the JSON a non-raw subscription receives: Type Notification,
// MessageId, SequenceNumber (FIFO), TopicArn, Subject (when given),
// Message, Timestamp, SignatureVersion, Signature, SigningCertURL,
// UnsubscribeURL and MessageAttributes (when any).
func (ts *Topics) snsEnvelope(s *snsSub, n snsNotification) []byte {
	f := []snsField{{"Type", snsJSONString("Notification")}, {"MessageId", snsJSONString(n.id)}}
	if n.seq != "" {
		f = append(f, snsField{"SequenceNumber", snsJSONString(n.seq)})
	}
	f = append(f, snsField{"TopicArn", snsJSONString(n.topic)})
	if n.subject != "" {
		f = append(f, snsField{"Subject", snsJSONString(n.subject)})
	}
	f = append(f,
		snsField{"Message", snsJSONString(n.message)},
		snsField{"Timestamp", snsJSONString(n.timestamp.UTC().Format(awsproto.TimeFormat))},
		snsField{"SignatureVersion", snsJSONString(n.signatureVersion)},
	)
	f = append(f,
		snsField{"Signature", snsJSONString(snsSignature(f))},
		snsField{"SigningCertURL", snsJSONString(ts.snsSigningCertURL(s))},
		snsField{"UnsubscribeURL", snsJSONString(ts.snsUnsubscribeURL(s))},
	)
	if len(n.attrs) > 0 {
		var b strings.Builder
		b.WriteString("{\n")
		names := slices.Sorted(maps.Keys(n.attrs))
		for i, name := range names {
			a := n.attrs[name]
			v := a.StringValue
			if strings.HasPrefix(a.DataType, "Binary") {
				v = base64.StdEncoding.EncodeToString(a.BinaryValue)
			}
			fmt.Fprintf(&b, `    %s : {"Type":%s,"Value":%s}`, snsJSONString(name), snsJSONString(a.DataType), snsJSONString(v))
			if i < len(names)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString("  }")
		f = append(f, snsField{"MessageAttributes", b.String()})
	}
	return snsWriteDocument(f)
}

// snsLambdaEvent is the event a Lambda function subscribed to a topic
// receives: one record whose Sns member is the notification, with
// SigningCertUrl and UnsubscribeUrl spelled as Lambda spells them.
func (ts *Topics) snsLambdaEvent(s *snsSub, n snsNotification) []byte {
	var env map[string]any
	_ = json.Unmarshal(ts.snsEnvelope(s, n), &env)
	msg := map[string]any{
		"Type": "Notification", "MessageId": n.id, "TopicArn": n.topic, "Subject": nil, "Message": n.message,
		"Timestamp": env["Timestamp"], "SignatureVersion": n.signatureVersion, "Signature": env["Signature"],
		"SigningCertUrl": env["SigningCertURL"], "UnsubscribeUrl": env["UnsubscribeURL"],
		"MessageAttributes": map[string]any{},
	}
	if n.subject != "" {
		msg["Subject"] = n.subject
	}
	if a, ok := env["MessageAttributes"]; ok {
		msg["MessageAttributes"] = a
	}
	b, _ := json.Marshal(map[string]any{"Records": []any{map[string]any{
		"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": s.arn, "Sns": msg,
	}}})
	return b
}

// snsConfirmation is the SubscriptionConfirmation document for s.
func (ts *Topics) snsConfirmation(s *snsSub, id string) []byte {
	f := []snsField{
		{"Type", snsJSONString("SubscriptionConfirmation")},
		{"MessageId", snsJSONString(id)},
		{"Token", snsJSONString(s.token)},
		{"TopicArn", snsJSONString(s.topic.arn)},
		{"Message", snsJSONString("You have chosen to subscribe to the topic " + s.topic.arn + ".\nTo confirm the subscription, visit the SubscribeURL included in this message.")},
		{"SubscribeURL", snsJSONString(ts.snsSubscribeURL(s))},
		{"Timestamp", snsJSONString(ts.clock.Now().UTC().Format(awsproto.TimeFormat))},
		{"SignatureVersion", snsJSONString(cmp.Or(s.topic.attrs["SignatureVersion"], "1"))},
	}
	f = append(f,
		snsField{"Signature", snsJSONString(snsSignature(f))},
		snsField{"SigningCertURL", snsJSONString(ts.snsSigningCertURL(s))},
	)
	return snsWriteDocument(f)
}

// snsSendConfirmationLocked POSTs the SubscriptionConfirmation to a pending
// HTTP/S subscription.
func (ts *Topics) snsSendConfirmationLocked(s *snsSub) {
	id := ts.uuidLocked()
	h := http.Header{}
	h.Set("x-amz-sns-message-type", "SubscriptionConfirmation")
	h.Set("x-amz-sns-message-id", id)
	h.Set("x-amz-sns-topic-arn", s.topic.arn)
	ts.snsPostLocked(snsPost{sub: s, url: s.endpoint, header: h, body: ts.snsConfirmation(s, id), what: "subscription confirmation " + id, confirmation: true})
}

// HTTP delivery ----------------------------------------------------------------

// snsPost is one HTTP/S delivery and its attempts so far.
type snsPost struct {
	sub          *snsSub
	url          string
	header       http.Header
	body         []byte
	what         string // for events: "message <id>"
	confirmation bool   // a SubscriptionConfirmation (sent while pending)
	attempt      int
}

// snsPostLocked starts a delivery attempt in the background. The goroutine
// does its network I/O without the lock and takes it only to record the
// outcome and schedule a retry.
func (ts *Topics) snsPostLocked(p snsPost) {
	if ts.closed {
		return
	}
	p.attempt++
	ts.goHost(func() {
		retry, err := ts.sns.post(p)
		ts.mu.Lock()
		defer ts.mu.Unlock()
		if ts.closed {
			return
		}
		switch {
		case err == nil:
			ts.dataLocked(eventlog.Event{Service: "sns", Kind: EvSNSDelivered, Resource: p.sub.arn, Detail: fmt.Sprintf("delivered %s to %s (%s)", p.what, p.sub.arn, p.url)})
		case retry && p.attempt <= snsRetries:
			d := time.Duration(ts.minimum(snsRetryDelay)) * time.Second
			ts.dataLocked(eventlog.Event{Service: "sns", Kind: EvSNSRetry, Resource: p.sub.arn, Detail: fmt.Sprintf("delivery %d of %s to %s failed, retrying in %s: %v", p.attempt, p.what, p.sub.arn, d, err)})
			ts.after(d, func() {
				// Only a subscription that still wants it gets the retry.
				if ts.sns.subs[p.sub.arn] == p.sub && p.sub.pending == p.confirmation {
					ts.snsPostLocked(p)
				}
			})
		default:
			ts.dataLocked(eventlog.Event{Service: "sns", Kind: EvSNSDeliveryFailed, Resource: p.sub.arn, Detail: fmt.Sprintf("delivery of %s to %s failed after %d attempts: %v", p.what, p.sub.arn, p.attempt, err)})
		}
	})
}

// post makes one delivery attempt. It reports whether a failure is worth
// retrying (network errors, 5xx, 429).
func (s *snsState) post(p snsPost) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), snsPostTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(p.body))
	if err != nil {
		return false, err
	}
	req.Header = p.header.Clone()
	req.Header.Set("Content-Type", "text/plain; charset=UTF-8")
	req.Header.Set("User-Agent", snsUserAgent)
	resp, err := s.client.Do(req)
	if err != nil {
		return true, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return true, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return false, fmt.Errorf("HTTP %d", resp.StatusCode)
}
