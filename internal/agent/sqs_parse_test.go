package agent_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// Bodies from shared/reference/lifecycle-semantics.md §8.
const (
	rawTerminate    = `{"LifecycleHookName":"drain","AccountId":"609519224176","RequestId":"5d858daa-5692-135e-98ca-ef04118c2ab5","LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING","AutoScalingGroupName":"web","Service":"AWS Auto Scaling","Time":"2018-05-16T20:13:40.414Z","EC2InstanceId":"i-0123456789abcdef0","LifecycleActionToken":"602063c7-4a06-4a67-b8cf-87ccc33bdc86"}`
	rawLaunch       = `{"Origin":"EC2","LifecycleHookName":"ready","Destination":"AutoScalingGroup","AccountId":"123456789012","RequestId":"d595a0a3-4e05-12de-8512-2de8e15153bc","LifecycleTransition":"autoscaling:EC2_INSTANCE_LAUNCHING","AutoScalingGroupName":"web","Service":"AWS Auto Scaling","Time":"2019-01-07T15:00:10.031Z","EC2InstanceId":"i-0123456789abcdef0","NotificationMetadata":"blue","LifecycleActionToken":"71514b9d-6a40-4b26-8523-05e7ee35fa40"}`
	rawTest         = `{"AutoScalingGroupName":"web","Service":"AWS Auto Scaling","Time":"2016-06-12T00:07:08.954Z","AccountId":"123456789012","Event":"autoscaling:TEST_NOTIFICATION","RequestId":"18b2ec17-3e9b-4c15-8024-ff2e8ce8786a","AutoScalingGroupARN":"arn:aws:autoscaling:us-west-2:123456789012:autoScalingGroup:042cba90:autoScalingGroupName/web"}`
	eventBridge     = `{"version":"0","id":"12345678-1234-1234-1234-123456789012","detail-type":"EC2 Instance-terminate Lifecycle Action","source":"aws.autoscaling","account":"123456789012","time":"2024-01-01T00:00:00Z","region":"us-west-2","resources":["arn:aws:autoscaling:us-west-2:123456789012:autoScalingGroup:u:autoScalingGroupName/web"],"detail":{"LifecycleActionToken":"87654321-4321-4321-4321-210987654321","AutoScalingGroupName":"web","LifecycleHookName":"drain","EC2InstanceId":"i-0123456789abcdef0","LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING","NotificationMetadata":"additional-info","Origin":"AutoScalingGroup","Destination":"EC2"}}`
	eventBridgeTest = `{"version":"0","detail-type":"EC2 Instance-terminate Lifecycle Action","source":"aws.autoscaling","detail":{"Event":"autoscaling:TEST_NOTIFICATION","LifecycleTransition":"autoscaling:TEST_NOTIFICATION"}}`
	stateChange     = `{"version":"0","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","detail":{"instance-id":"i-0123456789abcdef0","state":"shutting-down"}}`
	groupNotice     = `{"Event":"autoscaling:EC2_INSTANCE_TERMINATE","AutoScalingGroupName":"web","EC2InstanceId":"i-0123456789abcdef0","StatusCode":"InProgress"}`
)

// snsWrap wraps a body in the SNS envelope as a non-raw subscription
// delivers it.
func snsWrap(body string) string {
	b, _ := json.Marshal(map[string]string{
		"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:lifecycle",
		"Subject": "Auto Scaling:  Lifecycle action 'TERMINATING' for instance i-0123456789abcdef0 in progress.",
		"Message": body, "Timestamp": "2024-01-01T00:00:00.000Z", "SignatureVersion": "1", "Signature": "x",
	})
	return string(b)
}

func TestParseMessage(t *testing.T) {
	term := agent.Notice{Kind: agent.NoticeAction, InstanceID: instanceID, Group: groupName, Hook: "drain",
		Transition: lifecycle.TransitionTerminating, Token: "602063c7-4a06-4a67-b8cf-87ccc33bdc86"}
	for _, c := range []struct {
		name string
		body string
		want agent.Notice
		err  bool
	}{
		{"raw terminate message", rawTerminate, term, false},
		{"raw launch message with metadata", rawLaunch, agent.Notice{Kind: agent.NoticeAction, InstanceID: instanceID, Group: groupName, Hook: "ready",
			Transition: lifecycle.TransitionLaunching, Token: "71514b9d-6a40-4b26-8523-05e7ee35fa40", Metadata: "blue"}, false},
		{"SNS-wrapped message", snsWrap(rawTerminate), term, false},
		{"EventBridge event", eventBridge, agent.Notice{Kind: agent.NoticeAction, InstanceID: instanceID, Group: groupName, Hook: "drain",
			Transition: lifecycle.TransitionTerminating, Token: "87654321-4321-4321-4321-210987654321", Metadata: "additional-info"}, false},
		{"test notification", rawTest, agent.Notice{Kind: agent.NoticeTest, Group: groupName}, false},
		{"SNS-wrapped test notification", snsWrap(rawTest), agent.Notice{Kind: agent.NoticeTest, Group: groupName}, false},
		{"EventBridge test notification", eventBridgeTest, agent.Notice{Kind: agent.NoticeTest}, false},
		{"another EventBridge event", stateChange, agent.Notice{Kind: agent.NoticeOther, Event: "EC2 Instance State-change Notification"}, false},
		{"group notification", snsWrap(groupNotice), agent.Notice{Kind: agent.NoticeOther, InstanceID: instanceID, Group: groupName, Event: "autoscaling:EC2_INSTANCE_TERMINATE"}, false},
		{"not JSON", "hello", agent.Notice{}, true},
		{"JSON of no known form", `{"a":1}`, agent.Notice{}, true},
		{"a JSON string", `"x"`, agent.Notice{}, true},
		{"SNS envelope around garbage", snsWrap("{"), agent.Notice{}, true},
		{"lifecycle message without a hook", `{"LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING","EC2InstanceId":"i-1","AutoScalingGroupName":"web"}`, agent.Notice{}, true},
		{"EventBridge lifecycle event without detail fields", `{"detail-type":"EC2 Instance-launch Lifecycle Action","detail":{}}`, agent.Notice{}, true},
		{"envelopes nested too deeply", snsWrap(snsWrap(snsWrap(rawTerminate))), agent.Notice{}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := agent.ParseMessage(c.body)
			if c.err {
				if !errors.Is(err, agent.ErrMalformed) {
					t.Errorf("ParseMessage = %+v, %v; want ErrMalformed", got, err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("ParseMessage =\n %+v, %v\nwant\n %+v", got, err, c.want)
			}
		})
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{rawTerminate, rawLaunch, rawTest, eventBridge, eventBridgeTest, stateChange, groupNotice, snsWrap(rawTerminate), snsWrap(rawTest), "", "{}", "null"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		n, err := agent.ParseMessage(body)
		switch {
		case err != nil && !errors.Is(err, agent.ErrMalformed):
			t.Errorf("error %v does not wrap ErrMalformed", err)
		case err != nil && n != (agent.Notice{}):
			t.Errorf("notice %+v with error %v", n, err)
		case err == nil && n.Kind == agent.NoticeAction && (n.InstanceID == "" || n.Hook == "" || n.Group == "" || !n.Transition.Valid()):
			t.Errorf("action notice %+v lacks a field", n)
		case err == nil && n.Kind != agent.NoticeAction && n.Kind != agent.NoticeTest && n.Kind != agent.NoticeOther:
			t.Errorf("notice %+v has no kind", n)
		}
	})
}
