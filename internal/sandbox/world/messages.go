package world

// This file holds the contracts between the world's messaging subsystems:
// SQS queues (sqs.go), SNS topics (sns.go) and the EventBridge bus
// (eventbridge.go) deliver to each other, and Auto Scaling publishes
// lifecycle and group notifications through them, always with the
// world's lock held.

// MessageAttribute is an SQS or SNS message attribute.
type MessageAttribute struct {
	DataType    string // String, Number, Binary, optionally with a ".custom" suffix
	StringValue string
	BinaryValue []byte
}

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
