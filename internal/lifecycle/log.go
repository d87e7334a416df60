package lifecycle

// Attribute keys of the package's log records (STYLE rule 12).
const (
	keyInstance   = "instance"
	keyGroup      = "group"
	keyHook       = "hook"
	keyTransition = "transition"
	keyToken      = "token"
	keyReason     = "reason"
	keyStep       = "step"
	keyErr        = "err"
	keyResult     = "result"
	keyExitCode   = "exit_code"
	keyTimedOut   = "timed_out"
	keyDeadline   = "deadline"
	keyRetryIn    = "retry_in"
)
