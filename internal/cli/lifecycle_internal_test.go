package cli

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// TestLifecycleStatusJSON checks the document of `lifecycle status -o
// json`: the pending transition's hooks only, timeouts in seconds, and an
// empty list (not null) when nothing is pending.
func TestLifecycleStatusJSON(t *testing.T) {
	hooks := []lifecycle.Hook{
		{Name: "ready", Transition: lifecycle.TransitionLaunching, HeartbeatTimeout: time.Hour, DefaultResult: lifecycle.Abandon},
		{Name: "drain", Transition: lifecycle.TransitionTerminating, HeartbeatTimeout: 5 * time.Minute, DefaultResult: lifecycle.Continue},
	}
	for _, c := range []struct {
		name, state string
		want        map[string]any
	}{
		{"pending launch", "Pending:Wait", map[string]any{
			"instance": "i-0123456789abcdef0", "group": "web", "lifecycle_state": "Pending:Wait", "target_state": "InService",
			"pending": []any{map[string]any{"hook": "ready", "transition": "autoscaling:EC2_INSTANCE_LAUNCHING",
				"heartbeat_timeout_seconds": 3600.0, "global_timeout_seconds": 172800.0, "default_result": "ABANDON"}},
		}},
		{"nothing pending", "InService", map[string]any{
			"instance": "i-0123456789abcdef0", "group": "web", "lifecycle_state": "InService", "target_state": "InService",
			"pending": []any{},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := pendingAction{instance: "i-0123456789abcdef0", group: "web", state: c.state, target: "InService", hooks: hooks}
			var b bytes.Buffer
			if err := writeJSON(&b, p.statusDoc()); err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(b.Bytes(), &got); err != nil {
				t.Fatalf("%v:\n%s", err, b.String())
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %v\nwant %v", got, c.want)
			}
		})
	}
}
