package proc

import (
	"errors"
	"strings"
	"testing"
)

// Not parallel: it turns Main's mark off for the whole binary while it runs.
func TestCommandRefusesABinaryWhoseMainDidNotCallMain(t *testing.T) {
	Register("proc-test-unreached", func([]string) int { return 0 })
	was := entered.Swap(false)
	defer entered.Store(was)
	_, err := Command("proc-test-unreached")
	if !errors.Is(err, ErrNoEntry) {
		t.Errorf("Command before Main: %v, want ErrNoEntry", err)
	}
}

func TestARoleRegisteredTwiceCannotStart(t *testing.T) {
	Register("proc-test-twice", func([]string) int { return 0 })
	Register("proc-test-twice", func([]string) int { return 1 })
	if _, err := Command("proc-test-twice"); err == nil || !strings.Contains(err.Error(), "more than once") {
		t.Errorf("Command of a role registered twice: %v, want it refused", err)
	}
}
