package autoscaling_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	asg "github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/sandboxtest"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitBound bounds every wait for the world to reach a state. The world
// reacts within microseconds; the bound only turns a bug into a failure
// instead of a hang.
const waitBound = 10 * time.Second

// env is a sandbox whose Auto Scaling endpoint the real SDK drives.
type env struct {
	w      *world.World
	clock  *simclock.Sim
	client *asg.Client
	url    string
	http   *http.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	sb := sandboxtest.Start(t, sandbox.Config{RelaxLimits: true, InMemory: true})
	e := &env{w: sb.World, clock: sb.Clock, url: sb.Endpoint, http: sb.HTTP}
	e.client = asg.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(sb.Endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:       sb.HTTP,
		RetryMaxAttempts: 1,
	})
	return e
}

const imageID = "ami-0abcdef1234567890"

// createLC creates the launch configuration "lc".
func (e *env) createLC(t *testing.T) {
	t.Helper()
	_, err := e.client.CreateLaunchConfiguration(t.Context(), &asg.CreateLaunchConfigurationInput{
		LaunchConfigurationName: aws.String("lc"), ImageId: aws.String(imageID), InstanceType: aws.String("t3.micro"),
	})
	if err != nil {
		t.Fatalf("CreateLaunchConfiguration: %v", err)
	}
}

// groupSpec describes a test group; zero fields take the defaults below.
type groupSpec struct {
	name       string // "g"
	min, max   int32  // 0, 4
	desired    int32
	hooks      []types.LifecycleHookSpecification
	tags       []types.Tag
	zones      []string // us-east-1a
	vpcZone    string
	launchTmpl *types.LaunchTemplateSpecification
}

// createGroup creates a group, from "lc" (created on first use) unless a
// launch template is given, and returns its name.
func (e *env) createGroup(t *testing.T, s groupSpec) string {
	t.Helper()
	if s.name == "" {
		s.name = "g"
	}
	if s.max == 0 {
		s.max = 4
	}
	in := &asg.CreateAutoScalingGroupInput{
		AutoScalingGroupName:           aws.String(s.name),
		MinSize:                        aws.Int32(s.min),
		MaxSize:                        aws.Int32(s.max),
		DesiredCapacity:                aws.Int32(s.desired),
		LifecycleHookSpecificationList: s.hooks,
		Tags:                           s.tags,
		LaunchTemplate:                 s.launchTmpl,
	}
	switch {
	case s.vpcZone != "":
		in.VPCZoneIdentifier = aws.String(s.vpcZone)
	case s.zones != nil:
		in.AvailabilityZones = s.zones
	default:
		in.AvailabilityZones = []string{"us-east-1a"}
	}
	if s.launchTmpl == nil {
		if len(e.w.LaunchConfigurations([]string{"lc"})) == 0 {
			e.createLC(t)
		}
		in.LaunchConfigurationName = aws.String("lc")
	}
	if _, err := e.client.CreateAutoScalingGroup(t.Context(), in); err != nil {
		t.Fatalf("CreateAutoScalingGroup %s: %v", s.name, err)
	}
	return s.name
}

// members returns a group's instances by id.
func (e *env) members(t *testing.T, group string) []world.Instance {
	t.Helper()
	views, err := e.w.Groups([]string{group}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(views) == 0 {
		return nil
	}
	ms := slices.Clone(views[0].Members)
	slices.SortFunc(ms, func(a, b world.Instance) int { return strings.Compare(a.ID, b.ID) })
	return ms
}

// inState returns the ids of a group's instances in a lifecycle state.
func (e *env) inState(t *testing.T, group, state string) []string {
	t.Helper()
	var ids []string
	for _, in := range e.members(t, group) {
		if in.State == state {
			ids = append(ids, in.ID)
		}
	}
	return ids
}

// waitFor blocks until cond holds, re-checking it after every world event.
func (e *env) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	var seq int64
	for !cond() {
		evs, err := e.w.EventsAfter(ctx, seq)
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		seq = evs[len(evs)-1].Seq
	}
}

// waitInState waits until exactly n of a group's instances are in state
// and returns their ids.
func (e *env) waitInState(t *testing.T, group, state string, n int) []string {
	t.Helper()
	var ids []string
	e.waitFor(t, "instances in "+state, func() bool {
		ids = e.inState(t, group, state)
		return len(ids) == n
	})
	return ids
}

// waitEvent waits for a logged event that matches and returns it.
func (e *env) waitEvent(t *testing.T, what string, match func(world.Event) bool) world.Event {
	t.Helper()
	var found world.Event
	e.waitFor(t, what, func() bool {
		for _, ev := range e.w.Events() {
			if match(ev) {
				found = ev
				return true
			}
		}
		return false
	})
	return found
}

// actionToken returns the token of the lifecycle action started for an
// instance by a hook.
func (e *env) actionToken(t *testing.T, instance, hook string) string {
	t.Helper()
	return e.waitEvent(t, "action of "+hook+" on "+instance, func(ev world.Event) bool {
		return ev.Kind == world.EvActionStarted && ev.Instance == instance && ev.Hook == hook
	}).Token
}

// gone waits until an instance has left its group.
func (e *env) waitGone(t *testing.T, group, id string) {
	t.Helper()
	e.waitFor(t, id+" to leave "+group, func() bool {
		return !slices.ContainsFunc(e.members(t, group), func(in world.Instance) bool { return in.ID == id })
	})
}

// hook is a lifecycle hook specification.
func hook(name, transition string, heartbeat int32, defaultResult string) types.LifecycleHookSpecification {
	return types.LifecycleHookSpecification{
		LifecycleHookName:   aws.String(name),
		LifecycleTransition: aws.String(transition),
		HeartbeatTimeout:    aws.Int32(heartbeat),
		DefaultResult:       aws.String(defaultResult),
	}
}

// apiError returns an SDK error's AWS code and message.
func apiError(t *testing.T, err error) (code, message string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an AWS API error", err)
	}
	return ae.ErrorCode(), ae.ErrorMessage()
}

// post sends a raw awsquery body and returns the status and body.
func (e *env) post(t *testing.T, form url.Values) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// instanceState reads one instance's state through DescribeAutoScalingInstances.
func (e *env) instanceState(t *testing.T, id string) types.AutoScalingInstanceDetails {
	t.Helper()
	out, err := e.client.DescribeAutoScalingInstances(t.Context(), &asg.DescribeAutoScalingInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatalf("DescribeAutoScalingInstances: %v", err)
	}
	if len(out.AutoScalingInstances) != 1 {
		t.Fatalf("DescribeAutoScalingInstances(%s) returned %d instances, want 1", id, len(out.AutoScalingInstances))
	}
	return out.AutoScalingInstances[0]
}

// field is one got/want pair of a struct comparison; pointers compare by
// what they point to.
type field struct {
	name      string
	got, want any
}

// checkFields reports every field whose got differs from its want.
func checkFields(t *testing.T, what string, fs []field) {
	t.Helper()
	for _, f := range fs {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("%s: %s = %s, want %s", what, f.name, show(f.got), show(f.want))
		}
	}
}

func show(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return "nil"
		}
		return "&" + show(rv.Elem().Interface())
	}
	return fmt.Sprintf("%#v", v)
}
