package agent

// Attribute keys of the package's log records (STYLE rule 12).
const (
	keyInstance   = "instance"
	keyGroup      = "group"
	keyHook       = "hook"
	keyToken      = "token"
	keyErr        = "err"
	keyTransition = "transition"
	keyReason     = "reason"
	keyState      = "state"
	keyTarget     = "target"
	keyFrom       = "from"
	keyProbe      = "probe"
	keyResult     = "result"
	keyStep       = "step"
	keyRetryIn    = "retry_in"
	keyDeadline   = "deadline"
	keyExitCode   = "exit_code"
	keySignal     = "signal"
	keyTimedOut   = "timed_out"
	keyOutput     = "output"
	keyDetail     = "detail"
	keyAction     = "action"
	keyTime       = "time"
	keyPasses     = "passes"
	keyDir        = "dir"
)
