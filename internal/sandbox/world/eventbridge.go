package world

// busState holds the simulated EventBridge rules and targets.
type busState struct{}

func (s *busState) init() {}

// putAutoScalingEventLocked puts an aws.autoscaling event on the default
// bus, delivering it to every matching rule's targets.
func (w *World) putAutoScalingEventLocked(e AutoScalingEvent) {}
