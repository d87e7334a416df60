package controller_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/controller"
)

func TestParseEvent(t *testing.T) {
	launch := `{"Progress":50,"AccountId":"123456789012","Description":"Launching a new EC2 instance: i-1","Event":"autoscaling:EC2_INSTANCE_LAUNCH","AutoScalingGroupName":"web","EC2InstanceId":"i-1"}`
	hook := `{"Origin":"AutoScalingGroup","Destination":"EC2","LifecycleHookName":"h","AutoScalingGroupName":"api","LifecycleTransition":"autoscaling:EC2_INSTANCE_TERMINATING","EC2InstanceId":"i-2","LifecycleActionToken":"t"}`
	sns := func(msg string) string {
		b, _ := json.Marshal(map[string]string{"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Message": msg})
		return string(b)
	}
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	tests := []struct {
		name, raw string
		want      controller.Trigger
		err       bool
	}{
		{name: "raw Auto Scaling notification", raw: launch, want: controller.Trigger{Groups: []string{"web"}}},
		{name: "lifecycle hook message", raw: hook, want: controller.Trigger{Groups: []string{"api"}}},
		{name: "SNS notification (SQS body)", raw: sns(launch), want: controller.Trigger{Groups: []string{"web"}}},
		{name: "Lambda SNS batch", raw: `{"Records":[{"EventSource":"aws:sns","Sns":{"Message":` + q(launch) + `}}]}`, want: controller.Trigger{Groups: []string{"web"}}},
		{name: "Lambda SQS batch of SNS envelopes and a hook message", raw: `{"Records":[{"eventSource":"aws:sqs","body":` + q(sns(launch)) + `},{"eventSource":"aws:sqs","body":` + q(hook) + `},{"eventSource":"aws:sqs","body":` + q(sns(launch)) + `}]}`,
			want: controller.Trigger{Groups: []string{"web", "api"}}},
		{name: "EventBridge event", raw: `{"version":"0","source":"aws.autoscaling","detail-type":"EC2 Instance Terminate Successful","detail":{"AutoScalingGroupName":"db","EC2InstanceId":"i-3"}}`, want: controller.Trigger{Groups: []string{"db"}}},
		{name: "scheduled event", raw: `{"version":"0","source":"aws.events","detail-type":"Scheduled Event","detail":{}}`, want: controller.Trigger{All: true}},
		{name: "test notification", raw: `{"Event":"autoscaling:TEST_NOTIFICATION","AutoScalingGroupName":"web"}`},
		{name: "unknown document", raw: `{"hello":"world"}`, err: true},
		{name: "not JSON", raw: `hello`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := controller.ParseEvent([]byte(tt.raw))
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("trigger = %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, err := controller.ParseEvent([]byte(`{"hello":1}`)); !errors.Is(err, controller.ErrUnknownEvent) {
		t.Errorf("err = %v, want ErrUnknownEvent", err)
	}
}
