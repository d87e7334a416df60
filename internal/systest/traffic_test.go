package systest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/lifeguardhq/lifeguard/internal/loadgen"
)

// appPort is where each instance's app listens, on its private IP.
const appPort = 8080

// appScript is the run part of user data: testdata/webapp (APP) on the
// instance's private IP (local-ipv4 from its IMDS) and port appPort,
// started again whenever it exits (its pid in app.pid), then the agent.
const appScript = `IMDS=${AWS_EC2_METADATA_SERVICE_ENDPOINT%/}
TOKEN=$(curl -sf -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" "$IMDS/latest/api/token")
IP=$(curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS/latest/meta-data/local-ipv4")
(while :; do APP "$IP:8080" & echo $! > app.pid.tmp; mv app.pid.tmp app.pid; wait $!; done) > app.log 2>&1 &
exec BIN agent --config agent.yaml`

var (
	webappOnce sync.Once
	webappPath string
	webappErr  error
)

// webappBinary builds testdata/webapp once per test run.
func webappBinary(t *testing.T) string {
	t.Helper()
	webappOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lifeguard-webapp-")
		if err != nil {
			webappErr = err
			return
		}
		webappPath = filepath.Join(dir, "webapp")
		if out, err := exec.Command("go", "build", "-o", webappPath, "./testdata/webapp").CombinedOutput(); err != nil {
			webappErr = fmt.Errorf("go build ./testdata/webapp: %v\n%s", err, out)
		}
	})
	if webappErr != nil {
		t.Fatal(webappErr)
	}
	return webappPath
}

// appRun is appScript with the app's binary.
func appRun(t *testing.T) string { return strings.ReplaceAll(appScript, "APP", webappBinary(t)) }

// webBalancer creates an application load balancer forwarding HTTP to a
// target group on appPort (health checks every 5 s, healthy after 2,
// deregistration delay delay) and returns the target group's ARN and the
// listener's loopback address.
func webBalancer(t *testing.T, lbc *elasticloadbalancingv2.Client, endpoint string, delay int) (tgARN, addr string) {
	t.Helper()
	ctx := context.Background()
	lbOut, err := lbc.CreateLoadBalancer(ctx, &elasticloadbalancingv2.CreateLoadBalancerInput{Name: aws.String("web"), Subnets: []string{"subnet-1", "subnet-2"}})
	if err != nil {
		t.Fatal(err)
	}
	tg, err := lbc.CreateTargetGroup(ctx, &elasticloadbalancingv2.CreateTargetGroupInput{
		Name: aws.String("web"), Protocol: elbv2types.ProtocolEnumHttp, Port: aws.Int32(appPort), VpcId: aws.String("vpc-sandbox"),
		HealthCheckPath: aws.String("/"), HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2),
		HealthyThresholdCount: aws.Int32(2), UnhealthyThresholdCount: aws.Int32(2),
	})
	if err != nil {
		t.Fatal(err)
	}
	tgARN = aws.ToString(tg.TargetGroups[0].TargetGroupArn)
	if _, err := lbc.ModifyTargetGroupAttributes(ctx, &elasticloadbalancingv2.ModifyTargetGroupAttributesInput{
		TargetGroupArn: aws.String(tgARN),
		Attributes:     []elbv2types.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String(fmt.Sprint(delay))}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := lbc.CreateListener(ctx, &elasticloadbalancingv2.CreateListenerInput{
		LoadBalancerArn: lbOut.LoadBalancers[0].LoadBalancerArn, Protocol: elbv2types.ProtocolEnumHttp, Port: aws.Int32(80),
		DefaultActions: []elbv2types.Action{{Type: elbv2types.ActionTypeEnumForward, TargetGroupArn: aws.String(tgARN)}},
	}); err != nil {
		t.Fatal(err)
	}
	for _, b := range balancerStats(t, endpoint) {
		if b.Name == "web" && len(b.Listeners) > 0 {
			return tgARN, b.Listeners[0].Address
		}
	}
	t.Fatal("GET /_sandbox/balancers does not list the web load balancer's listener")
	return "", ""
}

// balancerStat is one load balancer of GET /_sandbox/balancers.
type balancerStat struct {
	Name      string `json:"name"`
	Listeners []struct {
		Address   string `json:"address"`
		Requests  int64  `json:"requests"`
		Errors5xx int64  `json:"errors_5xx"`
		NoTarget  int64  `json:"no_target"`
	} `json:"listeners"`
	Targets []struct {
		ID       string `json:"id"`
		State    string `json:"state"`
		Requests int64  `json:"requests"`
	} `json:"targets"`
}

func balancerStats(t *testing.T, endpoint string) []balancerStat {
	t.Helper()
	var body struct{ Balancers []balancerStat }
	getAdmin(t, endpoint, "/_sandbox/balancers", &body)
	return body.Balancers
}

// endLoad stops l and returns its requests served and failed, and the
// first failures.
func endLoad(l *loadgen.Load) (served, failed int, failures []string) {
	l.Stop()
	served, failed = l.Counts()
	return served, failed, l.Failures()
}

// loadRate is the steady load's requests a second: 50, or
// LIFEGUARD_TRAFFIC_RPS.
func loadRate() int {
	if rps, err := strconv.Atoi(os.Getenv("LIFEGUARD_TRAFFIC_RPS")); err == nil && rps > 0 {
		return rps
	}
	return 50
}

// TestTrafficLosesNoRequest runs three instances, each an HTTP app and
// the agent with a traffic section, behind a sandbox target group. Each
// launch completes only once its target is healthy. Under a steady client
// load through the load balancer: a scale-in to two deregisters and
// drains the leaving instance before its app is stopped; a rolling
// restart of an app with `lifeguard traffic deregister --wait` and
// `register --wait`; a spot interruption deregisters the instance at the
// notice, and its replacement (a scale-out) takes requests only once
// healthy. No request fails.
func TestTrafficLosesNoRequest(t *testing.T) {
	sb := startSandbox(t, "--relax-limits")
	ev := followEvents(t, sb.endpoint)
	cfg := sdkConfig(t, sb.endpoint)
	c := newClients(cfg)
	lbc := elasticloadbalancingv2.NewFromConfig(cfg)
	tgARN, addr := webBalancer(t, lbc, sb.endpoint, 5)

	bin := lifeguardBinary(t)
	launchConfig(t, c, "web-lc", agentScript(bin, fmt.Sprintf(`traffic:
  mode: self
  target_groups:
    - arn: %s
      port: %d
  poll_interval: 1s
  wait_healthy_timeout: 1m
  wait_drained_timeout: 1m
`, tgARN, appPort), appRun(t)))
	ctx := context.Background()
	if _, err := c.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("web"), LaunchConfigurationName: aws.String("web-lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(3), DesiredCapacity: aws.Int32(0), AvailabilityZones: []string{"us-east-1a"},
	}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []struct{ name, transition string }{{launchHook, "autoscaling:EC2_INSTANCE_LAUNCHING"}, {terminateHook, "autoscaling:EC2_INSTANCE_TERMINATING"}} {
		if _, err := c.asg.PutLifecycleHook(ctx, &autoscaling.PutLifecycleHookInput{AutoScalingGroupName: aws.String("web"),
			LifecycleHookName: aws.String(h.name), LifecycleTransition: aws.String(h.transition), HeartbeatTimeout: aws.Int32(60)}); err != nil {
			t.Fatal(err)
		}
	}

	start := time.Now()
	setDesired(t, c, "web", 3)
	launched := map[string]bool{}
	for len(launched) < 3 {
		e := ev.waitFor(t, "three launches completed", func(e event) bool {
			return e.Kind == "action-completed" && e.Hook == launchHook && !launched[e.Instance]
		})
		if e.Result != "CONTINUE" {
			t.Fatalf("launch of %s completed %s, want CONTINUE once healthy", e.Instance, e.Result)
		}
		dumpConsoleOnFailure(t, sb.stateDir+"/instances/"+e.Instance)
		launched[e.Instance] = true
		// The launch completes only once the target is healthy.
		h, err := lbc.DescribeTargetHealth(ctx, &elasticloadbalancingv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgARN),
			Targets: []elbv2types.TargetDescription{{Id: aws.String(e.Instance), Port: aws.Int32(appPort)}}})
		if err != nil {
			t.Fatal(err)
		}
		if st := h.TargetHealthDescriptions[0].TargetHealth.State; st != elbv2types.TargetHealthStateEnumHealthy {
			t.Errorf("%s completed its launch while its target is %s, want healthy", e.Instance, st)
		}
	}
	t.Logf("three instances launched and healthy in %v", time.Since(start).Round(time.Millisecond))

	// The proxy's overhead, measured (not asserted): sequential requests
	// to one app directly, then through the load balancer.
	for id := range launched {
		direct := latencies(t, sandboxInstances(t, sb.endpoint)[id].IP+fmt.Sprintf(":%d", appPort), 300)
		proxied := latencies(t, addr, 300)
		t.Logf("latency p50/p99: direct %v/%v, through the load balancer %v/%v", direct[150], direct[296], proxied[150], proxied[296])
		break
	}

	l := loadgen.Start("http://"+addr+"/", loadRate())
	time.Sleep(2 * time.Second) // a steady load before the scale-in
	scaleIn := time.Now()
	setDesired(t, c, "web", 2)
	gone := ev.waitFor(t, "an instance terminated", func(e event) bool {
		return e.Kind == "instance-state" && e.State == "Terminated" && launched[e.Instance]
	})
	_, failedSoFar := l.Counts()
	t.Logf("%s terminated %v after the scale-in; %d requests failed so far", gone.Instance, time.Since(scaleIn).Round(time.Millisecond), failedSoFar)
	delete(launched, gone.Instance)

	// A rolling restart of one app, without a termination.
	var restarted, spotted string
	for id := range launched {
		if restarted == "" {
			restarted = id
		} else {
			spotted = id
		}
	}
	restart := time.Now()
	dir := filepath.Join(sb.stateDir, "instances", restarted)
	trafficCmd(t, bin, "deregister", "--wait", "--instance", restarted, "--target-group", fmt.Sprintf("%s=%d", tgARN, appPort))
	before := strings.TrimSpace(string(waitFile(t, filepath.Join(dir, "app.pid"))))
	pid, err := strconv.Atoi(before)
	if err != nil {
		t.Fatalf("app.pid: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) { // polling another process's file
		b, _ := os.ReadFile(filepath.Join(dir, "app.pid"))
		if now := strings.TrimSpace(string(b)); now != "" && now != before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the app was not started again within 30 s")
		}
	}
	trafficCmd(t, bin, "register", "--wait", "--instance", restarted, "--target-group", fmt.Sprintf("%s=%d", tgARN, appPort))
	_, failedSoFar = l.Counts()
	t.Logf("%s restarted and healthy again in %v; %d requests failed so far", restarted, time.Since(restart).Round(time.Millisecond), failedSoFar)

	// A spot interruption, and the group's replacement.
	spot := time.Now()
	admin(t, sb.endpoint, "/_sandbox/faults", map[string]string{"instance": spotted, "spot": "20s"})
	ev.waitFor(t, spotted+" terminated after its spot notice", stateIs(spotted, "Terminated"))
	_, failedSoFar = l.Counts()
	t.Logf("%s reclaimed %v after its spot notice; %d requests failed so far", spotted, time.Since(spot).Round(time.Millisecond), failedSoFar)
	repl := ev.waitFor(t, "a replacement launched", func(e event) bool {
		return e.Kind == "action-completed" && e.Hook == launchHook && !launched[e.Instance] && e.Instance != gone.Instance && e.Instance != spotted
	})
	if repl.Result != "CONTINUE" {
		t.Errorf("replacement %s launched %s, want CONTINUE", repl.Instance, repl.Result)
	}
	dumpConsoleOnFailure(t, filepath.Join(sb.stateDir, "instances", repl.Instance))
	t.Logf("replacement %s healthy %v after the spot notice", repl.Instance, time.Since(spot).Round(time.Millisecond))

	time.Sleep(2 * time.Second) // and after it all
	served, failed, failures := endLoad(l)
	t.Logf("through the load balancer: %d requests served, %d failed", served, failed)
	if failed != 0 {
		t.Errorf("%d requests failed, want none; first: %q", failed, failures)
		logFailedRequests(t, sb.endpoint)
	}
	if served < 500 {
		t.Errorf("only %d requests served; the load did not run", served)
	}
	for _, b := range balancerStats(t, sb.endpoint) {
		for _, tgt := range b.Targets {
			t.Logf("target %s: %s, %d requests", tgt.ID, tgt.State, tgt.Requests)
		}
	}
}

// trafficCmd runs `lifeguard traffic ARGS` against the sandbox (the
// environment sdkConfig set) and fails the test unless it exits 0.
func trafficCmd(t *testing.T, bin string, args ...string) {
	t.Helper()
	out, err := exec.Command(bin, append([]string{"traffic"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("lifeguard traffic %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("lifeguard traffic %s:\n%s", args[0], strings.TrimSpace(string(out)))
}

// logFailedRequests logs the data plane's 5xx request events: which target
// failed them.
func logFailedRequests(t *testing.T, endpoint string) {
	resp, err := http.Get(endpoint + "/_sandbox/events?data=1")
	if err != nil {
		t.Log(err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.Contains(line, `"status":"5`) {
			t.Logf("failed request: %s", line)
		}
	}
}

// TestTrafficWithoutTheAgentLosesRequests is the same scale-in without the
// agent's traffic section: each instance registers itself at start
// (`lifeguard traffic register`, as the seed's instances did) and nothing
// deregisters it, so the load balancer sends requests to the stopped app
// until its health checks fail. The losses are logged, not asserted: they
// depend on where the health checks fall.
func TestTrafficWithoutTheAgentLosesRequests(t *testing.T) {
	sb := startSandbox(t, "--relax-limits")
	ev := followEvents(t, sb.endpoint)
	cfg := sdkConfig(t, sb.endpoint)
	c := newClients(cfg)
	lbc := elasticloadbalancingv2.NewFromConfig(cfg)
	tgARN, addr := webBalancer(t, lbc, sb.endpoint, 5)
	bin := lifeguardBinary(t)
	run := strings.Replace(appRun(t), "exec BIN agent", fmt.Sprintf("BIN traffic register --target-group %s=%d\nexec BIN agent", tgARN, appPort), 1)
	launchConfig(t, c, "web-lc", agentScript(bin, "", run))
	ctx := context.Background()
	if _, err := c.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("web"), LaunchConfigurationName: aws.String("web-lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(3), DesiredCapacity: aws.Int32(3), AvailabilityZones: []string{"us-east-1a"},
	}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(500 * time.Millisecond) { // polling the load balancer's view
		h, err := lbc.DescribeTargetHealth(ctx, &elasticloadbalancingv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgARN)})
		if err != nil {
			t.Fatal(err)
		}
		healthy := 0
		for _, d := range h.TargetHealthDescriptions {
			if d.TargetHealth.State == elbv2types.TargetHealthStateEnumHealthy {
				healthy++
			}
		}
		if healthy == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 targets healthy after 90 s", healthy)
		}
	}
	l := loadgen.Start("http://"+addr+"/", loadRate())
	time.Sleep(2 * time.Second)
	setDesired(t, c, "web", 2)
	gone := ev.waitFor(t, "an instance terminated", func(e event) bool { return e.Kind == "instance-state" && e.State == "Terminated" })
	time.Sleep(15 * time.Second) // past the health checks' detection: 2 failures 5 s apart
	served, failed, failures := endLoad(l)
	t.Logf("without the agent's traffic section, scale-in of %s: %d requests served, %d failed (first: %q)", gone.Instance, served, failed, failures)
	if served < 500 {
		t.Errorf("only %d requests served; the load did not run", served)
	}
}

// classicBalancer creates a classic load balancer forwarding HTTP to
// appPort (health checks every 5 s, healthy after 2, connection draining
// delay seconds) and returns its listener's loopback address.
func classicBalancer(t *testing.T, cfg aws.Config, endpoint string, delay int32) string {
	t.Helper()
	ctx := context.Background()
	c := elasticloadbalancing.NewFromConfig(cfg)
	if _, err := c.CreateLoadBalancer(ctx, &elasticloadbalancing.CreateLoadBalancerInput{
		LoadBalancerName:  aws.String("web-classic"),
		Listeners:         []elbtypes.Listener{{Protocol: aws.String("HTTP"), LoadBalancerPort: 80, InstanceProtocol: aws.String("HTTP"), InstancePort: aws.Int32(appPort)}},
		AvailabilityZones: []string{"us-east-1a"},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ConfigureHealthCheck(ctx, &elasticloadbalancing.ConfigureHealthCheckInput{LoadBalancerName: aws.String("web-classic"),
		HealthCheck: &elbtypes.HealthCheck{Target: aws.String(fmt.Sprintf("HTTP:%d/", appPort)), Interval: aws.Int32(5), Timeout: aws.Int32(2),
			HealthyThreshold: aws.Int32(2), UnhealthyThreshold: aws.Int32(2)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ModifyLoadBalancerAttributes(ctx, &elasticloadbalancing.ModifyLoadBalancerAttributesInput{LoadBalancerName: aws.String("web-classic"),
		LoadBalancerAttributes: &elbtypes.LoadBalancerAttributes{ConnectionDraining: &elbtypes.ConnectionDraining{Enabled: true, Timeout: aws.Int32(delay)}}}); err != nil {
		t.Fatal(err)
	}
	for _, b := range balancerStats(t, endpoint) {
		if b.Name == "web-classic" && len(b.Listeners) > 0 {
			return b.Listeners[0].Address
		}
	}
	t.Fatal("GET /_sandbox/balancers does not list web-classic's listener")
	return ""
}

// TestTrafficScaleInOtherOwners scales two instances in to one under a
// steady load through a classic load balancer the agent registers with,
// and through a target group the Auto Scaling group attaches itself (the
// agent, in mode auto, leaves registration to the group and waits for its
// deregistration): no request fails.
func TestTrafficScaleInOtherOwners(t *testing.T) {
	for _, c := range []struct {
		name    string
		classic bool
	}{{"classic load balancer, registered by the agent", true}, {"target group attached by the group", false}} {
		t.Run(c.name, func(t *testing.T) {
			sb := startSandbox(t, "--relax-limits")
			ev := followEvents(t, sb.endpoint)
			cfg := sdkConfig(t, sb.endpoint)
			cl := newClients(cfg)
			in := &autoscaling.CreateAutoScalingGroupInput{
				AutoScalingGroupName: aws.String("web"), LaunchConfigurationName: aws.String("web-lc"),
				MinSize: aws.Int32(0), MaxSize: aws.Int32(2), DesiredCapacity: aws.Int32(0), AvailabilityZones: []string{"us-east-1a"},
			}
			var section, addr string
			if c.classic {
				addr = classicBalancer(t, cfg, sb.endpoint, 5)
				section = "traffic:\n  load_balancers: [web-classic]\n  mode: self\n"
			} else {
				var tgARN string
				tgARN, addr = webBalancer(t, elasticloadbalancingv2.NewFromConfig(cfg), sb.endpoint, 5)
				in.TargetGroupARNs = []string{tgARN}
				section = fmt.Sprintf("traffic:\n  target_groups: [{arn: %s, port: %d}]\n", tgARN, appPort)
			}
			launchConfig(t, cl, "web-lc", agentScript(lifeguardBinary(t), section+"  poll_interval: 1s\n  wait_healthy_timeout: 1m\n  wait_drained_timeout: 1m\n", appRun(t)))
			ctx := context.Background()
			in.LifecycleHookSpecificationList = []astypes.LifecycleHookSpecification{launchHookSpec(launchHook, 60), terminateHookSpec(terminateHook, 60)}
			if _, err := cl.asg.CreateAutoScalingGroup(ctx, in); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			setDesired(t, cl, "web", 2)
			seen := map[string]bool{}
			for len(seen) < 2 {
				e := ev.waitFor(t, "two instances in service", func(e event) bool {
					return e.Kind == "instance-state" && e.State == "InService" && !seen[e.Instance]
				})
				seen[e.Instance] = true
				dumpConsoleOnFailure(t, filepath.Join(sb.stateDir, "instances", e.Instance))
			}
			waitHealthyTargets(t, sb.endpoint, 2)
			t.Logf("two instances in service and healthy in %v", time.Since(start).Round(time.Millisecond))
			l := loadgen.Start("http://"+addr+"/", loadRate())
			time.Sleep(2 * time.Second)
			scaleIn := time.Now()
			setDesired(t, cl, "web", 1)
			gone := ev.waitFor(t, "an instance terminated", func(e event) bool { return e.Kind == "instance-state" && e.State == "Terminated" })
			t.Logf("%s terminated %v after the scale-in", gone.Instance, time.Since(scaleIn).Round(time.Millisecond))
			time.Sleep(2 * time.Second)
			served, failed, failures := endLoad(l)
			t.Logf("through the load balancer: %d requests served, %d failed", served, failed)
			if failed != 0 {
				t.Errorf("%d requests failed, want none; first: %q", failed, failures)
				logFailedRequests(t, sb.endpoint)
			}
			if served < 150 {
				t.Errorf("only %d requests served; the load did not run", served)
			}
			console, err := os.ReadFile(filepath.Join(sb.stateDir, "instances", gone.Instance, "console.log"))
			if err != nil {
				t.Fatal(err)
			}
			waited := strings.Contains(string(console), "waiting for the group's own deregistration")
			deregistered := strings.Contains(string(console), "target deregistered")
			if c.classic && !deregistered || !c.classic && (!waited || deregistered) {
				t.Errorf("the agent of %s: waited for the group %v, deregistered itself %v; want the agent to deregister only what it registered", gone.Instance, waited, deregistered)
			}
		})
	}
}

// waitHealthyTargets waits until the sandbox's data plane has n healthy
// targets (the group registers its own after the launch, so InService
// comes before healthy).
func waitHealthyTargets(t *testing.T, endpoint string, n int) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) { // polling the data plane's view
		healthy := 0
		for _, b := range balancerStats(t, endpoint) {
			for _, tgt := range b.Targets {
				if tgt.State == "healthy" || tgt.State == "InService" {
					healthy++
				}
			}
		}
		if healthy >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d targets healthy after 60 s", healthy, n)
		}
	}
}

// latencies makes n sequential requests to addr, each on a fresh
// connection, and returns their durations, sorted.
func latencies(t *testing.T, addr string, n int) []time.Duration {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatalf("GET %s: %v", addr, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out = append(out, time.Since(start))
	}
	slices.Sort(out)
	return out
}
