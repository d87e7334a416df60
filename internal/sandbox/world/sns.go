package world

import "github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"

// snsState holds the simulated SNS topics and subscriptions.
type snsState struct{}

func (s *snsState) init() {}

// publishLocked publishes a message to the topic named by its ARN and
// returns the message id.
func (w *World) publishLocked(topicARN string, in PublishInput) (string, error) {
	return "", awsproto.Errorf("NotFound", "Topic does not exist")
}
