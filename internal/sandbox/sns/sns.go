// Package sns serves the SNS API (awsquery, version 2010-03-31) over the
// sandbox's messaging owner: topics, subscriptions (sqs, http, https; lambda is
// recorded only), Publish and PublishBatch, filter policies and tags. It is
// a stateless translator from form parameters to *messaging.Topics calls and
// from their results to the XML the AWS SDKs and CLIs expect. Operations it
// does not serve answer InvalidAction.
//
// It is written from the wire documentation and captured bodies, never from
// the SDK's generated code, so the sandbox and the client under test cannot
// share a misunderstanding.
package sns

import (
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"slices"
	"strings"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
)

// Version is the API version this handler serves.
const Version = "2010-03-31"

// Handler is the SNS endpoint. It is safe for concurrent use; all state
// lives in the messaging.
type Handler struct {
	t   *messaging.Topics
	svc *awsproto.QueryService
}

// request is one call's parameters and the HTTP request it came in (for
// the endpoint's URL and whether it was signed).
type request = *awsproto.QueryRequest

// New returns a handler over t.
func New(t *messaging.Topics) *Handler {
	h := &Handler{t: t}
	h.svc = &awsproto.QueryService{
		Version:   Version,
		Namespace: awsproto.NSSNS,
		ParamCode: "InvalidParameter",
		Operations: map[string]awsproto.QueryOperation{
			"CreateTopic":               h.createTopic,
			"DeleteTopic":               h.deleteTopic,
			"ListTopics":                h.listTopics,
			"GetTopicAttributes":        h.getTopicAttributes,
			"SetTopicAttributes":        h.setTopicAttributes,
			"Subscribe":                 h.subscribe,
			"ConfirmSubscription":       h.confirmSubscription,
			"Unsubscribe":               h.unsubscribe,
			"ListSubscriptions":         h.listSubscriptions,
			"ListSubscriptionsByTopic":  h.listSubscriptionsByTopic,
			"GetSubscriptionAttributes": h.getSubscriptionAttributes,
			"SetSubscriptionAttributes": h.setSubscriptionAttributes,
			"Publish":                   h.publish,
			"PublishBatch":              h.publishBatch,
			"TagResource":               h.tagResource,
			"UntagResource":             h.untagResource,
			"ListTagsForResource":       h.listTagsForResource,
		},
	}
	return h
}

// ServeHTTP serves one awsquery request, POSTed as a form or, for the
// SubscribeURL and UnsubscribeURL in SNS messages, a GET with the
// parameters in the query string. The caller has matched Version.
func (h *Handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) { h.svc.ServeHTTP(rw, r) }

// WriteError writes e as SNS's awsquery error (for faults the router
// injects).
func (h *Handler) WriteError(rw http.ResponseWriter, requestID string, e *awsproto.Error) {
	h.svc.WriteError(rw, requestID, e)
}

// signed reports whether a request carries an AWS signature (header or
// presigned query); a browser's GET of a SubscribeURL does not.
func signed(r request) bool {
	return r.HTTP.Header.Get("Authorization") != "" || r.HTTP.Form.Has("X-Amz-Signature")
}

// baseURL is the endpoint as the caller reached it, from the Host header.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		host = "localhost"
	}
	return scheme + "://" + host
}

// Parameters -----------------------------------------------------------------

// required reads a required string parameter: absent or empty is
// InvalidParameter naming it.
func required(r request, name string) (string, error) {
	v := r.String(name)
	if v == "" {
		return "", awsproto.Errorf("InvalidParameter", "Invalid parameter: %s", name)
	}
	return v, nil
}

// messageAttributes reads MessageAttributes.entry.N.Name and
// .Value.{DataType,StringValue,BinaryValue} (binary values are base64).
func messageAttributes(p awsproto.Params) (map[string]messaging.MessageAttribute, error) {
	entries := p.Flat("MessageAttributes.entry")
	if len(entries) == 0 {
		return nil, nil
	}
	out := make(map[string]messaging.MessageAttribute, len(entries))
	for _, e := range entries {
		a := messaging.MessageAttribute{DataType: e.String("Value.DataType"), StringValue: e.String("Value.StringValue")}
		if b, ok := e.Optional("Value.BinaryValue"); ok {
			raw, err := base64.StdEncoding.DecodeString(b)
			if err != nil {
				return nil, &awsproto.ParamError{Name: "MessageAttributes.entry.Value.BinaryValue", Value: b, Want: "base64"}
			}
			a.BinaryValue = raw
		}
		out[e.String("Name")] = a
	}
	return out, nil
}

// attrMap marshals as an awsquery map: <entry><key/><value/></entry>…,
// sorted by key.
type attrMap map[string]string

// MarshalXML writes the map's entries.
func (m attrMap) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	type entry struct {
		Key   string `xml:"key"`
		Value string `xml:"value"`
	}
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := e.EncodeElement(entry{k, m[k]}, xml.StartElement{Name: xml.Name{Local: "entry"}}); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

type attributesResult struct {
	Attributes attrMap
}

// Topics ---------------------------------------------------------------------

type tag struct {
	Key   string
	Value string
}

func parseTags(r request) ([]messaging.TopicTag, error) {
	members := r.Members("Tags")
	tags := make([]messaging.TopicTag, 0, len(members))
	for _, m := range members {
		if !m.Has("Key") {
			return nil, awsproto.Errorf("InvalidParameter", "Invalid parameter: Tags Reason: Tag keys must be between 1 and 128 characters long")
		}
		tags = append(tags, messaging.TopicTag{Key: m.String("Key"), Value: m.String("Value")})
	}
	return tags, nil
}

type createTopicResult struct {
	TopicArn string
}

func (h *Handler) createTopic(r request) (any, error) {
	name, err := required(r, "Name")
	if err != nil {
		return nil, err
	}
	tags, err := parseTags(r)
	if err != nil {
		return nil, err
	}
	arn, err := h.t.CreateTopic(messaging.CreateTopicInput{
		Name:                 name,
		Attributes:           r.Map("Attributes"),
		Tags:                 tags,
		DataProtectionPolicy: r.String("DataProtectionPolicy"),
	})
	if err != nil {
		return nil, err
	}
	return createTopicResult{TopicArn: arn}, nil
}

func (h *Handler) deleteTopic(r request) (any, error) {
	arn, err := required(r, "TopicArn")
	if err != nil {
		return nil, err
	}
	return awsproto.NoOutput{}, h.t.DeleteTopic(arn)
}

type topicMember struct {
	TopicArn string
}

type listTopicsResult struct {
	Topics    awsproto.Members[topicMember]
	NextToken string `xml:",omitempty"`
}

func (h *Handler) listTopics(r request) (any, error) {
	arns, next, err := h.t.ListTopics(r.String("NextToken"))
	if err != nil {
		return nil, err
	}
	res := listTopicsResult{Topics: awsproto.Members[topicMember]{}, NextToken: next}
	for _, a := range arns {
		res.Topics = append(res.Topics, topicMember{TopicArn: a})
	}
	return res, nil
}

func (h *Handler) getTopicAttributes(r request) (any, error) {
	arn, err := required(r, "TopicArn")
	if err != nil {
		return nil, err
	}
	m, err := h.t.GetTopicAttributes(arn)
	if err != nil {
		return nil, err
	}
	return attributesResult{Attributes: m}, nil
}

func (h *Handler) setTopicAttributes(r request) (any, error) {
	arn, err := required(r, "TopicArn")
	if err != nil {
		return nil, err
	}
	name, err := required(r, "AttributeName")
	if err != nil {
		return nil, err
	}
	return awsproto.NoOutput{}, h.t.SetTopicAttributes(arn, name, r.String("AttributeValue"))
}

// Tags -----------------------------------------------------------------------

func (h *Handler) tagResource(r request) (any, error) {
	arn, err := required(r, "ResourceArn")
	if err != nil {
		return nil, err
	}
	tags, err := parseTags(r)
	if err != nil {
		return nil, err
	}
	return nil, h.t.TagTopic(arn, tags)
}

func (h *Handler) untagResource(r request) (any, error) {
	arn, err := required(r, "ResourceArn")
	if err != nil {
		return nil, err
	}
	return nil, h.t.UntagTopic(arn, r.Strings("TagKeys"))
}

type listTagsResult struct {
	Tags awsproto.Members[tag]
}

func (h *Handler) listTagsForResource(r request) (any, error) {
	arn, err := required(r, "ResourceArn")
	if err != nil {
		return nil, err
	}
	tags, err := h.t.TopicTags(arn)
	if err != nil {
		return nil, err
	}
	res := listTagsResult{Tags: awsproto.Members[tag]{}}
	for _, t := range tags {
		res.Tags = append(res.Tags, tag(t))
	}
	return res, nil
}

// Subscriptions ----------------------------------------------------------------

type subscriptionArnResult struct {
	SubscriptionArn string
}

func (h *Handler) subscribe(r request) (any, error) {
	topic, err := required(r, "TopicArn")
	if err != nil {
		return nil, err
	}
	protocol, err := required(r, "Protocol")
	if err != nil {
		return nil, err
	}
	ret, _, err := r.Bool("ReturnSubscriptionArn")
	if err != nil {
		return nil, err
	}
	arn, err := h.t.Subscribe(messaging.SubscribeInput{
		TopicARN:              topic,
		Protocol:              protocol,
		Endpoint:              r.String("Endpoint"),
		Attributes:            r.Map("Attributes"),
		ReturnSubscriptionARN: ret,
		BaseURL:               baseURL(r.HTTP),
	})
	if err != nil {
		return nil, err
	}
	return subscriptionArnResult{SubscriptionArn: arn}, nil
}

func (h *Handler) confirmSubscription(r request) (any, error) {
	topic, err := required(r, "TopicArn")
	if err != nil {
		return nil, err
	}
	token, err := required(r, "Token")
	if err != nil {
		return nil, err
	}
	// AuthenticateOnUnsubscribe is accepted and ignored: the sandbox does
	// not check signatures, so it cannot restrict Unsubscribe to them.
	arn, err := h.t.ConfirmSubscription(topic, token, signed(r))
	if err != nil {
		return nil, err
	}
	return subscriptionArnResult{SubscriptionArn: arn}, nil
}

func (h *Handler) unsubscribe(r request) (any, error) {
	arn, err := required(r, "SubscriptionArn")
	if err != nil {
		return nil, err
	}
	return awsproto.NoOutput{}, h.t.Unsubscribe(arn)
}

type subscriptionMember struct {
	SubscriptionArn string
	Owner           string
	Protocol        string
	Endpoint        string
	TopicArn        string
}

type listSubscriptionsResult struct {
	Subscriptions awsproto.Members[subscriptionMember]
	NextToken     string `xml:",omitempty"`
}

// subscriptionList renders subscriptions as the List calls show them: a
// pending one's ARN is "PendingConfirmation".
func subscriptionList(subs []messaging.Subscription, next string) listSubscriptionsResult {
	res := listSubscriptionsResult{Subscriptions: awsproto.Members[subscriptionMember]{}, NextToken: next}
	for _, s := range subs {
		arn := s.ARN
		if s.Pending {
			arn = "PendingConfirmation"
		}
		res.Subscriptions = append(res.Subscriptions, subscriptionMember{SubscriptionArn: arn, Owner: s.Owner, Protocol: s.Protocol, Endpoint: s.Endpoint, TopicArn: s.TopicARN})
	}
	return res
}

func (h *Handler) listSubscriptions(r request) (any, error) {
	subs, next, err := h.t.ListSubscriptions(r.String("NextToken"))
	if err != nil {
		return nil, err
	}
	return subscriptionList(subs, next), nil
}

func (h *Handler) listSubscriptionsByTopic(r request) (any, error) {
	topic, err := required(r, "TopicArn")
	if err != nil {
		return nil, err
	}
	subs, next, err := h.t.ListSubscriptionsByTopic(topic, r.String("NextToken"))
	if err != nil {
		return nil, err
	}
	return subscriptionList(subs, next), nil
}

func (h *Handler) getSubscriptionAttributes(r request) (any, error) {
	arn, err := required(r, "SubscriptionArn")
	if err != nil {
		return nil, err
	}
	m, err := h.t.GetSubscriptionAttributes(arn)
	if err != nil {
		return nil, err
	}
	return attributesResult{Attributes: m}, nil
}

func (h *Handler) setSubscriptionAttributes(r request) (any, error) {
	arn, err := required(r, "SubscriptionArn")
	if err != nil {
		return nil, err
	}
	name, err := required(r, "AttributeName")
	if err != nil {
		return nil, err
	}
	return awsproto.NoOutput{}, h.t.SetSubscriptionAttributes(arn, name, r.String("AttributeValue"))
}

// Publishing -------------------------------------------------------------------

// publishRequest reads the message parameters shared by Publish and a
// PublishBatch entry.
func publishRequest(p awsproto.Params) (messaging.PublishRequest, error) {
	if s, ok := p.Optional("Subject"); ok && s == "" {
		return messaging.PublishRequest{}, awsproto.Errorf("InvalidParameter", "Invalid parameter: Subject")
	}
	attrs, err := messageAttributes(p)
	if err != nil {
		return messaging.PublishRequest{}, err
	}
	return messaging.PublishRequest{
		Subject:          p.String("Subject"),
		Message:          p.String("Message"),
		MessageStructure: p.String("MessageStructure"),
		Attributes:       attrs,
		GroupID:          p.String("MessageGroupId"),
		DedupID:          p.String("MessageDeduplicationId"),
	}, nil
}

type publishResult struct {
	MessageId      string
	SequenceNumber string `xml:",omitempty"`
}

func (h *Handler) publish(r request) (any, error) {
	topic, target := r.String("TopicArn"), r.String("TargetArn")
	switch {
	case r.String("PhoneNumber") != "":
		return nil, awsproto.Errorf("InvalidParameter", "Invalid parameter: PhoneNumber Reason: the lifeguard sandbox does not send SMS messages")
	case topic != "" && target != "":
		return nil, awsproto.Errorf("InvalidParameter", "Invalid parameter: TopicArn or TargetArn Reason: Only one of TopicArn and TargetArn may be specified")
	case topic == "" && target == "":
		return nil, awsproto.Errorf("InvalidParameter", "Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter")
	case target != "":
		if strings.Contains(target, ":endpoint/") {
			return nil, awsproto.Errorf("InvalidParameter", "Invalid parameter: TargetArn Reason: the lifeguard sandbox does not model platform endpoints")
		}
		topic = target
	}
	req, err := publishRequest(r.Params)
	if err != nil {
		return nil, err
	}
	req.TopicARN = topic
	res, err := h.t.Publish(req)
	if err != nil {
		return nil, err
	}
	return publishResult{MessageId: res.MessageID, SequenceNumber: res.SequenceNumber}, nil
}

type batchSuccess struct {
	Id             string
	MessageId      string
	SequenceNumber string `xml:",omitempty"`
}

type batchFailure struct {
	Id          string
	Code        string
	Message     string
	SenderFault bool
}

type publishBatchResult struct {
	Successful awsproto.Members[batchSuccess]
	Failed     awsproto.Members[batchFailure]
}

func (h *Handler) publishBatch(r request) (any, error) {
	topic, err := required(r, "TopicArn")
	if err != nil {
		return nil, err
	}
	members := r.Members("PublishBatchRequestEntries")
	entries := make([]messaging.PublishBatchEntry, 0, len(members))
	for _, m := range members {
		req, err := publishRequest(m)
		entries = append(entries, messaging.PublishBatchEntry{ID: m.String("Id"), PublishRequest: req, Err: err})
	}
	results, err := h.t.PublishBatch(topic, entries)
	if err != nil {
		return nil, err
	}
	res := publishBatchResult{Successful: awsproto.Members[batchSuccess]{}, Failed: awsproto.Members[batchFailure]{}}
	for _, br := range results {
		if br.Err != nil {
			res.Failed = append(res.Failed, batchFailure{Id: br.ID, Code: br.Err.Code, Message: br.Err.Message, SenderFault: !br.Err.Receiver})
			continue
		}
		res.Successful = append(res.Successful, batchSuccess{Id: br.ID, MessageId: br.MessageID, SequenceNumber: br.SequenceNumber})
	}
	return res, nil
}
