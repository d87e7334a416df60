package autoscaling_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	asg "github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
)

func TestLaunchConfigurations(t *testing.T) {
	e := newEnv(t)
	const userData = "IyEvYmluL3NoCmVjaG8gaGk=" // #!/bin/sh\necho hi
	if _, err := e.client.CreateLaunchConfiguration(t.Context(), &asg.CreateLaunchConfigurationInput{
		LaunchConfigurationName: aws.String("full"), ImageId: aws.String(imageID), InstanceType: aws.String("t3.small"),
		KeyName: aws.String("ops"), SecurityGroups: []string{"sg-0123456789abcdef0"}, UserData: aws.String(userData),
		IamInstanceProfile: aws.String("web-profile"),
		MetadataOptions: &types.InstanceMetadataOptions{
			HttpTokens: types.InstanceMetadataHttpTokensStateRequired, HttpPutResponseHopLimit: aws.Int32(2),
			HttpEndpoint: types.InstanceMetadataEndpointStateEnabled,
		},
	}); err != nil {
		t.Fatalf("CreateLaunchConfiguration: %v", err)
	}
	e.createLC(t) // "lc", minimal

	t.Run("every field of a full configuration", func(t *testing.T) {
		out, err := e.client.DescribeLaunchConfigurations(t.Context(), &asg.DescribeLaunchConfigurationsInput{LaunchConfigurationNames: []string{"full"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.LaunchConfigurations) != 1 {
			t.Fatalf("got %d configurations, want 1", len(out.LaunchConfigurations))
		}
		got := out.LaunchConfigurations[0]
		if arn := aws.ToString(got.LaunchConfigurationARN); !strings.HasPrefix(arn, "arn:aws:autoscaling:us-east-1:123456789012:launchConfiguration:") || !strings.HasSuffix(arn, ":launchConfigurationName/full") {
			t.Errorf("LaunchConfigurationARN = %q", arn)
		}
		if got.CreatedTime == nil || got.CreatedTime.IsZero() {
			t.Errorf("CreatedTime = %v", got.CreatedTime)
		}
		checkFields(t, "full", []field{
			{"LaunchConfigurationName", got.LaunchConfigurationName, aws.String("full")},
			{"ImageId", got.ImageId, aws.String(imageID)},
			{"KeyName", got.KeyName, aws.String("ops")},
			{"SecurityGroups", got.SecurityGroups, []string{"sg-0123456789abcdef0"}},
			{"ClassicLinkVPCSecurityGroups", got.ClassicLinkVPCSecurityGroups, []string{}},
			{"UserData", got.UserData, aws.String(userData)},
			{"InstanceType", got.InstanceType, aws.String("t3.small")},
			{"KernelId", got.KernelId, aws.String("")},
			{"RamdiskId", got.RamdiskId, aws.String("")},
			{"BlockDeviceMappings", got.BlockDeviceMappings, []types.BlockDeviceMapping{}},
			{"InstanceMonitoring", got.InstanceMonitoring, &types.InstanceMonitoring{Enabled: aws.Bool(true)}},
			{"IamInstanceProfile", got.IamInstanceProfile, aws.String("web-profile")},
			{"EbsOptimized", got.EbsOptimized, aws.Bool(false)},
			{"MetadataOptions", got.MetadataOptions, &types.InstanceMetadataOptions{
				HttpTokens: types.InstanceMetadataHttpTokensStateRequired, HttpPutResponseHopLimit: aws.Int32(2),
				HttpEndpoint: types.InstanceMetadataEndpointStateEnabled,
			}},
		})
	})

	t.Run("a minimal configuration has empty strings and lists", func(t *testing.T) {
		out, err := e.client.DescribeLaunchConfigurations(t.Context(), &asg.DescribeLaunchConfigurationsInput{LaunchConfigurationNames: []string{"lc"}})
		if err != nil {
			t.Fatal(err)
		}
		got := out.LaunchConfigurations[0]
		checkFields(t, "lc", []field{
			{"KeyName", got.KeyName, aws.String("")},
			{"SecurityGroups", got.SecurityGroups, []string{}},
			{"UserData", got.UserData, aws.String("")},
			{"IamInstanceProfile", got.IamInstanceProfile, (*string)(nil)},
			{"MetadataOptions", got.MetadataOptions, (*types.InstanceMetadataOptions)(nil)},
		})
	})

	t.Run("pagination visits each configuration once", func(t *testing.T) {
		p := asg.NewDescribeLaunchConfigurationsPaginator(e.client, &asg.DescribeLaunchConfigurationsInput{MaxRecords: aws.Int32(1)})
		var got []string
		for p.HasMorePages() {
			out, err := p.NextPage(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, lc := range out.LaunchConfigurations {
				got = append(got, aws.ToString(lc.LaunchConfigurationName))
			}
		}
		if strings.Join(got, ",") != "full,lc" {
			t.Errorf("visited %v, want [full lc]", got)
		}
	})

	t.Run("a configuration in use cannot be deleted", func(t *testing.T) {
		e.createGroup(t, groupSpec{})
		_, err := e.client.DeleteLaunchConfiguration(t.Context(), &asg.DeleteLaunchConfigurationInput{LaunchConfigurationName: aws.String("lc")})
		code, msg := apiError(t, err)
		if want := "Cannot delete launch configuration lc because it is attached to AutoScalingGroup g"; code != "ResourceInUse" || msg != want {
			t.Errorf("got %s %q, want ResourceInUse %q", code, msg, want)
		}
	})

	t.Run("a deleted configuration is gone", func(t *testing.T) {
		if _, err := e.client.DeleteLaunchConfiguration(t.Context(), &asg.DeleteLaunchConfigurationInput{LaunchConfigurationName: aws.String("full")}); err != nil {
			t.Fatal(err)
		}
		out, err := e.client.DescribeLaunchConfigurations(t.Context(), &asg.DescribeLaunchConfigurationsInput{LaunchConfigurationNames: []string{"full"}})
		if err != nil {
			t.Fatal(err)
		}
		if out.LaunchConfigurations == nil || len(out.LaunchConfigurations) != 0 {
			t.Errorf("LaunchConfigurations = %#v, want an empty list", out.LaunchConfigurations)
		}
	})
}

func TestAccountExtras(t *testing.T) {
	e := newEnv(t)
	e.createGroup(t, groupSpec{})

	limits, err := e.client.DescribeAccountLimits(t.Context(), &asg.DescribeAccountLimitsInput{})
	if err != nil {
		t.Fatal(err)
	}
	checkFields(t, "limits", []field{
		{"MaxNumberOfAutoScalingGroups", limits.MaxNumberOfAutoScalingGroups, aws.Int32(500)},
		{"MaxNumberOfLaunchConfigurations", limits.MaxNumberOfLaunchConfigurations, aws.Int32(200)},
		{"NumberOfAutoScalingGroups", limits.NumberOfAutoScalingGroups, aws.Int32(1)},
		{"NumberOfLaunchConfigurations", limits.NumberOfLaunchConfigurations, aws.Int32(1)},
	})

	notifications, err := e.client.DescribeAutoScalingNotificationTypes(t.Context(), &asg.DescribeAutoScalingNotificationTypesInput{})
	if err != nil {
		t.Fatal(err)
	}
	want := "autoscaling:EC2_INSTANCE_LAUNCH autoscaling:EC2_INSTANCE_LAUNCH_ERROR autoscaling:EC2_INSTANCE_TERMINATE autoscaling:EC2_INSTANCE_TERMINATE_ERROR autoscaling:TEST_NOTIFICATION"
	if got := strings.Join(notifications.AutoScalingNotificationTypes, " "); got != want {
		t.Errorf("AutoScalingNotificationTypes = %s, want %s", got, want)
	}
}
