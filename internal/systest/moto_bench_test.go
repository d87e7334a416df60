package systest_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/sync/errgroup"

	"github.com/lifeguardhq/lifeguard/internal/awscloud"
	"github.com/lifeguardhq/lifeguard/internal/interop"
	"github.com/lifeguardhq/lifeguard/internal/proc"
)

// BenchmarkVersusMoto runs one aws-sdk-go-v2 workload against `lifeguard
// sandbox --no-processes` (its own process, as moto is) and against
// moto_server, alternating which goes first round by round, each round on
// fresh servers, and logs one table: each row's median over the rounds on
// both sides and their ratio (sandbox / moto), with a verdict saying
// whether the sandbox is ahead. Both sides' clients are built alike
// (awscloud.OwnRequestBodies, the SDK's default retryer) and their
// retries counted. It is skipped without moto_server (failed under
// CI=true). The machine's load shows in the figures: read them side by
// side, not as absolutes.
//
//	go test -run='^$' -bench=VersusMoto -benchtime=3x -timeout=60m ./internal/systest/
func BenchmarkVersusMoto(b *testing.B) {
	interop.Require(b, "moto_server", func() (string, error) { return exec.LookPath("moto_server") })
	results := map[string][]vmResult{}
	for round := range b.N {
		sides := []string{"sandbox", "moto"}
		if round%2 == 1 {
			slices.Reverse(sides)
		}
		for _, side := range sides {
			var endpoint string
			var pid int
			var stop func()
			switch side {
			case "sandbox":
				p := startSandbox(b, "--no-processes", "--seed", "1")
				endpoint, pid, stop = p.endpoint, p.cmd.Process.Pid, func() { p.stop(b) }
			case "moto":
				endpoint = interop.Moto(b)
				port := endpoint[strings.LastIndex(endpoint, ":")+1:]
				var err error
				if pid, err = motoPID(port); err != nil {
					b.Fatal(err)
				}
				stop = func() {} // interop.Moto stops it when the benchmark ends
			}
			r, err := vmRun(b, side, endpoint, pid)
			stop()
			if err != nil {
				b.Fatalf("round %d, %s: %v", round, side, err)
			}
			results[side] = append(results[side], r)
		}
	}
	b.Log("\n" + vmTable(results, b.N))
}

// motoPID finds the moto_server process serving port: its command line
// ends "-p PORT" (moto_server may be a script run by an interpreter).
func motoPID(port string) (int, error) {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		raw, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if !strings.Contains(string(raw), "moto_server") || len(args) < 2 || args[len(args)-2] != "-p" || args[len(args)-1] != port {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		// A shim that execs keeps its pid; one that forks is the parent of
		// the interpreter: take the process that has no such child.
		if kids, err := os.ReadFile(filepath.Join(d, "task", strconv.Itoa(pid), "children")); err == nil && len(strings.TrimSpace(string(kids))) > 0 {
			continue
		}
		return pid, nil
	}
	return 0, fmt.Errorf("no moto_server process serves port %s", port)
}

// vmRSS returns a process's resident set size in MiB.
func vmRSS(pid int) (float64, error) {
	kib, err := proc.StatusKiB(pid, "VmRSS")
	return float64(kib) / 1024, err
}

// vmResult is one side's figures in one round, by row.
type vmResult map[string]float64

// vmRow is a row of the table: higher says whether more is better.
type vmRow struct {
	name, unit string
	higher     bool
}

var vmRows = []vmRow{
	{"SQS send throughput", "msg/s", true},
	{"SQS send p99", "ms", false},
	{"SQS receive throughput", "msg/s", true},
	{"SQS receive p99", "ms", false},
	{"SQS delete throughput", "msg/s", true},
	{"SQS delete p99", "ms", false},
	{"SQS messages received twice", "", false},
	{"SQS messages never received", "", false},
	{"SQS receive calls failed", "", false},
	{"launch → 1,000 InService", "s", false},
	{"DescribeAutoScalingGroups (1,000) p50", "ms", false},
	{"DescribeAutoScalingGroups (1,000) p99", "ms", false},
	{"SetDesiredCapacity 1,000 → 500", "s", false},
	{"SNS publish → 10 queues, all delivered", "s", false},
	{"DynamoDB PutItem p50", "ms", false},
	{"DynamoDB PutItem p99", "ms", false},
	{"DynamoDB GetItem p50", "ms", false},
	{"DynamoDB GetItem p99", "ms", false},
	{"DynamoDB UpdateItem (conditional) p50", "ms", false},
	{"DynamoDB UpdateItem (conditional) p99", "ms", false},
	{"server RSS at the end (process VmRSS)", "MiB", false},
	{"client retries", "", false},
}

func vmTable(results map[string][]vmResult, rounds int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "sandbox (lifeguard sandbox --no-processes, own process) vs moto_server; medians of %d round(s)\n", rounds)
	fmt.Fprintf(&sb, "| %-46s | %10s | %10s | %13s | %s |\n", "row", "sandbox", "moto", "sandbox/moto", "verdict")
	fmt.Fprintf(&sb, "|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 48), strings.Repeat("-", 12), strings.Repeat("-", 12), strings.Repeat("-", 15), strings.Repeat("-", 9))
	for _, row := range vmRows {
		s, m := vmMedian(results["sandbox"], row.name), vmMedian(results["moto"], row.name)
		ratio := "-"
		if m != 0 && !math.IsNaN(m) && !math.IsNaN(s) {
			ratio = fmt.Sprintf("%.3f", s/m)
		}
		verdict := "ahead"
		switch {
		case math.IsNaN(s):
			verdict = "BEHIND (did not finish)"
		case math.IsNaN(m):
			verdict = "ahead (moto did not finish)"
		case s == m:
			verdict = "even"
		case row.higher && s < m || !row.higher && s > m:
			verdict = "BEHIND"
		}
		name := row.name
		if row.unit != "" {
			name += " (" + row.unit + ")"
		}
		fmt.Fprintf(&sb, "| %-46s | %10s | %10s | %13s | %s |\n", name, vmCell(s), vmCell(m), ratio, verdict)
	}
	return sb.String()
}

// vmCell shows a figure, or n/a for a row a side did not finish.
func vmCell(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", v)
}

func vmMedian(rs []vmResult, row string) float64 {
	var vs []float64
	for _, r := range rs {
		if v, ok := r[row]; ok {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return math.NaN()
	}
	slices.Sort(vs)
	if n := len(vs); n%2 == 0 {
		return (vs[n/2-1] + vs[n/2]) / 2
	}
	return vs[len(vs)/2]
}

// vmCounter counts calls and HTTP attempts: attempts beyond calls are
// the SDK's retries.
type vmCounter struct{ calls, attempts atomic.Int64 }

func (c *vmCounter) instrument(cfg *aws.Config) {
	cfg.APIOptions = append(cfg.APIOptions, func(s *middleware.Stack) error {
		err := s.Initialize.Add(middleware.InitializeMiddlewareFunc("vm/calls", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.calls.Add(1)
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
		if err != nil {
			return err
		}
		return s.Finalize.Insert(middleware.FinalizeMiddlewareFunc("vm/attempts", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			c.attempts.Add(1)
			return next.HandleFinalize(ctx, in)
		}), "Retry", middleware.After)
	})
}

// vmLatencies collects call durations from several workers.
type vmLatencies struct {
	mu sync.Mutex
	ds []time.Duration
}

func (l *vmLatencies) time(f func() error) error {
	t0 := time.Now()
	err := f()
	d := time.Since(t0)
	l.mu.Lock()
	l.ds = append(l.ds, d)
	l.mu.Unlock()
	return err
}

// ms returns the p-th percentile (0..100) in milliseconds.
func (l *vmLatencies) ms(p int) float64 {
	slices.Sort(l.ds)
	if len(l.ds) == 0 {
		return 0
	}
	return float64(l.ds[min(len(l.ds)-1, len(l.ds)*p/100)]) / float64(time.Millisecond)
}

// Workload sizes.
const (
	vmMessages  = 3000 // SQS messages
	vmWorkers   = 8    // SQS and DynamoDB workers
	vmInstances = 1000 // Auto Scaling group size
	vmDescribes = 100  // DescribeAutoScalingGroups calls
	vmQueues    = 10   // SNS fan-out
	vmPublishes = 100  // SNS messages
	vmItems     = 1000 // DynamoDB items
)

// vmRun runs the workload against one server and returns its figures.
func vmRun(b *testing.B, side, endpoint string, pid int) (vmResult, error) {
	cfg := aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", ""),
	}
	awscloud.OwnRequestBodies(&cfg)
	var count vmCounter
	count.instrument(&cfg)
	r := vmResult{}
	steps := []struct {
		name string
		run  func(context.Context, aws.Config, vmResult) error
	}{{"sqs", vmSQS}, {"autoscaling", vmAutoScaling}, {"sns", vmSNS}, {"dynamodb", vmDynamoDB}}
	for _, s := range steps {
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		err := s.run(ctx, cfg, r)
		cancel()
		if err != nil && side == "sandbox" {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		if err != nil {
			// moto fails some workloads (500s on concurrent receives, or
			// no answer): the rows it did not finish show as n/a.
			b.Logf("%s: %s did not finish: %v", side, s.name, err)
			continue
		}
		b.Logf("%s: %s done in %v", side, s.name, time.Since(t0).Round(time.Millisecond))
		if testing.Verbose() {
			fmt.Fprintf(os.Stderr, "%s: %s done in %v\n", side, s.name, time.Since(t0).Round(time.Millisecond))
		}
	}
	rss, err := vmRSS(pid)
	if err != nil {
		return nil, err
	}
	r["server RSS at the end (process VmRSS)"] = rss
	r["client retries"] = float64(count.attempts.Load() - count.calls.Load())
	return r, nil
}

// vmParallel runs n jobs on vmWorkers workers.
func vmParallel(ctx context.Context, n int, job func(ctx context.Context, i int) error) error {
	var next atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	for range vmWorkers {
		g.Go(func() error {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return nil
				}
				if err := job(ctx, i); err != nil {
					return err
				}
			}
		})
	}
	return g.Wait()
}

// vmSQS sends vmMessages messages to one queue, receives them all (ten at
// a time) and deletes them, each phase on vmWorkers workers.
func vmSQS(ctx context.Context, cfg aws.Config, r vmResult) error {
	c := sqs.NewFromConfig(cfg)
	q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("bench"), Attributes: map[string]string{"VisibilityTimeout": "600"}})
	if err != nil {
		return err
	}
	var send, recv, del vmLatencies
	t0 := time.Now()
	err = vmParallel(ctx, vmMessages, func(ctx context.Context, i int) error {
		return send.time(func() error {
			_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(fmt.Sprintf("message %d %s", i, strings.Repeat("x", 200)))})
			return err
		})
	})
	if err != nil {
		return err
	}
	r["SQS send throughput"] = vmMessages / time.Since(t0).Seconds()
	r["SQS send p99"] = send.ms(99)
	vmProgress("sqs sent")

	// Every worker receives until the queue has nothing visible left for
	// it (the visibility timeout outlasts the phase): a message received
	// twice, or never, is counted, not fatal.
	var mu sync.Mutex
	handles := map[string]string{} // message id → its latest receipt handle
	twice := 0                     // messages received again within their visibility timeout
	failed := 0                    // receive calls that failed, after the SDK's retries
	t0 = time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for range vmWorkers {
		g.Go(func() error {
			for {
				var out *sqs.ReceiveMessageOutput
				err := recv.time(func() (err error) {
					out, err = c.ReceiveMessage(gctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10})
					return err
				})
				if err != nil {
					// A server that fails a receive (moto answers 500 to
					// some concurrent receives) is counted, and asked again.
					mu.Lock()
					failed++
					tooMany := failed > 50
					mu.Unlock()
					if gctx.Err() != nil || tooMany {
						return err
					}
					continue
				}
				if len(out.Messages) == 0 {
					return nil
				}
				mu.Lock()
				for _, m := range out.Messages {
					if _, dup := handles[*m.MessageId]; dup {
						twice++
					}
					handles[*m.MessageId] = *m.ReceiptHandle
				}
				if n := len(handles); n%500 < len(out.Messages) {
					vmProgress(fmt.Sprintf("sqs: %d received", n))
				}
				mu.Unlock()
			}
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	r["SQS receive throughput"] = float64(len(handles)) / time.Since(t0).Seconds()
	r["SQS receive p99"] = recv.ms(99)
	vmProgress("sqs received")
	r["SQS messages received twice"] = float64(twice)
	r["SQS messages never received"] = float64(vmMessages - len(handles))
	r["SQS receive calls failed"] = float64(failed)

	hs := slices.Collect(func(yield func(string) bool) {
		for _, h := range handles {
			if !yield(h) {
				return
			}
		}
	})
	t0 = time.Now()
	err = vmParallel(ctx, len(hs), func(ctx context.Context, i int) error {
		return del.time(func() error {
			_, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: q.QueueUrl, ReceiptHandle: aws.String(hs[i])})
			return err
		})
	})
	if err != nil {
		return err
	}
	r["SQS delete throughput"] = float64(len(hs)) / time.Since(t0).Seconds()
	r["SQS delete p99"] = del.ms(99)
	return nil
}

// vmAutoScaling launches a group of vmInstances (no lifecycle hooks),
// describes it vmDescribes times, then sets its desired capacity to half
// and waits until it reports that many instances.
func vmAutoScaling(ctx context.Context, cfg aws.Config, r vmResult) error {
	c := autoscaling.NewFromConfig(cfg)
	if _, err := c.CreateLaunchConfiguration(ctx, &autoscaling.CreateLaunchConfigurationInput{
		LaunchConfigurationName: aws.String("bench"), ImageId: aws.String("ami-0abcdef1234567890"), InstanceType: aws.String("t3.micro"),
	}); err != nil {
		return err
	}
	t0 := time.Now()
	if _, err := c.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("bench"), LaunchConfigurationName: aws.String("bench"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(vmInstances), DesiredCapacity: aws.Int32(vmInstances),
		AvailabilityZones: []string{"us-east-1a", "us-east-1b"},
	}); err != nil {
		return err
	}
	if err := vmWaitGroup(ctx, c, vmInstances); err != nil {
		return err
	}
	r["launch → 1,000 InService"] = time.Since(t0).Seconds()
	vmProgress("group in service")
	var describe vmLatencies
	for range vmDescribes {
		err := describe.time(func() error {
			out, err := c.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"bench"}})
			if err == nil && (len(out.AutoScalingGroups) != 1 || len(out.AutoScalingGroups[0].Instances) != vmInstances) {
				err = fmt.Errorf("DescribeAutoScalingGroups did not list the group's %d instances", vmInstances)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	r["DescribeAutoScalingGroups (1,000) p50"] = describe.ms(50)
	r["DescribeAutoScalingGroups (1,000) p99"] = describe.ms(99)
	vmProgress("group described")
	t0 = time.Now()
	if _, err := c.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{
		AutoScalingGroupName: aws.String("bench"), DesiredCapacity: aws.Int32(vmInstances / 2), HonorCooldown: aws.Bool(false),
	}); err != nil {
		return err
	}
	if err := vmWaitGroup(ctx, c, vmInstances/2); err != nil {
		return err
	}
	r["SetDesiredCapacity 1,000 → 500"] = time.Since(t0).Seconds()
	return nil
}

// vmWaitGroup polls until the group lists exactly n instances, all
// InService.
func vmWaitGroup(ctx context.Context, c *autoscaling.Client, n int) error {
	for {
		out, err := c.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"bench"}})
		if err != nil {
			return err
		}
		if len(out.AutoScalingGroups) == 1 {
			in := out.AutoScalingGroups[0].Instances
			inService := 0
			for _, i := range in {
				if i.LifecycleState == "InService" {
					inService++
				}
			}
			if len(in) == n && inService == n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d instances in service: %w", n, ctx.Err())
		case <-time.After(10 * time.Millisecond): // polling another process's state
		}
	}
}

// vmSNS subscribes vmQueues queues to a topic, publishes vmPublishes
// messages and waits until every queue holds all of them.
func vmSNS(ctx context.Context, cfg aws.Config, r vmResult) error {
	q, t := sqs.NewFromConfig(cfg), sns.NewFromConfig(cfg)
	topic, err := t.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("bench")})
	if err != nil {
		return err
	}
	var urls []*string
	for i := range vmQueues {
		out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprint("fan", i))})
		if err != nil {
			return err
		}
		attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			return err
		}
		if _, err := t.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(attrs.Attributes["QueueArn"])}); err != nil {
			return err
		}
		urls = append(urls, out.QueueUrl)
	}
	t0 := time.Now()
	for i := range vmPublishes {
		if _, err := t.Publish(ctx, &sns.PublishInput{TopicArn: topic.TopicArn, Message: aws.String(fmt.Sprint("event ", i))}); err != nil {
			return err
		}
	}
	for _, u := range urls {
		for {
			attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: u, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages}})
			if err != nil {
				return err
			}
			n, _ := strconv.Atoi(attrs.Attributes["ApproximateNumberOfMessages"])
			if n > vmPublishes {
				return fmt.Errorf("queue %s holds %d messages, %d published", *u, n, vmPublishes)
			}
			if n == vmPublishes {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %d messages on %s: %w", vmPublishes, *u, ctx.Err())
			case <-time.After(2 * time.Millisecond): // polling another process's state
			}
		}
	}
	r["SNS publish → 10 queues, all delivered"] = time.Since(t0).Seconds()
	return nil
}

// vmDynamoDB puts vmItems items, gets each, and updates each with a
// condition, on vmWorkers workers.
func vmDynamoDB(ctx context.Context, cfg aws.Config, r vmResult) error {
	c := dynamodb.NewFromConfig(cfg)
	if _, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("bench"),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	}); err != nil {
		return err
	}
	for {
		out, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("bench")})
		if err != nil {
			return err
		}
		if out.Table.TableStatus == ddbtypes.TableStatusActive {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond): // polling another process's state
		}
	}
	key := func(i int) map[string]ddbtypes.AttributeValue {
		return map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: fmt.Sprint("item-", i)}}
	}
	var put, get, update vmLatencies
	err := vmParallel(ctx, vmItems, func(ctx context.Context, i int) error {
		item := key(i)
		item["n"] = &ddbtypes.AttributeValueMemberN{Value: "0"}
		item["payload"] = &ddbtypes.AttributeValueMemberS{Value: strings.Repeat("p", 200)}
		return put.time(func() error {
			_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("bench"), Item: item})
			return err
		})
	})
	if err != nil {
		return err
	}
	err = vmParallel(ctx, vmItems, func(ctx context.Context, i int) error {
		return get.time(func() error {
			out, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("bench"), Key: key(i)})
			if err == nil && len(out.Item) != 3 {
				err = fmt.Errorf("GetItem item-%d returned %d attributes, want 3", i, len(out.Item))
			}
			return err
		})
	})
	if err != nil {
		return err
	}
	err = vmParallel(ctx, vmItems, func(ctx context.Context, i int) error {
		return update.time(func() error {
			_, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName: aws.String("bench"), Key: key(i),
				UpdateExpression:          aws.String("SET n = n + :one"),
				ConditionExpression:       aws.String("attribute_exists(pk)"),
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":one": &ddbtypes.AttributeValueMemberN{Value: "1"}},
			})
			return err
		})
	})
	if err != nil {
		return err
	}
	r["DynamoDB PutItem p50"], r["DynamoDB PutItem p99"] = put.ms(50), put.ms(99)
	r["DynamoDB GetItem p50"], r["DynamoDB GetItem p99"] = get.ms(50), get.ms(99)
	r["DynamoDB UpdateItem (conditional) p50"], r["DynamoDB UpdateItem (conditional) p99"] = update.ms(50), update.ms(99)
	return nil
}

// vmProgress tells a person watching a verbose run where the workload is.
func vmProgress(what string) {
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format(time.TimeOnly), what)
	}
}
