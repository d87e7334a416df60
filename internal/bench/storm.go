package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/lifeguardhq/lifeguard/internal/awscloud"
	"github.com/lifeguardhq/lifeguard/internal/proc"
	sbx "github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// Storm is the sandbox at scale: a group of 1,000 instances with a
// terminating lifecycle hook that notifies an SQS queue is launched, then
// SetDesiredCapacity 500 terminates half of it at once while clients
// (several workers) receive the notifications and complete every action
// by its token, and a describer calls DescribeAutoScalingGroups every 50
// ms. It runs twice, on an in-process sandbox: without processes, and
// with each instance running user data (`exec sleep 100000`) under its
// supervisor; then the storm starts once every instance's user data runs.
// A notification lost or received twice fails the run.
var Storm = Scenario{
	Name:  "storm",
	About: "1,000 instances, 500 terminated at once through a lifecycle hook, with and without processes",
	Run:   runStorm,
}

const (
	stormGroup    = "storm"
	stormHook     = "drain"
	stormWorkers  = 8
	stormDescribe = 50 * time.Millisecond
	stormIdlePoll = 20 * time.Millisecond // a worker's pause after an empty short poll
)

// StormSize is how many instances the storm launches (and half of them
// it terminates): 1,000, or 40 when quick.
func StormSize(quick bool) int {
	if quick {
		return 40
	}
	return 1000
}

func runStorm(ctx context.Context, env Env) ([]Row, error) {
	var rows []Row
	for _, processes := range []bool{false, true} {
		r, err := stormOnce(ctx, env, processes)
		if err != nil {
			mode := "without processes"
			if processes {
				mode = "with processes"
			}
			return rows, fmt.Errorf("storm %s: %w", mode, err)
		}
		rows = append(rows, r...)
	}
	return rows, nil
}

// stormRun is one run's clients, counters and latencies.
type stormRun struct {
	env       Env
	n         int
	asg       *autoscaling.Client
	sqs       *sqs.Client
	transport *http.Transport
	queueURL  string
	launched  time.Time // when CreateAutoScalingGroup was sent

	calls, retries   atomic.Int64 // SDK operations sent, and their attempts past the first
	lostOrDuplicated int          // notifications, once the storm is over

	mu        sync.Mutex
	latencies map[string][]time.Duration // during the storm, by operation
}

func (r *stormRun) record(op string, d time.Duration) {
	r.mu.Lock()
	r.latencies[op] = append(r.latencies[op], d)
	r.mu.Unlock()
}

// warnCounter counts the sandbox's warnings about instance supervisors.
type warnCounter struct {
	supervisor atomic.Int64
}

func (c *warnCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (c *warnCounter) Handle(_ context.Context, rec slog.Record) error {
	if strings.Contains(rec.Message, "supervisor") {
		c.supervisor.Add(1)
	}
	return nil
}
func (c *warnCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *warnCounter) WithGroup(string) slog.Handler      { return c }

func stormOnce(ctx context.Context, env Env, processes bool) (rows []Row, err error) {
	mode, prefix := "no processes", "no processes: "
	if processes {
		mode, prefix = "processes", "processes: "
	}
	n := StormSize(env.Quick)
	victims := n / 2
	warns := &warnCounter{}
	cfg := sbx.Config{Listen: "127.0.0.1:0", NoProcesses: !processes, Logger: slog.New(warns)}
	if env.Dir != "" {
		cfg.StateDir = filepath.Join(env.Dir, "storm-"+strings.ReplaceAll(mode, " ", "-"))
	}
	srv, err := sbx.New(cfg)
	if err != nil {
		return nil, err
	}
	endpoint, stop, err := srv.Start()
	if err != nil {
		return nil, err
	}
	r := &stormRun{env: env, n: n, latencies: map[string][]time.Duration{}}
	r.transport = &http.Transport{MaxIdleConnsPerHost: 4 * stormWorkers, ForceAttemptHTTP2: false}
	stopped := false
	defer func() {
		r.transport.CloseIdleConnections()
		if !stopped {
			_ = stop()
		}
		r.transport.CloseIdleConnections()
	}()
	awsCfg := aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("storm", "storm", ""),
		HTTPClient:  &http.Client{Transport: r.transport},
		APIOptions:  []func(*middleware.Stack) error{r.countAttempts},
	}
	awscloud.OwnRequestBodies(&awsCfg)
	r.asg, r.sqs = autoscaling.NewFromConfig(awsCfg), sqs.NewFromConfig(awsCfg)

	if err := r.setUp(ctx, processes); err != nil {
		return nil, err
	}
	env.Progress("storm (%s): launching %d instances", mode, n)
	launch, err := r.launch(ctx, srv)
	if err != nil {
		return nil, err
	}
	env.Progress("storm (%s): %d in service after %s", mode, n, launch.Round(time.Millisecond))
	// InService does not wait for user data, as on EC2; the storm starts
	// once every instance's has started, so that it terminates 500 running
	// processes and the launch's last work does not run into it.
	var running time.Duration
	if processes {
		if running, err = userDataRunning(ctx, r.launched, n); err != nil {
			return nil, err
		}
		env.Progress("storm (%s): every instance's user data running after %s", mode, running.Round(time.Millisecond))
	}
	env.Progress("storm (%s): terminating %d", mode, victims)
	storm, err := r.storm(ctx, victims)
	if err != nil {
		return nil, err
	}

	env.Progress("storm (%s): shutting down with %d instances", mode, n-victims)
	r.transport.CloseIdleConnections()
	t0 := time.Now()
	stopped = true
	if err := stop(); err != nil {
		return nil, fmt.Errorf("shutdown: %w", err)
	}
	shutdown := time.Since(t0)

	row := func(figure string, v float64, unit, detail string, goal float64) Row {
		return Row{Scenario: "storm", Figure: prefix + figure, Value: v, Unit: unit, Detail: detail, Goal: Limit(goal), AtMost: true}
	}
	rows = append(rows,
		row(fmt.Sprintf("launch → %d InService", n), launch.Seconds(), "s", "CreateAutoScalingGroup to the last instance InService"+onFS(cfg.StateDir, processes), 3),
	)
	if processes {
		rows = append(rows, Row{Scenario: "storm", Figure: prefix + fmt.Sprintf("launch → %d instances' user data running", n), Value: running.Seconds(), Unit: "s",
			Detail: "CreateAutoScalingGroup to the last user data started (it execs sleep)"})
	}
	rows = append(rows,
		row(fmt.Sprintf("SetDesiredCapacity %d → all %d actions completed", n-victims, victims), storm.Seconds(), "s",
			fmt.Sprintf("%d workers completing by token", stormWorkers), 3),
	)
	for _, op := range []string{"DescribeAutoScalingGroups", "CompleteLifecycleAction", "ReceiveMessage"} {
		ds := r.latencies[op]
		detail := fmt.Sprintf("%d calls during the storm", len(ds))
		switch op {
		case "DescribeAutoScalingGroups":
			detail += fmt.Sprintf(", one every %s", stormDescribe)
		case "ReceiveMessage":
			detail += ", short polls"
		}
		rows = append(rows, row(op+" p99", stormMs(stormPercentile(ds, 99)), "ms", detail, 50))
	}
	rows = append(rows,
		row(fmt.Sprintf("shutdown with %d instances", n-victims), shutdown.Seconds(), "s", "", 3),
		row("notifications lost or duplicated", float64(r.lostOrDuplicated), "", fmt.Sprintf("of %d terminations (any fails the run)", victims), 0),
		row("supervisor warnings", float64(warns.supervisor.Load()), "", "during the whole run", 0),
		row("client retries", float64(r.retries.Load()), "", fmt.Sprintf("of %d SDK calls", r.calls.Load()), 0),
	)
	return rows, nil
}

// attemptsKey holds, in a call's stack values, how many HTTP attempts it
// made.
type attemptsKey struct{}

// countAttempts counts SDK operations and their retries: the retry
// middleware calls what follows it once per attempt. A call cancelled
// before its first attempt counts as neither.
func (r *stormRun) countAttempts(st *middleware.Stack) error {
	if err := st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("StormCountCalls", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		n := new(atomic.Int64)
		out, md, err := next.HandleFinalize(middleware.WithStackValue(ctx, attemptsKey{}, n), in)
		if a := n.Load(); a > 0 {
			r.calls.Add(1)
			r.retries.Add(a - 1)
		}
		return out, md, err
	}), "Retry", middleware.Before); err != nil {
		return err
	}
	return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("StormCountAttempts", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		if n, ok := middleware.GetStackValue(ctx, attemptsKey{}).(*atomic.Int64); ok {
			n.Add(1)
		}
		return next.HandleFinalize(ctx, in)
	}), "Retry", middleware.After)
}

// setUp makes the queue and the launch configuration.
func (r *stormRun) setUp(ctx context.Context, processes bool) error {
	q, err := r.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  aws.String("storm-hooks"),
		Attributes: map[string]string{"VisibilityTimeout": "300"},
	})
	if err != nil {
		return fmt.Errorf("create queue: %w", err)
	}
	r.queueURL = *q.QueueUrl
	lc := &autoscaling.CreateLaunchConfigurationInput{
		LaunchConfigurationName: aws.String("storm"), ImageId: aws.String("ami-0abcdef1234567890"), InstanceType: aws.String("t3.micro"),
	}
	if processes {
		lc.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\nexec sleep 100000\n")))
	}
	if _, err := r.asg.CreateLaunchConfiguration(ctx, lc); err != nil {
		return fmt.Errorf("create launch configuration: %w", err)
	}
	return nil
}

// launch creates the group with its hook and waits for every instance to
// be InService.
func (r *stormRun) launch(ctx context.Context, srv *sbx.Server) (time.Duration, error) {
	attrs, err := r.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(r.queueURL), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return 0, fmt.Errorf("queue ARN: %w", err)
	}
	var seq int64
	if evs := srv.Events().Since(0, 0); len(evs) > 0 {
		seq = evs[len(evs)-1].Seq
	}
	t0 := time.Now()
	r.launched = t0
	if _, err := r.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(stormGroup), LaunchConfigurationName: aws.String("storm"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(int32(r.n)), DesiredCapacity: aws.Int32(int32(r.n)),
		AvailabilityZones: []string{"us-east-1a", "us-east-1b", "us-east-1c"},
		LifecycleHookSpecificationList: []astypes.LifecycleHookSpecification{{
			LifecycleHookName:     aws.String(stormHook),
			LifecycleTransition:   aws.String("autoscaling:EC2_INSTANCE_TERMINATING"),
			NotificationTargetARN: aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]),
			RoleARN:               aws.String("arn:aws:iam::123456789012:role/storm-hooks"),
			HeartbeatTimeout:      aws.Int32(600),
			DefaultResult:         aws.String("ABANDON"),
		}},
	}); err != nil {
		return 0, fmt.Errorf("create group: %w", err)
	}
	inService := 0
	waitCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for inService < r.n {
		evs, err := srv.World().EventsAfter(waitCtx, seq)
		if err != nil {
			return 0, fmt.Errorf("waiting for %d instances InService (%d are): %w", r.n, inService, err)
		}
		for _, e := range evs {
			seq = e.Seq
			switch {
			case e.Kind == world.EvInstanceState && e.State == world.StateInService:
				inService++
			case e.Kind == world.EvInstanceBootError:
				return 0, fmt.Errorf("instance %s did not boot: %s", e.Instance, e.Detail)
			}
		}
	}
	return time.Since(t0), nil
}

// userDataRunning waits until n processes named sleep run below this
// process, every instance's user data (which execs sleep) started, and
// returns the time since launched.
func userDataRunning(ctx context.Context, launched time.Time, n int) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		pids, err := proc.Descendants(os.Getpid())
		if err != nil {
			return 0, fmt.Errorf("find the instances' processes: %w", err)
		}
		running := 0
		for _, pid := range pids {
			if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); err == nil && string(bytes.TrimSpace(b)) == "sleep" {
				running++
			}
		}
		if running >= n {
			return time.Since(launched), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("waiting for every instance's user data to run (%d of %d do): %w", running, n, ctx.Err())
		case <-tick.C:
		}
	}
}

// notification is the part of a lifecycle notification the workers read.
type notification struct {
	Event                string `json:"Event"`
	LifecycleTransition  string `json:"LifecycleTransition"`
	LifecycleActionToken string `json:"LifecycleActionToken"`
	EC2InstanceID        string `json:"EC2InstanceId"`
	AutoScalingGroupName string `json:"AutoScalingGroupName"`
	LifecycleHookName    string `json:"LifecycleHookName"`
}

// storm sets the desired capacity to n-victims and completes every
// action; it returns the time from SetDesiredCapacity to the last
// completion.
func (r *stormRun) storm(ctx context.Context, victims int) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		notified = map[string]int{} // notifications received, by instance
		dups     []string
		done     int // actions completed
		last     time.Time
	)
	allDone := make(chan struct{})
	workErr := make(chan error, stormWorkers)
	var wg sync.WaitGroup
	handle := func(nt notification) error {
		mu.Lock()
		notified[nt.EC2InstanceID]++
		first := notified[nt.EC2InstanceID] == 1
		if !first {
			dups = append(dups, nt.EC2InstanceID)
		}
		mu.Unlock()
		if !first {
			return nil
		}
		c0 := time.Now()
		_, err := r.asg.CompleteLifecycleAction(context.WithoutCancel(ctx), &autoscaling.CompleteLifecycleActionInput{
			AutoScalingGroupName: aws.String(nt.AutoScalingGroupName), LifecycleHookName: aws.String(nt.LifecycleHookName),
			LifecycleActionToken: aws.String(nt.LifecycleActionToken), LifecycleActionResult: aws.String("CONTINUE"),
		})
		if err != nil {
			return fmt.Errorf("complete the action of %s: %w", nt.EC2InstanceID, err)
		}
		now := time.Now()
		r.record("CompleteLifecycleAction", now.Sub(c0))
		mu.Lock()
		done++
		last = now
		mu.Unlock()
		return nil
	}
	for range stormWorkers {
		wg.Go(func() {
			if err := r.work(ctx, handle); err != nil {
				workErr <- err
			}
		})
	}
	wg.Go(func() { r.describe(ctx) })
	go func() { // ends with the workers and the describer, which end with ctx
		wg.Wait()
		close(allDone)
	}()

	t0 := time.Now()
	if _, err := r.asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{
		AutoScalingGroupName: aws.String(stormGroup), DesiredCapacity: aws.Int32(int32(r.n - victims)),
	}); err != nil {
		cancel()
		<-allDone
		return 0, fmt.Errorf("SetDesiredCapacity: %w", err)
	}
	const patience = 2 * time.Minute
	deadline := time.NewTimer(patience)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for {
		select {
		case err = <-workErr:
			break wait
		case <-deadline.C:
			mu.Lock()
			err = fmt.Errorf("%d of %d notifications never arrived (lost) within %s; %d actions completed", victims-len(notified), victims, patience, done)
			mu.Unlock()
			break wait
		case <-tick.C:
			mu.Lock()
			all := done >= victims
			mu.Unlock()
			if all {
				break wait
			}
		}
	}
	cancel()
	<-allDone
	if err != nil {
		return 0, err
	}
	// Whatever is left in the queue now is a notification sent twice.
	left, err := r.drain(context.WithoutCancel(ctx))
	if err != nil {
		return 0, err
	}
	dups = append(dups, left...)
	r.lostOrDuplicated = victims - len(notified) + len(dups)
	if len(notified) != victims || len(dups) > 0 {
		return 0, fmt.Errorf("%d instances notified for %d terminations; duplicated: %v", len(notified), victims, dups)
	}
	return last.Sub(t0), nil
}

// work receives notifications until ctx ends, handles each terminating
// one and deletes every message it received. Once received, a batch is
// handled and deleted even if ctx ends meanwhile.
func (r *stormRun) work(ctx context.Context, handle func(notification) error) error {
	idle := time.NewTimer(0)
	defer idle.Stop()
	for ctx.Err() == nil {
		t0 := time.Now()
		out, err := r.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(r.queueURL), MaxNumberOfMessages: 10})
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("ReceiveMessage: %w", err)
		}
		r.record("ReceiveMessage", time.Since(t0))
		if len(out.Messages) == 0 {
			idle.Reset(stormIdlePoll)
			select {
			case <-ctx.Done():
			case <-idle.C:
			}
			continue
		}
		var entries []sqstypes.DeleteMessageBatchRequestEntry
		for i, m := range out.Messages {
			var nt notification
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &nt); err != nil {
				return fmt.Errorf("notification %q: %w", aws.ToString(m.Body), err)
			}
			if nt.Event == "" && nt.LifecycleTransition == "autoscaling:EC2_INSTANCE_TERMINATING" {
				if err := handle(nt); err != nil {
					return err
				}
			}
			entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
		del, err := r.sqs.DeleteMessageBatch(context.WithoutCancel(ctx), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(r.queueURL), Entries: entries})
		if err != nil {
			return fmt.Errorf("DeleteMessageBatch: %w", err)
		}
		if len(del.Failed) > 0 {
			return fmt.Errorf("DeleteMessageBatch: %d failed, first %s", len(del.Failed), aws.ToString(del.Failed[0].Message))
		}
	}
	return nil
}

// describe calls DescribeAutoScalingGroups every stormDescribe until ctx
// ends.
func (r *stormRun) describe(ctx context.Context) {
	tick := time.NewTicker(stormDescribe)
	defer tick.Stop()
	for {
		t0 := time.Now()
		_, err := r.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{stormGroup}})
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			r.record("DescribeAutoScalingGroups", time.Since(t0))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// drain receives what is left in the queue: the instance ids of the
// terminating notifications among it.
func (r *stormRun) drain(ctx context.Context) ([]string, error) {
	var ids []string
	for {
		out, err := r.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(r.queueURL), MaxNumberOfMessages: 10})
		if err != nil {
			return nil, fmt.Errorf("ReceiveMessage: %w", err)
		}
		if len(out.Messages) == 0 {
			return ids, nil
		}
		for _, m := range out.Messages {
			var nt notification
			if json.Unmarshal([]byte(aws.ToString(m.Body)), &nt) == nil && nt.Event == "" {
				ids = append(ids, nt.EC2InstanceID)
			}
			if _, err := r.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(r.queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return nil, fmt.Errorf("DeleteMessage: %w", err)
			}
		}
	}
}

func stormPercentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func stormMs(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// onFS names the file system the instances' files went to, which sets
// most of a large launch's cost when each instance writes files (" on
// tmpfs"), or "" when none did or it cannot tell.
func onFS(dir string, wrote bool) string {
	if !wrote || dir == "" {
		return ""
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return ""
	}
	names := map[int64]string{0x01021994: "tmpfs", 0xEF53: "ext4", 0x58465342: "xfs", 0x9123683E: "btrfs", 0x794c7630: "overlayfs"}
	if name, ok := names[int64(st.Type)]; ok {
		return ", state directory on " + name
	}
	return fmt.Sprintf(", state directory on file system 0x%x", st.Type)
}
