package cli

import (
	"errors"
	"fmt"
)

// Exit codes, the same for every command (documented in `lifeguard --help`
// and docs). Commands add their own codes above these where a script needs
// to branch (say which in their --help).
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2  // a flag, an argument or a command name is wrong
	ExitConfig  = 78 // EX_CONFIG: the configuration file is invalid; restarting will not help
)

// exitCodesHelp is the exit-code paragraph of the root command's help.
const exitCodesHelp = `Exit codes: 0 success; 1 failure; 2 usage (a wrong flag, argument or
command); 78 invalid configuration (EX_CONFIG: restarting will not help).
Commands that scripts branch on document further codes in their --help.`

// ExitError asks main to exit with a code. Err, when set, is what to print
// first; a nil Err means the command has already said what it had to.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return fmt.Sprintf("exit status %d", e.Code)
}

func (e *ExitError) Unwrap() error { return e.Err }

// usageError marks err as a usage error (exit code 2).
func usageError(err error) error { return &ExitError{Code: ExitUsage, Err: err} }

// configError marks err as a configuration error (exit code 78).
func configError(err error) error { return &ExitError{Code: ExitConfig, Err: err} }

// ExitCode returns the exit code for the error Run returned: 0 for nil, the
// code of an *ExitError, 1 for anything else. Message reports what main
// should print before exiting ("" when the command printed it already).
func ExitCode(err error) (code int, message string) {
	if err == nil {
		return ExitOK, ""
	}
	var exit *ExitError
	if errors.As(err, &exit) {
		if exit.Err == nil {
			return exit.Code, ""
		}
		return exit.Code, err.Error()
	}
	return ExitFailure, err.Error()
}
