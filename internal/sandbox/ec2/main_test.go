package ec2_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/ec2"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitBound bounds every wait for the world to reach a state.
const waitBound = 10 * time.Second

// env is a world served by the EC2 handler, and a real SDK client for it.
type env struct {
	w   *world.World
	srv *httptest.Server
	c   *awsec2.Client
}

// newEnv starts a world without instance processes behind a test server.
func newEnv(t testing.TB) *env { return newEnvWithHost(t, nil) }

func newEnvWithHost(t testing.TB, host world.Host) *env {
	t.Helper()
	w := world.New(world.Config{}, nil, host, nil)
	srv := httptest.NewServer(ec2.New(w))
	t.Cleanup(func() {
		srv.Close()
		w.Close()
	})
	c := awsec2.New(awsec2.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDSANDBOX", "sandbox-secret", ""),
		BaseEndpoint: aws.String(srv.URL),
		HTTPClient:   srv.Client(),
	})
	return &env{w: w, srv: srv, c: c}
}

// skipValidation drops the SDK's client-side check of required members, so
// that a request can reach the server without them.
func skipValidation(o *awsec2.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		_, err := s.Initialize.Remove("OperationInputValidation")
		return err
	})
}

// template creates a launch template through the SDK.
func (e *env) template(t testing.TB, name string, data *types.RequestLaunchTemplateData) *types.LaunchTemplate {
	t.Helper()
	out, err := e.c.CreateLaunchTemplate(t.Context(), &awsec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(name), LaunchTemplateData: data})
	if err != nil {
		t.Fatalf("create launch template %s: %v", name, err)
	}
	return out.LaunchTemplate
}

// group creates an Auto Scaling group of n instances from a template (in
// us-east-1a unless subnet is set) and waits until they all run.
func (e *env) group(t testing.TB, name, template string, n int, subnet string) []string {
	t.Helper()
	in := world.CreateGroupInput{
		Name:           name,
		LaunchTemplate: &world.LaunchTemplateRef{Name: template},
		MinSize:        &n, MaxSize: &n, Desired: &n,
	}
	if subnet != "" {
		in.VPCZoneIdentifier = subnet
	} else {
		in.AvailabilityZones = []string{"us-east-1a"}
	}
	var ids []string
	e.waitFor(t, "group "+name+" running", func() {
		if err := e.w.CreateAutoScalingGroup(in); err != nil {
			t.Fatalf("create group %s: %v", name, err)
		}
	}, func() bool {
		ins, err := e.w.EC2().Instances(nil, []world.InstanceFilter{
			{Name: "tag:aws:autoscaling:groupName", Values: []string{name}},
			{Name: "instance-state-name", Values: []string{world.EC2Running}},
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = ids[:0]
		for _, in := range ins {
			ids = append(ids, in.ID)
		}
		return len(ids) == n
	})
	return ids
}

// waitFor runs act, then consumes the world's events until done holds.
func (e *env) waitFor(t testing.TB, what string, act func(), done func() bool) {
	t.Helper()
	var seq int64
	if evs := e.w.Events(); len(evs) > 0 {
		seq = evs[len(evs)-1].Seq
	}
	act()
	ctx, cancel := context.WithTimeout(t.Context(), waitBound)
	defer cancel()
	for !done() {
		evs, err := e.w.EventsAfter(ctx, seq)
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		seq = evs[len(evs)-1].Seq
	}
}

// apiError returns an API error's code and message ("" when err is nil).
func apiError(t *testing.T, err error) (code, msg string) {
	t.Helper()
	if err == nil {
		return "", ""
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("not an API error: %v", err)
	}
	return ae.ErrorCode(), ae.ErrorMessage()
}
