package demo

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/balancers"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/functions"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// The story's names.
const (
	webGroup      = "web"
	tagGroup      = "seed"
	leaseTable    = "leases"
	launchHook    = "wait-until-healthy"
	terminateHook = "drain-before-terminate"
	webSize       = 3
	tagSize       = 2
	leaderTagKey  = "app:isLeader"
	controllerFn  = "lifeguard-controller"
)

// webUserData starts the web app (the binary's hidden `demo app`) and the
// agent, each restarted by the shell whenever it exits, as systemd's
// Restart=always would; agent.pid holds the running agent's pid.
func webUserData(bin, tgARN string, port int) string {
	return `#!/bin/sh
cat > agent.yaml <<YAML
source: imds
imds:
  poll_interval: 1s
launch:
  hook: ` + launchHook + `
  probes:
    - name: app-ready
      command:
        argv: ["test", "-f", "$PWD/app.ready"]
        timeout: 2s
  consecutive_passes: 1
  interval: 500ms
  timeout: 2m
terminate:
  hook: ` + terminateHook + `
  steps:
    - name: ship-logs
      command: ["sh", "-c", "echo shipping logs; sleep 2; echo shipped"]
      timeout: 1m
leader:
  mode: lease
  table: ` + leaseTable + `
  lease_duration: 3s
  renew_interval: 500ms
  poll_interval: 500ms
  stop_grace: 300ms
  marker_file: $PWD/is-leader
  jobs:
    - name: report
      schedule: "@every 4s"
      command: ["sh", "-c", "echo nightly report, fencing token \$LIFEGUARD_FENCING_TOKEN"]
traffic:
  mode: self
  target_groups:
    - arn: ` + tgARN + `
      port: ` + fmt.Sprint(port) + `
  poll_interval: 1s
  wait_healthy_timeout: 1m
  wait_drained_timeout: 1m
paths:
  journal_dir: $PWD/journal
status:
  listen: 127.0.0.1:0
YAML
(while :; do
  ` + bin + ` demo app --port ` + fmt.Sprint(port) + `
  echo "user data: the app exited ($?); starting it again in 1s"
  sleep 1
done) > app.log 2>&1 &
while :; do
  ` + bin + ` agent --config agent.yaml &
  echo $! > agent.pid
  wait $!
  code=$?
  if [ $code -eq 78 ]; then echo "user data: the agent's configuration is invalid (exit 78)"; exit 78; fi
  echo "user data: the agent exited ($code); starting it again in 1s"
  sleep 1
done
`
}

// tagUserData runs the agent in tag mode: it reads the instance's own
// app:isLeader tag from instance metadata, as the seed's cron lines do.
func tagUserData(bin string) string {
	return `#!/bin/sh
cat > agent.yaml <<YAML
source: imds
imds:
  poll_interval: 1s
leader:
  mode: tag
  poll_interval: 500ms
  marker_file: $PWD/is-leader
paths:
  journal_dir: $PWD/journal
status:
  listen: 127.0.0.1:0
YAML
exec ` + bin + ` agent --config agent.yaml
`
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func intp(n int) *int { return &n }

// createWeb makes the lease table (with `lifeguard leader create-table`,
// as an operator would), the load balancer, its target group and
// listener, and the web group with its hooks, launching webSize
// instances. It returns the listener's address.
func (d *demo) createWeb() (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	d.appPort = port
	cmd := exec.Command(d.bin, "leader", "create-table", "--table", leaseTable)
	cmd.Env = append(os.Environ(), d.clientEnv()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("lifeguard leader create-table: %v\n%s", err, out)
	}
	d.printf("lease table %s created with `lifeguard leader create-table`", leaseTable)

	lbs := d.srv.Balancers()
	lb, err := lbs.CreateLoadBalancer(balancers.CreateLoadBalancerInput{Name: webGroup, Subnets: []string{"subnet-1", "subnet-2"}})
	if err != nil {
		return "", err
	}
	tg, err := lbs.CreateTargetGroup(balancers.CreateTargetGroupInput{
		Name: webGroup, Protocol: "HTTP", Port: d.appPort, VPCID: "vpc-sandbox",
		HealthCheck: balancers.HealthCheck{Path: "/", Interval: 5, Timeout: 2, HealthyThreshold: 2, UnhealthyThreshold: 2},
		Set:         map[string]bool{"HealthCheckPath": true, "HealthCheckIntervalSeconds": true, "HealthCheckTimeoutSeconds": true, "HealthyThresholdCount": true, "UnhealthyThresholdCount": true},
	})
	if err != nil {
		return "", err
	}
	if _, err := lbs.ModifyTargetGroupAttributes(tg.ARN, []balancers.Tag{{Key: "deregistration_delay.timeout_seconds", Value: "2"}}); err != nil {
		return "", err
	}
	l, err := lbs.CreateListener(lb.ARN, "HTTP", 80, "forward", tg.ARN)
	if err != nil {
		return "", err
	}
	d.tgARN = tg.ARN
	d.printf("load balancer %s: listener %s forwards to target group %s (health checks every 5s, deregistration delay 2s)", webGroup, l.Address, webGroup)

	w := d.srv.World()
	if err := w.CreateLaunchConfiguration(world.LaunchConfiguration{
		Name: webGroup, ImageID: "ami-0abcdef1234567890", InstanceType: "t3.micro", UserData: b64(webUserData(d.bin, tg.ARN, d.appPort)),
	}); err != nil {
		return "", err
	}
	if err := w.CreateAutoScalingGroup(world.CreateGroupInput{
		Name: webGroup, LaunchConfiguration: webGroup, MinSize: intp(0), MaxSize: intp(webSize + 1), Desired: intp(webSize),
		AvailabilityZones: []string{"us-east-1a", "us-east-1b"},
		Hooks: []world.Hook{
			{Name: launchHook, Transition: world.TransitionLaunching, HeartbeatTimeout: 30, DefaultResult: world.ResultAbandon},
			{Name: terminateHook, Transition: world.TransitionTerminating, HeartbeatTimeout: 4, DefaultResult: world.ResultContinue},
		},
	}); err != nil {
		return "", err
	}
	d.printf("group %s created: %d instances running the web app and `lifeguard agent` (lease leadership, a leader-only job every 4s, target group registration)", webGroup, webSize)
	d.printf("        launch hook %s (heartbeat timeout 30s), terminate hook %s (4s)", launchHook, terminateHook)
	return l.Address, nil
}

// createTag deploys the controller as a Lambda function (the lifeguard
// binary zipped as bootstrap, runtime provided.al2023) subscribed to the
// seed group's notifications, and the seed group itself: a launch
// template with instance metadata tags on, opted in with
// lifeguard:controller=enabled.
func (d *demo) createTag() error {
	code, err := zipBootstrap(d.bin)
	if err != nil {
		return err
	}
	fns := d.srv.Functions()
	fn, err := fns.Create(functions.CreateInput{
		Name: controllerFn, Runtime: "provided.al2023", Handler: "bootstrap", Timeout: intp(60),
		Role:        "arn:aws:iam::123456789012:role/lifeguard-controller",
		Environment: map[string]string{"LIFEGUARD_CONTROLLER_FLAGS": "--settle 200ms"},
		ZipFile:     code,
	})
	if err != nil {
		return err
	}
	if err := fns.SetConcurrency(controllerFn, intp(1)); err != nil {
		return err
	}
	topics := d.srv.Messaging().Topics()
	topic, err := topics.CreateTopic(messaging.CreateTopicInput{Name: "asg-events"})
	if err != nil {
		return err
	}
	if _, err := fns.AddPermission(controllerFn, functions.Statement{Sid: "sns", Action: "lambda:InvokeFunction", Principal: "sns.amazonaws.com", SourceARN: topic}); err != nil {
		return err
	}
	if _, err := topics.Subscribe(messaging.SubscribeInput{TopicARN: topic, Protocol: "lambda", Endpoint: fn.ARN, BaseURL: d.endpoint}); err != nil {
		return err
	}
	d.printf("controller deployed as Lambda function %s (the lifeguard binary zipped as bootstrap, provided.al2023), subscribed to topic asg-events", controllerFn)

	w := d.srv.World()
	if _, err := w.EC2().CreateLaunchTemplate(tagGroup, world.LaunchTemplateVersion{
		ImageID: "ami-0abcdef1234567890", InstanceType: "t3.micro", UserData: b64(tagUserData(d.bin)),
		Metadata: world.MetadataOptions{HttpTokens: "required", InstanceMetadataTags: "enabled"},
	}, nil); err != nil {
		return err
	}
	if err := w.CreateAutoScalingGroup(world.CreateGroupInput{
		Name: tagGroup, LaunchTemplate: &world.LaunchTemplateRef{Name: tagGroup, Version: "$Latest"},
		MinSize: intp(0), MaxSize: intp(tagSize + 1), Desired: intp(0), AvailabilityZones: []string{"us-east-1a"},
		Tags: []world.GroupTag{{Key: "lifeguard:controller", Value: "enabled"}},
		Hooks: []world.Hook{{
			Name: "leaving", Transition: world.TransitionTerminating, HeartbeatTimeout: 5, DefaultResult: world.ResultContinue,
			NotificationTargetARN: topic, RoleARN: "arn:aws:iam::123456789012:role/asg-notify",
		}},
	}); err != nil {
		return err
	}
	if err := w.PutNotificationConfiguration(tagGroup, topic, []string{
		"autoscaling:EC2_INSTANCE_LAUNCH", "autoscaling:EC2_INSTANCE_TERMINATE", "autoscaling:EC2_INSTANCE_LAUNCH_ERROR", "autoscaling:EC2_INSTANCE_TERMINATE_ERROR",
	}); err != nil {
		return err
	}
	if err := w.SetDesiredCapacity(tagGroup, tagSize, false); err != nil {
		return err
	}
	d.printf("group %s created: %d instances whose agents read the seed's %s tag from instance metadata; the controller keeps it on exactly one", tagGroup, tagSize, leaderTagKey)
	return nil
}

// zipBootstrap returns a Lambda zip whose executable bootstrap is the
// file at path.
func zipBootstrap(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the lifeguard binary for the Lambda zip: %w", err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	// The binary is large and the demo waits for it: compress fast.
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) { return flate.NewWriter(w, flate.BestSpeed) })
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	f, err := zw.CreateHeader(h)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// freePort returns a TCP port free on the loopback interface, for the web
// app: every sandbox numbers its instances' private IPs from 127.0.0.2, so
// two sandboxes on one host (two demos, or a demo and a test) would
// collide on a fixed port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port for the web app: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// clientEnv points an AWS SDK or CLI at the sandbox.
func (d *demo) clientEnv() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + d.endpoint, "AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x", "AWS_EC2_METADATA_DISABLED=true",
	}
}

// exports is clientEnv as a shell export line.
func (d *demo) exports() string { return "export " + strings.Join(d.clientEnv(), " ") }
