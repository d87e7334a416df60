// Package proc supervises processes on Linux: it is shared by the agent's
// step supervisors and leader-only jobs (internal/jobs) and by the
// sandbox's instances (internal/sandbox/instance), and imports neither
// side.
//
// # Re-executing the current binary
//
// A supervisor that must outlive its caller, or carry a parent-death
// signal of its own, is the current binary run again in a role: a package
// declares the role once, from an init function,
//
//	func init() { proc.Register("lifeguard-jobs-supervisor", supervise) }
//
// and starts it with Command("lifeguard-jobs-supervisor", dir). The
// re-executed process has the role as its first argument (so ps shows it)
// and in the LIFEGUARD_PROC_ROLE environment variable. Main is the one
// entry point that turns such a process into its role: it must be the
// first call of the program's main, and of the TestMain of every test
// binary that starts a role,
//
//	func main() { proc.Main(); … }
//	func TestMain(m *testing.M) { proc.Main(); goleak.VerifyTestMain(m) }
//
// In an ordinary run Main only notes that it was called and returns. In a
// re-executed process it runs the role's function with the arguments after
// the role and exits with the status it returns: this is the one place the
// project's library code calls os.Exit, because a role must finish before
// the program's own main (or the tests) could start. Command refuses to
// start a role in a binary whose main did not call Main, which would
// otherwise run the whole program (or its tests) again.
//
// # Process groups, descendants and identities
//
// A process is named across PID reuse by its ID: its PID and its start
// time in clock ticks since boot (field 22 of /proc/<pid>/stat). Signal
// pins the process with a pidfd before it compares start times, so a
// signal never reaches a process that reused the PID.
//
// Descendants finds the processes below one process by walking
// /proc/<pid>/task/<tid>/children from it, so its cost grows with the size
// of that family, not with the number of processes on the host; where the
// kernel lacks those files (CONFIG_PROC_CHILDREN) it falls back to reading
// every /proc/<pid>/stat. The children files may miss a child that is
// being created or reaped while they are read, so the stopping code never
// concludes from them that nothing is left: a child subreaper (see
// BecomeSubreaper) knows it is alone when it has no child left to reap.
//
// # Stopping
//
// Every process lifeguard starts runs in a process group of its own and is
// stopped as a group: SIGTERM (and SIGCONT, for stopped processes), then
// SIGKILL after a grace period. Two shapes share that rule:
//
//   - Group (StartGroup) is a command started as a child of the caller in
//     its own process group, optionally with a parent-death signal so that
//     it does not outlive the caller; Stop stops the group with a grace.
//     Processes that leave the group (setsid) are not found by Group.
//   - A supervisor that outlives its caller, or that must also catch
//     daemonizing descendants, is a role (above) that makes itself a child
//     subreaper and stops everything below it with a Sweep; internal/jobs
//     and internal/sandbox/instance are built that way.
package proc
