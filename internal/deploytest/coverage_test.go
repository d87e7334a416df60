package deploytest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdkimds "github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/awscloud"
	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/iampolicy"
	"github.com/lifeguardhq/lifeguard/internal/jobs"
	"github.com/lifeguardhq/lifeguard/internal/lb"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle/lifecycletest"
	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// recorder is an http.RoundTripper in front of the sandbox that records
// the IAM action of every signed request it carries: the service from the
// SigV4 credential scope (the name IAM authorizes under:
// elasticloadbalancing for both load balancer APIs), the operation from
// the query Action or the JSON protocols' X-Amz-Target. Instance metadata
// requests are not signed and need no permission.
type recorder struct {
	next    http.RoundTripper
	mu      sync.Mutex
	actions map[string]int
}

var scopeService = func(auth string) string {
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	parts := strings.Split(strings.SplitN(cred, ",", 2)[0], "/")
	if len(parts) < 5 {
		return ""
	}
	return parts[3]
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	service := scopeService(req.Header.Get("Authorization"))
	op := ""
	if target := req.Header.Get("X-Amz-Target"); target != "" {
		_, op, _ = strings.Cut(target, ".")
	} else if service != "" && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		if form, err := url.ParseQuery(string(body)); err == nil {
			op = form.Get("Action")
		}
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	if service != "" {
		// Batch forms are authorized by the single operation's action.
		action := service + ":" + strings.TrimSuffix(op, "Batch")
		r.mu.Lock()
		r.actions[action]++
		r.mu.Unlock()
	}
	return r.next.RoundTrip(req)
}

func (r *recorder) recorded() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for a := range r.actions {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

type imdsEndpoint string

func (e imdsEndpoint) GetEC2IMDSEndpoint() (string, bool, error) { return string(e), true, nil }

func (imdsEndpoint) GetEC2IMDSClientEnableState() (sdkimds.ClientEnableState, bool, error) {
	return sdkimds.ClientEnabled, true, nil
}

// TestAgentCallsAreExactlyItsPolicy runs the kits' agent configuration (the
// user data's: a shared lifecycle queue, a lease with the tag mirror, a
// terminate step) through a launch, an hour in service and a termination,
// with the real adapters and SDK clients against the in-memory sandbox,
// records every AWS call on the way to the sandbox, and checks that each is
// allowed by what `lifeguard iam-policy` prints for that configuration and
// that the policy grants nothing the run did not need.
func TestAgentCallsAreExactlyItsPolicy(t *testing.T) {
	kitEnv(t)
	yaml := userDataConfig(t)
	runAgentScenario(t, func(ctx context.Context, setup aws.Config) scenario {
		q, err := sqs.NewFromConfig(setup).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("web-lifecycle")})
		if err != nil {
			t.Fatal(err)
		}
		attrs, err := sqs.NewFromConfig(setup).GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("LIFEGUARD_QUEUE_URL", aws.ToString(q.QueueUrl))
		return scenario{targetARN: attrs.Attributes["QueueArn"], yaml: yaml}
	})
}

// TestAgentPerInstanceQueueCallsAreExactlyItsPolicy is the same with the
// hooks notifying an SNS topic (sqs.topic_arn: the agent's own queue,
// subscribed, deleted after the termination) and a lease without the tag
// mirror.
func TestAgentPerInstanceQueueCallsAreExactlyItsPolicy(t *testing.T) {
	runAgentScenario(t, func(ctx context.Context, setup aws.Config) scenario {
		topic, err := sns.NewFromConfig(setup).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("web-lifecycle")})
		if err != nil {
			t.Fatal(err)
		}
		return scenario{targetARN: aws.ToString(topic.TopicArn), yaml: []byte(`source: sqs
sqs: {topic_arn: "` + aws.ToString(topic.TopicArn) + `", queue_prefix: web-}
launch: {hook: launch}
terminate:
  hook: terminate
  steps: [{name: drain, command: [drain], timeout: 5m}]
leader: {mode: lease, table: leases}
`)}
	})
}

// scenario is what a coverage test sets up around the agent.
type scenario struct {
	// targetARN is what the hooks notify ("" for none).
	targetARN string
	// yaml is the agent's configuration (its hooks, its steps).
	yaml []byte
	// groupTags are the group's tags, propagated to the instance at launch.
	groupTags []astypes.Tag
	// appPort, when set, is the port the instance's app answers health
	// checks on (200 to every request), served on the in-memory network.
	appPort int
}

// recordedSandbox starts an in-memory sandbox and returns it, the
// configuration that sets the scene (not recorded) and the recorder and
// configuration of the client under test, whose every call is recorded.
func recordedSandbox(t *testing.T) (srv *sandbox.Server, setup aws.Config, rec *recorder, recorded aws.Config) {
	t.Helper()
	srv, err := sandbox.New(sandbox.Config{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	endpoint, stop, err := srv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("sandbox: %v", err)
		}
	})
	setup = aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("sandbox", "sandbox", ""),
		HTTPClient:  &http.Client{Transport: srv.Transport()},
	}
	rec = &recorder{next: srv.Transport(), actions: map[string]int{}}
	recorded = setup.Copy()
	recorded.HTTPClient = &http.Client{Transport: rec}
	return srv, setup, rec, recorded
}

// runAgentScenario runs one instance's agent through a launch, an hour in
// service and a termination; target creates what the hooks notify and
// returns the scenario. The calls the agent made must be exactly its
// policy's.
func runAgentScenario(t *testing.T, target func(ctx context.Context, setup aws.Config) scenario) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		srv, setup, rec, agentCfg := recordedSandbox(t)

		// What the hooks notify, the table, the group.
		sc := target(ctx, setup)
		targetARN := sc.targetARN
		cfg, err := config.ParseAgent(sc.yaml)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Paths.JournalDir = t.TempDir()
		cfg.Launch.Probes = nil // the app of the user data is not running here
		if cfg.Leader.Table != "" {
			if err := awscloud.NewLeaseTable(setup, cfg.Leader.Table).Create(ctx); err != nil {
				t.Fatal(err)
			}
		}
		asg := autoscaling.NewFromConfig(setup)
		if _, err := asg.CreateLaunchConfiguration(ctx, &autoscaling.CreateLaunchConfigurationInput{
			LaunchConfigurationName: aws.String("lc"), ImageId: aws.String("ami-0abcdef1234567890"), InstanceType: aws.String("t3.micro"),
		}); err != nil {
			t.Fatal(err)
		}
		hook := func(name, transition string) astypes.LifecycleHookSpecification {
			h := astypes.LifecycleHookSpecification{
				LifecycleHookName: aws.String(name), LifecycleTransition: aws.String(transition),
				HeartbeatTimeout: aws.Int32(600), DefaultResult: aws.String("ABANDON"),
			}
			if targetARN != "" {
				h.NotificationTargetARN, h.RoleARN = aws.String(targetARN), aws.String("arn:aws:iam::123456789012:role/asg-notify")
			}
			return h
		}
		if _, err := asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
			AutoScalingGroupName: aws.String("web"), LaunchConfigurationName: aws.String("lc"),
			MinSize: aws.Int32(0), MaxSize: aws.Int32(1), DesiredCapacity: aws.Int32(1), AvailabilityZones: []string{"us-east-1a"},
			Tags: sc.groupTags,
			LifecycleHookSpecificationList: []astypes.LifecycleHookSpecification{
				hook(cfg.Launch.Hook, "autoscaling:EC2_INSTANCE_LAUNCHING"), hook(cfg.Terminate.Hook, "autoscaling:EC2_INSTANCE_TERMINATING"),
			},
		}); err != nil {
			t.Fatal(err)
		}
		w := srv.World()
		var seq int64
		next := func(what string, match func(world.Event) bool) world.Event {
			t.Helper()
			wctx, cancel := context.WithTimeout(ctx, 24*time.Hour)
			defer cancel()
			for {
				evs, err := w.EventsAfter(wctx, seq)
				if err != nil {
					t.Fatalf("no %s within a simulated day: %v", what, err)
				}
				for _, ev := range evs {
					seq = ev.Seq
					if match(ev) {
						return ev
					}
				}
			}
		}
		id := next("Pending:Wait", func(ev world.Event) bool {
			return ev.Kind == world.EvInstanceState && ev.State == world.StatePendingWait
		}).Instance
		mdCfg := aws.Config{Region: "us-east-1", HTTPClient: &http.Client{Transport: rec}}
		for _, in := range srv.Instances() {
			if in.ID != id {
				continue
			}
			mdCfg.ConfigSources = []any{imdsEndpoint(in.IMDS)}
			if sc.appPort != 0 {
				ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") })
				if err := srv.ServeInMemory(in.PrivateIP+":"+strconv.Itoa(sc.appPort), ok); err != nil {
					t.Fatal(err)
				}
			}
		}

		// The agent, wired as `lifeguard agent` wires it.
		as := awscloud.NewAutoScaling(agentCfg)
		steps := map[string]lifecycletest.Behavior{}
		for _, s := range cfg.Terminate.Steps {
			steps[s.Name] = lifecycletest.Behavior{Duration: time.Minute}
		}
		deps := agent.Deps{
			Metadata:  awscloud.NewMetadata(mdCfg),
			Group:     awscloud.NewGroup(as),
			Completer: as,
			Steps:     &lifecycletest.StepRunner{T: t, Steps: steps},
		}
		if cfg.Leader.On() {
			leases := awscloud.NewLeaseTable(agentCfg, cfg.Leader.Table)
			deps.Leader = agent.LeaderDeps{
				Store: leases, Roster: leases,
				Ledger: func(group string) jobs.Ledger { return awscloud.NewLedger(agentCfg, cfg.Leader.Table, group, 0) },
			}
			if cfg.Leader.Tag.Enabled {
				deps.Leader.Tags = awscloud.NewInstanceTags(agentCfg)
			}
			if cfg.Leader.Mode == config.LeaderByTag {
				deps.Leader.TagDescriber = awscloud.NewInstanceTags(agentCfg)
			}
		}
		if cfg.Traffic.On() {
			deps.Traffic = agent.TrafficDeps{
				Registrars:  map[lb.Kind]lb.Registrar{lb.KindTargetGroup: awscloud.NewELBv2(agentCfg), lb.KindClassic: awscloud.NewELB(agentCfg)},
				Attachments: as,
				Tags:        awscloud.NewInstanceTags(agentCfg),
			}
		}
		if cfg.Source == config.SourceSQS {
			deps.Inbox = awscloud.NewInbox(agentCfg, awscloud.InboxOptions{
				QueueURL: cfg.SQS.QueueURL, TopicARN: cfg.SQS.TopicARN, QueuePrefix: cfg.SQS.QueuePrefix,
				WaitTime: time.Duration(cfg.SQS.WaitTime), VisibilityTimeout: time.Duration(cfg.SQS.VisibilityTimeout),
			})
		}
		a, err := agent.New(cfg, deps, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- a.Run(context.WithoutCancel(ctx)) }()
		next("InService", func(ev world.Event) bool {
			return ev.Kind == world.EvInstanceState && ev.Instance == id && ev.State == world.StateInService
		})
		time.Sleep(time.Hour) // leading, renewing, heartbeating nothing
		if _, err := asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{
			AutoScalingGroupName: aws.String("web"), DesiredCapacity: aws.Int32(0),
		}); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("agent Run = %v, want nil once the termination is completed", err)
		}

		policy, err := iampolicy.Agent(cfg, iampolicy.Scope{})
		if err != nil {
			t.Fatal(err)
		}
		checkExactly(t, rec.recorded(), policy)
	})
}

// checkExactly checks that every recorded action is granted and every
// granted action was recorded.
func checkExactly(t *testing.T, recorded []string, p iampolicy.Policy) {
	t.Helper()
	t.Logf("recorded: %q", recorded)
	for _, a := range recorded {
		if !p.Allows(a) {
			t.Errorf("the run called %s, which its policy does not allow", a)
		}
	}
	for _, a := range p.Actions() {
		if !slices.ContainsFunc(recorded, func(r string) bool { return strings.EqualFold(r, a) }) {
			t.Errorf("the policy grants %s, which the run never called", a)
		}
	}
}
