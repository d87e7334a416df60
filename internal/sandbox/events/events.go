// Package events serves the EventBridge API (awsJson1_1, X-Amz-Target
// AWSEvents.<Op>) over the sandbox's messaging owner. It is a stateless translator:
// it decodes the JSON request, calls *messaging.Buses, and encodes the result
// with the member names of the EventBridge API model. Operations it does
// not serve answer UnknownOperationException; target parameters it does
// not model come back as failed entries.
//
// It is written from the API model's member names and the wire
// documentation, never from the SDK's generated code, so the sandbox and
// the client under test cannot share a misunderstanding.
package events

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
)

// TargetPrefix is the X-Amz-Target prefix of the EventBridge API.
const TargetPrefix = "AWSEvents"

// maxBody bounds a request body. PutEvents, the largest request, carries
// at most 256 KiB of entries.
const maxBody = 1 << 20

// Handler is the EventBridge endpoint. It is safe for concurrent use; all
// state lives in the messaging.
type Handler struct {
	b   *messaging.Buses
	svc *awsproto.JSONService
}

// request is one call: its operation and its JSON body.
type request = *awsproto.JSONRequest

// New returns a handler over b.
func New(b *messaging.Buses) *Handler {
	h := &Handler{b: b}
	h.svc = &awsproto.JSONService{
		TargetPrefix: TargetPrefix,
		ContentType:  awsproto.JSON11,
		Namespace:    "com.amazonaws.eventbridge",
		MaxBody:      maxBody,
		Operations: map[string]awsproto.JSONOperation{
			"CreateEventBus":        h.createEventBus,
			"DeleteEventBus":        h.deleteEventBus,
			"DescribeEventBus":      h.describeEventBus,
			"ListEventBuses":        h.listEventBuses,
			"PutRule":               h.putRule,
			"DescribeRule":          h.describeRule,
			"ListRules":             h.listRules,
			"ListRuleNamesByTarget": h.listRuleNamesByTarget,
			"DeleteRule":            h.deleteRule,
			"EnableRule":            h.enableRule,
			"DisableRule":           h.disableRule,
			"PutTargets":            h.putTargets,
			"ListTargetsByRule":     h.listTargetsByRule,
			"RemoveTargets":         h.removeTargets,
			"PutEvents":             h.putEvents,
			"TestEventPattern":      h.testEventPattern,
		},
	}
	return h
}

// ServeHTTP serves one awsJson1_1 request. The operation comes from
// X-Amz-Target; the body is the operation's input as JSON.
func (h *Handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) { h.svc.ServeHTTP(rw, r) }

// WriteError writes e as EventBridge's awsJson1_1 error (for faults the
// router injects).
func (h *Handler) WriteError(rw http.ResponseWriter, requestID string, e *awsproto.Error) {
	h.svc.WriteError(rw, requestID, e)
}

// limit checks an optional Limit member (1–100) and returns it, 0 when
// absent.
func limit(l *int64) (int, error) {
	if l == nil {
		return 0, nil
	}
	if *l < 1 || *l > 100 {
		return 0, awsproto.Errorf("ValidationException", "1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and 100", *l)
	}
	return int(*l), nil
}

// epoch renders a time as awsJson does: seconds since the epoch.
type epoch time.Time

func (t epoch) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	return []byte(strconv.FormatFloat(float64(tt.UnixMilli())/1000, 'f', -1, 64)), nil
}

func epochPtr(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}

// parseTime reads an awsJson timestamp: epoch seconds (the SDK's form) or
// an RFC 3339 string.
func parseTime(raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e11 {
			return time.Time{}, awsproto.Serialization("Timestamp %s is out of range.", raw)
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, awsproto.Serialization("Timestamp %s is not a number of seconds since the epoch.", raw)
}

// Event buses -----------------------------------------------------------------

type eventBusOut struct {
	Name             string `json:"Name"`
	Arn              string `json:"Arn"`
	Description      string `json:"Description,omitempty"`
	CreationTime     *epoch `json:"CreationTime,omitempty"`
	LastModifiedTime *epoch `json:"LastModifiedTime,omitempty"`
}

func busOut(b messaging.EventBus) eventBusOut {
	return eventBusOut{Name: b.Name, Arn: b.ARN, Description: b.Description, CreationTime: epochPtr(b.Created), LastModifiedTime: epochPtr(b.Modified)}
}

type tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

func (h *Handler) createEventBus(r request) (any, error) {
	var in struct {
		Name             string
		Description      string
		EventSourceName  string
		KmsKeyIdentifier string
		DeadLetterConfig json.RawMessage
		LogConfig        json.RawMessage
		Tags             []tag
	}
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	for _, p := range []struct {
		name string
		set  bool
	}{
		{"EventSourceName", in.EventSourceName != ""}, {"KmsKeyIdentifier", in.KmsKeyIdentifier != ""},
		{"DeadLetterConfig", present(in.DeadLetterConfig)}, {"LogConfig", present(in.LogConfig)},
	} {
		if p.set {
			return nil, notModelled(p.name)
		}
	}
	arn, err := h.b.CreateEventBus(in.Name, in.Description)
	if err != nil {
		return nil, err
	}
	return struct {
		EventBusArn string `json:"EventBusArn"`
		Description string `json:"Description,omitempty"`
	}{arn, in.Description}, nil
}

func present(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

func notModelled(param string) *awsproto.Error {
	return awsproto.Errorf("ValidationException", "The lifeguard sandbox does not model %s; remove it from the request.", param)
}

func (h *Handler) deleteEventBus(r request) (any, error) {
	var in struct{ Name string }
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	return nil, h.b.DeleteEventBus(in.Name)
}

func (h *Handler) describeEventBus(r request) (any, error) {
	var in struct{ Name string }
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	b, err := h.b.DescribeEventBus(in.Name)
	if err != nil {
		return nil, err
	}
	return busOut(b), nil
}

func (h *Handler) listEventBuses(r request) (any, error) {
	var in struct {
		NamePrefix string
		NextToken  string
		Limit      *int64
	}
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	n, err := limit(in.Limit)
	if err != nil {
		return nil, err
	}
	buses, next, err := h.b.ListEventBuses(in.NamePrefix, n, in.NextToken)
	if err != nil {
		return nil, err
	}
	out := struct {
		EventBuses []eventBusOut `json:"EventBuses"`
		NextToken  string        `json:"NextToken,omitempty"`
	}{EventBuses: []eventBusOut{}, NextToken: next}
	for _, b := range buses {
		out.EventBuses = append(out.EventBuses, busOut(b))
	}
	return out, nil
}

// Rules -----------------------------------------------------------------------

type ruleOut struct {
	Name               string `json:"Name"`
	Arn                string `json:"Arn"`
	EventPattern       string `json:"EventPattern,omitempty"`
	State              string `json:"State"`
	Description        string `json:"Description,omitempty"`
	ScheduleExpression string `json:"ScheduleExpression,omitempty"`
	RoleArn            string `json:"RoleArn,omitempty"`
	EventBusName       string `json:"EventBusName"`
}

func toRuleOut(r messaging.EventRule) ruleOut {
	return ruleOut{
		Name: r.Name, Arn: r.ARN, EventPattern: r.EventPattern, State: r.State, Description: r.Description,
		ScheduleExpression: r.ScheduleExpression, RoleArn: r.RoleARN, EventBusName: r.EventBusName,
	}
}

// ruleRef is the input of the operations that name one rule.
type ruleRef struct {
	Name         string
	EventBusName string
}

func (h *Handler) putRule(r request) (any, error) {
	var in struct {
		Name               string
		ScheduleExpression string
		EventPattern       string
		State              string
		Description        string
		RoleArn            string
		Tags               []tag
		EventBusName       string
	}
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	var tags []messaging.KV
	for _, t := range in.Tags {
		tags = append(tags, messaging.KV{Key: t.Key, Value: t.Value})
	}
	arn, err := h.b.PutRule(messaging.PutRuleInput{
		Name: in.Name, EventBusName: in.EventBusName, EventPattern: in.EventPattern,
		ScheduleExpression: in.ScheduleExpression, State: in.State, Description: in.Description,
		RoleARN: in.RoleArn, Tags: tags,
	})
	if err != nil {
		return nil, err
	}
	return struct {
		RuleArn string `json:"RuleArn"`
	}{arn}, nil
}

func (h *Handler) describeRule(r request) (any, error) {
	var in ruleRef
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	rule, err := h.b.DescribeRule(in.EventBusName, in.Name)
	if err != nil {
		return nil, err
	}
	return struct {
		ruleOut
		CreatedBy string `json:"CreatedBy"`
	}{toRuleOut(rule), rule.CreatedBy}, nil
}

func (h *Handler) listRules(r request) (any, error) {
	var in struct {
		NamePrefix   string
		EventBusName string
		NextToken    string
		Limit        *int64
	}
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	n, err := limit(in.Limit)
	if err != nil {
		return nil, err
	}
	rules, next, err := h.b.ListRules(in.EventBusName, in.NamePrefix, n, in.NextToken)
	if err != nil {
		return nil, err
	}
	out := struct {
		Rules     []ruleOut `json:"Rules"`
		NextToken string    `json:"NextToken,omitempty"`
	}{Rules: []ruleOut{}, NextToken: next}
	for _, rule := range rules {
		out.Rules = append(out.Rules, toRuleOut(rule))
	}
	return out, nil
}

func (h *Handler) listRuleNamesByTarget(r request) (any, error) {
	var in struct {
		TargetArn    string
		EventBusName string
		NextToken    string
		Limit        *int64
	}
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	n, err := limit(in.Limit)
	if err != nil {
		return nil, err
	}
	names, next, err := h.b.ListRuleNamesByTarget(in.EventBusName, in.TargetArn, n, in.NextToken)
	if err != nil {
		return nil, err
	}
	if names == nil {
		names = []string{}
	}
	return struct {
		RuleNames []string `json:"RuleNames"`
		NextToken string   `json:"NextToken,omitempty"`
	}{names, next}, nil
}

func (h *Handler) deleteRule(r request) (any, error) {
	var in struct {
		ruleRef
		Force bool
	}
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	return nil, h.b.DeleteRule(in.EventBusName, in.Name, in.Force)
}

func (h *Handler) enableRule(r request) (any, error) {
	var in ruleRef
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	return nil, h.b.EnableRule(in.EventBusName, in.Name)
}

func (h *Handler) disableRule(r request) (any, error) {
	var in ruleRef
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	return nil, h.b.DisableRule(in.EventBusName, in.Name)
}

// Targets ---------------------------------------------------------------------

// wireTarget is a Target as the API model names its members. The
// parameters of target types the sandbox does not deliver to are kept raw
// only to be refused.
type wireTarget struct {
	Id               string                `json:"Id"`
	Arn              string                `json:"Arn"`
	RoleArn          string                `json:"RoleArn,omitempty"`
	Input            string                `json:"Input,omitempty"`
	InputPath        string                `json:"InputPath,omitempty"`
	InputTransformer *wireInputTransformer `json:"InputTransformer,omitempty"`
	SqsParameters    *wireSqsParameters    `json:"SqsParameters,omitempty"`
	DeadLetterConfig *wireDeadLetterConfig `json:"DeadLetterConfig,omitempty"`
	RetryPolicy      *wireRetryPolicy      `json:"RetryPolicy,omitempty"`

	KinesisParameters           json.RawMessage `json:"KinesisParameters,omitempty"`
	RunCommandParameters        json.RawMessage `json:"RunCommandParameters,omitempty"`
	EcsParameters               json.RawMessage `json:"EcsParameters,omitempty"`
	BatchParameters             json.RawMessage `json:"BatchParameters,omitempty"`
	HttpParameters              json.RawMessage `json:"HttpParameters,omitempty"`
	RedshiftDataParameters      json.RawMessage `json:"RedshiftDataParameters,omitempty"`
	SageMakerPipelineParameters json.RawMessage `json:"SageMakerPipelineParameters,omitempty"`
	AppSyncParameters           json.RawMessage `json:"AppSyncParameters,omitempty"`
}

type wireInputTransformer struct {
	InputPathsMap map[string]string `json:"InputPathsMap,omitempty"`
	InputTemplate string            `json:"InputTemplate"`
}

type wireSqsParameters struct {
	MessageGroupId string `json:"MessageGroupId,omitempty"`
}

type wireDeadLetterConfig struct {
	Arn string `json:"Arn,omitempty"`
}

type wireRetryPolicy struct {
	MaximumRetryAttempts     *int `json:"MaximumRetryAttempts,omitempty"`
	MaximumEventAgeInSeconds *int `json:"MaximumEventAgeInSeconds,omitempty"`
}

// unmodelled names the first target parameter the sandbox does not model.
func (t wireTarget) unmodelled() string {
	for _, p := range []struct {
		name string
		raw  json.RawMessage
	}{
		{"KinesisParameters", t.KinesisParameters}, {"RunCommandParameters", t.RunCommandParameters},
		{"EcsParameters", t.EcsParameters}, {"BatchParameters", t.BatchParameters},
		{"HttpParameters", t.HttpParameters}, {"RedshiftDataParameters", t.RedshiftDataParameters},
		{"SageMakerPipelineParameters", t.SageMakerPipelineParameters}, {"AppSyncParameters", t.AppSyncParameters},
	} {
		if present(p.raw) {
			return p.name
		}
	}
	return ""
}

func (t wireTarget) toWorld() messaging.EventTarget {
	out := messaging.EventTarget{ID: t.Id, ARN: t.Arn, RoleARN: t.RoleArn, Input: t.Input, InputPath: t.InputPath}
	if tr := t.InputTransformer; tr != nil {
		out.InputTransformer = &messaging.TargetInputTransformer{InputPathsMap: tr.InputPathsMap, InputTemplate: tr.InputTemplate}
	}
	if p := t.SqsParameters; p != nil {
		out.SQSParameters = &messaging.TargetSQSParameters{MessageGroupID: p.MessageGroupId}
	}
	if d := t.DeadLetterConfig; d != nil {
		out.DeadLetter = &messaging.TargetDeadLetter{ARN: d.Arn}
	}
	if p := t.RetryPolicy; p != nil {
		out.RetryPolicy = &messaging.TargetRetryPolicy{MaximumRetryAttempts: p.MaximumRetryAttempts, MaximumEventAgeInSeconds: p.MaximumEventAgeInSeconds}
	}
	return out
}

func fromWorld(t messaging.EventTarget) wireTarget {
	out := wireTarget{Id: t.ID, Arn: t.ARN, RoleArn: t.RoleARN, Input: t.Input, InputPath: t.InputPath}
	if tr := t.InputTransformer; tr != nil {
		out.InputTransformer = &wireInputTransformer{InputPathsMap: tr.InputPathsMap, InputTemplate: tr.InputTemplate}
	}
	if p := t.SQSParameters; p != nil {
		out.SqsParameters = &wireSqsParameters{MessageGroupId: p.MessageGroupID}
	}
	if d := t.DeadLetter; d != nil {
		out.DeadLetterConfig = &wireDeadLetterConfig{Arn: d.ARN}
	}
	if p := t.RetryPolicy; p != nil {
		out.RetryPolicy = &wireRetryPolicy{MaximumRetryAttempts: p.MaximumRetryAttempts, MaximumEventAgeInSeconds: p.MaximumEventAgeInSeconds}
	}
	return out
}

type failedEntry struct {
	TargetId     string `json:"TargetId,omitempty"`
	ErrorCode    string `json:"ErrorCode,omitempty"`
	ErrorMessage string `json:"ErrorMessage,omitempty"`
}

type failedEntries struct {
	FailedEntryCount int           `json:"FailedEntryCount"`
	FailedEntries    []failedEntry `json:"FailedEntries"`
}

func toFailed(fs []messaging.TargetFailure) failedEntries {
	out := failedEntries{FailedEntryCount: len(fs), FailedEntries: []failedEntry{}}
	for _, f := range fs {
		out.FailedEntries = append(out.FailedEntries, failedEntry{f.TargetID, f.ErrorCode, f.ErrorMessage})
	}
	return out
}

func (h *Handler) putTargets(r request) (any, error) {
	var in struct {
		Rule         string
		EventBusName string
		Targets      []wireTarget
	}
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	var refused []messaging.TargetFailure
	var targets []messaging.EventTarget
	if in.Targets != nil {
		targets = make([]messaging.EventTarget, 0, len(in.Targets))
	}
	for _, t := range in.Targets {
		if p := t.unmodelled(); p != "" {
			refused = append(refused, messaging.TargetFailure{TargetID: t.Id, ErrorCode: "ValidationException",
				ErrorMessage: fmt.Sprintf("The lifeguard sandbox does not model %s; remove it from the target.", p)})
			continue
		}
		targets = append(targets, t.toWorld())
	}
	var failed []messaging.TargetFailure
	var err error
	if len(targets) > 0 || len(in.Targets) == 0 {
		failed, err = h.b.PutTargets(in.EventBusName, in.Rule, targets)
	} else {
		// Every target was refused here: the rule must still exist.
		_, err = h.b.DescribeRule(in.EventBusName, in.Rule)
	}
	if err != nil {
		return nil, err
	}
	return toFailed(append(refused, failed...)), nil
}

func (h *Handler) listTargetsByRule(r request) (any, error) {
	var in struct {
		Rule         string
		EventBusName string
		NextToken    string
		Limit        *int64
	}
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	n, err := limit(in.Limit)
	if err != nil {
		return nil, err
	}
	targets, next, err := h.b.ListTargetsByRule(in.EventBusName, in.Rule, n, in.NextToken)
	if err != nil {
		return nil, err
	}
	out := struct {
		Targets   []wireTarget `json:"Targets"`
		NextToken string       `json:"NextToken,omitempty"`
	}{Targets: []wireTarget{}, NextToken: next}
	for _, t := range targets {
		out.Targets = append(out.Targets, fromWorld(t))
	}
	return out, nil
}

func (h *Handler) removeTargets(r request) (any, error) {
	var in struct {
		Rule         string
		EventBusName string
		Ids          []string
		Force        bool
	}
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	failed, err := h.b.RemoveTargets(in.EventBusName, in.Rule, in.Ids, in.Force)
	if err != nil {
		return nil, err
	}
	return toFailed(failed), nil
}

// Events ----------------------------------------------------------------------

func (h *Handler) putEvents(r request) (any, error) {
	var in struct {
		Entries []struct {
			Time         json.RawMessage
			Source       string
			Resources    []string
			DetailType   string
			Detail       string
			EventBusName string
			TraceHeader  string
		}
		EndpointId string
	}
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	if in.EndpointId != "" {
		return nil, notModelled("EndpointId (global endpoints)")
	}
	var entries []messaging.PutEventsEntry
	if in.Entries != nil {
		entries = make([]messaging.PutEventsEntry, 0, len(in.Entries))
	}
	for _, e := range in.Entries {
		t, err := parseTime(e.Time)
		if err != nil {
			return nil, err
		}
		entries = append(entries, messaging.PutEventsEntry{
			Source: e.Source, DetailType: e.DetailType, Detail: e.Detail, Resources: e.Resources,
			Time: t, EventBusName: e.EventBusName, TraceHeader: e.TraceHeader,
		})
	}
	results, err := h.b.PutEvents(entries)
	if err != nil {
		return nil, err
	}
	type entryOut struct {
		EventId      string `json:"EventId,omitempty"`
		ErrorCode    string `json:"ErrorCode,omitempty"`
		ErrorMessage string `json:"ErrorMessage,omitempty"`
	}
	out := struct {
		FailedEntryCount int        `json:"FailedEntryCount"`
		Entries          []entryOut `json:"Entries"`
	}{Entries: []entryOut{}}
	for _, res := range results {
		if res.ErrorCode != "" {
			out.FailedEntryCount++
		}
		out.Entries = append(out.Entries, entryOut{res.EventID, res.ErrorCode, res.ErrorMessage})
	}
	return out, nil
}

func (h *Handler) testEventPattern(r request) (any, error) {
	var in struct {
		EventPattern string
		Event        string
	}
	if err := awsproto.DecodeJSON(r.Body, &in); err != nil {
		return nil, err
	}
	ok, err := h.b.TestEventPattern(in.EventPattern, in.Event)
	if err != nil {
		return nil, err
	}
	return struct {
		Result bool `json:"Result"`
	}{ok}, nil
}
