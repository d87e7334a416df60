package messaging

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/pattern"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// SNS protocols the sandbox models.
const (
	ProtocolSQS    = "sqs"
	ProtocolHTTP   = "http"
	ProtocolHTTPS  = "https"
	ProtocolLambda = "lambda"
)

// SubscriptionPending is what Subscribe returns for a subscription that
// awaits confirmation (unless ReturnSubscriptionArn is set).
const SubscriptionPending = "pending confirmation"

// SNS limits and timings.
const (
	snsPageSize        = 100
	snsMaxTags         = 50
	snsMaxMessageBytes = 256 * 1024
	snsMaxSubjectRunes = 100
	snsMaxBatch        = 10
	// snsPendingExpiry is how long an unconfirmed subscription (and its
	// token) lives: 48 hours since May 2023.
	snsPendingExpiry = 48 * time.Hour
	// snsDedupWindow is a FIFO topic's deduplication interval.
	snsDedupWindow = 5 * time.Minute
	// snsSenderID is the SenderId SQS records for messages SNS delivers.
	snsSenderID = "AIDAIT2UOQQY3AUEKVGXU"
)

// snsState holds the simulated SNS topics and subscriptions.
type snsState struct {
	topics map[string]*snsTopic // by ARN
	subs   map[string]*snsSub   // by ARN
	tokens map[string]*snsSub   // confirmation token → subscription
	client *http.Client         // HTTP/S deliveries; no keep-alives, no redirects
}

func (s *snsState) init() {
	s.topics = map[string]*snsTopic{}
	s.subs = map[string]*snsSub{}
	s.tokens = map[string]*snsSub{}
	s.client = &http.Client{
		Timeout: snsPostTimeout,
		// No proxy from the environment: subscribers are local.
		Transport: &http.Transport{DisableKeepAlives: true, ResponseHeaderTimeout: snsPostTimeout},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

type snsTopic struct {
	arn, name string
	fifo      bool
	attrs     map[string]string // settable attributes as set
	tags      map[string]string
	subs      []*snsSub // in subscription order
	deleted   int       // SubscriptionsDeleted
	seq       uint64    // FIFO sequence numbers
	dedup     map[string]snsDedup
	// dedupOrder holds the deduplication ids in the order they were
	// recorded, which is the order they expire in.
	dedupOrder []string
}

type snsDedup struct {
	at             time.Time
	id, sequenceNo string
}

type snsSub struct {
	arn                string
	topic              *snsTopic
	protocol, endpoint string
	pending            bool
	authenticated      bool
	token              string
	attrs              map[string]string // DeliveryPolicy, FilterPolicy, …
	filter             *pattern.Filter
	baseURL            string // the sandbox endpoint the subscriber calls back
	expiry             simclock.Timer
}

// Errors ---------------------------------------------------------------------

// snsInvalid is SNS's InvalidParameter error ("Invalid parameter: …").
func snsInvalid(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf("InvalidParameter", "Invalid parameter: "+format, args...)
}

// snsInvalidValue is SNS's ParameterValueInvalid (InvalidParameterValue)
// error, used for message attributes.
func snsInvalidValue(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf("ParameterValueInvalid", format, args...)
}

func snsNotFound(msg string) *awsproto.Error {
	return &awsproto.Error{Code: "NotFound", Message: msg, Status: http.StatusNotFound}
}

func snsTopicNotFound() *awsproto.Error { return snsNotFound("Topic does not exist") }

func (ts *Topics) snsNotAuthorized(action, resource string) *awsproto.Error {
	return &awsproto.Error{Code: "AuthorizationError", Status: http.StatusForbidden, Message: fmt.Sprintf(
		"User: arn:aws:iam::%s:root is not authorized to perform: SNS:%s on resource: %s because no resource-based policy allows the SNS:%s action",
		ts.cfg.Account, action, resource, action)}
}

// ARNs -----------------------------------------------------------------------

var (
	snsTopicNameRE = lazyRegexp(`^[A-Za-z0-9_-]{1,256}$`)
	snsFifoNameRE  = lazyRegexp(`^[A-Za-z0-9_-]{1,251}\.fifo$`)
)

func snsValidTopicName(name string) bool {
	return snsTopicNameRE().MatchString(name) || snsFifoNameRE().MatchString(name)
}

// snsSplitARN splits arn:aws:<service>:<region>:<account>:<resource>.
func snsSplitARN(arn, service string) (region, account, resource string, ok bool) {
	p := strings.SplitN(arn, ":", 6)
	if len(p) != 6 || p[0] != "arn" || p[1] != "aws" || p[2] != service || p[3] == "" || p[4] == "" || p[5] == "" {
		return "", "", "", false
	}
	return p[3], p[4], p[5], true
}

func (ts *Topics) snsTopicARN(name string) string {
	return "arn:aws:sns:" + ts.cfg.Region + ":" + ts.cfg.Account + ":" + name
}

// snsTopicLocked finds the topic an ARN parameter names: a malformed ARN (or
// one of another region) is InvalidParameter naming param, one of another
// account AuthorizationError, a missing topic NotFound.
func (ts *Topics) snsTopicLocked(arn, param, action string) (*snsTopic, error) {
	region, account, name, ok := snsSplitARN(arn, "sns")
	if !ok || !snsValidTopicName(name) || region != ts.cfg.Region {
		return nil, snsInvalid("%s", param)
	}
	if account != ts.cfg.Account {
		return nil, ts.snsNotAuthorized(action, arn)
	}
	t, ok := ts.sns.topics[arn]
	if !ok {
		return nil, snsTopicNotFound()
	}
	return t, nil
}

// snsSubLocked finds a subscription by ARN: malformed is InvalidParameter,
// unknown NotFound.
func (ts *Topics) snsSubLocked(arn string) (*snsSub, error) {
	_, _, res, ok := snsSplitARN(arn, "sns")
	if name, id, cut := strings.Cut(res, ":"); !ok || !cut || !snsValidTopicName(name) || id == "" {
		return nil, snsInvalid("SubscriptionArn")
	}
	s, ok := ts.sns.subs[arn]
	if !ok {
		return nil, snsNotFound("Subscription does not exist")
	}
	return s, nil
}

// Pagination -----------------------------------------------------------------

// snsPage returns the page after token (the base64url key of the last item
// of the previous page) of items sorted by key, and the next token.
func snsPage[T any](items []T, key func(T) string, token string) ([]T, string, error) {
	start := 0
	if token != "" {
		last, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || len(last) == 0 {
			return nil, "", snsInvalid("NextToken")
		}
		start = sort.Search(len(items), func(i int) bool { return key(items[i]) > string(last) })
	}
	end := min(start+snsPageSize, len(items))
	next := ""
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString([]byte(key(items[end-1])))
	}
	return items[start:end], next, nil
}

// Topics ---------------------------------------------------------------------

// TopicTag is a tag on an SNS topic.
type TopicTag struct {
	Key, Value string
}

// CreateTopicInput is CreateTopic's request.
type CreateTopicInput struct {
	Name       string
	Attributes map[string]string
	Tags       []TopicTag
	// DataProtectionPolicy is stored and returned, not applied.
	DataProtectionPolicy string
}

// snsTopicAttrs are the attributes CreateTopic and SetTopicAttributes accept
// (besides the delivery-status feedback attributes, see snsFeedbackAttrRE).
var snsTopicAttrs = []string{
	"DeliveryPolicy", "DisplayName", "Policy", "KmsMasterKeyId", "SignatureVersion", "TracingConfig",
	"ContentBasedDeduplication", "FifoThroughputScope", "ArchivePolicy", "DataProtectionPolicy",
}

var snsFeedbackAttrRE = lazyRegexp(`^(HTTP|SQS|Lambda|Application|Firehose)(Success|Failure)Feedback(RoleArn|SampleRate)$`)

// snsCheckTopicAttr validates one settable topic attribute and returns its
// stored form.
func snsCheckTopicAttr(name, value string, fifo bool) (string, error) {
	if !slices.Contains(snsTopicAttrs, name) && !snsFeedbackAttrRE().MatchString(name) {
		return "", snsInvalid("AttributeName")
	}
	switch name {
	case "Policy", "DeliveryPolicy", "ArchivePolicy", "DataProtectionPolicy":
		if value != "" && !json.Valid([]byte(value)) {
			return "", snsInvalid("%s: failed to parse JSON.", name)
		}
	case "SignatureVersion":
		if value != "1" && value != "2" {
			return "", snsInvalid("SignatureVersion: Invalid value [%s]. Please use 1 or 2", value)
		}
	case "TracingConfig":
		if value != "PassThrough" && value != "Active" {
			return "", snsInvalid("TracingConfig: Invalid value [%s]. Please use PassThrough or Active", value)
		}
	case "ContentBasedDeduplication":
		if !fifo {
			return "", snsInvalid("ContentBasedDeduplication Reason: Content-based deduplication can only be set for FIFO topics")
		}
		b, err := strconv.ParseBool(value)
		if err != nil {
			return "", snsInvalid("ContentBasedDeduplication: Invalid value [%s]. Must be true or false.", value)
		}
		return strconv.FormatBool(b), nil
	case "FifoThroughputScope":
		if !fifo {
			return "", snsInvalid("FifoThroughputScope Reason: can only be set for FIFO topics")
		}
		if value != "Topic" && value != "MessageGroup" {
			return "", snsInvalid("FifoThroughputScope: Invalid value [%s]. Please use Topic or MessageGroup", value)
		}
	}
	return value, nil
}

func snsCheckTags(tags []TopicTag) error {
	seen := map[string]bool{}
	for _, t := range tags {
		switch {
		case t.Key == "" || len(t.Key) > 128:
			return snsInvalid("Tags Reason: Tag keys must be between 1 and 128 characters long")
		case len(t.Value) > 256:
			return snsInvalid("Tags Reason: Tag values must be at most 256 characters long")
		case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
			return snsInvalid("Tags Reason: Tag keys starting with 'aws:' are reserved")
		case seen[t.Key]:
			return snsInvalid("Duplicated keys are not allowed.")
		}
		seen[t.Key] = true
	}
	if len(tags) > snsMaxTags {
		return snsTagLimit()
	}
	return nil
}

func snsTagLimit() *awsproto.Error {
	return awsproto.Errorf("TagLimitExceeded", "Could not complete request: tag quota of per resource exceeded")
}

// CreateTopic creates a topic, or returns the existing topic of that name
// when the attributes and tags given match it. A name ending in .fifo makes
// a FIFO topic and needs the attribute FifoTopic=true.
func (ts *Topics) CreateTopic(in CreateTopicInput) (string, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	fifo := false
	if v, ok := in.Attributes["FifoTopic"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return "", snsInvalid("FifoTopic: Invalid value [%s]. Must be true or false.", v)
		}
		fifo = b
	}
	switch {
	case fifo && !snsFifoNameRE().MatchString(in.Name):
		return "", snsInvalid("Fifo Topic names must end with .fifo and must be made up of only uppercase and lowercase ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 characters long.")
	case !fifo && !snsTopicNameRE().MatchString(in.Name):
		return "", snsInvalid("Topic Name")
	}
	attrs := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(in.Attributes)) {
		if k == "FifoTopic" {
			continue
		}
		v, err := snsCheckTopicAttr(k, in.Attributes[k], fifo)
		if err != nil {
			return "", err
		}
		attrs[k] = v
	}
	if in.DataProtectionPolicy != "" {
		v, err := snsCheckTopicAttr("DataProtectionPolicy", in.DataProtectionPolicy, fifo)
		if err != nil {
			return "", err
		}
		attrs["DataProtectionPolicy"] = v
	}
	if err := snsCheckTags(in.Tags); err != nil {
		return "", err
	}
	arn := ts.snsTopicARN(in.Name)
	if t, ok := ts.sns.topics[arn]; ok {
		for k, v := range attrs {
			if t.attrs[k] != v {
				return "", snsInvalid("Attributes Reason: Topic already exists with different attributes")
			}
		}
		for _, tag := range in.Tags {
			if old, ok := t.tags[tag.Key]; !ok || old != tag.Value {
				return "", snsInvalid("Tags Reason: Topic already exists with different tags")
			}
		}
		return arn, nil
	}
	t := &snsTopic{arn: arn, name: in.Name, fifo: fifo, attrs: attrs, tags: map[string]string{}, dedup: map[string]snsDedup{}}
	for _, tag := range in.Tags {
		t.tags[tag.Key] = tag.Value
	}
	ts.sns.topics[arn] = t
	ts.emitLocked(eventlog.Event{Service: "sns", Kind: EvSNS, Resource: arn, Detail: "topic created " + arn})
	return arn, nil
}

// DeleteTopic deletes a topic and its subscriptions. Deleting a topic that
// does not exist is not an error.
func (ts *Topics) DeleteTopic(arn string) error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, err := ts.snsTopicLocked(arn, "TopicArn", "DeleteTopic")
	if err != nil {
		if e, ok := err.(*awsproto.Error); ok && e.Code == "NotFound" {
			return nil
		}
		return err
	}
	for _, s := range slices.Clone(t.subs) {
		ts.snsDropSubLocked(s)
	}
	delete(ts.sns.topics, arn)
	ts.emitLocked(eventlog.Event{Service: "sns", Kind: EvSNS, Resource: arn, Detail: "topic deleted " + arn})
	return nil
}

// ListTopics returns a page of up to 100 topic ARNs, sorted, after token,
// and the token of the next page ("" on the last).
func (ts *Topics) ListTopics(token string) ([]string, string, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	arns := slices.Sorted(maps.Keys(ts.sns.topics))
	return snsPage(arns, func(s string) string { return s }, token)
}

// snsDefaultPolicy is the access policy AWS gives a new topic.
func (ts *Topics) snsDefaultPolicy(arn string) string {
	return `{"Version":"2008-10-17","Id":"__default_policy_ID","Statement":[{"Sid":"__default_statement_ID","Effect":"Allow","Principal":{"AWS":"*"},"Action":["SNS:GetTopicAttributes","SNS:SetTopicAttributes","SNS:AddPermission","SNS:RemovePermission","SNS:DeleteTopic","SNS:Subscribe","SNS:ListSubscriptionsByTopic","SNS:Publish"],"Resource":"` +
		arn + `","Condition":{"StringEquals":{"AWS:SourceOwner":"` + ts.cfg.Account + `"}}}]}`
}

// snsTopicDeliveryPolicy is AWS's default HTTP delivery policy.
const snsTopicDeliveryPolicy = `{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":20,"maxDelayTarget":20,"numRetries":3,"numMaxDelayRetries":0,"numNoDelayRetries":0,"numMinDelayRetries":0,"backoffFunction":"linear"},"disableSubscriptionOverrides":false,"defaultRequestPolicy":{"headerContentType":"text/plain; charset=UTF-8"}}}`

// GetTopicAttributes returns a topic's attributes: TopicArn, Owner, Policy,
// DisplayName, the subscription counts, EffectiveDeliveryPolicy, FifoTopic
// and ContentBasedDeduplication for FIFO topics, and whatever was set.
func (ts *Topics) GetTopicAttributes(arn string) (map[string]string, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, err := ts.snsTopicLocked(arn, "TopicArn", "GetTopicAttributes")
	if err != nil {
		return nil, err
	}
	confirmed, pending := 0, 0
	for _, s := range t.subs {
		if s.pending {
			pending++
		} else {
			confirmed++
		}
	}
	m := map[string]string{
		"TopicArn":                t.arn,
		"Owner":                   ts.cfg.Account,
		"Policy":                  ts.snsDefaultPolicy(t.arn),
		"DisplayName":             "",
		"SubscriptionsConfirmed":  strconv.Itoa(confirmed),
		"SubscriptionsPending":    strconv.Itoa(pending),
		"SubscriptionsDeleted":    strconv.Itoa(t.deleted),
		"EffectiveDeliveryPolicy": snsTopicDeliveryPolicy,
	}
	if t.fifo {
		m["FifoTopic"] = "true"
		m["ContentBasedDeduplication"] = "false"
	}
	for k, v := range t.attrs {
		if k == "DataProtectionPolicy" {
			continue
		}
		m[k] = v
	}
	return m, nil
}

// SetTopicAttributes sets one attribute (FifoTopic cannot change).
func (ts *Topics) SetTopicAttributes(arn, name, value string) error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, err := ts.snsTopicLocked(arn, "TopicArn", "SetTopicAttributes")
	if err != nil {
		return err
	}
	v, err := snsCheckTopicAttr(name, value, t.fifo)
	if err != nil {
		return err
	}
	if v == "" && name != "DisplayName" {
		delete(t.attrs, name)
	} else {
		t.attrs[name] = v
	}
	ts.emitLocked(eventlog.Event{Service: "sns", Kind: EvSNS, Resource: arn, Detail: fmt.Sprintf("topic %s attribute %s set", arn, name)})
	return nil
}

// Tags -----------------------------------------------------------------------

func (ts *Topics) snsTaggedTopicLocked(arn, action string) (*snsTopic, error) {
	t, err := ts.snsTopicLocked(arn, "ResourceArn", action)
	if e, ok := err.(*awsproto.Error); ok && e.Code == "NotFound" {
		return nil, &awsproto.Error{Code: "ResourceNotFound", Message: "Resource does not exist", Status: http.StatusNotFound}
	}
	return t, err
}

// TagTopic adds or replaces tags on a topic (at most 50 in all).
func (ts *Topics) TagTopic(arn string, tags []TopicTag) error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, err := ts.snsTaggedTopicLocked(arn, "TagResource")
	if err != nil {
		return err
	}
	if err := snsCheckTags(tags); err != nil {
		return err
	}
	merged := maps.Clone(t.tags)
	for _, tag := range tags {
		merged[tag.Key] = tag.Value
	}
	if len(merged) > snsMaxTags {
		return snsTagLimit()
	}
	t.tags = merged
	ts.emitLocked(eventlog.Event{Service: "sns", Kind: EvSNS, Resource: arn, Detail: fmt.Sprintf("topic %s tagged (%d tags)", arn, len(merged))})
	return nil
}

// UntagTopic removes tags by key; absent keys are ignored.
func (ts *Topics) UntagTopic(arn string, keys []string) error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, err := ts.snsTaggedTopicLocked(arn, "UntagResource")
	if err != nil {
		return err
	}
	for _, k := range keys {
		delete(t.tags, k)
	}
	ts.emitLocked(eventlog.Event{Service: "sns", Kind: EvSNS, Resource: arn, Detail: fmt.Sprintf("topic %s untagged (%d tags)", arn, len(t.tags))})
	return nil
}

// TopicTags returns a topic's tags sorted by key.
func (ts *Topics) TopicTags(arn string) ([]TopicTag, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, err := ts.snsTaggedTopicLocked(arn, "ListTagsForResource")
	if err != nil {
		return nil, err
	}
	out := make([]TopicTag, 0, len(t.tags))
	for _, k := range slices.Sorted(maps.Keys(t.tags)) {
		out = append(out, TopicTag{Key: k, Value: t.tags[k]})
	}
	return out, nil
}

// Subscriptions ----------------------------------------------------------------

// SubscribeInput is Subscribe's request.
type SubscribeInput struct {
	TopicARN, Protocol, Endpoint string
	Attributes                   map[string]string
	// ReturnSubscriptionARN returns the ARN even while the subscription
	// awaits confirmation.
	ReturnSubscriptionARN bool
	// BaseURL is the sandbox endpoint the request came to
	// ("http://127.0.0.1:4566"); the SubscribeURL and UnsubscribeURL in
	// messages to this subscription point there. Empty means
	// https://sns.<region>.amazonaws.com.
	BaseURL string
}

// Subscription is a subscription as ListSubscriptions shows it.
type Subscription struct {
	ARN, TopicARN, Protocol, Endpoint, Owner string
	// Pending is true until an HTTP/S endpoint confirms.
	Pending bool
}

// snsSubAttrs are the attributes Subscribe and SetSubscriptionAttributes accept.
var snsSubAttrs = []string{"DeliveryPolicy", "FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy", "SubscriptionRoleArn", "ReplayPolicy"}

// snsCheckSubAttrs applies updates to a subscription's attributes and returns
// the result with its compiled filter policy. An empty value removes an
// attribute.
func snsCheckSubAttrs(protocol string, current, updates map[string]string) (map[string]string, *pattern.Filter, error) {
	merged := maps.Clone(current)
	if merged == nil {
		merged = map[string]string{}
	}
	for _, name := range slices.Sorted(maps.Keys(updates)) {
		value := updates[name]
		if !slices.Contains(snsSubAttrs, name) {
			return nil, nil, snsInvalid("AttributeName")
		}
		switch name {
		case "RawMessageDelivery":
			b, err := strconv.ParseBool(value)
			if err != nil {
				return nil, nil, snsInvalid("RawMessageDelivery: Invalid value [%s]. Must be true or false.", value)
			}
			if b && protocol != ProtocolSQS && protocol != ProtocolHTTP && protocol != ProtocolHTTPS {
				return nil, nil, snsInvalid("Attributes Reason: Delivery protocol [%s] does not support raw message delivery.", protocol)
			}
			value = strconv.FormatBool(b)
		case "FilterPolicyScope":
			if value != pattern.ScopeMessageAttributes && value != pattern.ScopeMessageBody {
				return nil, nil, snsInvalid("FilterPolicyScope: Invalid value [%s]. Please use either MessageBody or MessageAttributes", value)
			}
		case "DeliveryPolicy", "ReplayPolicy":
			if value != "" && !json.Valid([]byte(value)) {
				return nil, nil, snsInvalid("%s: failed to parse JSON.", name)
			}
		case "RedrivePolicy":
			if value != "" {
				var rp struct {
					DeadLetterTargetArn string `json:"deadLetterTargetArn"`
				}
				if err := json.Unmarshal([]byte(value), &rp); err != nil {
					return nil, nil, snsInvalid("RedrivePolicy: failed to parse JSON.")
				}
				if _, _, _, ok := snsSplitARN(rp.DeadLetterTargetArn, "sqs"); !ok {
					return nil, nil, snsInvalid("RedrivePolicy: deadLetterTargetArn is an invalid arn")
				}
			}
		}
		if value == "" {
			delete(merged, name)
		} else {
			merged[name] = value
		}
	}
	fp, err := pattern.CompileFilter(merged["FilterPolicy"], merged["FilterPolicyScope"])
	if err != nil {
		if fe, ok := err.(*pattern.FilterPolicyError); ok {
			return nil, nil, awsproto.Errorf("InvalidParameter", "%s", fe.Message)
		}
		return nil, nil, err
	}
	return merged, fp, nil
}

var (
	snsLambdaARNRE = lazyRegexp(`^arn:aws:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]+)?$`)
	snsQueueARNRE  = lazyRegexp(`^arn:aws:sqs:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,80}(\.fifo)?$`)
)

// snsCheckEndpoint validates a subscription endpoint for its protocol.
func snsCheckEndpoint(t *snsTopic, protocol, endpoint string) error {
	switch protocol {
	case ProtocolSQS:
		if !snsQueueARNRE().MatchString(endpoint) {
			return snsInvalid("SQS endpoint ARN")
		}
		if strings.HasSuffix(endpoint, ".fifo") && !t.fifo {
			return snsInvalid("Invalid parameter: Endpoint Reason: FIFO SQS Queues can not be subscribed to standard SNS topics")
		}
	case ProtocolHTTP, ProtocolHTTPS:
		u, err := url.Parse(endpoint)
		if err != nil || u.Scheme != protocol || u.Host == "" {
			return snsInvalid("Endpoint must match the specified protocol")
		}
	case ProtocolLambda:
		if !snsLambdaARNRE().MatchString(endpoint) {
			return snsInvalid("Lambda endpoint ARN")
		}
	case "email", "email-json", "sms", "application", "firehose":
		return snsInvalid("Protocol Reason: the lifeguard sandbox does not deliver to %s endpoints; use sqs, http, https or lambda", protocol)
	default:
		return snsInvalid("Amazon SNS does not support this protocol string: %s", protocol)
	}
	if t.fifo && protocol != ProtocolSQS {
		return snsInvalid("Invalid protocol type: %s. FIFO topics deliver only to Amazon SQS queues", protocol)
	}
	return nil
}

// Subscribe subscribes an endpoint to a topic and returns the subscription
// ARN. SQS and Lambda subscriptions are confirmed at once; HTTP/S ones get
// a SubscriptionConfirmation POST and stay pending (Subscribe returns
// SubscriptionPending unless ReturnSubscriptionARN) until ConfirmSubscription,
// for at most 48 hours. Subscribing the same endpoint again returns the
// existing subscription (re-sending the confirmation while it is pending),
// or fails when different attributes are given. Lambda subscriptions get
// each message as an asynchronous invocation (through the broker's
// Invoker).
func (ts *Topics) Subscribe(in SubscribeInput) (string, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, err := ts.snsTopicLocked(in.TopicARN, "TopicArn", "Subscribe")
	if err != nil {
		return "", err
	}
	if in.Protocol == "" {
		return "", snsInvalid("Protocol")
	}
	if err := snsCheckEndpoint(t, in.Protocol, in.Endpoint); err != nil {
		return "", err
	}
	attrs, fp, err := snsCheckSubAttrs(in.Protocol, nil, in.Attributes)
	if err != nil {
		return "", err
	}
	for _, s := range t.subs {
		if s.protocol != in.Protocol || s.endpoint != in.Endpoint {
			continue
		}
		for k, v := range attrs {
			if s.attrs[k] != v {
				return "", snsInvalid("Attributes Reason: Subscription already exists with different attributes")
			}
		}
		if s.pending {
			ts.snsSendConfirmationLocked(s)
			if !in.ReturnSubscriptionARN {
				return SubscriptionPending, nil
			}
		}
		return s.arn, nil
	}
	s := &snsSub{
		arn:      t.arn + ":" + ts.uuidLocked(),
		topic:    t,
		protocol: in.Protocol,
		endpoint: in.Endpoint,
		attrs:    attrs,
		filter:   fp,
		baseURL:  strings.TrimSuffix(in.BaseURL, "/"),
	}
	t.subs = append(t.subs, s)
	ts.sns.subs[s.arn] = s
	ts.emitLocked(eventlog.Event{Service: "sns", Kind: EvSNS, Resource: s.arn, Detail: fmt.Sprintf("subscribed %s %s to %s as %s", s.protocol, s.endpoint, t.arn, s.arn)})
	if s.protocol != ProtocolHTTP && s.protocol != ProtocolHTTPS {
		s.authenticated = true
		return s.arn, nil
	}
	s.pending = true
	s.token = ts.hexIDLocked("", 128)
	ts.sns.tokens[s.token] = s
	s.expiry = ts.after(snsPendingExpiry, func() {
		if s.pending && ts.sns.subs[s.arn] == s {
			ts.emitLocked(eventlog.Event{Service: "sns", Kind: EvSNS, Resource: s.arn, Detail: "unconfirmed subscription expired " + s.arn})
			ts.snsDropSubLocked(s)
		}
	})
	ts.snsSendConfirmationLocked(s)
	if in.ReturnSubscriptionARN {
		return s.arn, nil
	}
	return SubscriptionPending, nil
}

// ConfirmSubscription confirms a pending subscription with the token of its
// SubscriptionConfirmation message and returns its ARN. Confirming again is
// not an error. The token must belong to the topic. signed says whether the
// request carried an AWS signature (a GET of the SubscribeURL does not); it
// becomes ConfirmationWasAuthenticated.
func (ts *Topics) ConfirmSubscription(topicARN, token string, signed bool) (string, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, err := ts.snsTopicLocked(topicARN, "TopicArn", "ConfirmSubscription")
	if err != nil {
		return "", err
	}
	s, ok := ts.sns.tokens[token]
	if !ok || s.topic != t {
		return "", snsInvalid("Token")
	}
	if s.pending {
		s.pending = false
		s.authenticated = signed
		if s.expiry != nil {
			s.expiry.Stop()
			s.expiry = nil
		}
		ts.emitLocked(eventlog.Event{Service: "sns", Kind: EvSNS, Resource: s.arn, Detail: "subscription confirmed " + s.arn})
	}
	return s.arn, nil
}

// Unsubscribe deletes a subscription; an unknown one is not an error.
func (ts *Topics) Unsubscribe(arn string) error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	s, err := ts.snsSubLocked(arn)
	if err != nil {
		if e, ok := err.(*awsproto.Error); ok && e.Code == "NotFound" {
			return nil
		}
		return err
	}
	ts.snsDropSubLocked(s)
	ts.emitLocked(eventlog.Event{Service: "sns", Kind: EvSNS, Resource: arn, Detail: "unsubscribed " + arn})
	return nil
}

// snsDropSubLocked removes a subscription from its topic and the indexes.
func (ts *Topics) snsDropSubLocked(s *snsSub) {
	if s.expiry != nil {
		s.expiry.Stop()
		s.expiry = nil
	}
	s.topic.subs = slices.DeleteFunc(s.topic.subs, func(x *snsSub) bool { return x == s })
	s.topic.deleted++
	delete(ts.sns.subs, s.arn)
	if s.token != "" {
		delete(ts.sns.tokens, s.token)
	}
}

func (s *snsSub) view(owner string) Subscription {
	return Subscription{ARN: s.arn, TopicARN: s.topic.arn, Protocol: s.protocol, Endpoint: s.endpoint, Owner: owner, Pending: s.pending}
}

// ListSubscriptions returns a page of up to 100 subscriptions, by ARN.
func (ts *Topics) ListSubscriptions(token string) ([]Subscription, string, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var all []Subscription
	for _, arn := range slices.Sorted(maps.Keys(ts.sns.subs)) {
		all = append(all, ts.sns.subs[arn].view(ts.cfg.Account))
	}
	return snsPage(all, func(s Subscription) string { return s.ARN }, token)
}

// ListSubscriptionsByTopic returns a page of a topic's subscriptions, by ARN.
func (ts *Topics) ListSubscriptionsByTopic(topicARN, token string) ([]Subscription, string, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, err := ts.snsTopicLocked(topicARN, "TopicArn", "ListSubscriptionsByTopic")
	if err != nil {
		return nil, "", err
	}
	all := make([]Subscription, 0, len(t.subs))
	for _, s := range t.subs {
		all = append(all, s.view(ts.cfg.Account))
	}
	slices.SortFunc(all, func(a, b Subscription) int { return strings.Compare(a.ARN, b.ARN) })
	return snsPage(all, func(s Subscription) string { return s.ARN }, token)
}

// snsSubDeliveryPolicy is the delivery policy AWS reports for a
// subscription with no policy of its own.
func snsSubDeliveryPolicy(protocol string) string {
	request := ""
	if protocol == ProtocolHTTP || protocol == ProtocolHTTPS {
		request = `"requestPolicy":{"headerContentType":"text/plain; charset=UTF-8"},`
	}
	return `{"healthyRetryPolicy":{"minDelayTarget":20,"maxDelayTarget":20,"numRetries":3,"numMaxDelayRetries":0,"numNoDelayRetries":0,"numMinDelayRetries":0,"backoffFunction":"linear"},"sicklyRetryPolicy":null,"throttlePolicy":null,` + request + `"guaranteed":false}`
}

// GetSubscriptionAttributes returns a subscription's attributes:
// SubscriptionArn, TopicArn, Owner, Protocol, Endpoint, PendingConfirmation,
// ConfirmationWasAuthenticated, RawMessageDelivery, EffectiveDeliveryPolicy,
// SubscriptionPrincipal, and what was set (FilterPolicyScope, defaulting to
// MessageAttributes, only alongside a FilterPolicy).
func (ts *Topics) GetSubscriptionAttributes(arn string) (map[string]string, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	s, err := ts.snsSubLocked(arn)
	if err != nil {
		return nil, err
	}
	m := map[string]string{
		"SubscriptionArn":              s.arn,
		"TopicArn":                     s.topic.arn,
		"Owner":                        ts.cfg.Account,
		"Protocol":                     s.protocol,
		"Endpoint":                     s.endpoint,
		"PendingConfirmation":          strconv.FormatBool(s.pending),
		"ConfirmationWasAuthenticated": strconv.FormatBool(s.authenticated),
		"RawMessageDelivery":           "false",
		"EffectiveDeliveryPolicy":      snsSubDeliveryPolicy(s.protocol),
		"SubscriptionPrincipal":        "arn:aws:iam::" + ts.cfg.Account + ":root",
	}
	maps.Copy(m, s.attrs)
	if s.attrs["FilterPolicy"] == "" {
		delete(m, "FilterPolicyScope")
	} else if m["FilterPolicyScope"] == "" {
		m["FilterPolicyScope"] = pattern.ScopeMessageAttributes
	}
	return m, nil
}

// SetSubscriptionAttributes sets one attribute: DeliveryPolicy,
// FilterPolicy, FilterPolicyScope, RawMessageDelivery, RedrivePolicy,
// SubscriptionRoleArn or ReplayPolicy. An empty value removes it. A filter
// policy is validated against the scope it will be used with.
func (ts *Topics) SetSubscriptionAttributes(arn, name, value string) error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	s, err := ts.snsSubLocked(arn)
	if err != nil {
		return err
	}
	attrs, fp, err := snsCheckSubAttrs(s.protocol, s.attrs, map[string]string{name: value})
	if err != nil {
		return err
	}
	s.attrs, s.filter = attrs, fp
	ts.emitLocked(eventlog.Event{Service: "sns", Kind: EvSNS, Resource: arn, Detail: fmt.Sprintf("subscription %s attribute %s set", arn, name)})
	return nil
}
