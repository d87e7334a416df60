// Package lifecycle is the pure core of the agent's lifecycle-hook handling:
// what an Auto Scaling lifecycle action is (Action, Hook, Key), how long it
// may live (GlobalTimeout, Deadline, HeartbeatInterval), the plan of steps
// run for it (Plan, Step: commands under supervisors, or built-in steps the
// agent runs in process, such as waiting for readiness), the journal that
// makes its handling survive an agent restart (Journal, Record, Progress),
// and the Executor that runs a plan under the package's one heartbeat loop
// and completes the action exactly once.
//
// It talks to Auto Scaling only through Completer and runs commands only
// through StepRunner, both implemented elsewhere (internal/awscloud,
// internal/jobs); it never imports the AWS SDK. Time comes from package time
// directly; tests run it under testing/synctest. Package lifecycletest holds
// fakes of both interfaces.
package lifecycle
