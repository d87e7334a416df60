package messaging

// Event kinds the broker records. docs/sandbox.md lists them with
// examples.
//
// The control stream (eventlog.Append) gets what changes the shape of the
// messaging side:
const (
	EvSQS = "sqs" // a queue created, its attributes set, purged or deleted
	EvSNS = "sns" // a topic created, changed or deleted; a subscription made, confirmed, expired, changed or removed
)

// The data stream (eventlog.AppendData) gets the traffic, counted per kind:
const (
	EvMessageSent       = "sqs-message-sent"    // a message (or a delivery from SNS, EventBridge, Auto Scaling) enqueued
	EvMessageDeleted    = "sqs-message-deleted" // a message deleted by its receipt handle
	EvLongPoll          = "sqs-long-poll"       // a ReceiveMessage found nothing and waits
	EvDeadLettered      = "sqs-dead-lettered"   // a message moved to its dead-letter queue
	EvPublished         = "sns-published"       // a message published to a topic
	EvSNSDuplicate      = "sns-duplicate"       // a FIFO topic dropped a duplicate
	EvSNSFiltered       = "sns-filtered"        // a subscription's filter policy did not match
	EvSNSDelivered      = "sns-delivered"       // a message delivered to a queue or an HTTP(S) endpoint
	EvSNSRetry          = "sns-delivery-retry"  // an HTTP(S) delivery failed and will be retried
	EvSNSDeliveryFailed = "sns-delivery-failed" // a delivery failed for good, or a protocol the sandbox does not invoke
	EvEventBridge       = "eventbridge"         // an event handed to a rule's target (or not, with why)
	EvEventDropped      = "eventbridge-dropped" // a put event whose detail could not be read
)
