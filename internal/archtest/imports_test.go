package archtest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/lifeguardhq/lifeguard"

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// reporter is the part of testing.TB that listPackages reports through.
type reporter interface {
	Helper()
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

// listPackages runs `go list -json` over the module (non-test files only)
// with goTool. When goTool cannot run, the rules cannot be checked: that
// fails under CI=true, where the toolchain is installed, and skips loudly
// elsewhere.
func listPackages(r reporter, goTool string) []pkg {
	r.Helper()
	cmd := exec.Command(goTool, "list", "-json", module+"/...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		r.Fatalf("go list: %v", err)
		return nil
	}
	if err := cmd.Start(); err != nil {
		if os.Getenv("CI") == "true" {
			r.Fatalf("go list cannot run under CI=true, so the import rules are not checked: %v", err)
		} else {
			r.Skipf("SKIPPED: go list cannot run, so the import rules are NOT checked (this fails under CI=true): %v", err)
		}
		return nil
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			r.Fatalf("decode go list: %v", err)
			return nil
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		r.Fatalf("go list: %v", err)
		return nil
	}
	return pkgs
}

func rel(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, module), "/") }

func under(path, prefix string) bool {
	r := rel(path)
	return r == prefix || strings.HasPrefix(r, prefix+"/")
}

// clientSide are the packages that run against AWS (the agent's side).
var clientSide = []string{"internal/agent", "internal/controller", "internal/lifecycle", "internal/lease", "internal/jobs", "internal/lb", "internal/awscloud", "internal/config"}

// domain packages may not see the SDK or its adapter.
var domain = []string{"internal/agent", "internal/controller", "internal/lifecycle", "internal/lease", "internal/jobs", "internal/lb"}

// The sandbox's parts (DESIGN's layout): service packages translate one
// AWS protocol each to a state owner; owners hold one state domain each;
// the core is what every owner and service may share.
var (
	sandboxServices = []string{
		"internal/sandbox/autoscaling", "internal/sandbox/ec2", "internal/sandbox/sqs", "internal/sandbox/sns",
		"internal/sandbox/events", "internal/sandbox/imds", "internal/sandbox/dynamodb", "internal/sandbox/elbv2",
		"internal/sandbox/elb", "internal/sandbox/lambda",
	}
	sandboxOwners = []string{
		"internal/sandbox/world", "internal/sandbox/messaging", "internal/sandbox/tables",
		"internal/sandbox/balancers", "internal/sandbox/functions",
	}
	sandboxCore = []string{"internal/sandbox/eventlog", "internal/sandbox/pattern", "internal/sandbox/awsproto"}
)

// neutral packages may be used by the client side and the sandbox alike,
// and import neither.
var neutral = []string{"internal/proc", "internal/simclock"}

// drivers play the user: they start a sandbox, drive it with the AWS SDK
// as a user's scripts would, and run the client side against it (the
// demo, the benchmark scenarios, and the CLI that offers both). Nothing
// but the CLI and main may import a driver.
var drivers = []string{"internal/cli", "internal/demo", "internal/bench"}

// sandboxOnly packages serve the sandbox and no client-side package.
var sandboxOnly = []string{"internal/simclock"}

// which returns the prefix of prefixes that path is under, or "".
func which(path string, prefixes []string) string {
	for _, pre := range prefixes {
		if under(path, pre) {
			return pre
		}
	}
	return ""
}

func isSDK(path string) bool { return strings.HasPrefix(path, "github.com/aws/aws-sdk-go-v2") }

func TestImportGraph(t *testing.T) {
	pkgs := listPackages(t, "go")
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// violations applies the import rules to a package graph.
func violations(pkgs []pkg) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	for _, p := range pkgs {
		public := !strings.HasPrefix(p.ImportPath, module+"/internal/") && p.ImportPath != module+"/cmd/lifeguard"
		for _, dep := range p.Deps {
			switch {
			case anyUnder(p.ImportPath, domain) && (isSDK(dep) || under(dep, "internal/awscloud")):
				add("domain package %s depends on %s: only internal/awscloud may use the AWS SDK", rel(p.ImportPath), dep)
			case under(p.ImportPath, "internal/sandbox") && isSDK(dep):
				add("sandbox package %s depends on the AWS SDK (%s): the sandbox must meet the client only on the wire", rel(p.ImportPath), dep)
			case under(p.ImportPath, "internal/sandbox") && anyUnder(dep, clientSide):
				add("sandbox package %s depends on client-side %s", rel(p.ImportPath), rel(dep))
			case public && isSDK(dep):
				add("public package %s depends on the AWS SDK (%s): it would pull the SDK into users' builds", rel(p.ImportPath), dep)
			}
		}
		for _, dep := range p.Deps {
			from, to := which(p.ImportPath, sandboxServices), which(dep, sandboxServices)
			if from != "" && to != "" && from != to {
				add("sandbox service %s depends on service %s: services meet only through state owners", rel(p.ImportPath), rel(dep))
			}
			if owner := which(p.ImportPath, sandboxOwners); owner != "" {
				if other := which(dep, sandboxOwners); other != "" && other != owner {
					add("state owner %s depends on owner %s: owners meet only through interfaces the server wires", rel(p.ImportPath), rel(dep))
				}
				if to != "" {
					add("state owner %s depends on service %s: services depend on owners, not the reverse", rel(p.ImportPath), rel(dep))
				}
			}
			if anyUnder(p.ImportPath, sandboxCore) && (to != "" || anyUnder(dep, sandboxOwners)) {
				add("sandbox core package %s depends on %s: the core imports no owner or service", rel(p.ImportPath), rel(dep))
			}
			if anyUnder(p.ImportPath, clientSide) && anyUnder(dep, sandboxOnly) {
				add("client-side %s depends on %s, which is the sandbox's only: client code calls time directly", rel(p.ImportPath), rel(dep))
			}
			if anyUnder(p.ImportPath, neutral) && (anyUnder(dep, clientSide) || under(dep, "internal/sandbox") || under(dep, "internal/cli")) {
				add("neutral package %s depends on %s: it may import neither the client side nor the sandbox", rel(p.ImportPath), rel(dep))
			}
		}
		for _, imp := range p.Imports {
			if isSDK(imp) && !under(p.ImportPath, "internal/awscloud") && !anyUnder(p.ImportPath, drivers) {
				add("%s imports the AWS SDK (%s) directly: only internal/awscloud (and the drivers: cli, demo, bench) may", rel(p.ImportPath), imp)
			}
			if anyUnder(imp, drivers) && !under(p.ImportPath, "internal/cli") && p.ImportPath != module+"/cmd/lifeguard" && !under(imp, p.ImportPath) {
				add("%s imports the driver %s: only internal/cli may", rel(p.ImportPath), rel(imp))
			}
		}
		// Only the drivers (and main) wire the client side and the sandbox together.
		if !anyUnder(p.ImportPath, drivers) && p.ImportPath != module+"/cmd/lifeguard" {
			client, sb := false, false
			for _, dep := range p.Deps {
				client = client || anyUnder(dep, clientSide)
				sb = sb || under(dep, "internal/sandbox")
			}
			if client && sb {
				add("%s wires the client side and the sandbox together: only the drivers (cli, demo, bench) may", rel(p.ImportPath))
			}
		}
	}
	return out
}

func anyUnder(path string, prefixes []string) bool {
	for _, pre := range prefixes {
		if under(path, pre) {
			return true
		}
	}
	return false
}

// TestImportRulesCatchViolations proves the rules can fail: each made-up
// graph breaks one rule, and violations must report it.
func TestImportRulesCatchViolations(t *testing.T) {
	cases := []struct {
		name string
		p    pkg
	}{
		{"domain package uses the SDK", pkg{ImportPath: module + "/internal/lifecycle", Deps: []string{"github.com/aws/aws-sdk-go-v2/service/autoscaling"}}},
		{"domain package uses the adapter", pkg{ImportPath: module + "/internal/lease", Deps: []string{module + "/internal/awscloud"}}},
		{"sandbox uses a client-side package", pkg{ImportPath: module + "/internal/sandbox/world", Deps: []string{module + "/internal/lifecycle"}}},
		{"sandbox uses the SDK", pkg{ImportPath: module + "/internal/sandbox/ec2", Deps: []string{"github.com/aws/aws-sdk-go-v2/service/ec2"}}},
		{"non-adapter imports the SDK", pkg{ImportPath: module + "/internal/config", Imports: []string{"github.com/aws/aws-sdk-go-v2/aws"}}},
		{"agent wires the sandbox", pkg{ImportPath: module + "/internal/agent", Deps: []string{module + "/internal/sandbox", module + "/internal/lifecycle"}}},
		{"public package pulls the SDK", pkg{ImportPath: module + "/sandbox", Deps: []string{"github.com/aws/aws-sdk-go-v2/aws"}}},
		{"a service uses another service", pkg{ImportPath: module + "/internal/sandbox/sns", Deps: []string{module + "/internal/sandbox/sqs"}}},
		{"a service uses another through a subpackage", pkg{ImportPath: module + "/internal/sandbox/elbv2", Deps: []string{module + "/internal/sandbox/ec2/wire"}}},
		{"an owner uses another owner", pkg{ImportPath: module + "/internal/sandbox/world", Deps: []string{module + "/internal/sandbox/messaging"}}},
		{"a new owner uses an old one", pkg{ImportPath: module + "/internal/sandbox/balancers", Deps: []string{module + "/internal/sandbox/world"}}},
		{"an owner uses a service", pkg{ImportPath: module + "/internal/sandbox/tables", Deps: []string{module + "/internal/sandbox/dynamodb"}}},
		{"the event log uses an owner", pkg{ImportPath: module + "/internal/sandbox/eventlog", Deps: []string{module + "/internal/sandbox/world"}}},
		{"the matchers use a service", pkg{ImportPath: module + "/internal/sandbox/pattern", Deps: []string{module + "/internal/sandbox/events"}}},
		{"the protocol package uses an owner", pkg{ImportPath: module + "/internal/sandbox/awsproto", Deps: []string{module + "/internal/sandbox/messaging"}}},
		{"client-side code uses the simulated clock", pkg{ImportPath: module + "/internal/agent", Deps: []string{module + "/internal/simclock"}}},
		{"the adapter uses the simulated clock", pkg{ImportPath: module + "/internal/awscloud", Deps: []string{module + "/internal/simclock"}}},
		{"proc uses the client side", pkg{ImportPath: module + "/internal/proc", Deps: []string{module + "/internal/jobs"}}},
		{"proc uses the sandbox", pkg{ImportPath: module + "/internal/proc", Deps: []string{module + "/internal/sandbox/instance"}}},
		{"simclock uses the sandbox", pkg{ImportPath: module + "/internal/simclock", Deps: []string{module + "/internal/sandbox/world"}}},
		{"a client-side package uses a driver", pkg{ImportPath: module + "/internal/agent", Imports: []string{module + "/internal/bench"}}},
		{"the sandbox uses a driver", pkg{ImportPath: module + "/internal/sandbox/world", Imports: []string{module + "/internal/demo"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := violations([]pkg{c.p}); len(got) == 0 {
				t.Errorf("rules let %q through", c.name)
			}
		})
	}
	allowed := []struct {
		name string
		p    pkg
	}{
		{"bench drives both sides", pkg{ImportPath: module + "/internal/bench", Imports: []string{"github.com/aws/aws-sdk-go-v2/aws"}, Deps: []string{module + "/internal/sandbox", module + "/internal/awscloud"}}},
		{"the demo drives both sides", pkg{ImportPath: module + "/internal/demo", Imports: []string{"github.com/aws/aws-sdk-go-v2/service/autoscaling"}, Deps: []string{module + "/internal/sandbox", module + "/internal/agent"}}},
		{"cli runs the drivers", pkg{ImportPath: module + "/internal/cli", Imports: []string{module + "/internal/bench", module + "/internal/demo"}}},
		{"cli wires everything", pkg{ImportPath: module + "/internal/cli", Deps: []string{module + "/internal/sandbox", module + "/internal/agent", module + "/internal/simclock"}}},
		{"the server wires owners and services", pkg{ImportPath: module + "/internal/sandbox", Deps: []string{module + "/internal/sandbox/world", module + "/internal/sandbox/messaging", module + "/internal/sandbox/sqs", module + "/internal/sandbox/autoscaling"}}},
		{"a service uses its owner and the core", pkg{ImportPath: module + "/internal/sandbox/sqs", Deps: []string{module + "/internal/sandbox/messaging", module + "/internal/sandbox/awsproto", module + "/internal/sandbox/eventlog", module + "/internal/simclock"}}},
		{"an owner uses the core", pkg{ImportPath: module + "/internal/sandbox/messaging", Deps: []string{module + "/internal/sandbox/eventlog", module + "/internal/sandbox/pattern", module + "/internal/simclock"}}},
		{"a service's own subpackage", pkg{ImportPath: module + "/internal/sandbox/ec2/wire", Deps: []string{module + "/internal/sandbox/ec2"}}},
		{"both sides use proc", pkg{ImportPath: module + "/internal/jobs", Deps: []string{module + "/internal/proc"}}},
		{"the sandbox uses proc", pkg{ImportPath: module + "/internal/sandbox/instance", Deps: []string{module + "/internal/proc"}}},
	}
	for _, c := range allowed {
		t.Run(c.name, func(t *testing.T) {
			if got := violations([]pkg{c.p}); len(got) != 0 {
				t.Errorf("allowed graph reported: %v", got)
			}
		})
	}
}

// fakeReporter records how listPackages reported.
type fakeReporter struct{ fatal, skip string }

func (f *fakeReporter) Helper()                           {}
func (f *fakeReporter) Fatalf(format string, args ...any) { f.fatal = fmt.Sprintf(format, args...) }
func (f *fakeReporter) Skipf(format string, args ...any)  { f.skip = fmt.Sprintf(format, args...) }

// TestGoListUnavailable checks that rules which cannot be checked fail the
// build under CI=true and skip loudly elsewhere.
func TestGoListUnavailable(t *testing.T) {
	tests := []struct {
		ci        string
		wantFatal bool
	}{
		{"true", true},
		{"", false},
	}
	for _, tt := range tests {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			var r fakeReporter
			if pkgs := listPackages(&r, "/nonexistent/go"); pkgs != nil {
				t.Fatalf("listPackages without a go tool returned %d packages", len(pkgs))
			}
			if gotFatal := r.fatal != ""; gotFatal != tt.wantFatal || gotFatal == (r.skip != "") {
				t.Errorf("fatal %q, skip %q; want fatal=%v and the other a skip", r.fatal, r.skip, tt.wantFatal)
			}
			if !tt.wantFatal && !strings.Contains(r.skip, "NOT checked") {
				t.Errorf("skip message %q does not say the rules were not checked", r.skip)
			}
		})
	}
}
