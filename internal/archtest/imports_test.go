package archtest_test

import (
	"encoding/json"
	"fmt"
	"io"
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

// listPackages runs `go list -json` over the module (non-test files only).
func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
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

func isSDK(path string) bool { return strings.HasPrefix(path, "github.com/aws/aws-sdk-go-v2") }

func TestImportGraph(t *testing.T) {
	pkgs := listPackages(t)
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
		for _, imp := range p.Imports {
			if isSDK(imp) && !under(p.ImportPath, "internal/awscloud") {
				add("%s imports the AWS SDK (%s) directly: only internal/awscloud may", rel(p.ImportPath), imp)
			}
		}
		// Only cli (and main) wire the client side and the sandbox together.
		if !under(p.ImportPath, "internal/cli") && p.ImportPath != module+"/cmd/lifeguard" {
			client, sb := false, false
			for _, dep := range p.Deps {
				client = client || anyUnder(dep, clientSide)
				sb = sb || under(dep, "internal/sandbox")
			}
			if client && sb {
				add("%s wires the client side and the sandbox together: only internal/cli may", rel(p.ImportPath))
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
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := violations([]pkg{c.p}); len(got) == 0 {
				t.Errorf("rules let %q through", c.name)
			}
		})
	}
	if got := violations([]pkg{{ImportPath: module + "/internal/cli", Deps: []string{module + "/internal/sandbox", module + "/internal/agent"}}}); len(got) != 0 {
		t.Errorf("cli wiring everything was reported: %v", got)
	}
}
