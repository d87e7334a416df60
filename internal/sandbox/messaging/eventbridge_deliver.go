package messaging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/pattern"
)

// This file puts events on buses and delivers them to the targets of the
// rules that match (eventbridge.go holds buses, rules and targets).

// Events ---------------------------------------------------------------------

// PutEvents puts client events on their buses and delivers them to the
// matching rules' targets. Each entry gets an event id or an error code:
// a missing Source, DetailType or Detail (InvalidArgument), a Detail that
// is not a JSON object (MalformedDetail), or a source starting with "aws."
// (NotAuthorizedForSourceException: only AWS services may use those). An
// event for a bus that does not exist is accepted and dropped, as on AWS.
func (bs *Buses) PutEvents(entries []PutEventsEntry) ([]PutEventsResult, error) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if entries == nil {
		return nil, ebNull("entries")
	}
	if len(entries) == 0 || len(entries) > ebMaxPutEvents {
		return nil, ebConstraint(fmt.Sprintf("[%d entries]", len(entries)), "entries", "Member must have length less than or equal to 10 and greater than or equal to 1")
	}
	size := 0
	for _, e := range entries {
		size += len(e.Source) + len(e.DetailType) + len(e.Detail) + 14
		for _, r := range e.Resources {
			size += len(r)
		}
	}
	if size > ebMaxPutEventsBytes {
		return nil, ebValidation("Total size of the entries in the request is over the limit.")
	}
	out := make([]PutEventsResult, len(entries))
	for i, e := range entries {
		out[i] = bs.ebPutEntryLocked(e)
	}
	return out, nil
}

func (bs *Buses) ebPutEntryLocked(e PutEventsEntry) PutEventsResult {
	invalid := func(param string) PutEventsResult {
		return PutEventsResult{ErrorCode: "InvalidArgument", ErrorMessage: fmt.Sprintf("Parameter %s is not valid. Reason: %s is a required argument.", param, param)}
	}
	switch {
	case e.Source == "":
		return invalid("Source")
	case e.DetailType == "":
		return invalid("DetailType")
	case e.Detail == "":
		return invalid("Detail")
	}
	detail, err := pattern.DecodeJSON([]byte(e.Detail))
	if _, ok := detail.(map[string]any); err != nil || !ok {
		return PutEventsResult{ErrorCode: "MalformedDetail", ErrorMessage: "Detail is malformed."}
	}
	if strings.HasPrefix(e.Source, "aws.") {
		return PutEventsResult{ErrorCode: "NotAuthorizedForSourceException", ErrorMessage: ebSourceNotAuthorized}
	}
	var compact bytes.Buffer
	_ = json.Compact(&compact, []byte(e.Detail))
	t := e.Time
	if t.IsZero() {
		t = bs.clock.Now()
	}
	ev := bs.ebNewEventLocked(e.Source, e.DetailType, e.Resources, t, compact.Bytes())
	b, err := bs.ebBusLocked(e.EventBusName)
	if err != nil {
		bs.dataLocked(eventlog.Event{Service: "events", Kind: EvEventDropped, Detail: fmt.Sprintf("event %s from %s dropped: %v", ev.id, ev.source, err)})
		return PutEventsResult{EventID: ev.id}
	}
	bs.ebRouteLocked(b, ev, 0)
	return PutEventsResult{EventID: ev.id}
}

// ebNewEventLocked builds an event's ebEnvelope.
func (bs *Buses) ebNewEventLocked(source, detailType string, resources []string, t time.Time, detail []byte) ebEvent {
	if resources == nil {
		resources = []string{}
	}
	env := ebEnvelope{
		Version: "0", ID: bs.uuidLocked(), DetailType: detailType, Source: source,
		Account: bs.cfg.Account, Time: t.UTC().Format(ebTimeFormat), Region: bs.cfg.Region,
		Resources: resources, Detail: detail,
	}
	body := pattern.Marshal(env)
	decoded, _ := pattern.DecodeEvent(body)
	return ebEvent{id: env.ID, source: source, detailType: detailType, body: body, decoded: decoded}
}

// putAutoScalingEventLocked puts an aws.autoscaling event on the default
// bus, delivering it to every matching rule's targets.
func (bs *Buses) putAutoScalingEventLocked(e AutoScalingEvent) {
	b, err := bs.ebBusLocked(DefaultEventBus)
	if err != nil || !ebAnyRuleEnabled(b) {
		// Nothing could match: skip building and decoding the event, which
		// Auto Scaling puts for every activity and lifecycle action.
		return
	}
	detail := e.Detail
	if detail == nil {
		detail = map[string]any{}
	}
	ev := bs.ebNewEventLocked("aws.autoscaling", e.DetailType, e.Resources, bs.clock.Now(), pattern.Marshal(detail))
	ev.group, _ = detail["AutoScalingGroupName"].(string)
	ev.instance, _ = detail["EC2InstanceId"].(string)
	bs.ebRouteLocked(b, ev, 0)
}

// ebAnyRuleEnabled reports whether a bus has an enabled rule with an event
// pattern (the only rules an event put on it can match).
func ebAnyRuleEnabled(b *ebBus) bool {
	for _, r := range b.rules {
		if r.State != RuleDisabled && r.pattern != nil {
			return true
		}
	}
	return false
}

// ebRouteLocked delivers an event to the targets of a bus's enabled rules
// that match it, in rule then target order. hops counts the buses the
// event crossed to get here.
func (bs *Buses) ebRouteLocked(b *ebBus, ev ebEvent, hops int) {
	if ev.decoded == nil {
		return
	}
	for _, name := range ebSortedKeys(b.rules, "") {
		r := b.rules[name]
		if r.State == RuleDisabled || r.pattern == nil || !r.pattern.Match(ev.decoded) {
			continue
		}
		for _, id := range ebSortedKeys(r.targets, "") {
			bs.ebDeliverTargetLocked(r, r.targets[id], ev, hops)
		}
	}
}

// ebDeliverTargetLocked hands an event to one target and records the outcome.
func (bs *Buses) ebDeliverTargetLocked(r *ebRule, t *EventTarget, ev ebEvent, hops int) {
	payload, err := ebTransform(t, r, ev, bs.clock.Now())
	if err == nil {
		err = bs.ebSendLocked(r, t, ev, payload, hops)
	}
	detail := fmt.Sprintf("%s %q from %s via rule %s to %s", ev.id, ev.detailType, ev.source, r.ARN, t.ARN)
	if err != nil {
		detail += " (not delivered: " + err.Error() + ")"
		if dlq := t.DeadLetter; dlq != nil {
			derr := bs.queues.deliverLocked(dlq.ARN, Delivery{Body: string(ev.body), SenderID: ebSenderID, Attributes: map[string]MessageAttribute{
				"RULE_ARN":      {DataType: "String", StringValue: r.ARN},
				"TARGET_ARN":    {DataType: "String", StringValue: t.ARN},
				"ERROR_CODE":    {DataType: "String", StringValue: "SDK_CLIENT_ERROR"},
				"ERROR_MESSAGE": {DataType: "String", StringValue: err.Error()},
			}})
			if derr != nil {
				detail += " (dead-letter queue " + dlq.ARN + ": " + derr.Error() + ")"
			} else {
				detail += " (sent to dead-letter queue " + dlq.ARN + ")"
			}
		}
	}
	bs.dataLocked(eventlog.Event{Service: "events", Kind: EvEventBridge, Group: ev.group, Instance: ev.instance, Resource: r.ARN, Detail: detail})
}

func (bs *Buses) ebSendLocked(r *ebRule, t *EventTarget, ev ebEvent, payload string, hops int) error {
	service := strings.SplitN(t.ARN, ":", 4)[2]
	switch service {
	case "sqs":
		d := Delivery{Body: payload, SenderID: ebSenderID}
		if t.SQSParameters != nil {
			d.GroupID, d.DedupID = t.SQSParameters.MessageGroupID, ev.id
		}
		return bs.queues.deliverLocked(t.ARN, d)
	case "sns":
		_, err := bs.topics.publishLocked(t.ARN, PublishInput{Message: payload})
		return err
	case "lambda":
		bs.bus.lambdaN++
		if len(bs.bus.lambda) >= ebMaxLambdaRecords {
			bs.bus.lambda = append(bs.bus.lambda[:0], bs.bus.lambda[ebMaxLambdaRecords/2:]...)
		}
		bs.bus.lambda = append(bs.bus.lambda, LambdaInvocation{
			Seq: bs.bus.lambdaN, Time: bs.clock.Now().UTC(), FunctionARN: t.ARN,
			RuleARN: r.ARN, TargetID: t.ID, EventID: ev.id, Payload: payload,
		})
		target, body := *t, ev.body
		bs.invokeLocked(t.ARN, []byte(payload), func(err error) {
			if err != nil {
				bs.ebLambdaFailedLocked(r, &target, ev, body, err)
			}
		})
		return nil
	case "events":
		if hops > 0 {
			return fmt.Errorf("an event that came from another event bus is not routed to a third")
		}
		region, account := ebARNField(t.ARN, 3), ebARNField(t.ARN, 4)
		if region != bs.cfg.Region || account != bs.cfg.Account {
			return fmt.Errorf("event bus %s is outside the sandbox's account and region", t.ARN)
		}
		b, err := bs.ebBusLocked(ebBusName(t.ARN))
		if err != nil {
			return err
		}
		bs.ebRouteLocked(b, ev, hops+1)
		return nil
	default:
		return fmt.Errorf("the sandbox does not deliver to %s", service)
	}
}

// ebLambdaFailedLocked records a Lambda invocation the function's owner
// refused (no such function, throttled) and sends the event to the
// target's dead-letter queue when it has one.
func (bs *Buses) ebLambdaFailedLocked(r *ebRule, t *EventTarget, ev ebEvent, body []byte, err error) {
	detail := fmt.Sprintf("%s %q from %s via rule %s to %s (not invoked: %v)", ev.id, ev.detailType, ev.source, r.ARN, t.ARN, err)
	if dlq := t.DeadLetter; dlq != nil {
		derr := bs.queues.deliverLocked(dlq.ARN, Delivery{Body: string(body), SenderID: ebSenderID, Attributes: map[string]MessageAttribute{
			"RULE_ARN":      {DataType: "String", StringValue: r.ARN},
			"TARGET_ARN":    {DataType: "String", StringValue: t.ARN},
			"ERROR_CODE":    {DataType: "String", StringValue: "SDK_CLIENT_ERROR"},
			"ERROR_MESSAGE": {DataType: "String", StringValue: err.Error()},
		}})
		if derr != nil {
			detail += " (dead-letter queue " + dlq.ARN + ": " + derr.Error() + ")"
		} else {
			detail += " (sent to dead-letter queue " + dlq.ARN + ")"
		}
	}
	bs.dataLocked(eventlog.Event{Service: "events", Kind: EvEventBridge, Group: ev.group, Instance: ev.instance, Resource: r.ARN, Detail: detail})
}

func ebARNField(arn string, i int) string {
	parts := strings.SplitN(arn, ":", 6)
	if i < len(parts) {
		return parts[i]
	}
	return ""
}

// LambdaInvocations returns the recorded Lambda invocations with Seq >
// after, oldest first. The broker keeps the last 1000 at most (dropping
// the older half when full).
func (bs *Buses) LambdaInvocations(after int64) []LambdaInvocation {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	var out []LambdaInvocation
	for _, inv := range bs.bus.lambda {
		if inv.Seq > after {
			out = append(out, inv)
		}
	}
	return out
}

// TestEventPattern reports whether an event (the full ebEnvelope, which must
// have id, account, source, time, region and detail-type) matches a
// pattern.
func (bs *Buses) TestEventPattern(eventPattern, event string) (bool, error) {
	if eventPattern == "" {
		return false, ebNull("eventPattern")
	}
	if event == "" {
		return false, ebNull("event")
	}
	if len(eventPattern) > ebMaxPatternLen {
		return false, ebConstraint(eventPattern, "eventPattern", fmt.Sprintf("Member must have length less than or equal to %d", ebMaxPatternLen))
	}
	p, err := pattern.CompileEvent(eventPattern)
	if err != nil {
		return false, err
	}
	ev, err := pattern.DecodeEvent([]byte(event))
	if err != nil {
		return false, err
	}
	for _, f := range []string{"id", "account", "source", "time", "region", "detail-type"} {
		if _, ok := ev[f]; !ok {
			return false, ebValidation("Parameter Event is not valid.")
		}
	}
	return p.Match(ev), nil
}
