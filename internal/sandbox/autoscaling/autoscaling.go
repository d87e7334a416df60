// Package autoscaling serves the Auto Scaling API (awsquery, version
// 2011-01-01) over the sandbox's world. It is a stateless translator: it
// decodes form parameters, calls *world.World, and encodes the results as
// the XML the AWS SDKs and CLIs expect. Operations it does not serve answer
// InvalidAction; parameters it does not model answer ValidationError.
//
// It is written from the wire documentation and captured bodies, never from
// the SDK's generated code, so the sandbox and the client under test cannot
// share a misunderstanding.
package autoscaling

import (
	"encoding/base64"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// version is the API version this handler serves.
const version = "2011-01-01"

// maxCapacity bounds the instances one request may ask a group for. The
// world launches synchronously under its lock, so an unbounded
// DesiredCapacity (the wire allows 2^31-1) would wedge the sandbox.
const maxCapacity = 10000

// Handler is the Auto Scaling endpoint. It is safe for concurrent use; all
// state lives in the world.
type Handler struct {
	w   *world.World
	svc *awsproto.QueryService
}

// request is one call's parameters (Sent tells whether anything under a
// prefix was sent).
type request = *awsproto.QueryRequest

// New returns a handler over w.
func New(w *world.World) *Handler {
	h := &Handler{w: w}
	h.svc = &awsproto.QueryService{
		Version:   version,
		Namespace: awsproto.NSAutoScaling,
		ParamCode: "ValidationError",
		Operations: map[string]awsproto.QueryOperation{
			"CreateLaunchConfiguration":            h.createLaunchConfiguration,
			"DescribeLaunchConfigurations":         h.describeLaunchConfigurations,
			"DeleteLaunchConfiguration":            h.deleteLaunchConfiguration,
			"CreateAutoScalingGroup":               h.createAutoScalingGroup,
			"UpdateAutoScalingGroup":               h.updateAutoScalingGroup,
			"DeleteAutoScalingGroup":               h.deleteAutoScalingGroup,
			"DescribeAutoScalingGroups":            h.describeAutoScalingGroups,
			"DescribeAutoScalingInstances":         h.describeAutoScalingInstances,
			"SetDesiredCapacity":                   h.setDesiredCapacity,
			"TerminateInstanceInAutoScalingGroup":  h.terminateInstanceInAutoScalingGroup,
			"SetInstanceHealth":                    h.setInstanceHealth,
			"SetInstanceProtection":                h.setInstanceProtection,
			"EnterStandby":                         h.enterStandby,
			"ExitStandby":                          h.exitStandby,
			"PutLifecycleHook":                     h.putLifecycleHook,
			"DescribeLifecycleHooks":               h.describeLifecycleHooks,
			"DeleteLifecycleHook":                  h.deleteLifecycleHook,
			"CompleteLifecycleAction":              h.completeLifecycleAction,
			"RecordLifecycleActionHeartbeat":       h.recordLifecycleActionHeartbeat,
			"DescribeScalingActivities":            h.describeScalingActivities,
			"CreateOrUpdateTags":                   h.createOrUpdateTags,
			"DeleteTags":                           h.deleteTags,
			"DescribeTags":                         h.describeTags,
			"DescribeLifecycleHookTypes":           h.describeLifecycleHookTypes,
			"DescribeAutoScalingNotificationTypes": h.describeAutoScalingNotificationTypes,
			"DescribeAccountLimits":                h.describeAccountLimits,
			"PutNotificationConfiguration":         h.putNotificationConfiguration,
			"DescribeNotificationConfigurations":   h.describeNotificationConfigurations,
			"DeleteNotificationConfiguration":      h.deleteNotificationConfiguration,
			"AttachLoadBalancerTargetGroups":       h.attachLoadBalancerTargetGroups,
			"DetachLoadBalancerTargetGroups":       h.detachLoadBalancerTargetGroups,
			"DescribeLoadBalancerTargetGroups":     h.describeLoadBalancerTargetGroups,
			"AttachLoadBalancers":                  h.attachLoadBalancers,
			"DetachLoadBalancers":                  h.detachLoadBalancers,
			"DescribeLoadBalancers":                h.describeLoadBalancers,
			"AttachTrafficSources":                 h.attachTrafficSources,
			"DetachTrafficSources":                 h.detachTrafficSources,
			"DescribeTrafficSources":               h.describeTrafficSources,
		},
	}
	return h
}

// ServeHTTP serves one awsquery request. The caller has matched
// Version=2011-01-01.
func (h *Handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) { h.svc.ServeHTTP(rw, r) }

// WriteError writes e as Auto Scaling's awsquery error (for faults the
// router injects).
func (h *Handler) WriteError(rw http.ResponseWriter, requestID string, e *awsproto.Error) {
	h.svc.WriteError(rw, requestID, e)
}

// Parameters -----------------------------------------------------------------

// notNull is Coral's error for a missing required member.
func notNull(field string) error {
	return awsproto.Validation("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", field)
}

// notModelled rejects a parameter the sandbox does not simulate.
func notModelled(param string) error {
	return awsproto.Validation("The lifeguard sandbox does not model %s; remove it from the request.", param)
}

// optInt reads an optional top-level Integer parameter, which is an int32
// on the wire.
func optInt(p awsproto.Params, name string) (*int, error) {
	n, ok, err := p.Int(name)
	if err != nil || !ok {
		return nil, err
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		return nil, &awsproto.ParamError{Name: name, Value: p.String(name), Want: "a 32-bit integer"}
	}
	return &n, nil
}

// optBool reads an optional Boolean parameter.
func optBool(p awsproto.Params, name string) (*bool, error) {
	b, ok, err := p.Bool(name)
	if err != nil || !ok {
		return nil, err
	}
	return &b, nil
}

// checkCapacity keeps one request's instance count within maxCapacity.
func checkCapacity(field string, n *int) error {
	if n != nil && *n > maxCapacity {
		return awsproto.Validation("The lifeguard sandbox does not model groups of more than %d instances: %s %d.", maxCapacity, field, *n)
	}
	return nil
}

// maxRecords reads MaxRecords: def when absent, else within 1..limit.
func maxRecords(p awsproto.Params, def, limit int) (int, error) {
	n, err := optInt(p, "MaxRecords")
	switch {
	case err != nil:
		return 0, err
	case n == nil:
		return def, nil
	case *n < 1:
		return 0, awsproto.Validation("1 validation error detected: Value '%d' at 'maxRecords' failed to satisfy constraint: Member must have value greater than or equal to 1", *n)
	case *n > limit:
		return 0, awsproto.Validation("1 validation error detected: Value '%d' at 'maxRecords' failed to satisfy constraint: Member must have value less than or equal to %d", *n, limit)
	}
	return *n, nil
}

// Pagination -----------------------------------------------------------------

// Tokens are opaque to clients: the kind of listing and the key of the
// last item returned, base64url-encoded.

func encodeToken(kind, last string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + "\x00" + last))
}

func decodeToken(kind, token string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	k, last, ok := strings.Cut(string(b), "\x00")
	if err != nil || !ok || k != kind {
		return "", invalidToken(token)
	}
	return last, nil
}

func invalidToken(token string) error {
	return awsproto.Validation("The token '%s' is invalid.", token)
}

// paginate returns the page of items after token and the token for the
// next page ("" on the last). With ordered, items are sorted by key and the
// page starts after the token's key even if that item is gone; otherwise
// the page starts after the item whose key the token names, which must
// still be listed.
func paginate[T any](items []T, key func(T) string, ordered bool, kind, token string, limit int) ([]T, string, error) {
	start := 0
	if token != "" {
		last, err := decodeToken(kind, token)
		if err != nil {
			return nil, "", err
		}
		if ordered {
			start = sort.Search(len(items), func(i int) bool { return key(items[i]) > last })
		} else {
			i := slices.IndexFunc(items, func(x T) bool { return key(x) == last })
			if i < 0 {
				return nil, "", invalidToken(token)
			}
			start = i + 1
		}
	}
	end := min(start+limit, len(items))
	next := ""
	if end < len(items) {
		next = encodeToken(kind, key(items[end-1]))
	}
	return items[start:end], next, nil
}

// Cheap extras -------------------------------------------------------------

type lifecycleHookTypesResult struct {
	LifecycleHookTypes awsproto.Members[string]
}

func (h *Handler) describeLifecycleHookTypes(request) (any, error) {
	return lifecycleHookTypesResult{LifecycleHookTypes: awsproto.Members[string]{world.TransitionLaunching, world.TransitionTerminating}}, nil
}

type notificationTypesResult struct {
	AutoScalingNotificationTypes awsproto.Members[string]
}

func (h *Handler) describeAutoScalingNotificationTypes(request) (any, error) {
	return notificationTypesResult{AutoScalingNotificationTypes: slices.Clone(world.NotificationTypes)}, nil
}

// Auto Scaling's default quotas.
const (
	maxGroups               = 500
	maxLaunchConfigurations = 200
)

type accountLimitsResult struct {
	MaxNumberOfAutoScalingGroups    int
	MaxNumberOfLaunchConfigurations int
	NumberOfAutoScalingGroups       int
	NumberOfLaunchConfigurations    int
}

func (h *Handler) describeAccountLimits(request) (any, error) {
	groups, err := h.w.Groups(nil, nil)
	if err != nil {
		return nil, err
	}
	return accountLimitsResult{
		MaxNumberOfAutoScalingGroups:    maxGroups,
		MaxNumberOfLaunchConfigurations: maxLaunchConfigurations,
		NumberOfAutoScalingGroups:       len(groups),
		NumberOfLaunchConfigurations:    len(h.w.LaunchConfigurations(nil)),
	}, nil
}
