// Package jobs runs the user's commands (pre-termination steps, leader-only
// jobs) under small supervisor processes that survive the agent: a step
// keeps running, and its outcome is recorded, when the agent crashes, and
// a restarted agent adopts it instead of starting it again.
//
// # Processes
//
// Start re-executes the current binary as the supervisor (see package
// proc), in a session of its own (setsid) and as a sibling of the agent
// (CLONE_PARENT): the agent's parent reaps it, and the agent never has it
// as a child. Where the agent is the init of its PID namespace, which has
// no parent to share, Start re-executes the binary twice instead: as a
// short-lived launcher, which starts the supervisor and exits, so that
// init (or the nearest child subreaper) reaps it; and as that supervisor.
// A re-execution of the whole binary is most of a step's start-up, so the
// sibling saves about half of it. The package registers both roles with
// proc.Register; proc.Main, called first by the program's main (and by
// the TestMain of a test binary that calls Start), runs them.
// The supervisor has no parent-death signal: it is meant to outlive the
// agent. (Under systemd, that takes KillMode=process or mixed in the
// agent's unit; with the default control-group mode, a restart of the
// agent kills its supervisors as well.)
//
// The supervisor makes itself a child subreaper, so descendants of the
// command that daemonize (double fork, setsid) are re-parented to it, and
// starts the command without a shell (Argv is exec'd as is) in a process
// group of its own, whose ID is the command's PID, separate from the
// supervisor's: the group can then be signalled without signalling the
// supervisor, and, should the supervisor die, without finding it. The
// command's standard input is /dev/null; its standard output and error go
// to output.log. The command has SIGKILL as its parent-death signal, so it
// does not run on unsupervised when the supervisor is killed.
//
// The command is stopped, on Stop (which sends SIGTERM to the supervisor)
// or when its Timeout expires, as a group: SIGTERM and SIGCONT to its
// process group and to every process below the supervisor, then SIGKILL to
// whatever is left after Grace (proc.Sweep). When the command exits on its
// own, processes it left behind (in its group or below the supervisor) are
// stopped the same way, with the same grace. The supervisor, a child
// subreaper, knows that none is left when it has no child left to reap;
// the outcome is recorded only then, so when Wait returns an outcome no
// process of the step remains.
//
// # Files
//
// Everything lives in Spec.Dir, which belongs to one run: Start refuses a
// directory in which a run was already started (ErrAlreadyStarted), so a
// step is never started twice there; a rerun uses a new directory.
//
//	spec.json       what to run; written by Start, created exclusively
//	lock            flock'ed from Start until the supervisor exits
//	supervisor.pid  {"pid":123,"startTime":456}: the supervisor's PID and
//	                its start time in clock ticks since boot (field 22 of
//	                /proc/<pid>/stat)
//	status.json     {"state":"running",…} once the command has started,
//	                then {"state":"exited",…,"outcome":{…}}
//	output.log      the command's standard output and error
//	supervisor.log  the launcher's and supervisor's own messages
//
// status.json is written atomically and durably (a temporary file, fsync,
// rename, fsync of the directory). supervisor.pid is written atomically
// (renamed into place) but not fsynced: it only says which process of this
// boot supervises the run, a power loss ends that process too, and a pid
// file that does not decode (one a power loss cut short) is read as no pid
// file, the lock then saying whether a supervisor runs. Start returns once
// status.json records the running command (or its outcome, when it could
// not be executed), so Adopt after an agent crash right after Start finds
// it.
//
// # Prepare and Go
//
// Start is Prepare, then Go. Prepare claims the directory and launches the
// supervisor, which initialises, writes supervisor.pid and then blocks
// reading a "go" pipe whose only writer is the Prepared; Go writes one byte
// to it and waits for the supervisor's ready byte, as Start does. The
// caller can so overlap the supervisor's start-up with its own work (the
// agent journals the step started meanwhile) and start the command only
// once that work is done. EOF on the go pipe (Release, or the caller's
// process died) makes the supervisor exit without running anything,
// leaving a claimed directory without status.json: Adopt reports it not
// adoptable, and Start refuses it.
//
// # Liveness
//
// The supervisor is alive when a process with the recorded PID exists, is
// not a zombie, and has the recorded start time; a reused PID has another
// start time. Before supervisor.pid exists (an agent that crashed inside
// Start), the supervisor, or the launcher about to start it, is alive while
// the lock is held: the lock's open file description is shared by Start,
// the launcher and the supervisor, so it is released only when all of them
// are gone. Waiting needs no child relationship: Wait sleeps on a pidfd
// of the supervisor (through the runtime's poller) and reads status.json
// when it exits; it polls status.json and the supervisor's liveness every
// 25 ms only where the kernel has no pidfd_open or before the supervisor's
// PID is known.
//
// When the supervisor is found dead without an outcome (it was killed),
// Adopt and Wait first SIGKILL what is left of the command's process group
// (the command itself died of its parent-death signal), then report the
// loss. Processes that left the group and were re-parented to init when
// the supervisor died cannot be found; only a cgroup could.
package jobs
