package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/lifeguardhq/lifeguard/internal/loadgen"
	"github.com/lifeguardhq/lifeguard/internal/proc"
)

// Traffic measures the requests lost, at a steady 500 requests/s through
// the sandbox's load balancer (each on a fresh connection), while a group
// of three instances — each a naive web app (it stops at once on SIGTERM)
// and the agent with a traffic section — scales in by one, and while one
// app restarts between `lifeguard traffic deregister --wait` and
// `register --wait`.
var Traffic = Scenario{
	Name:  "traffic",
	About: "requests lost at 500 rps through the load balancer during a scale-in and a restart",
	Run:   runTraffic,
}

const (
	trafficRPS = 500
	appPort    = 8080
	// webappRole is the re-executed binary's role that serves the app.
	webappRole = "bench-webapp"
)

func init() { proc.Register(webappRole, serveApp) }

// serveApp is the instances' web app: it answers every request 200 on the
// instance's private address (local-ipv4 from its IMDS) and args[0]'s
// port, with no graceful shutdown, so only draining protects its
// requests.
func serveApp(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: PORT")
		return 2
	}
	ip, err := localIPv4(os.Getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	addr := net.JoinHostPort(ip, args[0])
	srv := &http.Server{Addr: addr, ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "ok from %s\n", addr)
	})}
	err = srv.ListenAndServe()
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// localIPv4 asks IMDS (IMDSv2) for the instance's private address.
func localIPv4(endpoint string) (string, error) {
	endpoint = strings.TrimSuffix(endpoint, "/")
	if endpoint == "" {
		return "", fmt.Errorf("AWS_EC2_METADATA_SERVICE_ENDPOINT is not set: run as an instance's user data")
	}
	c := &http.Client{Timeout: 5 * time.Second}
	req, _ := http.NewRequest(http.MethodPut, endpoint+"/latest/api/token", nil)
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "300")
	token, err := body(c, req)
	if err != nil {
		return "", err
	}
	req, _ = http.NewRequest(http.MethodGet, endpoint+"/latest/meta-data/local-ipv4", nil)
	req.Header.Set("X-aws-ec2-metadata-token", token)
	return body(c, req)
}

func body(c *http.Client, req *http.Request) (string, error) {
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s %s: %s", req.Method, req.URL.Path, resp.Status)
	}
	return strings.TrimSpace(string(b)), nil
}

func runTraffic(ctx context.Context, env Env) ([]Row, error) {
	sb, err := startSandbox(ctx, env)
	if err != nil {
		return nil, err
	}
	defer sb.close()
	tgARN, addr, err := sb.webBalancer(ctx)
	if err != nil {
		return nil, err
	}
	// The app runs again whenever it exits (its pid in app.pid), next
	// to the agent.
	app := fmt.Sprintf(`(while :; do %s=%s %s app %d & echo $! > app.pid.tmp; mv app.pid.tmp app.pid; wait $!; done) > app.log 2>&1 &`,
		proc.RoleEnv, webappRole, env.Binary, appPort)
	yaml := fmt.Sprintf(`traffic:
  mode: self
  target_groups:
    - arn: %s
      port: %d
  poll_interval: 1s
  wait_healthy_timeout: 1m
  wait_drained_timeout: 1m
paths:
  journal_dir: $PWD/journal
status:
  listen: 127.0.0.1:0`, tgARN, appPort)
	if err := sb.launchConfig(ctx, "web-lc", agentUserData(env.Binary, yaml, app)); err != nil {
		return nil, err
	}
	hooks := []astypes.LifecycleHookSpecification{
		{LifecycleHookName: aws.String("launch-hook"), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_LAUNCHING"), HeartbeatTimeout: aws.Int32(60)},
		{LifecycleHookName: aws.String(drainHook), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"), HeartbeatTimeout: aws.Int32(60)},
	}
	if _, err := sb.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("web"), LaunchConfigurationName: aws.String("web-lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(3), DesiredCapacity: aws.Int32(3), AvailabilityZones: []string{"us-east-1a"},
		LifecycleHookSpecificationList: hooks,
	}); err != nil {
		return nil, err
	}
	env.Progress("launching 3 instances, each held until its target is healthy")
	var ids []string
	for len(ids) < 3 {
		e, err := sb.ev.waitFor(ctx, "three launches completed", func(e event) bool { return e.Kind == "action-completed" && e.Hook == "launch-hook" })
		if err != nil {
			return nil, err
		}
		if e.Result != "CONTINUE" {
			return nil, fmt.Errorf("the launch of %s ended %s (%s), want CONTINUE once healthy", e.Instance, e.Result, e.Detail)
		}
		ids = append(ids, e.Instance)
	}

	l := loadgen.Start("http://"+addr+"/", trafficRPS)
	defer l.Stop()
	if err := sleep(ctx, 2*time.Second); err != nil { // a steady load first
		return nil, err
	}

	env.Progress("scale-in under %d requests/s", trafficRPS)
	scaleIn := time.Now()
	if _, err := sb.asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("web"), DesiredCapacity: aws.Int32(2)}); err != nil {
		return nil, err
	}
	gone, err := sb.ev.waitFor(ctx, "an instance terminated", stateIs("web", "Terminated"))
	if err != nil {
		return nil, err
	}
	if err := sleep(ctx, time.Second); err != nil {
		return nil, err
	}
	scaledIn := time.Now()

	restarted := ""
	for _, id := range ids {
		if id != gone.Instance {
			restarted = id
			break
		}
	}
	env.Progress("restart of %s's app under %d requests/s", restarted, trafficRPS)
	restart := time.Now()
	if err := sb.restartApp(ctx, env.Binary, restarted, tgARN); err != nil {
		return nil, err
	}
	if err := sleep(ctx, time.Second); err != nil {
		return nil, err
	}
	restartedAt := time.Now()
	l.Stop()

	sentIn, lostIn := l.Between(scaleIn, scaledIn)
	sentRe, lostRe := l.Between(restart, restartedAt)
	if sentIn == 0 || sentRe == 0 {
		return nil, fmt.Errorf("the load did not run (%d and %d requests sent)", sentIn, sentRe)
	}
	sent := func(n int, d time.Duration) string {
		return fmt.Sprintf("%d sent in %v (%.0f/s)", n, d.Round(100*time.Millisecond), float64(n)/d.Seconds())
	}
	return []Row{
		{Figure: "requests lost during a scale-in", Value: float64(lostIn), Unit: "requests", Goal: Limit(0), AtMost: true,
			Detail: sent(sentIn, scaledIn.Sub(scaleIn)) + ", deregistration delay 5 s"},
		{Figure: "requests lost during a restart", Value: float64(lostRe), Unit: "requests", Goal: Limit(0), AtMost: true,
			Detail: sent(sentRe, restartedAt.Sub(restart)) + ", traffic deregister/register --wait"},
	}, nil
}

// webBalancer creates an application load balancer forwarding HTTP to a
// target group on appPort (health checks every 5 s, healthy after 2,
// deregistration delay 5 s) and returns the target group's ARN and the
// listener's loopback address.
func (s *sandbox) webBalancer(ctx context.Context) (tgARN, addr string, err error) {
	lbc := elasticloadbalancingv2.NewFromConfig(s.cfg)
	lb, err := lbc.CreateLoadBalancer(ctx, &elasticloadbalancingv2.CreateLoadBalancerInput{Name: aws.String("web"), Subnets: []string{"subnet-1", "subnet-2"}})
	if err != nil {
		return "", "", err
	}
	tg, err := lbc.CreateTargetGroup(ctx, &elasticloadbalancingv2.CreateTargetGroupInput{
		Name: aws.String("web"), Protocol: elbv2types.ProtocolEnumHttp, Port: aws.Int32(appPort), VpcId: aws.String("vpc-sandbox"),
		HealthCheckPath: aws.String("/"), HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2),
		HealthyThresholdCount: aws.Int32(2), UnhealthyThresholdCount: aws.Int32(2),
	})
	if err != nil {
		return "", "", err
	}
	tgARN = aws.ToString(tg.TargetGroups[0].TargetGroupArn)
	if _, err := lbc.ModifyTargetGroupAttributes(ctx, &elasticloadbalancingv2.ModifyTargetGroupAttributesInput{
		TargetGroupArn: aws.String(tgARN),
		Attributes:     []elbv2types.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("5")}},
	}); err != nil {
		return "", "", err
	}
	if _, err := lbc.CreateListener(ctx, &elasticloadbalancingv2.CreateListenerInput{
		LoadBalancerArn: lb.LoadBalancers[0].LoadBalancerArn, Protocol: elbv2types.ProtocolEnumHttp, Port: aws.Int32(80),
		DefaultActions: []elbv2types.Action{{Type: elbv2types.ActionTypeEnumForward, TargetGroupArn: aws.String(tgARN)}},
	}); err != nil {
		return "", "", err
	}
	var body struct {
		Balancers []struct {
			Name      string `json:"name"`
			Listeners []struct {
				Address string `json:"address"`
			} `json:"listeners"`
		}
	}
	if err := s.getJSON(ctx, "/_sandbox/balancers", &body); err != nil {
		return "", "", err
	}
	for _, b := range body.Balancers {
		if b.Name == "web" && len(b.Listeners) > 0 {
			return tgARN, b.Listeners[0].Address, nil
		}
	}
	return "", "", fmt.Errorf("GET /_sandbox/balancers does not list the web load balancer's listener")
}

// restartApp restarts the app of instance id as an operator would:
// `lifeguard traffic deregister --wait`, SIGTERM to the app (its loop
// starts it again), `lifeguard traffic register --wait`.
func (s *sandbox) restartApp(ctx context.Context, bin, id, tgARN string) error {
	dir := s.instanceDir(id)
	traffic := func(verb string) error {
		cmd := exec.CommandContext(ctx, bin, "traffic", verb, "--wait", "--instance", id, "--target-group", fmt.Sprintf("%s=%d", tgARN, appPort))
		cmd.Env = s.env()
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("lifeguard traffic %s --wait: %w\n%s", verb, err, out)
		}
		return nil
	}
	if err := traffic("deregister"); err != nil {
		return err
	}
	readPID := func() string { b, _ := os.ReadFile(filepath.Join(dir, "app.pid")); return strings.TrimSpace(string(b)) }
	before := readPID()
	pid, err := strconv.Atoi(before)
	if err != nil {
		return fmt.Errorf("%s/app.pid: %q", id, before)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return err
	}
	if err := poll(ctx, 30*time.Second, func() bool { now := readPID(); return now != "" && now != before }); err != nil {
		return fmt.Errorf("the app of %s did not start again: %w", id, err)
	}
	return traffic("register")
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
