package bench

import (
	"context"
	"fmt"
	"regexp"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// The sources an agent learns of its lifecycle from.
var sources = []string{"sqs", "imds"}

// notifyRole is the role Auto Scaling assumes to publish to a hook's topic.
const notifyRole = "arn:aws:iam::123456789012:role/asg-notify"

// drainHook is the terminate hook of the agent groups.
const drainHook = "drain-hook"

// markStep is the terminate plan of the agent groups: one step that
// writes the time it started, in ns since the epoch, to
// <instance dir>/step-started and, as its last act just before it exits,
// the time again to step-exit.
const markStep = `terminate:
  steps:
    - name: mark
      command: ["sh", "-c", "date +%s%N > $PWD/step-started.tmp && mv $PWD/step-started.tmp $PWD/step-started && exec date +%s%N > $PWD/step-exit"]
      timeout: 30s`

// agentGroup creates group, n instances of the built agent as user data
// with markStep, the status server (and /metrics) on, every interval at
// its default, and a terminate hook (heartbeat timeout 60 s). With source
// sqs each agent reads a queue of its own subscribed to the hook's topic;
// with imds it polls the instance metadata.
func (s *sandbox) agentGroup(ctx context.Context, bin, group, source string, n int) error {
	hook := astypes.LifecycleHookSpecification{
		LifecycleHookName: aws.String(drainHook), LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_TERMINATING"),
		HeartbeatTimeout: aws.Int32(60), DefaultResult: aws.String("ABANDON"),
	}
	section := "source: imds"
	switch source {
	case "imds":
	case "sqs":
		topic, err := sns.NewFromConfig(s.cfg).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(group + "-lifecycle")})
		if err != nil {
			return err
		}
		hook.NotificationTargetARN, hook.RoleARN = topic.TopicArn, aws.String(notifyRole)
		section = "source: sqs\nsqs:\n  topic_arn: " + aws.ToString(topic.TopicArn)
	default:
		return fmt.Errorf("source %q is neither sqs nor imds", source)
	}
	yaml := section + "\n" + markStep + `
paths:
  journal_dir: $PWD/journal
status:
  listen: 127.0.0.1:0`
	if err := s.launchConfig(ctx, group+"-lc", agentUserData(bin, yaml, "")); err != nil {
		return err
	}
	_, err := s.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(group), LaunchConfigurationName: aws.String(group + "-lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(int32(n)), DesiredCapacity: aws.Int32(int32(n)), AvailabilityZones: []string{"us-east-1a"},
		LifecycleHookSpecificationList: []astypes.LifecycleHookSpecification{hook},
	})
	return err
}

var (
	agentInService = regexp.MustCompile(`msg="lifecycle state changed" .*state=InService`)
	agentReceiving = regexp.MustCompile(`msg="receiving lifecycle notifications"`)
)

// agentGroups creates one group of n agents for each source, named
// prefix + source, and waits until every agent has started; it returns
// their instance ids by group.
func (s *sandbox) agentGroups(ctx context.Context, env Env, prefix string, n int) (map[string][]string, error) {
	sourceOf := map[string]string{}
	for _, src := range sources {
		group := prefix + src
		sourceOf[group] = src
		if err := s.agentGroup(ctx, env.Binary, group, src, n); err != nil {
			return nil, err
		}
	}
	env.Progress("starting %d agents", n*len(sources))
	return s.waitAgents(ctx, n*len(sources), sourceOf)
}

// waitAgents waits for n instances of the groups InService whose agents
// have seen it (and, with source sqs, opened their queues), and returns
// their ids by group.
func (s *sandbox) waitAgents(ctx context.Context, n int, sourceOf map[string]string) (map[string][]string, error) {
	ids := map[string][]string{}
	for range n {
		e, err := s.ev.waitFor(ctx, "instances in service", func(e event) bool {
			_, ours := sourceOf[e.Group]
			return ours && stateIs("", "InService")(e)
		})
		if err != nil {
			return nil, err
		}
		ids[e.Group] = append(ids[e.Group], e.Instance)
	}
	for group, list := range ids {
		for _, id := range list {
			if _, err := waitConsole(ctx, s.instanceDir(id), agentInService); err != nil {
				return nil, err
			}
			if sourceOf[group] == "sqs" {
				if _, err := waitConsole(ctx, s.instanceDir(id), agentReceiving); err != nil {
					return nil, err
				}
			}
		}
	}
	return ids, nil
}
