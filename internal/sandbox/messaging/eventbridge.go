package messaging

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/pattern"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// This file is the simulated EventBridge: event buses, rules with event
// patterns, targets, and delivery. Auto Scaling puts its aws.autoscaling
// events on the default bus through putAutoScalingEventLocked; clients put
// their own through PutEvents. A matching, enabled rule delivers to each
// of its targets at once, with the broker's lock held:
//
//   - an SQS queue gets the event (or its Input/InputPath/InputTransformer
//     form) as the message body, with no SNS ebEnvelope;
//   - an SNS topic gets it as the message;
//   - a Lambda function is invoked asynchronously through the broker's
//     Invoker, without the broker's lock (the invocation is also recorded,
//     LambdaInvocations);
//   - another event bus of the account gets the event itself, and routes
//     it no further (one hop, as on AWS).
//
// A delivery that fails goes to the target's dead-letter queue when it has
// one, and is recorded in the event log either way; nobody's call fails.
// Schedule rules fire on the broker's clock (eventbridge_schedule.go).

// DefaultEventBus is the name of the account's default event bus.
const DefaultEventBus = "default"

// Rule states.
const (
	RuleEnabled  = "ENABLED"
	RuleDisabled = "DISABLED"
	// RuleEnabledWithCloudTrail also matches CloudTrail management events;
	// the sandbox has none, so it behaves as ENABLED.
	RuleEnabledWithCloudTrail = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
)

// EventBridge limits (the service quotas and the API model's constraints).
const (
	ebMaxTargetsPerRule   = 5   // "Each rule can have up to five (5) targets"
	ebMaxTargetsPerCall   = 100 // TargetList, TargetIdList
	ebMaxRulesPerBus      = 300
	ebMaxBuses            = 100 // including default
	ebMaxPutEvents        = 10  // PutEventsRequestEntryList
	ebMaxPutEventsBytes   = 256 * 1024
	ebMaxPatternLen       = 4096
	ebMaxDescriptionLen   = 512
	ebMaxScheduleLen      = 256
	ebMaxListLimit        = 100
	ebMaxLambdaRecords    = 1000
	ebSenderID            = "AROAEVENTBRIDGE:events.amazonaws.com"
	ebTimeFormat          = "2006-01-02T15:04:05Z"
	ebLimitText           = "The requested resource exceeds the maximum number allowed."
	ebSourceNotAuthorized = "Not authorized for the source."
)

var (
	ebRuleNamePattern = lazyRegexp(`^[\.\-_A-Za-z0-9]+$`)
	ebBusNamePattern  = lazyRegexp(`^[/\.\-_A-Za-z0-9]+$`)
	ebTargetIDPattern = lazyRegexp(`^[\.\-_A-Za-z0-9]+$`)
	ebPathKeyPattern  = lazyRegexp(`^[A-Za-z0-9_\-]+$`)
	ebRateExpression  = lazyRegexp(`^rate\(([1-9][0-9]*) (minute|minutes|hour|hours|day|days)\)$`)
	ebCronExpression  = lazyRegexp(`^cron\(\S+ \S+ \S+ \S+ \S+ \S+\)$`)
)

// EventBus is an event bus as DescribeEventBus shows it.
type EventBus struct {
	Name, ARN, Description string
	// Created and Modified are zero for the default bus, which exists
	// before the sandbox's clock starts.
	Created, Modified time.Time
}

// EventRule is a rule as DescribeRule shows it.
type EventRule struct {
	Name, ARN, EventBusName string
	EventPattern            string
	// ScheduleExpression fires the rule on the sandbox clock.
	ScheduleExpression string
	State              string
	Description        string
	RoleARN            string
	CreatedBy          string // the account
}

// PutRuleInput creates or replaces a rule. Omitted fields are not kept
// from the rule it replaces (as on AWS); its targets are.
type PutRuleInput struct {
	Name               string
	EventBusName       string // name or ARN; default bus when empty
	EventPattern       string
	ScheduleExpression string
	State              string // ENABLED when empty
	Description        string
	RoleARN            string
	Tags               []KV
}

// EventTarget is a rule's target.
type EventTarget struct {
	ID, ARN, RoleARN string
	// At most one of Input (constant JSON), InputPath (a JSONPath such as
	// $.detail) and InputTransformer shapes what the target receives; with
	// none it receives the whole event.
	Input            string
	InputPath        string
	InputTransformer *TargetInputTransformer
	SQSParameters    *TargetSQSParameters
	DeadLetter       *TargetDeadLetter
	RetryPolicy      *TargetRetryPolicy
}

// TargetInputTransformer fills a template with values taken from the event.
type TargetInputTransformer struct {
	InputPathsMap map[string]string
	InputTemplate string
}

// TargetSQSParameters carries the message group of a FIFO queue target.
type TargetSQSParameters struct{ MessageGroupID string }

// TargetDeadLetter names the SQS queue that gets events a target could not
// take.
type TargetDeadLetter struct{ ARN string }

// TargetRetryPolicy is stored and shown; delivery in the sandbox is immediate
// and never retried.
type TargetRetryPolicy struct {
	MaximumRetryAttempts     *int
	MaximumEventAgeInSeconds *int
}

// TargetFailure is a failed entry of PutTargets or RemoveTargets.
type TargetFailure struct {
	TargetID, ErrorCode, ErrorMessage string
}

// PutEventsEntry is one event a client puts.
type PutEventsEntry struct {
	Source, DetailType, Detail string
	Resources                  []string
	Time                       time.Time // the call's time when zero
	EventBusName               string    // name or ARN; default bus when empty
	TraceHeader                string
}

// PutEventsResult is the outcome of one PutEventsEntry: an EventID or an
// error code and message.
type PutEventsResult struct {
	EventID, ErrorCode, ErrorMessage string
}

// LambdaInvocation is an event a rule sent to a Lambda function target.
type LambdaInvocation struct {
	Seq         int64
	Time        time.Time
	FunctionARN string
	RuleARN     string
	TargetID    string
	EventID     string
	// Payload is what the function would receive: the event, or its
	// Input/InputPath/InputTransformer form.
	Payload string
}

// busState holds the simulated EventBridge buses, rules and targets, and
// the Lambda invocations the rules made.
type busState struct {
	buses   map[string]*ebBus
	lambda  []LambdaInvocation
	lambdaN int64
}

type ebBus struct {
	EventBus
	rules map[string]*ebRule
}

type ebRule struct {
	EventRule
	pattern *pattern.Event // nil for a schedule-only rule
	created time.Time      // when it was put: rate() counts from it
	timer   simclock.Timer // its schedule's next firing
	tags    []KV
	targets map[string]*EventTarget
}

func (s *busState) init() {
	s.buses = map[string]*ebBus{}
}

// ebEvent is an event on its way to rules: its ebEnvelope as JSON and
// decoded for matching, plus what the event log shows of it.
type ebEvent struct {
	id, source, detailType string
	body                   []byte
	decoded                map[string]any
	group, instance        string
}

// ebEnvelope is the JSON every target receives, in AWS's field order.
type ebEnvelope struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// Errors ---------------------------------------------------------------------

func ebValidation(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf("ValidationException", format, args...)
}

// ebConstraint is Coral's message for a member that breaks its model
// constraint.
func ebConstraint(value, member, constraint string) *awsproto.Error {
	return ebValidation("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", value, member, constraint)
}

func ebNull(member string) *awsproto.Error {
	return ebValidation("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member)
}

func ebNotFound(format string, args ...any) *awsproto.Error {
	return awsproto.Errorf("ResourceNotFoundException", format, args...)
}

func ebLimit() *awsproto.Error { return awsproto.Errorf("LimitExceededException", ebLimitText) }

func ebRuleNotFound(rule, bus string) *awsproto.Error {
	return ebNotFound("Rule %s does not exist on EventBus %s.", rule, bus)
}

// ebCheckName validates a rule or target name against the model.
func ebCheckName(value, member string, re *regexp.Regexp, maxLen int) error {
	switch {
	case value == "":
		return ebNull(member)
	case len(value) > maxLen:
		return ebConstraint(value, member, fmt.Sprintf("Member must have length less than or equal to %d", maxLen))
	case !re.MatchString(value):
		return ebConstraint(value, member, "Member must satisfy regular expression pattern: "+strings.Trim(re.String(), "^$"))
	}
	return nil
}

// Buses ----------------------------------------------------------------------

func (bs *Buses) ebBusARN(name string) string {
	return "arn:aws:events:" + bs.cfg.Region + ":" + bs.cfg.Account + ":event-bus/" + name
}

// ebBusName turns an event bus name or ARN into a name; empty means default.
func ebBusName(nameOrARN string) string {
	if nameOrARN == "" {
		return DefaultEventBus
	}
	if strings.HasPrefix(nameOrARN, "arn:") {
		if _, name, ok := strings.Cut(nameOrARN, ":event-bus/"); ok {
			return name
		}
	}
	return nameOrARN
}

// ebBusLocked finds a bus by name or ARN. The default bus always exists.
func (bs *Buses) ebBusLocked(nameOrARN string) (*ebBus, error) {
	name := ebBusName(nameOrARN)
	if b, ok := bs.bus.buses[name]; ok {
		return b, nil
	}
	if name == DefaultEventBus {
		b := &ebBus{EventBus: EventBus{Name: name, ARN: bs.ebBusARN(name)}, rules: map[string]*ebRule{}}
		bs.bus.buses[name] = b
		return b, nil
	}
	return nil, ebNotFound("Event bus %s does not exist.", name)
}

// CreateEventBus creates a custom event bus and returns its ARN.
func (bs *Buses) CreateEventBus(name, description string) (string, error) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if err := ebCheckName(name, "name", ebBusNamePattern(), 256); err != nil {
		return "", err
	}
	if len(description) > ebMaxDescriptionLen {
		return "", ebConstraint(description, "description", fmt.Sprintf("Member must have length less than or equal to %d", ebMaxDescriptionLen))
	}
	if strings.HasPrefix(name, "aws.") || strings.Contains(name, "/") {
		return "", ebValidation("Event bus name must not start with 'aws.' or contain '/' (partner event buses are not modelled).")
	}
	if _, err := bs.ebBusLocked(DefaultEventBus); err != nil {
		return "", err
	}
	if _, ok := bs.bus.buses[name]; ok {
		return "", awsproto.Errorf("ResourceAlreadyExistsException", "Event bus %s already exists.", name)
	}
	if len(bs.bus.buses) >= ebMaxBuses {
		return "", ebLimit()
	}
	now := bs.clock.Now().UTC()
	b := &ebBus{EventBus: EventBus{Name: name, ARN: bs.ebBusARN(name), Description: description, Created: now, Modified: now}, rules: map[string]*ebRule{}}
	bs.bus.buses[name] = b
	return b.ARN, nil
}

// DeleteEventBus deletes a custom event bus and its rules. Deleting a bus
// that does not exist succeeds, as on AWS.
func (bs *Buses) DeleteEventBus(name string) error {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if name == "" {
		return ebNull("name")
	}
	name = ebBusName(name)
	if name == DefaultEventBus {
		return ebValidation("Cannot delete event bus default.")
	}
	delete(bs.bus.buses, name)
	return nil
}

// DescribeEventBus returns a bus by name or ARN (default when empty).
func (bs *Buses) DescribeEventBus(name string) (EventBus, error) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b, err := bs.ebBusLocked(name)
	if err != nil {
		return EventBus{}, err
	}
	return b.EventBus, nil
}

// ListEventBuses lists buses by name, at most limit (1–100; 100 when 0)
// after the page token; it returns the next page's token, or "".
func (bs *Buses) ListEventBuses(prefix string, limit int, token string) ([]EventBus, string, error) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if _, err := bs.ebBusLocked(DefaultEventBus); err != nil {
		return nil, "", err
	}
	names := ebSortedKeys(bs.bus.buses, prefix)
	page, next, err := ebPaginate(names, limit, token)
	if err != nil {
		return nil, "", err
	}
	out := make([]EventBus, 0, len(page))
	for _, n := range page {
		out = append(out, bs.bus.buses[n].EventBus)
	}
	return out, next, nil
}

func ebSortedKeys[V any](m map[string]V, prefix string) []string {
	var keys []string
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// ebPaginate returns the names after the token's, at most limit of them,
// and the token for the rest.
func ebPaginate(names []string, limit int, token string) ([]string, string, error) {
	if limit == 0 {
		limit = ebMaxListLimit
	}
	if limit < 1 || limit > ebMaxListLimit {
		return nil, "", ebConstraint(fmt.Sprint(limit), "limit", "Member must have value between 1 and 100")
	}
	start := 0
	if token != "" {
		after, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			return nil, "", ebValidation("The NextToken provided is invalid.")
		}
		start, _ = slices.BinarySearch(names, string(after))
		if start < len(names) && names[start] == string(after) {
			start++
		}
	}
	names = names[start:]
	if len(names) <= limit {
		return names, "", nil
	}
	return names[:limit], base64.RawURLEncoding.EncodeToString([]byte(names[limit-1])), nil
}

// Rules ----------------------------------------------------------------------

func (bs *Buses) ebRuleARN(bus, name string) string {
	prefix := "arn:aws:events:" + bs.cfg.Region + ":" + bs.cfg.Account + ":rule/"
	if bus == DefaultEventBus {
		return prefix + name
	}
	return prefix + bus + "/" + name
}

func (bs *Buses) ebRuleLocked(bus, name string) (*ebBus, *ebRule, error) {
	if name == "" {
		return nil, nil, ebNull("name")
	}
	b, err := bs.ebBusLocked(bus)
	if err != nil {
		return nil, nil, err
	}
	r, ok := b.rules[name]
	if !ok {
		return nil, nil, ebRuleNotFound(name, b.Name)
	}
	return b, r, nil
}

// ebValidSchedule accepts rate(N unit) and six-field cron(...) expressions.
func ebValidSchedule(s string) bool {
	if m := ebRateExpression().FindStringSubmatch(s); m != nil {
		one := m[1] == "1"
		plural := strings.HasSuffix(m[2], "s")
		return one != plural
	}
	return ebCronExpression().MatchString(s)
}

// PutRule creates or replaces a rule and returns its ARN. The event
// pattern is validated (InvalidEventPatternException); a schedule
// expression is checked for form and fires on the sandbox clock.
func (bs *Buses) PutRule(in PutRuleInput) (string, error) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if err := ebCheckName(in.Name, "name", ebRuleNamePattern(), 64); err != nil {
		return "", err
	}
	switch {
	case len(in.EventPattern) > ebMaxPatternLen:
		return "", ebConstraint(in.EventPattern, "eventPattern", fmt.Sprintf("Member must have length less than or equal to %d", ebMaxPatternLen))
	case len(in.Description) > ebMaxDescriptionLen:
		return "", ebConstraint(in.Description, "description", fmt.Sprintf("Member must have length less than or equal to %d", ebMaxDescriptionLen))
	case len(in.ScheduleExpression) > ebMaxScheduleLen:
		return "", ebConstraint(in.ScheduleExpression, "scheduleExpression", fmt.Sprintf("Member must have length less than or equal to %d", ebMaxScheduleLen))
	}
	state := in.State
	switch state {
	case "":
		state = RuleEnabled
	case RuleEnabled, RuleDisabled, RuleEnabledWithCloudTrail:
	default:
		return "", ebConstraint(state, "state", "Member must satisfy enum value set: [ENABLED, DISABLED, ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS]")
	}
	b, err := bs.ebBusLocked(in.EventBusName)
	if err != nil {
		return "", err
	}
	if in.EventPattern == "" && in.ScheduleExpression == "" {
		return "", ebValidation("Parameter(s) EventPattern or ScheduleExpression must be specified.")
	}
	var compiled *pattern.Event
	if in.EventPattern != "" {
		if compiled, err = pattern.CompileEvent(in.EventPattern); err != nil {
			return "", err
		}
	}
	if in.ScheduleExpression != "" {
		if b.Name != DefaultEventBus {
			return "", ebValidation("ScheduleExpression is supported only on the default event bus.")
		}
		if !ebValidSchedule(in.ScheduleExpression) {
			return "", ebValidation("Parameter ScheduleExpression is not valid.")
		}
	}
	old, exists := b.rules[in.Name]
	if !exists && len(b.rules) >= ebMaxRulesPerBus {
		return "", ebLimit()
	}
	r := &ebRule{
		EventRule: EventRule{
			Name: in.Name, ARN: bs.ebRuleARN(b.Name, in.Name), EventBusName: b.Name,
			EventPattern: in.EventPattern, ScheduleExpression: in.ScheduleExpression,
			State: state, Description: in.Description, RoleARN: in.RoleARN, CreatedBy: bs.cfg.Account,
		},
		pattern: compiled,
		tags:    slices.Clone(in.Tags),
		targets: map[string]*EventTarget{},
	}
	if exists {
		r.targets = old.targets
		if in.Tags == nil {
			r.tags = old.tags
		}
	}
	if exists {
		ebStopLocked(old)
	}
	b.rules[in.Name] = r
	r.created = bs.clock.Now()
	bs.ebArmLocked(b, r, r.created)
	return r.ARN, nil
}

// DescribeRule returns a rule.
func (bs *Buses) DescribeRule(bus, name string) (EventRule, error) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	_, r, err := bs.ebRuleLocked(bus, name)
	if err != nil {
		return EventRule{}, err
	}
	return r.EventRule, nil
}

// ListRules lists a bus's rules by name; see ListEventBuses for paging.
func (bs *Buses) ListRules(bus, prefix string, limit int, token string) ([]EventRule, string, error) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b, err := bs.ebBusLocked(bus)
	if err != nil {
		return nil, "", err
	}
	page, next, err := ebPaginate(ebSortedKeys(b.rules, prefix), limit, token)
	if err != nil {
		return nil, "", err
	}
	out := make([]EventRule, 0, len(page))
	for _, n := range page {
		out = append(out, b.rules[n].EventRule)
	}
	return out, next, nil
}

// ListRuleNamesByTarget lists the names of a bus's rules that have a
// target with the given ARN.
func (bs *Buses) ListRuleNamesByTarget(bus, targetARN string, limit int, token string) ([]string, string, error) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if targetARN == "" {
		return nil, "", ebNull("targetArn")
	}
	b, err := bs.ebBusLocked(bus)
	if err != nil {
		return nil, "", err
	}
	var names []string
	for _, n := range ebSortedKeys(b.rules, "") {
		for _, t := range b.rules[n].targets {
			if t.ARN == targetARN {
				names = append(names, n)
				break
			}
		}
	}
	return ebPaginate(names, limit, token)
}

// DeleteRule deletes a rule. A rule with targets cannot be deleted until
// they are removed; force only matters for rules managed by an AWS service
// (none in the sandbox), as on AWS. Deleting a rule that does not exist
// succeeds.
func (bs *Buses) DeleteRule(bus, name string, force bool) error {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if name == "" {
		return ebNull("name")
	}
	b, err := bs.ebBusLocked(bus)
	if err != nil {
		return err
	}
	r, ok := b.rules[name]
	if !ok {
		return nil
	}
	_ = force // only managed rules need it
	if len(r.targets) > 0 {
		return ebValidation("Rule can't be deleted since it has targets.")
	}
	ebStopLocked(r)
	delete(b.rules, name)
	return nil
}

// EnableRule sets a rule's state to ENABLED.
func (bs *Buses) EnableRule(bus, name string) error { return bs.ebSetRuleState(bus, name, RuleEnabled) }

// DisableRule sets a rule's state to DISABLED: it matches nothing until
// enabled again.
func (bs *Buses) DisableRule(bus, name string) error {
	return bs.ebSetRuleState(bus, name, RuleDisabled)
}

func (bs *Buses) ebSetRuleState(bus, name, state string) error {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	_, r, err := bs.ebRuleLocked(bus, name)
	if err != nil {
		return err
	}
	r.State = state
	return nil
}

// Targets --------------------------------------------------------------------

// ebCheckTargetLocked validates a target of PutTargets (the index-th) and
// returns its entry failure, or nil.
func (bs *Buses) ebCheckTargetLocked(t *EventTarget, index int) *TargetFailure {
	fail := func(code, format string, args ...any) *TargetFailure {
		return &TargetFailure{TargetID: t.ID, ErrorCode: code, ErrorMessage: fmt.Sprintf(format, args...)}
	}
	member := fmt.Sprintf("targets.%d.member", index+1)
	if err := ebCheckName(t.ID, member+".id", ebTargetIDPattern(), 64); err != nil {
		return fail("ValidationException", "%s", strings.TrimPrefix(err.(*awsproto.Error).Message, "1 validation error detected: "))
	}
	parts := strings.SplitN(t.ARN, ":", 6)
	if len(parts) < 6 || parts[0] != "arn" || parts[2] == "" || len(t.ARN) > 1600 {
		return fail("ValidationException", "Parameter %s is not valid. Reason: Provided Arn is not in correct format.", t.ARN)
	}
	switch parts[2] {
	case "sqs", "sns", "lambda":
	case "events":
		if !strings.HasPrefix(parts[5], "event-bus/") {
			return fail("ValidationException", "The lifeguard sandbox delivers to event buses only among events targets, not %s.", t.ARN)
		}
	default:
		return fail("ValidationException", "The lifeguard sandbox does not deliver to %s targets (%s); use an SQS queue, an SNS topic, a Lambda function or an event bus.", parts[2], t.ARN)
	}
	set := 0
	for _, b := range []bool{t.Input != "", t.InputPath != "", t.InputTransformer != nil} {
		if b {
			set++
		}
	}
	if set > 1 {
		return fail("ValidationException", "Only one of Input, InputPath, or InputTransformer must be provided.")
	}
	if t.Input != "" {
		if len(t.Input) > 8192 {
			return fail("ValidationException", "Value '%s' at '%s.input' failed to satisfy constraint: Member must have length less than or equal to 8192", t.Input, member)
		}
		if !json.Valid([]byte(t.Input)) {
			return fail("ValidationException", "Parameter Input is not valid. Reason: Input must be valid JSON text.")
		}
	}
	if t.InputPath != "" {
		if _, err := pattern.CompileInputPath(t.InputPath); err != nil {
			return fail("ValidationException", "Parameter InputPath is not valid. Reason: %v", err)
		}
	}
	if tr := t.InputTransformer; tr != nil {
		if tr.InputTemplate == "" {
			return fail("ValidationException", "Value null at '%s.inputTransformer.inputTemplate' failed to satisfy constraint: Member must not be null", member)
		}
		if len(tr.InputPathsMap) > 100 {
			return fail("ValidationException", "Value at '%s.inputTransformer.inputPathsMap' failed to satisfy constraint: Member must have length less than or equal to 100", member)
		}
		for k, p := range tr.InputPathsMap {
			if !ebPathKeyPattern().MatchString(k) || len(k) > 256 {
				return fail("ValidationException", "Parameter InputPathsMap is not valid. Reason: key %q must match [A-Za-z0-9\\_\\-]+.", k)
			}
			if strings.HasPrefix(k, "aws.events.") {
				return fail("ValidationException", "Parameter InputPathsMap is not valid. Reason: aws.events is a reserved prefix.")
			}
			if _, err := pattern.CompileInputPath(p); err != nil {
				return fail("ValidationException", "Parameter InputPathsMap is not valid. Reason: %v", err)
			}
		}
	}
	if parts[2] == "sqs" && strings.HasSuffix(t.ARN, ".fifo") && t.SQSParameters == nil {
		return fail("ValidationException", "Parameter(s) SqsParameters must be specified for target: %s.", t.ID)
	}
	if t.DeadLetter != nil && !strings.HasPrefix(t.DeadLetter.ARN, "arn:aws:sqs:") {
		return fail("ValidationException", "Parameter DeadLetterConfig.Arn is not valid. Reason: The dead-letter queue must be an SQS queue ARN.")
	}
	return nil
}

// PutTargets adds targets to a rule or replaces those with the same id.
// Targets that fail validation come back as entry failures and the rest
// are applied; a rule would end with more than five targets fails the
// whole call with LimitExceededException.
func (bs *Buses) PutTargets(bus, rule string, targets []EventTarget) ([]TargetFailure, error) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if rule == "" {
		return nil, ebNull("rule")
	}
	if targets == nil {
		return nil, ebNull("targets")
	}
	if len(targets) == 0 || len(targets) > ebMaxTargetsPerCall {
		return nil, ebConstraint(fmt.Sprintf("[%d targets]", len(targets)), "targets", "Member must have length less than or equal to 100 and greater than or equal to 1")
	}
	_, r, err := bs.ebRuleLocked(bus, rule)
	if err != nil {
		return nil, err
	}
	var failed []TargetFailure
	next := map[string]*EventTarget{}
	for id, t := range r.targets {
		next[id] = t
	}
	for i := range targets {
		t := ebCloneTarget(targets[i])
		if f := bs.ebCheckTargetLocked(t, i); f != nil {
			failed = append(failed, *f)
			continue
		}
		next[t.ID] = t
	}
	if len(next) > ebMaxTargetsPerRule {
		return nil, ebLimit()
	}
	r.targets = next
	return failed, nil
}

func ebCloneTarget(t EventTarget) *EventTarget {
	c := t
	if t.InputTransformer != nil {
		tr := *t.InputTransformer
		tr.InputPathsMap = make(map[string]string, len(t.InputTransformer.InputPathsMap))
		for k, v := range t.InputTransformer.InputPathsMap {
			tr.InputPathsMap[k] = v
		}
		c.InputTransformer = &tr
	}
	if t.SQSParameters != nil {
		p := *t.SQSParameters
		c.SQSParameters = &p
	}
	if t.DeadLetter != nil {
		d := *t.DeadLetter
		c.DeadLetter = &d
	}
	if t.RetryPolicy != nil {
		p := *t.RetryPolicy
		c.RetryPolicy = &p
	}
	return &c
}

// ListTargetsByRule lists a rule's targets by id; see ListEventBuses for
// paging.
func (bs *Buses) ListTargetsByRule(bus, rule string, limit int, token string) ([]EventTarget, string, error) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if rule == "" {
		return nil, "", ebNull("rule")
	}
	_, r, err := bs.ebRuleLocked(bus, rule)
	if err != nil {
		return nil, "", err
	}
	page, next, err := ebPaginate(ebSortedKeys(r.targets, ""), limit, token)
	if err != nil {
		return nil, "", err
	}
	out := make([]EventTarget, 0, len(page))
	for _, id := range page {
		out = append(out, *ebCloneTarget(*r.targets[id]))
	}
	return out, next, nil
}

// RemoveTargets removes targets from a rule; ids it does not have come
// back as entry failures. force only matters for managed rules.
func (bs *Buses) RemoveTargets(bus, rule string, ids []string, force bool) ([]TargetFailure, error) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if rule == "" {
		return nil, ebNull("rule")
	}
	if ids == nil {
		return nil, ebNull("ids")
	}
	if len(ids) == 0 || len(ids) > ebMaxTargetsPerCall {
		return nil, ebConstraint(fmt.Sprintf("[%d ids]", len(ids)), "ids", "Member must have length less than or equal to 100 and greater than or equal to 1")
	}
	_, r, err := bs.ebRuleLocked(bus, rule)
	if err != nil {
		return nil, err
	}
	_ = force
	var failed []TargetFailure
	for _, id := range ids {
		if _, ok := r.targets[id]; !ok {
			failed = append(failed, TargetFailure{TargetID: id, ErrorCode: "ResourceNotFoundException", ErrorMessage: fmt.Sprintf("Rule '%s' does not have a target with the Id '%s'.", r.Name, id)})
			continue
		}
		delete(r.targets, id)
	}
	return failed, nil
}
