package autoscaling_test

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// errorResponse is awsquery's error envelope.
type errorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Error   struct {
		Type, Code, Message string
	}
	RequestID string `xml:"RequestId"`
}

// form builds an Auto Scaling request body from key/value pairs.
func form(action string, kv ...string) url.Values {
	v := url.Values{"Version": {"2011-01-01"}}
	if action != "" {
		v.Set("Action", action)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

func TestProtocolErrors(t *testing.T) {
	e := newEnv(t)
	e.createGroup(t, groupSpec{})
	tests := []struct {
		name        string
		body        url.Values
		raw         string // sent instead of body when set
		wantStatus  int
		wantCode    string
		wantMessage string
	}{
		{
			name: "unknown action", body: form("PutWarmPool", "AutoScalingGroupName", "g"),
			wantStatus: 400, wantCode: "InvalidAction", wantMessage: "Could not find operation PutWarmPool for version 2011-01-01",
		},
		{
			name: "missing action", body: form(""),
			wantStatus: 400, wantCode: "MissingAction", wantMessage: "The request must contain the parameter Action.",
		},
		{
			name: "missing group name", body: form("CreateAutoScalingGroup", "MinSize", "1", "MaxSize", "1", "LaunchConfigurationName", "lc"),
			wantStatus: 400, wantCode: "ValidationError",
			wantMessage: "1 validation error detected: Value null at 'autoScalingGroupName' failed to satisfy constraint: Member must not be null",
		},
		{
			name: "missing desired capacity", body: form("SetDesiredCapacity", "AutoScalingGroupName", "g"),
			wantStatus: 400, wantCode: "ValidationError",
			wantMessage: "1 validation error detected: Value null at 'desiredCapacity' failed to satisfy constraint: Member must not be null",
		},
		{
			name: "missing protection flag", body: form("SetInstanceProtection", "AutoScalingGroupName", "g", "InstanceIds", ""),
			wantStatus: 400, wantCode: "ValidationError",
			wantMessage: "1 validation error detected: Value null at 'protectedFromScaleIn' failed to satisfy constraint: Member must not be null",
		},
		{
			name: "malformed integer names the parameter", body: form("SetDesiredCapacity", "AutoScalingGroupName", "g", "DesiredCapacity", "two"),
			wantStatus: 400, wantCode: "ValidationError", wantMessage: `Invalid value "two" for parameter DesiredCapacity: must be an integer.`,
		},
		{
			name: "integer beyond 32 bits", body: form("SetDesiredCapacity", "AutoScalingGroupName", "g", "DesiredCapacity", "4294967296"),
			wantStatus: 400, wantCode: "ValidationError", wantMessage: `Invalid value "4294967296" for parameter DesiredCapacity: must be a 32-bit integer.`,
		},
		{
			name: "malformed boolean names the parameter", body: form("DeleteAutoScalingGroup", "AutoScalingGroupName", "g", "ForceDelete", "yes"),
			wantStatus: 400, wantCode: "ValidationError", wantMessage: `Invalid value "yes" for parameter ForceDelete: must be true or false.`,
		},
		{
			name: "malformed nested boolean names the full parameter", body: form("CreateOrUpdateTags", "Tags.member.1.ResourceId", "g", "Tags.member.1.Key", "k", "Tags.member.1.PropagateAtLaunch", "maybe"),
			wantStatus: 400, wantCode: "ValidationError", wantMessage: `Invalid value "maybe" for parameter Tags.member.1.PropagateAtLaunch: must be true or false.`,
		},
		{
			name: "mixed instances policy is not modelled",
			body: form("CreateAutoScalingGroup", "AutoScalingGroupName", "m", "MinSize", "0", "MaxSize", "1",
				"MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification.LaunchTemplateName", "t"),
			wantStatus: 400, wantCode: "ValidationError", wantMessage: "The lifeguard sandbox does not model MixedInstancesPolicy; remove it from the request.",
		},
		{
			name:       "group from an instance is not modelled",
			body:       form("CreateAutoScalingGroup", "AutoScalingGroupName", "m", "MinSize", "0", "MaxSize", "1", "InstanceId", "i-0123456789abcdef0"),
			wantStatus: 400, wantCode: "ValidationError", wantMessage: "The lifeguard sandbox does not model InstanceId; remove it from the request.",
		},
		{
			name: "an unknown target group",
			body: form("CreateAutoScalingGroup", "AutoScalingGroupName", "m", "MinSize", "0", "MaxSize", "1", "LaunchConfigurationName", "lc",
				"AvailabilityZones.member.1", "us-east-1a", "TargetGroupARNs.member.1", "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/73e2d6bc24d8a067"),
			wantStatus: 400, wantCode: "ValidationError", wantMessage: "Provided Target Groups may not be valid. Please ensure they exist and try again.",
		},
		{
			name: "desired capacity beyond the sandbox's bound", body: form("SetDesiredCapacity", "AutoScalingGroupName", "g", "DesiredCapacity", "2000000000"),
			wantStatus: 400, wantCode: "ValidationError", wantMessage: "The lifeguard sandbox does not model groups of more than 10000 instances: DesiredCapacity 2000000000.",
		},
		{
			name: "undecodable body", raw: "Action=DescribeTags&Version=2011-01-01&Bad=%zz",
			wantStatus: 400, wantCode: "MalformedQueryString",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.body.Encode()
			if tt.raw != "" {
				body = tt.raw
			}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := e.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got errorResponse
			if err := xml.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatalf("decoding <ErrorResponse>: %v", err)
			}
			if resp.StatusCode != tt.wantStatus || got.Error.Code != tt.wantCode || (tt.wantMessage != "" && got.Error.Message != tt.wantMessage) {
				t.Errorf("got %d %s %q, want %d %s %q", resp.StatusCode, got.Error.Code, got.Error.Message, tt.wantStatus, tt.wantCode, tt.wantMessage)
			}
			if got.Error.Type != "Sender" {
				t.Errorf("Type = %q, want Sender", got.Error.Type)
			}
			if got.RequestID == "" || resp.Header.Get("x-amzn-RequestId") != got.RequestID {
				t.Errorf("RequestId %q, header %q: want the same non-empty id", got.RequestID, resp.Header.Get("x-amzn-RequestId"))
			}
		})
	}
}

func TestProtocolSuccessEnvelope(t *testing.T) {
	e := newEnv(t)
	e.createGroup(t, groupSpec{})
	tests := []struct {
		name string
		body url.Values
		want string // substring of the body
		not  string // must not appear
	}{
		{
			name: "operation with an output shape carries an empty Result",
			body: form("PutLifecycleHook", "AutoScalingGroupName", "g", "LifecycleHookName", "h", "LifecycleTransition", "autoscaling:EC2_INSTANCE_LAUNCHING"),
			want: "<PutLifecycleHookResult/><ResponseMetadata><RequestId>",
		},
		{
			name: "operation without an output shape carries only metadata",
			body: form("SetDesiredCapacity", "AutoScalingGroupName", "g", "DesiredCapacity", "0"),
			want: `<SetDesiredCapacityResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><ResponseMetadata>`,
			not:  "SetDesiredCapacityResult",
		},
		{
			name: "empty lists keep their wrapper",
			body: form("DescribeTags"),
			want: "<DescribeTagsResult><Tags></Tags></DescribeTagsResult>",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.post(t, tt.body)
			if status != http.StatusOK || !strings.Contains(body, tt.want) || (tt.not != "" && strings.Contains(body, tt.not)) {
				t.Errorf("got %d %s, want 200 containing %q", status, body, tt.want)
			}
		})
	}
}
