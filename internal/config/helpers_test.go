package config_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/config"
)

// messages returns each problem of a joined configuration error, checking
// that every one is a *config.FieldError.
func messages(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var errs []error
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		errs = u.Unwrap()
	} else {
		errs = []error{err}
	}
	var out []string
	for _, e := range errs {
		var fe *config.FieldError
		if !errors.As(e, &fe) {
			t.Errorf("problem %q is a %T, not a *config.FieldError", e, e)
		}
		out = append(out, e.Error())
	}
	return out
}

// yamlBlocks returns the fenced ```yaml blocks of docs/agent.md, in order.
func yamlBlocks(t testing.TB) []string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/agent.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	rest := string(doc)
	for {
		_, after, ok := strings.Cut(rest, "```yaml\n")
		if !ok {
			break
		}
		block, after, ok := strings.Cut(after, "\n```")
		if !ok {
			t.Fatal("docs/agent.md: unterminated ```yaml block")
		}
		blocks = append(blocks, block+"\n")
		rest = after
	}
	if len(blocks) == 0 {
		t.Fatal("docs/agent.md has no ```yaml block")
	}
	return blocks
}
