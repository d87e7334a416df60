package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Trigger is what an event asks for: a reconcile of some groups, or of
// every opted-in group (All).
type Trigger struct {
	All    bool
	Groups []string
}

// merge adds t2 to t.
func (t *Trigger) merge(t2 Trigger) {
	t.All = t.All || t2.All
	for _, g := range t2.Groups {
		if !slices.Contains(t.Groups, g) {
			t.Groups = append(t.Groups, g)
		}
	}
}

// ErrUnknownEvent is returned by ParseEvent for a document it does not
// recognise.
var ErrUnknownEvent = errors.New("not an Auto Scaling notification, SNS, SQS, EventBridge or scheduled event")

// envelope is the union of the documents ParseEvent reads: a Lambda
// batch (Records), an SNS notification (Type, Message), an EventBridge
// event (source, detail-type, detail), and an Auto Scaling notification or
// lifecycle message (Event, LifecycleTransition, AutoScalingGroupName).
type envelope struct {
	Records []struct {
		EventSource  string `json:"eventSource"`
		EventSource2 string `json:"EventSource"`
		Body         string `json:"body"`
		Sns          *struct {
			Message string `json:"Message"`
		} `json:"Sns"`
	} `json:"Records"`

	Type    string `json:"Type"`
	Message string `json:"Message"`

	Source     string          `json:"source"`
	DetailType string          `json:"detail-type"`
	Detail     json.RawMessage `json:"detail"`

	Event               string `json:"Event"`
	LifecycleTransition string `json:"LifecycleTransition"`
	Group               string `json:"AutoScalingGroupName"`
}

// ParseEvent returns the trigger of one event as the controller receives
// it: a Lambda SNS or SQS batch, an SQS message body, an SNS notification,
// an Auto Scaling notification or lifecycle message (raw delivery), an
// EventBridge aws.autoscaling event, or a scheduled event (which asks for
// every group). Auto Scaling's test notifications trigger nothing.
func ParseEvent(raw []byte) (Trigger, error) {
	return parse(raw, 0)
}

func parse(raw []byte, depth int) (Trigger, error) {
	if depth > 3 {
		return Trigger{}, fmt.Errorf("event nested too deep: %w", ErrUnknownEvent)
	}
	var e envelope
	if err := json.Unmarshal(raw, &e); err != nil {
		return Trigger{}, fmt.Errorf("event is not JSON: %w", err)
	}
	switch {
	case len(e.Records) > 0:
		var t Trigger
		var errs []error
		for i, r := range e.Records {
			var body string
			switch {
			case r.Sns != nil:
				body = r.Sns.Message
			case r.EventSource == "aws:sqs":
				body = r.Body
			default:
				errs = append(errs, fmt.Errorf("record %d from %q: %w", i, r.EventSource+r.EventSource2, ErrUnknownEvent))
				continue
			}
			rt, err := parse([]byte(body), depth+1)
			if err != nil {
				errs = append(errs, fmt.Errorf("record %d: %w", i, err))
				continue
			}
			t.merge(rt)
		}
		return t, errors.Join(errs...)
	case e.Type == "Notification" && e.Message != "":
		return parse([]byte(e.Message), depth+1)
	case e.Source == "aws.events" || e.DetailType == "Scheduled Event":
		return Trigger{All: true}, nil
	case e.Source == "aws.autoscaling" || strings.HasPrefix(e.Source, "lifeguard"):
		var d struct {
			Group string `json:"AutoScalingGroupName"`
		}
		if err := json.Unmarshal(e.Detail, &d); err != nil || d.Group == "" {
			return Trigger{}, fmt.Errorf("EventBridge event %q has no detail.AutoScalingGroupName: %w", e.DetailType, ErrUnknownEvent)
		}
		return Trigger{Groups: []string{d.Group}}, nil
	case e.Event == "autoscaling:TEST_NOTIFICATION":
		return Trigger{}, nil
	case e.Group != "" && (strings.HasPrefix(e.Event, "autoscaling:") || e.LifecycleTransition != ""):
		return Trigger{Groups: []string{e.Group}}, nil
	}
	return Trigger{}, ErrUnknownEvent
}
