package autoscaling_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	asg "github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

const serviceLinkedRole = "arn:aws:iam::123456789012:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"

func describeGroup(t *testing.T, e *env, name string) types.AutoScalingGroup {
	t.Helper()
	out, err := e.client.DescribeAutoScalingGroups(t.Context(), &asg.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil {
		t.Fatalf("DescribeAutoScalingGroups: %v", err)
	}
	if len(out.AutoScalingGroups) != 1 {
		t.Fatalf("DescribeAutoScalingGroups(%s) returned %d groups, want 1", name, len(out.AutoScalingGroups))
	}
	return out.AutoScalingGroups[0]
}

func TestDescribeAutoScalingGroupsShape(t *testing.T) {
	t.Run("group from a launch configuration", func(t *testing.T) {
		e := newEnv(t)
		g := e.createGroup(t, groupSpec{min: 1, max: 5, desired: 2, zones: []string{"us-east-1a", "us-east-1b"}, tags: []types.Tag{
			{Key: aws.String("role"), Value: aws.String("web"), PropagateAtLaunch: aws.Bool(true)},
		}})
		ids := e.waitInState(t, g, world.StateInService, 2)
		got := describeGroup(t, e, g)
		if arn := aws.ToString(got.AutoScalingGroupARN); !strings.HasPrefix(arn, "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:") || !strings.HasSuffix(arn, ":autoScalingGroupName/"+g) {
			t.Errorf("AutoScalingGroupARN = %q", arn)
		}
		if got.CreatedTime == nil || got.CreatedTime.IsZero() {
			t.Errorf("CreatedTime = %v, want the creation time", got.CreatedTime)
		}
		checkFields(t, "group", []field{
			{"AutoScalingGroupName", got.AutoScalingGroupName, aws.String(g)},
			{"LaunchConfigurationName", got.LaunchConfigurationName, aws.String("lc")},
			{"LaunchTemplate", got.LaunchTemplate, (*types.LaunchTemplateSpecification)(nil)},
			{"MinSize", got.MinSize, aws.Int32(1)},
			{"MaxSize", got.MaxSize, aws.Int32(5)},
			{"DesiredCapacity", got.DesiredCapacity, aws.Int32(2)},
			{"DefaultCooldown", got.DefaultCooldown, aws.Int32(300)},
			{"AvailabilityZones", got.AvailabilityZones, []string{"us-east-1a", "us-east-1b"}},
			{"LoadBalancerNames", got.LoadBalancerNames, []string{}},
			{"TargetGroupARNs", got.TargetGroupARNs, []string{}},
			{"HealthCheckType", got.HealthCheckType, aws.String("EC2")},
			{"HealthCheckGracePeriod", got.HealthCheckGracePeriod, aws.Int32(0)},
			{"SuspendedProcesses", got.SuspendedProcesses, []types.SuspendedProcess{}},
			{"VPCZoneIdentifier", got.VPCZoneIdentifier, (*string)(nil)},
			{"EnabledMetrics", got.EnabledMetrics, []types.EnabledMetric{}},
			{"Status", got.Status, (*string)(nil)},
			{"Tags", got.Tags, []types.TagDescription{{
				ResourceId: aws.String(g), ResourceType: aws.String("auto-scaling-group"),
				Key: aws.String("role"), Value: aws.String("web"), PropagateAtLaunch: aws.Bool(true),
			}}},
			{"TerminationPolicies", got.TerminationPolicies, []string{"Default"}},
			{"NewInstancesProtectedFromScaleIn", got.NewInstancesProtectedFromScaleIn, aws.Bool(false)},
			{"ServiceLinkedRoleARN", got.ServiceLinkedRoleARN, aws.String(serviceLinkedRole)},
			{"CapacityRebalance", got.CapacityRebalance, aws.Bool(false)},
			{"instance count", len(got.Instances), 2},
		})
		members := e.members(t, g)
		for i, in := range got.Instances {
			checkFields(t, fmt.Sprintf("instance %d", i), []field{
				{"InstanceId", in.InstanceId, aws.String(ids[i])},
				{"InstanceType", in.InstanceType, aws.String("t3.micro")},
				{"AvailabilityZone", in.AvailabilityZone, aws.String(members[i].AZ)},
				{"LifecycleState", in.LifecycleState, types.LifecycleStateInService},
				{"HealthStatus", in.HealthStatus, aws.String("Healthy")},
				{"LaunchConfigurationName", in.LaunchConfigurationName, aws.String("lc")},
				{"LaunchTemplate", in.LaunchTemplate, (*types.LaunchTemplateSpecification)(nil)},
				{"ProtectedFromScaleIn", in.ProtectedFromScaleIn, aws.Bool(false)},
			})
		}
		zones := []string{aws.ToString(got.Instances[0].AvailabilityZone), aws.ToString(got.Instances[1].AvailabilityZone)}
		slices.Sort(zones)
		if want := []string{"us-east-1a", "us-east-1b"}; !slices.Equal(zones, want) {
			t.Errorf("instance zones = %v, want one in each of %v", zones, want)
		}
	})

	t.Run("group from a launch template in subnets", func(t *testing.T) {
		e := newEnv(t)
		tmpl, err := e.w.EC2().CreateLaunchTemplate("web-template", world.LaunchTemplateVersion{ImageID: imageID, InstanceType: "t3.small"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		const subnets = "subnet-0a1b2c3d,subnet-4e5f6a7b"
		g := e.createGroup(t, groupSpec{desired: 1, vpcZone: subnets, launchTmpl: &types.LaunchTemplateSpecification{LaunchTemplateName: aws.String("web-template")}})
		e.waitInState(t, g, world.StateInService, 1)
		got := describeGroup(t, e, g)
		checkFields(t, "group", []field{
			{"LaunchConfigurationName", got.LaunchConfigurationName, (*string)(nil)},
			{"LaunchTemplate", got.LaunchTemplate, &types.LaunchTemplateSpecification{
				LaunchTemplateId: aws.String(tmpl.ID), LaunchTemplateName: aws.String("web-template"), Version: aws.String("$Default"),
			}},
			{"VPCZoneIdentifier", got.VPCZoneIdentifier, aws.String(subnets)},
			{"Tags", got.Tags, []types.TagDescription{}},
			{"instance LaunchTemplate", got.Instances[0].LaunchTemplate, &types.LaunchTemplateSpecification{
				LaunchTemplateId: aws.String(tmpl.ID), LaunchTemplateName: aws.String("web-template"), Version: aws.String("1"),
			}},
			{"instance InstanceType", got.Instances[0].InstanceType, aws.String("t3.small")},
			{"instance LaunchConfigurationName", got.Instances[0].LaunchConfigurationName, (*string)(nil)},
		})
	})

	t.Run("without instances when IncludeInstances is false", func(t *testing.T) {
		e := newEnv(t)
		g := e.createGroup(t, groupSpec{desired: 1})
		e.waitInState(t, g, world.StateInService, 1)
		out, err := e.client.DescribeAutoScalingGroups(t.Context(), &asg.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{g}, IncludeInstances: aws.Bool(false)})
		if err != nil {
			t.Fatal(err)
		}
		if got := out.AutoScalingGroups[0].Instances; got == nil || len(got) != 0 {
			t.Errorf("Instances = %#v, want an empty list", got)
		}
	})

	t.Run("a force-deleted group is omitted once gone", func(t *testing.T) {
		e := newEnv(t)
		g := e.createGroup(t, groupSpec{desired: 1, hooks: []types.LifecycleHookSpecification{hook(launchHook, world.TransitionLaunching, 300, "ABANDON")}})
		e.waitInState(t, g, world.StatePendingWait, 1)
		if _, err := e.client.DeleteAutoScalingGroup(t.Context(), &asg.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String(g), ForceDelete: aws.Bool(true)}); err != nil {
			t.Fatalf("DeleteAutoScalingGroup: %v", err)
		}
		e.waitEvent(t, "the group to go", func(ev world.Event) bool { return ev.Kind == world.EvGroupDeleted && ev.Group == g })
		out, err := e.client.DescribeAutoScalingGroups(t.Context(), &asg.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{g}})
		if err != nil {
			t.Fatal(err)
		}
		if out.AutoScalingGroups == nil || len(out.AutoScalingGroups) != 0 {
			t.Errorf("AutoScalingGroups = %#v, want an empty list for a deleted group", out.AutoScalingGroups)
		}
	})
}

func TestDescribeAutoScalingGroupsSelection(t *testing.T) {
	e := newEnv(t)
	tag := func(k, v string) []types.Tag { return []types.Tag{{Key: aws.String(k), Value: aws.String(v)}} }
	for _, s := range []groupSpec{
		{name: "api", tags: tag("role", "web")},
		{name: "batch", tags: tag("role", "worker")},
		{name: "cache"},
		{name: "db", tags: tag("tier", "data")},
		{name: "edge", tags: tag("role", "web")},
	} {
		e.createGroup(t, s)
	}
	filter := func(name string, values ...string) types.Filter {
		return types.Filter{Name: aws.String(name), Values: values}
	}
	tests := []struct {
		name    string
		in      asg.DescribeAutoScalingGroupsInput
		want    []string
		wantErr string
	}{
		{name: "all groups by name", want: []string{"api", "batch", "cache", "db", "edge"}},
		{name: "named groups, unknown names omitted", in: asg.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"edge", "nope", "api"}}, want: []string{"api", "edge"}},
		{name: "tag:key filter", in: asg.DescribeAutoScalingGroupsInput{Filters: []types.Filter{filter("tag:role", "web")}}, want: []string{"api", "edge"}},
		{name: "tag-key filter", in: asg.DescribeAutoScalingGroupsInput{Filters: []types.Filter{filter("tag-key", "tier")}}, want: []string{"db"}},
		{name: "tag-value filter with several values", in: asg.DescribeAutoScalingGroupsInput{Filters: []types.Filter{filter("tag-value", "worker", "data")}}, want: []string{"batch", "db"}},
		{name: "filters combine with AND", in: asg.DescribeAutoScalingGroupsInput{Filters: []types.Filter{filter("tag:role", "web"), filter("tag-key", "tier")}}, want: []string{}},
		{name: "unknown filter fails", in: asg.DescribeAutoScalingGroupsInput{Filters: []types.Filter{filter("instance-type", "t3.micro")}},
			wantErr: "Filter type instance-type is not correct. Allowed Filter types are: tag-key tag-value tag:<key>"},
		{name: "invalid token fails", in: asg.DescribeAutoScalingGroupsInput{NextToken: aws.String("bogus!")}, wantErr: "The token 'bogus!' is invalid."},
		{name: "MaxRecords above 100 fails", in: asg.DescribeAutoScalingGroupsInput{MaxRecords: aws.Int32(101)},
			wantErr: "1 validation error detected: Value '101' at 'maxRecords' failed to satisfy constraint: Member must have value less than or equal to 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := e.client.DescribeAutoScalingGroups(t.Context(), &tt.in)
			if tt.wantErr != "" {
				code, msg := apiError(t, err)
				if code != "ValidationError" || msg != tt.wantErr {
					t.Fatalf("got %s %q, want ValidationError %q", code, msg, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, g := range out.AutoScalingGroups {
				got = append(got, aws.ToString(g.AutoScalingGroupName))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("groups = %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("pagination visits each group once", func(t *testing.T) {
		p := asg.NewDescribeAutoScalingGroupsPaginator(e.client, &asg.DescribeAutoScalingGroupsInput{MaxRecords: aws.Int32(2)})
		var got []string
		pages := 0
		for p.HasMorePages() {
			out, err := p.NextPage(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, g := range out.AutoScalingGroups {
				got = append(got, aws.ToString(g.AutoScalingGroupName))
			}
		}
		if want := []string{"api", "batch", "cache", "db", "edge"}; !slices.Equal(got, want) || pages != 3 {
			t.Errorf("visited %v in %d pages, want %v in 3", got, pages, want)
		}
	})
}

func TestSetDesiredCapacity(t *testing.T) {
	e := newEnv(t)
	g := e.createGroup(t, groupSpec{min: 1, max: 5, desired: 1})
	tests := []struct {
		name    string
		desired int32
		wantErr string
	}{
		{name: "above max fails", desired: 9, wantErr: "New SetDesiredCapacity value 9 is above max value 5 for the AutoScalingGroup."},
		{name: "below min fails", desired: 0, wantErr: "New SetDesiredCapacity value 0 is below min value 1 for the AutoScalingGroup."},
		{name: "within bounds launches", desired: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.SetDesiredCapacity(t.Context(), &asg.SetDesiredCapacityInput{AutoScalingGroupName: aws.String(g), DesiredCapacity: aws.Int32(tt.desired)})
			if tt.wantErr != "" {
				code, msg := apiError(t, err)
				if code != "ValidationError" || msg != tt.wantErr {
					t.Fatalf("got %s %q, want ValidationError %q", code, msg, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			e.waitInState(t, g, world.StateInService, int(tt.desired))
			if got := aws.ToInt32(describeGroup(t, e, g).DesiredCapacity); got != tt.desired {
				t.Errorf("DesiredCapacity = %d, want %d", got, tt.desired)
			}
		})
	}
}

func TestUpdateAutoScalingGroup(t *testing.T) {
	e := newEnv(t)
	g := e.createGroup(t, groupSpec{desired: 1})
	e.waitInState(t, g, world.StateInService, 1)
	if _, err := e.client.UpdateAutoScalingGroup(t.Context(), &asg.UpdateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(g), MinSize: aws.Int32(2), MaxSize: aws.Int32(6),
		HealthCheckGracePeriod: aws.Int32(120), NewInstancesProtectedFromScaleIn: aws.Bool(true),
		VPCZoneIdentifier: aws.String("subnet-0a1b2c3d"),
	}); err != nil {
		t.Fatalf("UpdateAutoScalingGroup: %v", err)
	}
	e.waitInState(t, g, world.StateInService, 2)
	got := describeGroup(t, e, g)
	checkFields(t, "group", []field{
		{"MinSize", got.MinSize, aws.Int32(2)},
		{"MaxSize", got.MaxSize, aws.Int32(6)},
		{"DesiredCapacity", got.DesiredCapacity, aws.Int32(2)},
		{"HealthCheckGracePeriod", got.HealthCheckGracePeriod, aws.Int32(120)},
		{"NewInstancesProtectedFromScaleIn", got.NewInstancesProtectedFromScaleIn, aws.Bool(true)},
		{"VPCZoneIdentifier", got.VPCZoneIdentifier, aws.String("subnet-0a1b2c3d")},
	})
}

func TestTerminateInstanceInAutoScalingGroup(t *testing.T) {
	t.Run("by instance id, decrementing", func(t *testing.T) {
		e := newEnv(t)
		g := e.createGroup(t, groupSpec{desired: 2})
		ids := e.waitInState(t, g, world.StateInService, 2)
		victim := ids[0]
		out, err := e.client.TerminateInstanceInAutoScalingGroup(t.Context(), &asg.TerminateInstanceInAutoScalingGroupInput{
			InstanceId: aws.String(victim), ShouldDecrementDesiredCapacity: aws.Bool(true),
		})
		if err != nil {
			t.Fatalf("TerminateInstanceInAutoScalingGroup: %v", err)
		}
		a := out.Activity
		if a == nil {
			t.Fatal("Activity is missing")
		}
		if len(aws.ToString(a.ActivityId)) != 36 {
			t.Errorf("ActivityId = %q, want a UUID", aws.ToString(a.ActivityId))
		}
		if a.StartTime == nil || a.StartTime.IsZero() {
			t.Errorf("StartTime = %v, want the start", a.StartTime)
		}
		if cause := aws.ToString(a.Cause); !strings.HasPrefix(cause, "At ") || !strings.HasSuffix(cause, " instance "+victim+" was taken out of service in response to a user request, shrinking the capacity from 2 to 1.") {
			t.Errorf("Cause = %q", cause)
		}
		checkFields(t, "activity", []field{
			{"AutoScalingGroupName", a.AutoScalingGroupName, aws.String(g)},
			{"Description", a.Description, aws.String("Terminating EC2 instance: " + victim)},
			{"StatusCode", a.StatusCode, types.ScalingActivityStatusCodeInProgress},
			{"Progress", a.Progress, aws.Int32(0)},
			{"Details", a.Details, aws.String(`{"Availability Zone":"us-east-1a"}`)},
			{"AutoScalingGroupARN", a.AutoScalingGroupARN, describeGroup(t, e, g).AutoScalingGroupARN},
			{"EndTime", a.EndTime, (*time.Time)(nil)},
		})
		e.waitGone(t, g, victim)
		if got := aws.ToInt32(describeGroup(t, e, g).DesiredCapacity); got != 1 {
			t.Errorf("DesiredCapacity = %d, want 1", got)
		}
		acts, err := e.client.DescribeScalingActivities(t.Context(), &asg.DescribeScalingActivitiesInput{ActivityIds: []string{aws.ToString(a.ActivityId)}})
		if err != nil {
			t.Fatal(err)
		}
		if len(acts.Activities) != 1 {
			t.Fatalf("DescribeScalingActivities by id returned %d activities, want 1", len(acts.Activities))
		}
		done := acts.Activities[0]
		if done.StatusCode != types.ScalingActivityStatusCodeSuccessful || aws.ToInt32(done.Progress) != 100 || done.EndTime == nil {
			t.Errorf("finished activity = %s progress %d end %v, want Successful 100 with an end", done.StatusCode, aws.ToInt32(done.Progress), done.EndTime)
		}
	})

	t.Run("by instance ids in a group, replaced", func(t *testing.T) {
		e := newEnv(t)
		g := e.createGroup(t, groupSpec{desired: 2})
		ids := e.waitInState(t, g, world.StateInService, 2)
		out, err := e.client.TerminateInstanceInAutoScalingGroup(t.Context(), &asg.TerminateInstanceInAutoScalingGroupInput{
			AutoScalingGroupName: aws.String(g), InstanceIds: ids, ShouldDecrementDesiredCapacity: aws.Bool(false),
		})
		if err != nil {
			t.Fatalf("TerminateInstanceInAutoScalingGroup: %v", err)
		}
		var got []string
		for _, a := range out.Activities {
			got = append(got, aws.ToString(a.Description))
		}
		want := []string{"Terminating EC2 instance: " + ids[0], "Terminating EC2 instance: " + ids[1]}
		if !slices.Equal(got, want) {
			t.Errorf("activities = %q, want %q", got, want)
		}
		for _, id := range ids {
			e.waitGone(t, g, id)
		}
		e.waitInState(t, g, world.StateInService, 2)
	})

	t.Run("an instance outside the group fails", func(t *testing.T) {
		e := newEnv(t)
		e.createGroup(t, groupSpec{desired: 1})
		_, err := e.client.TerminateInstanceInAutoScalingGroup(t.Context(), &asg.TerminateInstanceInAutoScalingGroupInput{
			InstanceId: aws.String("i-0123456789abcdef0"), ShouldDecrementDesiredCapacity: aws.Bool(false),
		})
		code, msg := apiError(t, err)
		if want := "Instance Id not found - No managed instance found for instance ID: i-0123456789abcdef0"; code != "ValidationError" || msg != want {
			t.Errorf("got %s %q, want ValidationError %q", code, msg, want)
		}
	})
}

func TestStandby(t *testing.T) {
	e := newEnv(t)
	g := e.createGroup(t, groupSpec{desired: 2})
	ids := e.waitInState(t, g, world.StateInService, 2)
	id := ids[0]

	enter, err := e.client.EnterStandby(t.Context(), &asg.EnterStandbyInput{AutoScalingGroupName: aws.String(g), InstanceIds: []string{id}, ShouldDecrementDesiredCapacity: aws.Bool(true)})
	if err != nil {
		t.Fatalf("EnterStandby: %v", err)
	}
	if len(enter.Activities) != 1 {
		t.Fatalf("EnterStandby returned %d activities, want 1", len(enter.Activities))
	}
	checkFields(t, "enter activity", []field{
		{"Description", enter.Activities[0].Description, aws.String("Moving EC2 instance to Standby: " + id)},
		{"StatusCode", enter.Activities[0].StatusCode, types.ScalingActivityStatusCodeSuccessful},
		{"instance state", e.instanceState(t, id).LifecycleState, aws.String(world.StateStandby)},
		{"DesiredCapacity", describeGroup(t, e, g).DesiredCapacity, aws.Int32(1)},
	})

	exit, err := e.client.ExitStandby(t.Context(), &asg.ExitStandbyInput{AutoScalingGroupName: aws.String(g), InstanceIds: []string{id}})
	if err != nil {
		t.Fatalf("ExitStandby: %v", err)
	}
	if len(exit.Activities) != 1 {
		t.Fatalf("ExitStandby returned %d activities, want 1", len(exit.Activities))
	}
	checkFields(t, "exit activity", []field{
		{"Description", exit.Activities[0].Description, aws.String("Moving EC2 instance out of Standby: " + id)},
		{"instance state", e.instanceState(t, id).LifecycleState, aws.String(world.StateInService)},
		{"DesiredCapacity", describeGroup(t, e, g).DesiredCapacity, aws.Int32(2)},
	})

	_, err = e.client.ExitStandby(t.Context(), &asg.ExitStandbyInput{AutoScalingGroupName: aws.String(g), InstanceIds: []string{id}})
	code, msg := apiError(t, err)
	if want := "The instance " + id + " is not in Standby."; code != "ValidationError" || msg != want {
		t.Errorf("exiting twice: got %s %q, want ValidationError %q", code, msg, want)
	}
}

func TestInstanceProtection(t *testing.T) {
	e := newEnv(t)
	g := e.createGroup(t, groupSpec{desired: 3})
	ids := e.waitInState(t, g, world.StateInService, 3)
	protected := ids[:2]
	if _, err := e.client.SetInstanceProtection(t.Context(), &asg.SetInstanceProtectionInput{
		AutoScalingGroupName: aws.String(g), InstanceIds: protected, ProtectedFromScaleIn: aws.Bool(true),
	}); err != nil {
		t.Fatalf("SetInstanceProtection: %v", err)
	}
	if got := e.instanceState(t, protected[0]).ProtectedFromScaleIn; !aws.ToBool(got) {
		t.Errorf("ProtectedFromScaleIn = %v, want true", got)
	}
	for _, desired := range []int32{1, 0} {
		if _, err := e.client.SetDesiredCapacity(t.Context(), &asg.SetDesiredCapacityInput{AutoScalingGroupName: aws.String(g), DesiredCapacity: aws.Int32(desired)}); err != nil {
			t.Fatalf("SetDesiredCapacity %d: %v", desired, err)
		}
	}
	e.waitGone(t, g, ids[2])
	if got := e.inState(t, g, world.StateInService); !slices.Equal(got, protected) {
		t.Errorf("after scale-in to 0, InService = %v, want the protected %v", got, protected)
	}
}

func TestDescribeAutoScalingInstancesHealth(t *testing.T) {
	e := newEnv(t)
	g := e.createGroup(t, groupSpec{desired: 1, hooks: []types.LifecycleHookSpecification{hook(terminateHook, world.TransitionTerminating, 300, "CONTINUE")}})
	id := e.waitInState(t, g, world.StateInService, 1)[0]

	got := e.instanceState(t, id)
	checkFields(t, "healthy instance", []field{
		{"InstanceId", got.InstanceId, aws.String(id)},
		{"InstanceType", got.InstanceType, aws.String("t3.micro")},
		{"AutoScalingGroupName", got.AutoScalingGroupName, aws.String(g)},
		{"AvailabilityZone", got.AvailabilityZone, aws.String("us-east-1a")},
		{"LifecycleState", got.LifecycleState, aws.String(world.StateInService)},
		{"HealthStatus", got.HealthStatus, aws.String("HEALTHY")},
		{"LaunchConfigurationName", got.LaunchConfigurationName, aws.String("lc")},
		{"ProtectedFromScaleIn", got.ProtectedFromScaleIn, aws.Bool(false)},
	})

	if _, err := e.client.SetInstanceHealth(t.Context(), &asg.SetInstanceHealthInput{
		InstanceId: aws.String(id), HealthStatus: aws.String("Unhealthy"), ShouldRespectGracePeriod: aws.Bool(false),
	}); err != nil {
		t.Fatalf("SetInstanceHealth: %v", err)
	}
	// The terminate hook holds the unhealthy instance while it is replaced.
	e.waitInState(t, g, world.StateTerminatingWait, 1)
	if got := e.instanceState(t, id).HealthStatus; aws.ToString(got) != "UNHEALTHY" {
		t.Errorf("DescribeAutoScalingInstances HealthStatus = %q, want UNHEALTHY", aws.ToString(got))
	}
	grp := describeGroup(t, e, g)
	i := slices.IndexFunc(grp.Instances, func(in types.Instance) bool { return aws.ToString(in.InstanceId) == id })
	if i < 0 || aws.ToString(grp.Instances[i].HealthStatus) != "Unhealthy" {
		t.Errorf("DescribeAutoScalingGroups instances = %#v, want %s Unhealthy", grp.Instances, id)
	}
}

func TestDescribeAutoScalingInstancesPagination(t *testing.T) {
	e := newEnv(t)
	g := e.createGroup(t, groupSpec{max: 5, desired: 5})
	want := e.waitInState(t, g, world.StateInService, 5)
	p := asg.NewDescribeAutoScalingInstancesPaginator(e.client, &asg.DescribeAutoScalingInstancesInput{MaxRecords: aws.Int32(2)})
	var got []string
	for p.HasMorePages() {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range out.AutoScalingInstances {
			got = append(got, aws.ToString(in.InstanceId))
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("visited %v, want %v", got, want)
	}
}
