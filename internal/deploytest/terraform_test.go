package deploytest

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// tfModule is what one Terraform directory declares.
type tfModule struct {
	dir       string
	variables map[string]bool // name → has a default
	locals    map[string]bool
	outputs   map[string]bool
	resources map[string]*hclsyntax.Block // TYPE.NAME
	data      map[string]bool             // TYPE.NAME
	modules   map[string]*hclsyntax.Block
	bodies    []*hclsyntax.Body // every top-level block's body, to walk
	attrs     []*hclsyntax.Attribute
}

func parseTF(t *testing.T, dir string) *tfModule {
	t.Helper()
	m := &tfModule{dir: dir, variables: map[string]bool{}, locals: map[string]bool{}, outputs: map[string]bool{},
		resources: map[string]*hclsyntax.Block{}, data: map[string]bool{}, modules: map[string]*hclsyntax.Block{}}
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no .tf files in %s (%v)", dir, err)
	}
	p := hclparse.NewParser()
	for _, f := range files {
		file, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", f, diags.Error())
		}
		body := file.Body.(*hclsyntax.Body)
		if len(body.Attributes) > 0 {
			t.Errorf("%s: top-level attributes are not Terraform", f)
		}
		for _, b := range body.Blocks {
			key := strings.Join(b.Labels, ".")
			switch b.Type {
			case "variable":
				// Its type is a type expression and its default a
				// constant: nothing to resolve.
				_, m.variables[key] = b.Body.Attributes["default"]
				continue
			case "output":
				m.outputs[key] = true
			case "resource":
				if m.resources[key] != nil {
					t.Errorf("%s: resource %s declared twice", f, key)
				}
				m.resources[key] = b
			case "data":
				m.data[key] = true
			case "module":
				m.modules[key] = b
			case "locals":
				for name, a := range b.Body.Attributes {
					m.locals[name] = true
					m.attrs = append(m.attrs, a)
				}
				continue
			case "terraform", "provider":
			default:
				t.Errorf("%s: unknown block %q", f, b.Type)
			}
			m.bodies = append(m.bodies, b.Body)
		}
	}
	return m
}

// expressions returns every expression in body, nested blocks included.
func expressions(body *hclsyntax.Body) []hclsyntax.Expression {
	var out []hclsyntax.Expression
	for _, a := range body.Attributes {
		out = append(out, a.Expr)
	}
	for _, b := range body.Blocks {
		out = append(out, expressions(b.Body)...)
	}
	return out
}

func attrName(tr hcl.Traversal, i int) string {
	if len(tr) <= i {
		return ""
	}
	if a, ok := tr[i].(hcl.TraverseAttr); ok {
		return a.Name
	}
	return ""
}

// checkReferences reports every reference in m that names nothing m (or
// the module it calls) declares.
func checkReferences(t *testing.T, m *tfModule, loadModule func(source string) *tfModule) {
	t.Helper()
	exprs := []hclsyntax.Expression{}
	for _, b := range m.bodies {
		exprs = append(exprs, expressions(b)...)
	}
	for _, a := range m.attrs {
		exprs = append(exprs, a.Expr)
	}
	for _, e := range exprs {
		for _, tr := range e.Variables() {
			root, first := tr.RootName(), attrName(tr, 1)
			pos := tr.SourceRange().String()
			switch root {
			case "var":
				if _, ok := m.variables[first]; !ok {
					t.Errorf("%s: var.%s is not declared", pos, first)
				}
			case "local":
				if !m.locals[first] {
					t.Errorf("%s: local.%s is not declared", pos, first)
				}
			case "data":
				if !m.data[first+"."+attrName(tr, 2)] {
					t.Errorf("%s: data.%s.%s is not declared", pos, first, attrName(tr, 2))
				}
			case "module":
				call, ok := m.modules[first]
				if !ok {
					t.Errorf("%s: module.%s is not declared", pos, first)
					continue
				}
				if out := attrName(tr, 2); !loadModule(sourceOf(t, call)).outputs[out] {
					t.Errorf("%s: module.%s has no output %s", pos, first, out)
				}
			case "path", "terraform", "self", "each", "count":
			default:
				if m.resources[root+"."+first] == nil {
					t.Errorf("%s: resource %s.%s is not declared", pos, root, first)
				}
			}
		}
	}
	for name, call := range m.modules {
		callee := loadModule(sourceOf(t, call))
		for arg := range call.Body.Attributes {
			if _, ok := callee.variables[arg]; !ok && !slices.Contains([]string{"source", "version", "providers", "count", "for_each", "depends_on"}, arg) {
				t.Errorf("module %s: %s is not a variable of %s", name, arg, callee.dir)
			}
		}
		for v, hasDefault := range callee.variables {
			if _, given := call.Body.Attributes[v]; !hasDefault && !given {
				t.Errorf("module %s: required variable %s is not given", name, v)
			}
		}
	}
}

func sourceOf(t *testing.T, call *hclsyntax.Block) string {
	t.Helper()
	v, diags := call.Body.Attributes["source"].Expr.Value(nil)
	if diags.HasErrors() || v.Type().FriendlyName() != "string" {
		t.Fatalf("module source: %s", diags.Error())
	}
	return v.AsString()
}

func TestTerraformReferencesResolve(t *testing.T) {
	module := parseTF(t, filepath.Join(deployDir, "terraform", "modules", "lifeguard"))
	example := parseTF(t, filepath.Join(deployDir, "terraform", "examples", "basic"))
	loadModule := func(source string) *tfModule {
		if filepath.Join(example.dir, source) != module.dir {
			t.Fatalf("the example uses module %s, not %s", source, module.dir)
		}
		return module
	}
	checkReferences(t, module, loadModule)
	checkReferences(t, example, loadModule)
	if len(example.modules) != 1 {
		t.Errorf("the example calls %d modules, want the lifeguard module", len(example.modules))
	}
}

// tfPolicyActions returns the actions of the jsonencode'd policy of an
// aws_iam_role_policy, read from its literal Action lists.
func tfPolicyActions(t *testing.T, r *hclsyntax.Block) []string {
	t.Helper()
	var out []string
	diags := hclsyntax.VisitAll(r.Body.Attributes["policy"].Expr, func(n hclsyntax.Node) hcl.Diagnostics {
		obj, ok := n.(*hclsyntax.ObjectConsExpr)
		if !ok {
			return nil
		}
		for _, item := range obj.Items {
			k, diags := item.KeyExpr.Value(nil)
			if diags.HasErrors() || k.Type().FriendlyName() != "string" || k.AsString() != "Action" {
				continue
			}
			v, diags := item.ValueExpr.Value(nil)
			if diags.HasErrors() {
				return diags
			}
			for it := v.ElementIterator(); it.Next(); {
				_, a := it.Element()
				out = append(out, a.AsString())
			}
		}
		return nil
	})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func TestTerraformIAMEqualsIAMPolicy(t *testing.T) {
	module := parseTF(t, filepath.Join(deployDir, "terraform", "modules", "lifeguard"))
	for name, want := range map[string][]string{
		"aws_iam_role_policy.instance":   kitAgentPolicy(t).Actions(),
		"aws_iam_role_policy.controller": kitControllerPolicy(t).Actions(),
	} {
		r := module.resources[name]
		if r == nil {
			t.Fatalf("the module has no %s", name)
		}
		if got := tfPolicyActions(t, r); !slices.Equal(got, want) {
			t.Errorf("%s grants\n %q\nlifeguard iam-policy prints\n %q", name, got, want)
		}
	}
}

// cfnKind is the CloudFormation resource type of each Terraform resource
// type the kits use. Three Terraform resources are properties of a
// CloudFormation one: a group's notification configuration
// (NotificationConfigurations), a rule's target (Targets) and a role's
// managed policy (ManagedPolicyArns).
var cfnKind = map[string]string{
	"aws_dynamodb_table":             "AWS::DynamoDB::Table",
	"aws_sns_topic":                  "AWS::SNS::Topic",
	"aws_sqs_queue":                  "AWS::SQS::Queue",
	"aws_sns_topic_subscription":     "AWS::SNS::Subscription",
	"aws_autoscaling_group":          "AWS::AutoScaling::AutoScalingGroup",
	"aws_autoscaling_notification":   "AWS::AutoScaling::AutoScalingGroup NotificationConfigurations",
	"aws_autoscaling_lifecycle_hook": "AWS::AutoScaling::LifecycleHook",
	"aws_iam_role":                   "AWS::IAM::Role",
	"aws_iam_role_policy":            "AWS::IAM::Policy",
	"aws_iam_instance_profile":       "AWS::IAM::InstanceProfile",
	"aws_iam_role_policy_attachment": "AWS::IAM::Role ManagedPolicyArns",
	"aws_lambda_function":            "AWS::Lambda::Function",
	"aws_lambda_permission":          "AWS::Lambda::Permission",
	"aws_cloudwatch_event_rule":      "AWS::Events::Rule",
	"aws_cloudwatch_event_target":    "AWS::Events::Rule Targets",
}

func TestTerraformAndCloudFormationDeclareTheSameResources(t *testing.T) {
	module := parseTF(t, filepath.Join(deployDir, "terraform", "modules", "lifeguard"))
	var tf []string
	for key := range module.resources {
		typ, _, _ := strings.Cut(key, ".")
		kind, ok := cfnKind[typ]
		if !ok {
			t.Errorf("Terraform resource %s has no CloudFormation kind in this test's table", key)
			continue
		}
		tf = append(tf, kind)
	}
	var cfn []string
	for _, r := range loadCFN(t).Resources {
		cfn = append(cfn, r.Type)
		if r.Type == "AWS::AutoScaling::AutoScalingGroup" && r.Properties["NotificationConfigurations"] != nil {
			cfn = append(cfn, r.Type+" NotificationConfigurations")
		}
		if r.Type == "AWS::IAM::Role" {
			managed, _ := r.Properties["ManagedPolicyArns"].([]any)
			for range managed {
				cfn = append(cfn, r.Type+" ManagedPolicyArns")
			}
		}
		if r.Type == "AWS::Events::Rule" {
			targets, _ := r.Properties["Targets"].([]any)
			for range targets {
				cfn = append(cfn, r.Type+" Targets")
			}
		}
	}
	sort.Strings(tf)
	sort.Strings(cfn)
	if !slices.Equal(tf, cfn) {
		t.Errorf("Terraform declares\n %q\nCloudFormation\n %q", tf, cfn)
	}
}

func TestTerraformFormatted(t *testing.T) {
	// hclwrite's formatter is not a dependency; check the one rule a
	// reviewer trips on first: no tabs.
	for _, dir := range []string{"terraform/modules/lifeguard", "terraform/examples/basic"} {
		files, _ := filepath.Glob(filepath.Join(deployDir, dir, "*.tf"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "\t") {
				t.Errorf("%s is indented with tabs; terraform fmt uses two spaces", f)
			}
		}
	}
}
