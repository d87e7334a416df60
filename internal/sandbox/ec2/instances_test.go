package ec2_test

import (
	"context"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

func TestDescribeInstances(t *testing.T) {
	e := newEnv(t)
	e.template(t, "web", fullData())
	e.template(t, "plain", &types.RequestLaunchTemplateData{ImageId: aws.String(otherAMI)})
	web := e.group(t, "web", "web", 2, "")
	plain := e.group(t, "plain", "plain", 1, "subnet-0123abcd")

	describe := func(t *testing.T, in *awsec2.DescribeInstancesInput) []types.Instance {
		t.Helper()
		out, err := e.c.DescribeInstances(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		var ins []types.Instance
		for _, r := range out.Reservations {
			ins = append(ins, r.Instances...)
		}
		return ins
	}

	t.Run("every instance is its own reservation", func(t *testing.T) {
		out, err := e.c.DescribeInstances(t.Context(), &awsec2.DescribeInstancesInput{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(out.Reservations), 3; got != want {
			t.Fatalf("reservations = %d, want %d", got, want)
		}
		seen := map[string]bool{}
		for _, r := range out.Reservations {
			id := aws.ToString(r.ReservationId)
			if !strings.HasPrefix(id, "r-0") || seen[id] {
				t.Errorf("ReservationId = %q: want a fresh r-0…", id)
			}
			seen[id] = true
			if got, want := aws.ToString(r.OwnerId), "123456789012"; got != want {
				t.Errorf("OwnerId = %q, want %q", got, want)
			}
			if r.Groups == nil || len(r.Instances) != 1 {
				t.Errorf("reservation %s: groups %v, %d instances; want an empty group list and 1 instance", id, r.Groups, len(r.Instances))
			}
		}
	})

	t.Run("an instance carries its template's settings", func(t *testing.T) {
		ins := describe(t, &awsec2.DescribeInstancesInput{InstanceIds: web[:1]})
		if len(ins) != 1 {
			t.Fatalf("got %d instances, want 1", len(ins))
		}
		in := ins[0]
		ip := aws.ToString(in.PrivateIpAddress)
		for _, c := range []struct{ name, got, want string }{
			{"InstanceId", aws.ToString(in.InstanceId), web[0]},
			{"ImageId", aws.ToString(in.ImageId), ami},
			{"InstanceType", string(in.InstanceType), "t3.small"},
			{"KeyName", aws.ToString(in.KeyName), "ops"},
			{"State.Name", string(in.State.Name), "running"},
			{"PrivateDnsName", aws.ToString(in.PrivateDnsName), "ip-" + strings.ReplaceAll(ip, ".", "-") + ".ec2.internal"},
			{"Placement.AvailabilityZone", aws.ToString(in.Placement.AvailabilityZone), "us-east-1a"},
			{"Placement.Tenancy", string(in.Placement.Tenancy), "default"},
			{"Architecture", string(in.Architecture), "x86_64"},
			{"RootDeviceType", string(in.RootDeviceType), "ebs"},
			{"Hypervisor", string(in.Hypervisor), "xen"},
			{"VirtualizationType", string(in.VirtualizationType), "hvm"},
			{"IamInstanceProfile.Arn", aws.ToString(in.IamInstanceProfile.Arn), "arn:aws:iam::123456789012:instance-profile/app-role"},
			{"MetadataOptions.State", string(in.MetadataOptions.State), "applied"},
			{"MetadataOptions.HttpTokens", string(in.MetadataOptions.HttpTokens), "required"},
			{"MetadataOptions.HttpEndpoint", string(in.MetadataOptions.HttpEndpoint), "enabled"},
			{"MetadataOptions.InstanceMetadataTags", string(in.MetadataOptions.InstanceMetadataTags), "enabled"},
			{"Tags", tagString(in.Tags), "aws:autoscaling:groupName=web,team=blue"},
		} {
			if c.got != c.want {
				t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
			}
		}
		if !strings.HasPrefix(ip, "127.") {
			t.Errorf("PrivateIpAddress = %q, want a loopback address", ip)
		}
		if got, want := aws.ToInt32(in.State.Code), int32(16); got != want {
			t.Errorf("State.Code = %d, want %d", got, want)
		}
		if got, want := aws.ToInt32(in.MetadataOptions.HttpPutResponseHopLimit), int32(2); got != want {
			t.Errorf("HttpPutResponseHopLimit = %d, want %d", got, want)
		}
		if got, want := aws.ToInt32(in.AmiLaunchIndex), int32(0); in.AmiLaunchIndex == nil || got != want {
			t.Errorf("AmiLaunchIndex = %v, want %d", in.AmiLaunchIndex, want)
		}
		if in.LaunchTime == nil || time.Since(*in.LaunchTime) > time.Hour {
			t.Errorf("LaunchTime = %v, want about now", in.LaunchTime)
		}
		if in.SubnetId != nil || in.VpcId != nil {
			t.Errorf("SubnetId, VpcId = %v, %v; want none outside a subnet", in.SubnetId, in.VpcId)
		}
		if in.StateReason != nil {
			t.Errorf("StateReason = %+v, want none while running", in.StateReason)
		}
	})

	t.Run("an instance in a subnet is in its VPC, with IMDS defaults", func(t *testing.T) {
		ins := describe(t, &awsec2.DescribeInstancesInput{InstanceIds: plain})
		if len(ins) != 1 {
			t.Fatalf("got %d instances, want 1", len(ins))
		}
		in := ins[0]
		for _, c := range []struct{ name, got, want string }{
			{"SubnetId", aws.ToString(in.SubnetId), "subnet-0123abcd"},
			{"VpcId", aws.ToString(in.VpcId), "vpc-0a1b2c3d"},
			{"Placement.AvailabilityZone", aws.ToString(in.Placement.AvailabilityZone), e.w.SubnetZone("subnet-0123abcd")},
			{"MetadataOptions.HttpTokens", string(in.MetadataOptions.HttpTokens), "optional"},
			{"MetadataOptions.InstanceMetadataTags", string(in.MetadataOptions.InstanceMetadataTags), "disabled"},
			{"Tags", tagString(in.Tags), "aws:autoscaling:groupName=plain"},
		} {
			if c.got != c.want {
				t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
			}
		}
		if in.IamInstanceProfile != nil || in.KeyName != nil {
			t.Errorf("IamInstanceProfile, KeyName = %+v, %v; want none", in.IamInstanceProfile, in.KeyName)
		}
	})

	for _, c := range []struct {
		name    string
		filters []types.Filter
		want    []string
	}{
		{"filter by group tag", []types.Filter{{Name: aws.String("tag:aws:autoscaling:groupName"), Values: []string{"web"}}}, web},
		{"filter by tag with a wildcard", []types.Filter{{Name: aws.String("tag:team"), Values: []string{"bl*"}}}, web},
		{"filter by running state", []types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"running"}}}, append(slices.Clone(web), plain...)},
		{"filter by terminated state", []types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"terminated"}}}, nil},
		{"filters combine", []types.Filter{
			{Name: aws.String("instance-state-name"), Values: []string{"running", "pending"}},
			{Name: aws.String("image-id"), Values: []string{otherAMI}},
		}, plain},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, in := range describe(t, &awsec2.DescribeInstancesInput{Filters: c.filters}) {
				got = append(got, aws.ToString(in.InstanceId))
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(c.want))
			if !slices.Equal(got, want) {
				t.Errorf("instances = %v, want %v", got, want)
			}
		})
	}
}

func TestDescribeInstancesPagination(t *testing.T) {
	e := newEnv(t)
	e.template(t, "web", fullData())
	want := e.group(t, "web", "web", 12, "")

	for _, size := range []int32{5, 6, 12, 1000} {
		t.Run("pages of "+itoa(size)+" visit every instance once", func(t *testing.T) {
			p := awsec2.NewDescribeInstancesPaginator(e.c, &awsec2.DescribeInstancesInput{MaxResults: aws.Int32(size)})
			var got []string
			pages := 0
			for p.HasMorePages() {
				out, err := p.NextPage(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				pages++
				for _, r := range out.Reservations {
					for _, in := range r.Instances {
						got = append(got, aws.ToString(in.InstanceId))
					}
				}
			}
			slices.Sort(got)
			if w := slices.Sorted(slices.Values(want)); !slices.Equal(got, w) {
				t.Errorf("instances = %v, want each of %v once", got, w)
			}
			if wantPages := (12 + int(size) - 1) / int(size); pages != wantPages {
				t.Errorf("pages = %d, want %d", pages, wantPages)
			}
		})
	}
}

func TestDescribeInstancesErrors(t *testing.T) {
	e := newEnv(t)
	e.template(t, "web", fullData())
	ids := e.group(t, "web", "web", 1, "")
	for _, c := range []struct {
		name     string
		in       awsec2.DescribeInstancesInput
		wantCode string
		wantMsg  string
	}{
		{"an unknown instance id", awsec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}},
			"InvalidInstanceID.NotFound", "The instance ID 'i-0123456789abcdef0' does not exist"},
		{"unknown instance ids among known ones", awsec2.DescribeInstancesInput{InstanceIds: []string{ids[0], "i-0123456789abcdef0", "i-0123456789abcdef1"}},
			"InvalidInstanceID.NotFound", "The instance IDs 'i-0123456789abcdef0, i-0123456789abcdef1' do not exist"},
		{"a malformed instance id", awsec2.DescribeInstancesInput{InstanceIds: []string{"web-1"}},
			"InvalidInstanceID.Malformed", `Invalid id: "web-1"`},
		{"an unknown filter", awsec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("flavour"), Values: []string{"vanilla"}}}},
			"InvalidParameterValue", "The filter 'flavour' is invalid"},
		{"MaxResults with instance ids", awsec2.DescribeInstancesInput{InstanceIds: ids, MaxResults: aws.Int32(5)},
			"InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults"},
		{"MaxResults below 5", awsec2.DescribeInstancesInput{MaxResults: aws.Int32(4)},
			"InvalidParameterValue", "Value ( 4 ) for parameter maxResults is invalid. Expecting a value greater than 5."},
		{"a token the sandbox did not issue", awsec2.DescribeInstancesInput{NextToken: aws.String("not-a-token")},
			"InvalidParameterValue", "Value ( not-a-token ) for parameter NextToken is invalid. The token is invalid."},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.c.DescribeInstances(t.Context(), &c.in)
			code, msg := apiError(t, err)
			if code != c.wantCode || msg != c.wantMsg {
				t.Errorf("error = %s: %s\nwant    %s: %s", code, msg, c.wantCode, c.wantMsg)
			}
		})
	}
}

func TestTerminateInstances(t *testing.T) {
	e := newEnv(t)
	e.template(t, "web", fullData())
	ids := e.group(t, "web", "web", 2, "")
	victim := ids[0]

	var out *awsec2.TerminateInstancesOutput
	e.waitFor(t, victim+" terminated", func() {
		var err error
		out, err = e.c.TerminateInstances(t.Context(), &awsec2.TerminateInstancesInput{InstanceIds: []string{victim}})
		if err != nil {
			t.Fatal(err)
		}
	}, func() bool {
		ins, err := e.w.EC2().Instances([]string{victim}, nil)
		return err == nil && len(ins) == 1 && ins[0].EC2State == world.EC2Terminated
	})

	t.Run("the state change is reported", func(t *testing.T) {
		if len(out.TerminatingInstances) != 1 {
			t.Fatalf("got %d state changes, want 1", len(out.TerminatingInstances))
		}
		c := out.TerminatingInstances[0]
		if got := aws.ToString(c.InstanceId); got != victim {
			t.Errorf("InstanceId = %q, want %q", got, victim)
		}
		if got, want := stateString(c.PreviousState), "16 running"; got != want {
			t.Errorf("PreviousState = %s, want %s", got, want)
		}
		if got, want := stateString(c.CurrentState), "32 shutting-down"; got != want {
			t.Errorf("CurrentState = %s, want %s", got, want)
		}
	})

	t.Run("a terminated instance is described with its reason", func(t *testing.T) {
		o, err := e.c.DescribeInstances(t.Context(), &awsec2.DescribeInstancesInput{InstanceIds: []string{victim}})
		if err != nil {
			t.Fatal(err)
		}
		in := o.Reservations[0].Instances[0]
		if got, want := stateString(in.State), "48 terminated"; got != want {
			t.Errorf("State = %s, want %s", got, want)
		}
		if in.StateReason == nil || aws.ToString(in.StateReason.Code) != "Client.UserInitiatedShutdown" {
			t.Errorf("StateReason = %+v, want Client.UserInitiatedShutdown", in.StateReason)
		}
		if in.PrivateIpAddress != nil {
			t.Errorf("PrivateIpAddress = %q, want none once terminated", aws.ToString(in.PrivateIpAddress))
		}
	})

	t.Run("terminating again reports terminated to terminated", func(t *testing.T) {
		o, err := e.c.TerminateInstances(t.Context(), &awsec2.TerminateInstancesInput{InstanceIds: []string{victim}})
		if err != nil {
			t.Fatal(err)
		}
		c := o.TerminatingInstances[0]
		if got, want := stateString(c.PreviousState)+" → "+stateString(c.CurrentState), "48 terminated → 48 terminated"; got != want {
			t.Errorf("states = %s, want %s", got, want)
		}
	})

	t.Run("an unknown instance is not found", func(t *testing.T) {
		_, err := e.c.TerminateInstances(t.Context(), &awsec2.TerminateInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
		code, msg := apiError(t, err)
		if want := "InvalidInstanceID.NotFound"; code != want {
			t.Errorf("code = %q (%s), want %q", code, msg, want)
		}
	})
}

// consoleHost is a world.Host whose instances print a fixed console text.
type consoleHost struct{ text string }

func (consoleHost) Boot(world.Boot) error            { return nil }
func (consoleHost) Stop(string, time.Duration) error { return nil }
func (h consoleHost) Console(string) []byte          { return []byte(h.text) }

func TestGetConsoleOutput(t *testing.T) {
	const text = "[    0.000000] Linux version 6.1\ncloud-init: hello from the sandbox\n"
	e := newEnvWithHost(t, consoleHost{text: text})
	e.template(t, "web", fullData())
	ids := e.group(t, "web", "web", 1, "")

	t.Run("the output is base64 as on EC2", func(t *testing.T) {
		out, err := e.c.GetConsoleOutput(t.Context(), &awsec2.GetConsoleOutputInput{InstanceId: aws.String(ids[0]), Latest: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		b, err := base64.StdEncoding.DecodeString(aws.ToString(out.Output))
		if err != nil {
			t.Fatalf("Output %q is not base64: %v", aws.ToString(out.Output), err)
		}
		if got := string(b); got != text {
			t.Errorf("decoded output = %q, want %q", got, text)
		}
		if got := aws.ToString(out.InstanceId); got != ids[0] {
			t.Errorf("InstanceId = %q, want %q", got, ids[0])
		}
		if out.Timestamp == nil || time.Since(*out.Timestamp) > time.Hour {
			t.Errorf("Timestamp = %v, want about now", out.Timestamp)
		}
	})

	for _, c := range []struct {
		name     string
		call     func(ctx context.Context) error
		wantCode string
		wantMsg  string
	}{
		{"an unknown instance is not found", func(ctx context.Context) error {
			_, err := e.c.GetConsoleOutput(ctx, &awsec2.GetConsoleOutputInput{InstanceId: aws.String("i-0123456789abcdef0")})
			return err
		}, "InvalidInstanceID.NotFound", "The instance ID 'i-0123456789abcdef0' does not exist"},
		{"a missing instance id is a missing parameter", func(ctx context.Context) error {
			_, err := e.c.GetConsoleOutput(ctx, &awsec2.GetConsoleOutputInput{}, skipValidation)
			return err
		}, "MissingParameter", "The request must contain the parameter InstanceId"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, msg := apiError(t, c.call(t.Context()))
			if code != c.wantCode || msg != c.wantMsg {
				t.Errorf("error = %s: %s\nwant    %s: %s", code, msg, c.wantCode, c.wantMsg)
			}
		})
	}
}

func stateString(s *types.InstanceState) string {
	if s == nil {
		return "<nil>"
	}
	return itoa(aws.ToInt32(s.Code)) + " " + string(s.Name)
}

func itoa[T ~int32 | ~int](n T) string { return strconv.Itoa(int(n)) }
