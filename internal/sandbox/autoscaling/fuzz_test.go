package autoscaling_test

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/autoscaling"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// fuzzSeeds are request bodies as the Go SDK and the AWS CLI send them,
// against the fixture's group "g" (launch configuration "lc", terminate
// hook "drain").
var fuzzSeeds = []string{
	"Action=CreateLaunchConfiguration&ImageId=ami-0abcdef1234567890&InstanceType=t3.micro&LaunchConfigurationName=lc2&MetadataOptions.HttpPutResponseHopLimit=2&MetadataOptions.HttpTokens=required&SecurityGroups.member.1=sg-1&UserData=IyEvYmluL3No&Version=2011-01-01",
	"Action=DescribeLaunchConfigurations&LaunchConfigurationNames.member.1=lc&MaxRecords=1&Version=2011-01-01",
	"Action=DeleteLaunchConfiguration&LaunchConfigurationName=lc&Version=2011-01-01",
	"Action=CreateAutoScalingGroup&AutoScalingGroupName=g2&AvailabilityZones.member.1=us-east-1a&DesiredCapacity=2&LaunchConfigurationName=lc&LifecycleHookSpecificationList.member.1.DefaultResult=CONTINUE&LifecycleHookSpecificationList.member.1.HeartbeatTimeout=30&LifecycleHookSpecificationList.member.1.LifecycleHookName=h&LifecycleHookSpecificationList.member.1.LifecycleTransition=autoscaling%3AEC2_INSTANCE_LAUNCHING&MaxSize=4&MinSize=0&Tags.member.1.Key=role&Tags.member.1.PropagateAtLaunch=true&Tags.member.1.Value=web&Version=2011-01-01",
	"Action=CreateAutoScalingGroup&AutoScalingGroupName=g3&LaunchTemplate.LaunchTemplateName=t&LaunchTemplate.Version=%24Latest&MaxSize=1&MinSize=0&VPCZoneIdentifier=subnet-0a1b2c3d&Version=2011-01-01",
	"Action=UpdateAutoScalingGroup&AutoScalingGroupName=g&DesiredCapacity=3&HealthCheckGracePeriod=60&MaxSize=5&NewInstancesProtectedFromScaleIn=true&TerminationPolicies.member.1=OldestInstance&VPCZoneIdentifier=&Version=2011-01-01",
	"Action=DeleteAutoScalingGroup&AutoScalingGroupName=g&ForceDelete=true&Version=2011-01-01",
	"Action=DescribeAutoScalingGroups&AutoScalingGroupNames.member.1=g&Filters.member.1.Name=tag%3Arole&Filters.member.1.Values.member.1=web&IncludeInstances=false&MaxRecords=10&Version=2011-01-01",
	"Action=DescribeAutoScalingGroups&NextToken=YXNnAGc&Version=2011-01-01",
	"Action=DescribeAutoScalingInstances&InstanceIds.member.1=i-0598c7d356eba48d7&MaxRecords=50&Version=2011-01-01",
	"Action=SetDesiredCapacity&AutoScalingGroupName=g&DesiredCapacity=0&HonorCooldown=false&Version=2011-01-01",
	"Action=TerminateInstanceInAutoScalingGroup&InstanceId=i-0598c7d356eba48d7&ShouldDecrementDesiredCapacity=true&Version=2011-01-01",
	"Action=TerminateInstanceInAutoScalingGroup&AutoScalingGroupName=g&InstanceIds.member.1=i-0598c7d356eba48d7&ShouldDecrementDesiredCapacity=false&Version=2011-01-01",
	"Action=SetInstanceHealth&HealthStatus=Unhealthy&InstanceId=i-0598c7d356eba48d7&ShouldRespectGracePeriod=false&Version=2011-01-01",
	"Action=SetInstanceProtection&AutoScalingGroupName=g&InstanceIds=&ProtectedFromScaleIn=true&Version=2011-01-01",
	"Action=EnterStandby&AutoScalingGroupName=g&InstanceIds.member.1=i-0598c7d356eba48d7&ShouldDecrementDesiredCapacity=true&Version=2011-01-01",
	"Action=ExitStandby&AutoScalingGroupName=g&InstanceIds.member.1=i-0598c7d356eba48d7&Version=2011-01-01",
	"Action=PutLifecycleHook&AutoScalingGroupName=g&DefaultResult=CONTINUE&HeartbeatTimeout=300&LifecycleHookName=drain-hook&LifecycleTransition=autoscaling%3AEC2_INSTANCE_TERMINATING&NotificationMetadata=%7B%22cluster%22%3A%22blue%22%7D&NotificationTargetARN=arn%3Aaws%3Asqs%3Aus-east-1%3A123456789012%3Alifecycle-q&RoleARN=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fasg-notify&Version=2011-01-01",
	"Action=DescribeLifecycleHooks&AutoScalingGroupName=g&LifecycleHookNames.member.1=drain&Version=2011-01-01",
	"Action=DeleteLifecycleHook&AutoScalingGroupName=g&LifecycleHookName=drain&Version=2011-01-01",
	"Action=CompleteLifecycleAction&AutoScalingGroupName=g&InstanceId=i-0598c7d356eba48d7&LifecycleActionResult=CONTINUE&LifecycleActionToken=bcd2f1b8-9a78-44d3-8a7a-4dd07d7cf635&LifecycleHookName=drain&Version=2011-01-01",
	"Action=CompleteLifecycleAction&Version=2011-01-01&LifecycleHookName=drain&AutoScalingGroupName=g&LifecycleActionResult=ABANDON&InstanceId=i-0598c7d356eba48d7",
	"Action=RecordLifecycleActionHeartbeat&AutoScalingGroupName=g&InstanceId=i-0598c7d356eba48d7&LifecycleHookName=drain&Version=2011-01-01",
	"Action=DescribeScalingActivities&ActivityIds.member.1=x&AutoScalingGroupName=g&IncludeDeletedGroups=true&MaxRecords=5&Version=2011-01-01",
	"Action=CreateOrUpdateTags&Tags.member.1.Key=env&Tags.member.1.PropagateAtLaunch=false&Tags.member.1.ResourceId=g&Tags.member.1.ResourceType=auto-scaling-group&Tags.member.1.Value=prod&Version=2011-01-01",
	"Action=DeleteTags&Tags.member.1.Key=env&Tags.member.1.ResourceId=g&Tags.member.1.ResourceType=auto-scaling-group&Version=2011-01-01",
	"Action=DescribeTags&Filters.member.1.Name=auto-scaling-group&Filters.member.1.Values.member.1=g&MaxRecords=1&NextToken=dGFnAGcAZW52&Version=2011-01-01",
	"Action=DescribeLifecycleHookTypes&Version=2011-01-01",
	"Action=DescribeAutoScalingNotificationTypes&Version=2011-01-01",
	"Action=DescribeAccountLimits&Version=2011-01-01",
	"Action=AttachInstances&Version=2011-01-01",
	"Action=AttachLoadBalancerTargetGroups&AutoScalingGroupName=g&TargetGroupARNs.member.1=arn%3Aaws%3Aelasticloadbalancing%3Aus-east-1%3A123456789012%3Atargetgroup%2Fa%2F73e2d6bc24d8a067&Version=2011-01-01",
	"Action=DetachLoadBalancers&AutoScalingGroupName=g&LoadBalancerNames.member.1=classic&Version=2011-01-01",
	"Action=AttachTrafficSources&AutoScalingGroupName=g&TrafficSources.member.1.Identifier=classic&TrafficSources.member.1.Type=elb&Version=2011-01-01",
	"Action=DetachTrafficSources&AutoScalingGroupName=g&TrafficSources.member.1.Identifier=x&Version=2011-01-01",
	"Action=DescribeTrafficSources&AutoScalingGroupName=g&MaxRecords=1&NextToken=dHMAeA&TrafficSourceType=elbv2&Version=2011-01-01",
	"Action=DescribeLoadBalancerTargetGroups&AutoScalingGroupName=g&MaxRecords=100&Version=2011-01-01",
	"Action=DescribeLoadBalancers&AutoScalingGroupName=g&Version=2011-01-01",
	"Action=CreateAutoScalingGroup&AutoScalingGroupName=g4&AvailabilityZones.member.1=us-east-1a&HealthCheckType=ELB&HealthCheckGracePeriod=30&LaunchConfigurationName=lc&LoadBalancerNames.member.1=classic&MaxSize=1&MinSize=0&Version=2011-01-01",
	"Version=2011-01-01",
	"Action=DescribeTags&Bad=%zz",
}

// fuzzWorld is a world with a launch configuration and a group whose one
// instance has a terminate hook, so that requests reach deep paths.
func fuzzWorld(t *testing.T) *world.World {
	w := world.New(world.Config{RelaxLimits: true}, simclock.NewSim(), nil, nil)
	if err := w.CreateLaunchConfiguration(world.LaunchConfiguration{Name: "lc", ImageID: "ami-0abcdef1234567890", InstanceType: "t3.micro"}); err != nil {
		t.Fatal(err)
	}
	minSize, maxSize, desired := 0, 4, 1
	if err := w.CreateAutoScalingGroup(world.CreateGroupInput{
		Name: "g", LaunchConfiguration: "lc", MinSize: &minSize, MaxSize: &maxSize, Desired: &desired,
		AvailabilityZones: []string{"us-east-1a"},
		Tags:              []world.GroupTag{{Key: "role", Value: "web", PropagateAtLaunch: true}},
		Hooks:             []world.Hook{{Name: "drain", Transition: world.TransitionTerminating, HeartbeatTimeout: 300}},
	}); err != nil {
		t.Fatal(err)
	}
	return w
}

func FuzzQueryHandler(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		w := fuzzWorld(t)
		defer w.Close()
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		autoscaling.New(w).ServeHTTP(rec, req)

		root, err := wellFormed(rec.Body.String())
		if err != nil {
			t.Fatalf("status %d, body is not well-formed XML (%v): %s", rec.Code, err, rec.Body)
		}
		switch {
		case rec.Code == http.StatusOK:
			if root == "ErrorResponse" || !strings.HasSuffix(root, "Response") {
				t.Fatalf("200 with root <%s>: %s", root, rec.Body)
			}
		case rec.Code >= 400 && rec.Code < 600:
			var e errorResponse
			if err := xml.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" {
				t.Fatalf("status %d without an <ErrorResponse> carrying a code (%v): %s", rec.Code, err, rec.Body)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}

// wellFormed reads a whole XML document and returns its root element's name.
func wellFormed(doc string) (string, error) {
	d := xml.NewDecoder(strings.NewReader(doc))
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			if root == "" {
				return "", errors.New("no root element")
			}
			return root, nil
		}
		if err != nil {
			return "", err
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
}
