package messaging

import (
	"regexp"
	"sync"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/pattern"
)

// This file holds the contracts between the broker's sides: SQS queues
// (sqs.go), SNS topics (sns.go) and the EventBridge bus (eventbridge.go)
// deliver to each other, always with the broker's lock held; Auto Scaling
// reaches them through Notify and PutAutoScalingEvent (broker.go).

// MessageAttribute is an SQS or SNS message attribute (filter policies
// read it as it is).
type MessageAttribute = pattern.Attribute

// Delivery is a message handed to a queue by another service (SNS,
// EventBridge, Auto Scaling).
type Delivery struct {
	Body       string
	Attributes map[string]MessageAttribute
	// GroupID and DedupID are set for FIFO queues (SNS FIFO topics).
	GroupID, DedupID string
	// SenderID is recorded as the message's SenderId system attribute.
	SenderID string
}

// PublishInput is a message published to an SNS topic by another service.
type PublishInput struct {
	Subject    string
	Message    string
	Attributes map[string]MessageAttribute
}

// AutoScalingEvent is an event Auto Scaling puts on the default
// EventBridge bus (source aws.autoscaling).
type AutoScalingEvent struct {
	DetailType string
	Resources  []string
	Detail     map[string]any
}

// KV is a tag.
type KV struct{ Key, Value string }

// lazyRegexp compiles a pattern the first time it is used, not when the
// package initializes: the package is linked into every lifeguard
// process, and most never look at a topic name or a rule.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
