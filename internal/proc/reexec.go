package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
)

// RoleEnv holds the role in the environment of a re-executed process.
const RoleEnv = "LIFEGUARD_PROC_ROLE"

// ErrNoEntry is returned (wrapped) by Command when the program's main, or
// its test binary's TestMain, did not call Main first.
var ErrNoEntry = errors.New("proc.Main was not called first in this program's main (or TestMain)")

var (
	entered atomic.Bool

	rolesMu sync.Mutex
	roles   = map[string]func(args []string) int{}
	twice   = map[string]bool{} // roles registered more than once
)

// Register declares role: when the current binary is re-executed with
// Command(role, args...), Main runs fn(args) instead of the program and
// exits with the status fn returns. Call it from an init function. A role
// registered twice cannot be started (Command and Main report it).
func Register(role string, fn func(args []string) int) {
	rolesMu.Lock()
	defer rolesMu.Unlock()
	if _, ok := roles[role]; ok || role == "" || fn == nil {
		twice[role] = true
	}
	roles[role] = fn
}

// lookupRole returns the function registered for a role, or an error
// saying why there is none.
func lookupRole(name string) (func([]string) int, error) {
	rolesMu.Lock()
	defer rolesMu.Unlock()
	fn, ok := roles[name]
	switch {
	case twice[name]:
		return nil, fmt.Errorf("role %q is registered more than once (or empty)", name)
	case !ok:
		return nil, fmt.Errorf("role %q is not registered in this binary", name)
	}
	return fn, nil
}

// Main is the program's re-exec entry point; call it first in main and in
// TestMain. In a process started by Command it runs the role and exits
// (status 2, with a message on standard error, when the role is unknown);
// otherwise it returns at once.
func Main() {
	entered.Store(true)
	name, ok := os.LookupEnv(RoleEnv)
	if !ok {
		return
	}
	// The role's own children must not take themselves for roles.
	_ = os.Unsetenv(RoleEnv)
	fn, err := lookupRole(name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "lifeguard: %s is set: %v\n", RoleEnv, err)
		os.Exit(2)
	}
	var args []string
	if len(os.Args) > 2 {
		args = os.Args[2:]
	}
	os.Exit(fn(args))
}

// Command returns a command that re-executes the current binary in role,
// with args: its arguments are the role and args, its environment the
// caller's plus RoleEnv (callers may change Env, keeping that entry). It
// fails when role is not registered, or when Main was not called first.
//
// A race-enabled binary sleeps a second on exit by default (GORACE
// atexit_sleep_ms), which would add a second to every supervised command
// under `go test -race`; roles have no goroutines left to wait for at
// exit, so the environment turns that off.
func Command(role string, args ...string) (*exec.Cmd, error) {
	if !entered.Load() {
		return nil, fmt.Errorf("start %s: %w: re-executing it would run the program instead", role, ErrNoEntry)
	}
	if _, err := lookupRole(role); err != nil {
		return nil, fmt.Errorf("start %s: %w", role, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start %s: find own executable: %w", role, err)
	}
	goRace := "atexit_sleep_ms=0"
	if v := os.Getenv("GORACE"); v != "" && !strings.Contains(v, goRace) {
		goRace = v + " " + goRace
	} else if v != "" {
		goRace = v
	}
	env := make([]string, 0, len(os.Environ())+2)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, RoleEnv+"=") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	env = append(env, "GORACE="+goRace, RoleEnv+"="+role)
	return &exec.Cmd{Path: exe, Args: append([]string{exe, role}, args...), Env: env}, nil
}
