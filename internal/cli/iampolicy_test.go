package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/cli"
	"github.com/lifeguardhq/lifeguard/internal/iampolicy"
)

func TestIAMPolicyPrintsTheConfigsPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte("leader: {mode: lease, table: leases}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "iam-policy", "--config", path, "--group", "web")
	if err != nil {
		t.Fatalf("iam-policy: %v\n%s", err, out)
	}
	var p iampolicy.Policy
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("output is not a policy: %v\n%s", err, out)
	}
	if p.Version != iampolicy.Version || !p.Allows("dynamodb:UpdateItem") || p.Allows("ec2:CreateTags") {
		t.Errorf("policy for a lease without the tag mirror:\n%s", out)
	}
	if !strings.Contains(out, "autoScalingGroupName/web") {
		t.Errorf("--group web does not narrow the lifecycle actions:\n%s", out)
	}
}

func TestIAMPolicyController(t *testing.T) {
	out, err := run(t, "iam-policy", "--controller", "--lease-table", "leases", "--reap-queues")
	if err != nil {
		t.Fatalf("iam-policy --controller: %v\n%s", err, out)
	}
	var p iampolicy.Policy
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("output is not a policy: %v\n%s", err, out)
	}
	for _, a := range []string{"dynamodb:Query", "autoscaling:CompleteLifecycleAction", "sqs:ListQueues", "ec2:CreateTags"} {
		if !slices.Contains(p.Actions(), a) {
			t.Errorf("controller policy lacks %s:\n%s", a, out)
		}
	}
	_, err = run(t, "iam-policy", "--controller", "--opt-in-tag", "novalue")
	if code, _ := cli.ExitCode(err); code != cli.ExitUsage || !strings.Contains(err.Error(), "--opt-in-tag") {
		t.Errorf("bad --opt-in-tag: %v (exit %d), want a usage error naming the flag", err, code)
	}
}
