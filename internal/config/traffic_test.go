package config_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/config"
)

const tgARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"

func TestTrafficValidation(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // "" = valid
	}{
		{"off by default", "", ""},
		{"a target group with its port", "traffic:\n  target_groups: [{arn: " + tgARN + ", port: 8080}]\n", ""},
		{"a classic load balancer", "traffic:\n  load_balancers: [web-1]\n", ""},
		{"not an ARN", "traffic:\n  target_groups: [{arn: web}]\n", `traffic.target_groups[0].arn: "web" is not a target group ARN`},
		{"a load balancer ARN is not a target group's", "traffic:\n  target_groups: [{arn: \"arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/x/1\"}]\n", "is not a target group ARN"},
		{"port out of range", "traffic:\n  target_groups: [{arn: " + tgARN + ", port: 70000}]\n", "traffic.target_groups[0].port: 70000 is not a port"},
		{"duplicate target group", "traffic:\n  target_groups: [{arn: " + tgARN + "}, {arn: " + tgARN + "}]\n", "traffic.target_groups[1]: listed twice"},
		{"bad classic name", "traffic:\n  load_balancers: [-web]\n", `traffic.load_balancers[0]: "-web" is not a load balancer name`},
		{"unknown mode", "traffic:\n  from_tags: true\n  mode: mine\n", `traffic.mode: "mine" is not one of auto, self, group`},
		{"short wait", "traffic:\n  from_tags: true\n  wait_healthy_timeout: 10ms\n", "traffic.wait_healthy_timeout: 10ms is too short"},
		{"ignored while off", "traffic:\n  mode: mine\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.ParseAgent([]byte(tt.yaml))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("ParseAgent = %v; want valid", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("ParseAgent = %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestParseTrafficTags(t *testing.T) {
	tgs, err := config.ParseTargetGroupsTag(" " + tgARN + "=8080, ," + tgARN + "2")
	if err != nil {
		t.Fatal(err)
	}
	want := []config.TargetGroup{{ARN: tgARN, Port: 8080}, {ARN: tgARN + "2"}}
	if !reflect.DeepEqual(tgs, want) {
		t.Errorf("ParseTargetGroupsTag = %+v, want %+v", tgs, want)
	}
	for _, bad := range []string{"web", tgARN + "=0", tgARN + "=http"} {
		if _, err := config.ParseTargetGroupsTag(bad); err == nil || !strings.Contains(err.Error(), config.TagTargetGroups) {
			t.Errorf("ParseTargetGroupsTag(%q) = %v; want an error naming the tag", bad, err)
		}
	}
	names, err := config.ParseLoadBalancersTag("web-1, web-2,")
	if err != nil || !reflect.DeepEqual(names, []string{"web-1", "web-2"}) {
		t.Errorf("ParseLoadBalancersTag = %q, %v", names, err)
	}
	if _, err := config.ParseLoadBalancersTag("web_1"); err == nil {
		t.Error("ParseLoadBalancersTag(web_1) = nil error; want one")
	}
}
