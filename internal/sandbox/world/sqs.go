package world

import "github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"

// sqsState holds the simulated SQS queues.
type sqsState struct{}

func (s *sqsState) init() {}

// deliverLocked puts a message on the queue named by its ARN.
func (w *World) deliverLocked(queueARN string, d Delivery) error {
	return awsproto.Errorf("AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")
}
