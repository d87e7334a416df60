package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/lifeguardhq/lifeguard/internal/cli"
	"github.com/lifeguardhq/lifeguard/internal/interop"
)

// trafficMoto starts moto_server (skipped loudly without it, failing under
// CI=true), points the AWS environment of the commands at it, and creates
// two running instances in a VPC, a target group and a classic load
// balancer. It returns the instances, the target group's ARN and an EC2
// client.
func trafficMoto(t *testing.T) (running, other, tgARN string, e *ec2.Client) {
	url := interop.Moto(t)
	tr := &http.Transport{}
	client := &http.Client{Transport: tr}
	t.Cleanup(tr.CloseIdleConnections)
	for k, v := range map[string]string{"AWS_ENDPOINT_URL": url, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x",
		"AWS_SECRET_ACCESS_KEY": "x", "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull, "LIFEGUARD_CONFIG": ""} {
		t.Setenv(k, v)
	}
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: credentials.NewStaticCredentialsProvider("x", "x", ""), HTTPClient: client}
	ctx := context.Background()
	e = ec2.NewFromConfig(cfg)
	v, err := e.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := e.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: v.Vpc.VpcId, CidrBlock: aws.String("10.0.1.0/24"), AvailabilityZone: aws.String("us-east-1a")})
	if err != nil {
		t.Fatal(err)
	}
	run, err := e.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-12c6146b"), InstanceType: ec2types.InstanceTypeT3Micro,
		MinCount: aws.Int32(2), MaxCount: aws.Int32(2), SubnetId: sn.Subnet.SubnetId})
	if err != nil {
		t.Fatal(err)
	}
	running, other = aws.ToString(run.Instances[0].InstanceId), aws.ToString(run.Instances[1].InstanceId)
	tg, err := elasticloadbalancingv2.NewFromConfig(cfg).CreateTargetGroup(ctx, &elasticloadbalancingv2.CreateTargetGroupInput{
		Name: aws.String("web"), Protocol: "HTTP", Port: aws.Int32(80), VpcId: v.Vpc.VpcId})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := elasticloadbalancing.NewFromConfig(cfg).CreateLoadBalancer(ctx, &elasticloadbalancing.CreateLoadBalancerInput{
		LoadBalancerName:  aws.String("web-classic"),
		Listeners:         []elbtypes.Listener{{Protocol: aws.String("HTTP"), LoadBalancerPort: 80, InstancePort: aws.Int32(8080)}},
		AvailabilityZones: []string{"us-east-1a"},
	}); err != nil {
		t.Fatal(err)
	}
	return running, other, aws.ToString(tg.TargetGroups[0].TargetGroupArn), e
}

// trafficRun runs a command and returns its stdout, its stderr followed by
// what main would print, and its exit code.
func trafficRun(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code, msg := cli.ExitCode(cli.Run(ctx, args, &out, &errb))
	return out.String(), errb.String() + msg, code
}

// TestTrafficCommands runs the seed's rolling restart against moto_server:
// deregister --wait, then register --wait, with status in between, through
// the agent's configuration and through flags, and the exit codes.
func TestTrafficCommands(t *testing.T) {
	running, other, tgARN, e := trafficMoto(t)
	conf := filepath.Join(t.TempDir(), "agent.yaml")
	yaml := fmt.Sprintf("traffic:\n  mode: self\n  target_groups: [{arn: %q, port: 8080}]\n  load_balancers: [web-classic]\n  poll_interval: 1s\n", tgARN)
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	withConf := func(args ...string) []string {
		return append(append([]string{"traffic"}, args...), "--config", conf, "--instance", running)
	}
	status := func() cli.TrafficStatus {
		t.Helper()
		out, errOut, _ := trafficRun(t, withConf("status", "-o", "json")...)
		var st cli.TrafficStatus
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status -o json: %v\n%s%s", err, out, errOut)
		}
		return st
	}

	if out, errOut, code := trafficRun(t, withConf("status")...); code != cli.ExitNotReady || !strings.Contains(out, "unused") {
		t.Errorf("status before registration: exit %d\n%s%s; want 3 and unused", code, out, errOut)
	}
	if out, errOut, code := trafficRun(t, withConf("register", "--wait", "--timeout", "20s")...); code != 0 || !strings.Contains(out, "healthy in targetgroup/web/") {
		t.Fatalf("register --wait: exit %d\n%s%s", code, out, errOut)
	}
	st := status()
	if !st.Healthy || st.InstanceID != running || len(st.Targets) != 2 || st.Targets[0].State != "healthy" || st.Targets[0].Port != 8080 ||
		st.Targets[1].Kind != "classic" || st.Targets[1].State != "healthy" {
		t.Errorf("status after registration = %+v; want both healthy", st)
	}
	if out, errOut, code := trafficRun(t, withConf("status")...); code != 0 {
		t.Errorf("status while healthy: exit %d\n%s%s; want 0", code, out, errOut)
	}
	if out, errOut, code := trafficRun(t, withConf("deregister", "--wait")...); code != 0 || !strings.Contains(out, "drained from") {
		t.Fatalf("deregister --wait: exit %d\n%s%s", code, out, errOut)
	}
	if st := status(); st.Healthy || st.Targets[0].State != "unused" || st.Targets[1].State != "unused" {
		t.Errorf("status after deregistration = %+v; want both unused", st)
	}

	t.Run("a stopped instance is not healthy within the timeout: exit 3", func(t *testing.T) {
		if _, err := e.StopInstances(context.Background(), &ec2.StopInstancesInput{InstanceIds: []string{other}}); err != nil {
			t.Fatal(err)
		}
		// AWS refuses to register a stopped instance with a target group: a
		// failure, not a timeout.
		out, errOut, code := trafficRun(t, "traffic", "register", "--target-group", tgARN, "--instance", other, "--wait")
		if code != cli.ExitFailure || !strings.Contains(errOut, "InvalidTarget") {
			t.Errorf("register with a target group: exit %d\n%s%s; want 1 and InvalidTarget", code, out, errOut)
		}
		// A classic load balancer takes it, and reports it OutOfService.
		out, errOut, code = trafficRun(t, "traffic", "register", "--load-balancer", "web-classic", "--instance", other, "--wait", "--timeout", "2s")
		if code != cli.ExitNotReady || !strings.Contains(errOut, "not healthy within 2s: elb/web-classic unhealthy") {
			t.Errorf("register with a classic load balancer: exit %d\n%s%s; want 3, not healthy, with the last state", code, out, errOut)
		}
	})
	t.Run("a target group that does not exist: exit 1", func(t *testing.T) {
		out, errOut, code := trafficRun(t, "traffic", "register", "--target-group", strings.Replace(tgARN, "targetgroup/web/", "targetgroup/gone/", 1), "--instance", running)
		if code != cli.ExitFailure || !strings.Contains(out+errOut, "not found") {
			t.Errorf("exit %d\n%s%s; want 1 naming the missing target group", code, out, errOut)
		}
	})
}

func TestTrafficUsage(t *testing.T) {
	t.Setenv("LIFEGUARD_CONFIG", "")
	conf := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(conf, []byte("source: imds\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"not an ARN", []string{"register", "--target-group", "web"}, `--target-group "web"`},
		{"bad load balancer name", []string{"deregister", "--load-balancer", "web_1"}, "--load-balancer"},
		{"no traffic section", []string{"status", "--config", conf}, "has no traffic section"},
		{"no configuration and no target", []string{"status"}, "give --target-group or --load-balancer"},
		{"an argument", []string{"status", "extra"}, "unknown command"},
		{"bad output", []string{"status", "-o", "yaml", "--load-balancer", "web"}, "--output"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := trafficRun(t, append([]string{"traffic"}, c.args...)...)
			if code != cli.ExitUsage || !strings.Contains(out+errOut, c.want) {
				t.Errorf("exit %d\n%s%s; want 2 and %q", code, out, errOut, c.want)
			}
		})
	}
}
