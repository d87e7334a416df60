package deploytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/iampolicy"
)

// deployDir is the repository's deploy/ folder.
const deployDir = "../../deploy"

func read(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// kitEnv is what the kits' agent configurations expand.
func kitEnv(t *testing.T) {
	t.Setenv("LIFEGUARD_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/web-lifecycle")
	t.Setenv("LIFEGUARD_LEASE_TABLE", "lifeguard-leases")
}

// toolMissing skips a test that needs a program not on this machine, and
// fails it under CI=true.
func toolMissing(t *testing.T, name string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed; CI must have it", name)
	}
	t.Skipf("SKIPPED: %s is not installed, the kit is not linted", name)
}

func TestCloudFormationPassesCfnLint(t *testing.T) {
	path, err := exec.LookPath("cfn-lint")
	if err != nil {
		toolMissing(t, "cfn-lint")
	}
	out, err := exec.Command(path, filepath.Join(deployDir, "cloudformation", "lifeguard.yaml")).CombinedOutput()
	if err != nil {
		t.Fatalf("cfn-lint: %v\n%s", err, out)
	}
}

// cfnTemplate is the CloudFormation template, short-form functions read as
// their argument strings.
type cfnTemplate struct {
	Parameters map[string]any `yaml:"Parameters"`
	Resources  map[string]struct {
		Type       string         `yaml:"Type"`
		Properties map[string]any `yaml:"Properties"`
	} `yaml:"Resources"`
}

func loadCFN(t *testing.T) cfnTemplate {
	t.Helper()
	var tpl cfnTemplate
	if err := yaml.Unmarshal(read(t, "cloudformation/lifeguard.yaml"), &tpl); err != nil {
		t.Fatalf("cloudformation/lifeguard.yaml: %v", err)
	}
	return tpl
}

// policyActions returns the sorted actions of a policy document decoded
// from YAML or JSON.
func policyActions(t *testing.T, doc any) []string {
	t.Helper()
	m, ok := doc.(map[string]any)
	if !ok {
		t.Fatalf("policy document %v is not a map", doc)
	}
	var out []string
	sts, _ := m["Statement"].([]any)
	for _, s := range sts {
		st, _ := s.(map[string]any)
		if st["Effect"] != "Allow" {
			t.Errorf("statement %v: only Allow statements are expected", st)
		}
		switch a := st["Action"].(type) {
		case string:
			out = append(out, a)
		case []any:
			for _, x := range a {
				out = append(out, x.(string))
			}
		default:
			t.Errorf("statement %v has no Action", st)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// userDataConfig returns the agent configuration the user data writes.
func userDataConfig(t *testing.T) []byte {
	t.Helper()
	m := regexp.MustCompile(`(?s)cat >/etc/lifeguard/agent.yaml <<'CONFIG'\n(.*?)\nCONFIG\n`).FindSubmatch(read(t, "user-data/al2023.sh"))
	if m == nil {
		t.Fatal("user-data/al2023.sh writes no /etc/lifeguard/agent.yaml")
	}
	return m[1]
}

// kitAgentPolicy is what `lifeguard iam-policy --config` prints for the
// configuration the CloudFormation and Terraform kits' instances run.
func kitAgentPolicy(t *testing.T) iampolicy.Policy {
	t.Helper()
	kitEnv(t)
	cfg, err := config.ParseAgent(userDataConfig(t))
	if err != nil {
		t.Fatalf("the user data's agent configuration: %v", err)
	}
	p, err := iampolicy.Agent(cfg, iampolicy.Scope{Group: "web"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// kitControllerPolicy is `lifeguard iam-policy --controller --lease-table
// TABLE`, the flags the kits give their controller.
func kitControllerPolicy(t *testing.T) iampolicy.Policy {
	t.Helper()
	p, err := iampolicy.ForController(iampolicy.Controller{
		LeaseTable: "lifeguard-leases", OptInKey: "lifeguard:controller", OptInValue: "enabled", LeaderKey: "app:isLeader",
	}, iampolicy.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCloudFormationIAMEqualsIAMPolicy(t *testing.T) {
	tpl := loadCFN(t)
	for name, want := range map[string]iampolicy.Policy{
		"InstancePolicy":   kitAgentPolicy(t),
		"ControllerPolicy": kitControllerPolicy(t),
	} {
		r, ok := tpl.Resources[name]
		if !ok {
			t.Fatalf("the template has no %s", name)
		}
		if got := policyActions(t, r.Properties["PolicyDocument"]); !slices.Equal(got, want.Actions()) {
			t.Errorf("%s grants\n %q\nlifeguard iam-policy prints\n %q", name, got, want.Actions())
		}
	}
	flags := tpl.Resources["Controller"].Properties["Environment"].(map[string]any)["Variables"].(map[string]any)["LIFEGUARD_CONTROLLER_FLAGS"]
	if flags != "--lease-table ${LeaseTable}" {
		t.Errorf("the controller runs with %q; its policy is that of --lease-table only", flags)
	}
}

// unitDirectives returns a systemd unit's sections and directives, without
// comments, blank lines and Documentation=.
func unitDirectives(unit string) []string {
	var out []string
	for line := range strings.Lines(unit) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "Documentation=") {
			continue
		}
		out = append(out, line)
	}
	return out
}

func checkUnit(t *testing.T, kit, unit string) {
	t.Helper()
	want := unitDirectives(string(read(t, "systemd/lifeguard-agent.service")))
	if got := unitDirectives(unit); !slices.Equal(got, want) {
		t.Errorf("%s installs the unit\n%s\nnot deploy/systemd/lifeguard-agent.service's\n%s", kit, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// checkSeedLeader checks that cfg keeps the marker file and leader tag of
// the seed's cron lines.
func checkSeedLeader(t *testing.T, kit string, cfg config.Agent) {
	t.Helper()
	l := cfg.Leader
	if l.Mode != config.LeaderLease || l.MarkerFile != "/var/app/leader/leader-manager-is-leader" ||
		l.Tag != (config.LeaderTag{Enabled: true, Key: "leader", Value: "true", FollowerValue: "false"}) {
		t.Errorf("%s: leader %+v, want a lease keeping /var/app/leader/leader-manager-is-leader and leader=true|false", kit, l)
	}
}

func TestUserDataInstallsAndStartsTheAgent(t *testing.T) {
	script := string(read(t, "user-data/al2023.sh"))
	if out, err := exec.Command("bash", "-n", filepath.Join(deployDir, "user-data", "al2023.sh")).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	kitEnv(t)
	cfg, err := config.ParseAgent(userDataConfig(t))
	if err != nil {
		t.Fatalf("agent configuration: %v", err)
	}
	checkSeedLeader(t, "user data", cfg)
	if cfg.Source != config.SourceSQS || cfg.Launch.Hook != "lifeguard-launch" || cfg.Terminate.Hook != "lifeguard-terminate" {
		t.Errorf("user data: source %s, hooks %q and %q; want the kits' queue and hooks", cfg.Source, cfg.Launch.Hook, cfg.Terminate.Hook)
	}
	m := regexp.MustCompile(`(?s)<<'UNIT'\n(.*?)\nUNIT\n`).FindStringSubmatch(script)
	if m == nil {
		t.Fatal("user data installs no unit")
	}
	checkUnit(t, "user data", m[1])
	for _, want := range []string{"--check-config", "systemctl enable --now lifeguard-agent.service"} {
		if !strings.Contains(script, want) {
			t.Errorf("user data does not run %q", want)
		}
	}
}

func TestElasticBeanstalkExtension(t *testing.T) {
	var eb struct {
		OptionSettings map[string]map[string]string `yaml:"option_settings"`
		Resources      map[string]struct {
			Type       string         `yaml:"Type"`
			Properties map[string]any `yaml:"Properties"`
		} `yaml:"Resources"`
		Files map[string]struct {
			Mode    string `yaml:"mode"`
			Owner   string `yaml:"owner"`
			Group   string `yaml:"group"`
			Content string `yaml:"content"`
		} `yaml:"files"`
		Commands map[string]struct {
			Command string `yaml:"command"`
		} `yaml:"commands"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(read(t, "elasticbeanstalk/.ebextensions/lifeguard.config"))))
	dec.KnownFields(true)
	if err := dec.Decode(&eb); err != nil {
		t.Fatalf("lifeguard.config: %v", err)
	}
	env := eb.OptionSettings["aws:elasticbeanstalk:application:environment"]
	t.Setenv("LIFEGUARD_LEASE_TABLE", env["LIFEGUARD_LEASE_TABLE"])
	cfg, err := config.ParseAgent([]byte(eb.Files["/etc/lifeguard/agent.yaml"].Content))
	if err != nil {
		t.Fatalf("the extension's agent configuration: %v", err)
	}
	checkSeedLeader(t, "elasticbeanstalk", cfg)
	if cfg.Leader.Table != "lifeguard-leases" {
		t.Errorf("leader.table %q, want the environment's LIFEGUARD_LEASE_TABLE", cfg.Leader.Table)
	}
	hooks := map[string]string{}
	for name, r := range eb.Resources {
		if r.Type != "AWS::AutoScaling::LifecycleHook" || r.Properties["AutoScalingGroupName"].(map[string]any)["Ref"] != "AWSEBAutoScalingGroup" {
			t.Errorf("resource %s: %s, want a lifecycle hook on AWSEBAutoScalingGroup", name, r.Type)
			continue
		}
		hooks[r.Properties["LifecycleTransition"].(string)] = r.Properties["LifecycleHookName"].(string)
	}
	if hooks["autoscaling:EC2_INSTANCE_LAUNCHING"] != cfg.Launch.Hook || hooks["autoscaling:EC2_INSTANCE_TERMINATING"] != cfg.Terminate.Hook {
		t.Errorf("hooks %v, the agent waits for %q and %q", hooks, cfg.Launch.Hook, cfg.Terminate.Hook)
	}
	checkUnit(t, "elasticbeanstalk", eb.Files["/etc/systemd/system/lifeguard-agent.service"].Content)
	var cmds []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range eb.Commands {
			if !yield(k) {
				return
			}
		}
	}) {
		cmds = append(cmds, eb.Commands[k].Command)
	}
	all := strings.Join(cmds, "\n")
	for _, want := range []string{"install -d -m 0755 /var/app/leader", "--check-config", "systemctl enable lifeguard-agent.service", "LIFEGUARD_BINARY_URL"} {
		if !strings.Contains(all, want) {
			t.Errorf("the extension's commands do not run %q", want)
		}
	}
	if strings.Index(all, "--check-config") > strings.Index(all, "systemctl restart") {
		t.Error("the extension starts the agent before checking its configuration")
	}
}
