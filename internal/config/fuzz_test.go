package config_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/config"
)

// FuzzParseAgent: arbitrary YAML never panics; every problem is a
// *FieldError; a configuration that parses is valid and survives YAML().
func FuzzParseAgent(f *testing.F) {
	for _, block := range yamlBlocks(f) {
		f.Add([]byte(block))
	}
	for _, s := range []string{
		"",
		"source: sqs\nsqs: {topic_arn: 'arn:aws:sns:us-east-1:123456789012:t', queue_prefix: ''}\n",
		"terminate:\n  stpes: []\n",
		"launch:\n  timeout: 600\n",
		"terminate:\n  steps:\n    - &s {name: a, command: [a, '', '\\0'], timeout: 1s, env: {A: 1}}\n    - {<<: *s, name: b}\n",
		"launch: {probes: [{name: x, http: {url: 'http://h/'}, tcp: {address: ':1'}}]}\n",
		"- a\n- b\n",
		"a: &a [*a]\n",
		"source: imds\n---\n",
		"status: {listen: '[::1]:1', allow_non_loopback: yes}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := config.ParseAgent(data)
		if err != nil {
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *config.FieldError
				if !errors.As(e, &fe) || fe.Problem == "" {
					t.Fatalf("problem %q is not a *FieldError with a Problem", e)
				}
			}
			return
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("ParseAgent accepted a config that Validate rejects: %v", err)
		}
		out, err := a.YAML()
		if err != nil {
			t.Fatalf("YAML: %v", err)
		}
		back, err := config.ParseAgent(out)
		if err != nil {
			t.Fatalf("ParseAgent(YAML()) = %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back, a) {
			t.Fatalf("ParseAgent(YAML()) =\n%+v\nwant\n%+v\nYAML:\n%s", back, a, out)
		}
	})
}
