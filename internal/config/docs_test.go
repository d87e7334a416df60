package config_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lifeguardhq/lifeguard/internal/config"
)

// The full example is the first ```yaml block of docs/agent.md.
func TestDocsFullExample(t *testing.T) {
	example := yamlBlocks(t)[0]

	t.Run("parses and validates", func(t *testing.T) {
		a, err := config.ParseAgent([]byte(example))
		if err != nil {
			t.Fatalf("ParseAgent(docs example):\n%v", err)
		}
		if got, want := len(a.Launch.Probes), 3; got != want {
			t.Errorf("probes = %d, want %d", got, want)
		}
		want := config.Step{
			Name:        "drain",
			Command:     []string{"/usr/local/bin/drain", "--wait"},
			Timeout:     config.Duration(5 * time.Minute),
			Env:         map[string]string{"QUEUE": "jobs"},
			OnFailure:   config.FailureContinue,
			OnInterrupt: config.InterruptRerun,
		}
		if len(a.Terminate.Steps) == 0 || !reflect.DeepEqual(a.Terminate.Steps[0], want) {
			t.Errorf("first step = %+v, want %+v", a.Terminate.Steps, want)
		}
		if a.Leader.Mode != config.LeaderLease || len(a.Leader.Jobs) != 1 {
			t.Errorf("leader = %+v; want mode lease with one job", a.Leader)
		}
	})

	t.Run("shows every key of the schema", func(t *testing.T) {
		var root yaml.Node
		if err := yaml.Unmarshal([]byte(example), &root); err != nil {
			t.Fatal(err)
		}
		shown := map[string]bool{}
		collectPaths(root.Content[0], "", shown)
		for _, p := range schemaPaths(reflect.TypeFor[config.Agent](), "") {
			if !shown[p] {
				t.Errorf("docs example does not show %s", p)
			}
		}
	})

	t.Run("states the defaults", func(t *testing.T) {
		// Every key but the probes, steps, the leader's mode, table
		// and jobs, and the traffic's target groups and load balancers is
		// at its default.
		a, err := config.ParseAgent([]byte(example))
		if err != nil {
			t.Fatal(err)
		}
		a.Launch.Probes, a.Terminate.Steps = nil, nil
		a.Leader.Mode, a.Leader.Table, a.Leader.Jobs = config.LeaderOff, "", nil
		a.Traffic.TargetGroups, a.Traffic.LoadBalancers = nil, nil
		if want := config.DefaultAgent(); !reflect.DeepEqual(a, want) {
			t.Errorf("docs example without probes and steps =\n%+v\nwant DefaultAgent() =\n%+v", a, want)
		}
	})
}

func TestDocsSnippetsAreValid(t *testing.T) {
	for i, block := range yamlBlocks(t) {
		if _, err := config.ParseAgent([]byte(block)); err != nil {
			t.Errorf("docs/agent.md yaml block %d:\n%s\n%v", i+1, block, err)
		}
	}
}

// schemaPaths lists the YAML key paths of t, list items written "[]".
func schemaPaths(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		if t.Kind() == reflect.Slice {
			prefix += "[]"
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for f := range t.Fields() {
		key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		p := key
		if prefix != "" {
			p = prefix + "." + key
		}
		out = append(out, p)
		out = append(out, schemaPaths(f.Type, p)...)
	}
	return out
}

// collectPaths records the key paths present in a YAML tree.
func collectPaths(n *yaml.Node, prefix string, into map[string]bool) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if prefix != "" {
				p = prefix + "." + p
			}
			into[p] = true
			if !strings.HasSuffix(p, ".env") {
				collectPaths(n.Content[i+1], p, into)
			}
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			collectPaths(item, prefix+"[]", into)
		}
	}
}

func TestSchemaPathsSeeNestedKeys(t *testing.T) {
	paths := schemaPaths(reflect.TypeFor[config.Agent](), "")
	for _, want := range []string{"terminate.steps[].on_interrupt", "launch.probes[].command.fatal_exit_codes", "status.allow_non_loopback"} {
		if !slices.Contains(paths, want) {
			t.Errorf("schemaPaths lacks %s: %v", want, paths)
		}
	}
}
