// Package agent is lifeguard's per-instance daemon: it watches its own
// instance's lifecycle through instance metadata and Auto Scaling, holds a
// launch until readiness probes pass, runs the terminate plan before the
// instance goes away, and completes every matching lifecycle action exactly
// once through lifecycle.Executor.
//
// It reaches AWS only through three small interfaces declared here or in
// package lifecycle (Metadata, Group, lifecycle.Completer), implemented by
// internal/awscloud and wired by internal/cli; it runs steps through a
// lifecycle.StepRunner, by default the supervisors of internal/jobs
// (NewStepRunner).
//
// # Flow (source imds)
//
// Run polls IMDS every imds.poll_interval (target lifecycle state and spot
// notice) and asks Auto Scaling (DescribeAutoScalingInstances through
// Group.Instance) only when it needs to: at start, when the target state
// changes, while the instance is Pending, and while a terminate action
// waits for Terminating:Wait. Lifecycle actions are built from the group's
// hooks (Group.Hooks, read at start and refreshed when an action starts)
// that match the transition and the configured hook name ("" = all of
// them); they carry no token: the IMDS source completes by instance id.
//
// Launch: when Auto Scaling reports Pending:Wait (at start or later), the
// probes run in rounds every launch.interval until consecutive_passes
// rounds in a row pass, or launch.timeout passes (on_timeout decides), or
// a command probe exits with a fatal code (on_fatal abandon: ABANDON at
// once). No probes: CONTINUE at once. The readiness checks (the probes
// today) are the launch plan's built-in steps, run by the Executor like the
// terminate plan's steps: the action is journaled before probing, so
// launch.timeout counts from when it was first seen, also across agent
// restarts (interrupted probing starts afresh); it is heartbeated every
// lifecycle.HeartbeatInterval (the hook's HeartbeatTimeout/2) by the
// Executor's one heartbeat loop, and probing stops for an action Auto
// Scaling no longer has (lifecycle.ErrNoActiveAction). The probes run once
// for all the instance's launch hooks; a failed check abandons the plan.
//
// Terminate: the first sign starts the plan for every matching terminate
// hook at once: IMDS target state Terminated or Auto Scaling reporting
// Terminating* (reason lifecycle-hook), a spot interruption notice (reason
// spot-interruption), or Drain (reason sigterm). Steps may start before the
// action exists; the channel the Executor waits on before heartbeating and
// completing closes when Auto Scaling reports Terminating:Wait (or later
// states, or the instance left its group: then the Executor learns from
// Auto Scaling that the action is gone). When the group has no matching
// terminate hook there is nothing to complete: the plan still runs once,
// journaled under the pseudo hook name NoHook, and nothing is sent to Auto
// Scaling. Run returns nil once every terminate action has completed (or
// is gone): the instance is going away.
//
// Drain (on_sigterm: drain) starts the terminate plan as if the transition
// had been seen and makes Run return as soon as the plan has run: every
// terminate action has completed, or has finished its steps while Auto
// Scaling has not confirmed it (an instance that is not really
// terminating, or not yet in Terminating:Wait); such an action is left
// pending, to its hook's timeout or to the next agent.
//
// Standby, Detached and warm-pool states (Warmed:*) run no plan; the agent
// logs them once. A warm-pool launch hook (Warmed:Pending:Wait) is not
// completed by the agent.
//
// # Flow (source sqs)
//
// Run opens the queue through Inbox once the instance id is known (with
// sqs.topic_arn a per-instance queue subscribed to the topic, reused across
// restarts; with sqs.queue_url the shared queue, refused when it has a
// RedrivePolicy) and a receiver goroutine long-polls it. ParseMessage reads
// raw, SNS-wrapped and EventBridge messages. A lifecycle message for this
// instance starts the same launch or terminate flow as the IMDS source,
// with the message's token on the Action, and confirms the transition at
// once; the message is kept hidden while held and deleted only once its
// action has ended. Other instances' messages are handed back on a shared
// queue in one batch per receive (see docs/agent.md for every case). IMDS
// is still polled as for source imds, so that a queue that cannot be read
// does not let the instance go without its plan; Auto Scaling is asked at
// start, so an action whose message was consumed before a restart is still
// handled.
// The receiver is stopped after the actions' goroutines have returned: on
// a shared queue whose termination has completed its last long poll is let
// finish, and the agent looks briefly for its own messages that never
// reached it (sweepOwn); once the termination has completed the
// per-instance queue and its subscription are removed. An agent that
// stops otherwise hands its held messages back.
//
// # Exactly once
//
// Each action is handled once per agent lifetime (keyed by lifecycle.Key)
// and once across restarts by the journal in <paths.journal_dir>/actions.
// Because actions learned from IMDS have no token, the journal cannot tell
// a later action with the same key from an earlier one (warm pools move an
// instance in and out): the agent forgets the journaled launch actions once
// Auto Scaling reports the instance out of the Pending states, and at start
// forgets journaled terminate actions when nothing says the instance is
// terminating.
//
// # Components
//
// Run owns every goroutine of the agent (an errgroup): the lifecycle loop
// (observe IMDS, Auto Scaling and the queue; decide, a pure function of
// what was observed; act), the status server on Deps.Status, the SIGTERM
// watcher on Deps.SIGTERM (on_sigterm exit returns, drain calls Drain),
// and Deps.Components (room for an elector with its leader-only jobs, or
// traffic registration). When the lifecycle loop returns the others are
// stopped; a component that fails stops the agent with its error.
//
// # Operations
//
// Handler serves /healthz, /status (JSON) and /metrics (Prometheus, a
// registry per Agent, with Deps.Metrics such as the AWS call counter of
// internal/awscloud); every decision and AWS call is logged with slog.
package agent
