package lifecycle_test

import (
	"context"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

func TestPlanValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		plan lifecycle.Plan
		want []string // substrings of the error; none for a valid plan
	}{
		{"empty plan is valid", lifecycle.Plan{}, nil},
		{"full plan is valid", lifecycle.Plan{Result: lifecycle.Abandon, Steps: []lifecycle.Step{
			{Name: "a", Argv: []string{"a"}, OnFailure: lifecycle.FailAbandon, OnInterrupt: lifecycle.InterruptRerun},
			{Name: "b", Argv: []string{"b"}, OnFailure: lifecycle.FailContinue, OnInterrupt: lifecycle.InterruptSkip},
		}}, nil},
		{"unknown result", lifecycle.Plan{Result: "continue"}, []string{`plan result "continue"`}},
		{"negative heartbeat interval", lifecycle.Plan{HeartbeatInterval: -1}, []string{"heartbeat interval"}},
		{"step names must be unique", lifecycle.Plan{Steps: []lifecycle.Step{step("a"), step("a")}}, []string{`step 2 ("a"): name used twice`}},
		{"step needs a name", lifecycle.Plan{Steps: []lifecycle.Step{{Argv: []string{"x"}}}}, []string{"step 1 has no name"}},
		{"step needs a command", lifecycle.Plan{Steps: []lifecycle.Step{{Name: "a"}}}, []string{`step 1 ("a") has no command`}},
		{"built-in step is valid", lifecycle.Plan{Steps: []lifecycle.Step{{Name: "a", Builtin: func(context.Context, lifecycle.Action) error { return nil }}}}, nil},
		{"built-in step has no command", lifecycle.Plan{Steps: []lifecycle.Step{{Name: "a", Argv: []string{"a"}, Builtin: func(context.Context, lifecycle.Action) error { return nil }}}}, []string{`step 1 ("a") is built in and also has a command`}},
		{"every problem is reported", lifecycle.Plan{Steps: []lifecycle.Step{
			{Name: "a", Argv: []string{"a"}, Timeout: -1, OnFailure: "retry", OnInterrupt: "resume"},
		}}, []string{"timeout -1ns is negative", `on_failure "retry"`, `on_interrupt "resume"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.plan.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error mentioning %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want it to mention %q", err, w)
				}
			}
		})
	}
}
