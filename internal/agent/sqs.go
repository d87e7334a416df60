package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// Inbox opens the queue source sqs reads. It is implemented by
// internal/awscloud.
type Inbox interface {
	// Open returns the queue the agent of instanceID reads. With a topic
	// (sqs.topic_arn) it creates or reuses the per-instance queue, allows
	// the topic to send to it and subscribes it with a filter on
	// EC2InstanceId; calling it again is harmless. With a shared queue
	// (sqs.queue_url) it checks the queue and returns an error wrapping
	// ErrSharedRedrive when the queue has a RedrivePolicy.
	Open(ctx context.Context, instanceID string) (Queue, error)
}

// SQSBatchLimit is SQS's limit on the messages one ReceiveMessage returns
// and one batch call takes.
const SQSBatchLimit = 10

// Queue is an SQS queue as the agent uses it.
type Queue interface {
	// Receive long-polls for up to ten messages, waiting at most wait
	// (whole seconds; 0 means sqs.wait_time). Received messages are hidden
	// from other receivers for sqs.visibility_timeout. It returns no
	// messages and a nil error when none came.
	Receive(ctx context.Context, wait time.Duration) ([]Message, error)
	// Delete deletes a received message.
	Delete(ctx context.Context, m Message) error
	// Release makes received messages visible again at once (visibility
	// timeout 0), for another agent to receive, in as few calls as SQS
	// allows (SQSBatchLimit messages per call).
	Release(ctx context.Context, ms []Message) error
	// Keep hides a held message from other receivers for another
	// sqs.visibility_timeout from now, so that its receipt handle stays
	// the latest and deletes it. It returns an error wrapping
	// ErrStaleReceipt when m's receipt handle is no longer the message's
	// latest (another receiver got it since) or the message is gone.
	Keep(ctx context.Context, m Message) error
	// Remove unsubscribes and deletes a per-instance queue; it does
	// nothing for a shared queue.
	Remove(ctx context.Context) error
}

// Message is a received SQS message.
type Message struct {
	ID      string // MessageId
	Body    string
	Receipt string // ReceiptHandle of the latest receive
}

// ErrSharedRedrive means a shared queue (sqs.queue_url) has a
// RedrivePolicy: every agent receives every message and hands back the
// ones of other instances, so each message's receive count grows with the
// group's size and the redrive policy would move live lifecycle messages
// to the dead-letter queue.
var ErrSharedRedrive = errors.New("a shared queue must not have a RedrivePolicy: every agent receives and hands back other instances' messages, which raises their receive count and would dead-letter them (remove the RedrivePolicy, or use sqs.topic_arn for a queue per instance)")

// ErrStaleReceipt means a receipt handle no longer names the latest
// receive of an in-flight message: the message became visible again and
// was received since (SQS then accepts DeleteMessage with the old handle
// and deletes nothing), or it is gone.
var ErrStaleReceipt = errors.New("receipt handle is not the message's latest, or the message is not in flight")

// ErrMalformed means a message body is none of the forms ParseMessage
// knows.
var ErrMalformed = errors.New("not a lifecycle notification")

// NoticeKind is what a queue message says.
type NoticeKind int

// The kinds of messages.
const (
	// NoticeAction is a lifecycle action message (launching or terminating).
	NoticeAction NoticeKind = iota + 1
	// NoticeTest is autoscaling:TEST_NOTIFICATION, sent when a hook's
	// target is set.
	NoticeTest
	// NoticeOther is a well-formed notification that is not a lifecycle
	// action (a group notification, another EventBridge event).
	NoticeOther
)

// Notice is a parsed queue message.
type Notice struct {
	Kind       NoticeKind
	InstanceID string // "" when the message names no instance
	Group      string
	Hook       string
	Transition lifecycle.Transition
	Token      string // LifecycleActionToken
	Metadata   string // NotificationMetadata
	Event      string // Event, or EventBridge detail-type, of NoticeOther
}

const (
	testNotification = "autoscaling:TEST_NOTIFICATION"
	snsNotification  = "Notification"
	maxNesting       = 3
)

// envelope has the fields of every form ParseMessage reads: a lifecycle
// message, the SNS envelope around one, and an EventBridge event.
type envelope struct {
	// SNS envelope
	Type    string  `json:"Type"`
	Message *string `json:"Message"`
	// EventBridge event
	DetailType *string         `json:"detail-type"`
	Detail     json.RawMessage `json:"detail"`
	// Auto Scaling message
	Event                string `json:"Event"`
	LifecycleTransition  string `json:"LifecycleTransition"`
	EC2InstanceID        string `json:"EC2InstanceId"`
	AutoScalingGroupName string `json:"AutoScalingGroupName"`
	LifecycleHookName    string `json:"LifecycleHookName"`
	LifecycleActionToken string `json:"LifecycleActionToken"`
	NotificationMetadata string `json:"NotificationMetadata"`
}

// ParseMessage parses a queue message body: an Auto Scaling lifecycle
// message as the hook sends it to SQS, the same inside an SNS envelope
// (Type Notification, Message the JSON as a string), or an EventBridge
// event whose detail is the message. TEST_NOTIFICATION (Event, or
// LifecycleTransition in the EventBridge form) is NoticeTest. A lifecycle
// message lacking its instance, group or hook, or a body that is none of
// these forms, yields an error wrapping ErrMalformed. It never panics.
func ParseMessage(body string) (Notice, error) {
	return parse([]byte(body), 0)
}

func parse(b []byte, depth int) (Notice, error) {
	if depth >= maxNesting {
		return Notice{}, fmt.Errorf("%w: nested too deeply", ErrMalformed)
	}
	var e envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return Notice{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch {
	case e.Type == snsNotification && e.Message != nil:
		return parse([]byte(*e.Message), depth+1)
	case e.DetailType != nil && len(e.Detail) > 0 && string(e.Detail) != "null":
		n, err := parse(e.Detail, depth+1)
		switch {
		case err != nil && !strings.Contains(*e.DetailType, "Lifecycle Action"):
			// Another kind of EventBridge event (a state change, a spot
			// warning): well formed, not ours to act on.
			return Notice{Kind: NoticeOther, Event: *e.DetailType}, nil
		case err == nil && n.Kind == NoticeOther && n.Event == "":
			n.Event = *e.DetailType
		}
		return n, err
	}
	if e.Event == testNotification || e.LifecycleTransition == testNotification {
		return Notice{Kind: NoticeTest, Group: e.AutoScalingGroupName}, nil
	}
	t := lifecycle.Transition(e.LifecycleTransition)
	if !t.Valid() {
		if e.Event == "" && e.LifecycleTransition == "" && e.EC2InstanceID == "" {
			return Notice{}, fmt.Errorf("%w: no Event, LifecycleTransition or EC2InstanceId", ErrMalformed)
		}
		ev := e.Event
		if ev == "" {
			ev = e.LifecycleTransition
		}
		return Notice{Kind: NoticeOther, InstanceID: e.EC2InstanceID, Group: e.AutoScalingGroupName, Event: ev}, nil
	}
	n := Notice{
		Kind: NoticeAction, InstanceID: e.EC2InstanceID, Group: e.AutoScalingGroupName, Hook: e.LifecycleHookName,
		Transition: t, Token: e.LifecycleActionToken, Metadata: e.NotificationMetadata,
	}
	if n.InstanceID == "" || n.Group == "" || n.Hook == "" {
		return Notice{}, fmt.Errorf("%w: lifecycle message without EC2InstanceId, AutoScalingGroupName or LifecycleHookName", ErrMalformed)
	}
	return n, nil
}
