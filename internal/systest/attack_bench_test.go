package systest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/lifeguardhq/lifeguard/internal/proc"
)

// BenchmarkAttack is a bounded attack on the sandbox binary: fuzzed
// requests over every service's operations, a 100 MB body, half-open
// connections, and many concurrent SQS clients; then 100k SQS messages
// after which the event log must still hold the group's whole history.
// Every loop is bounded in count and time and targets only the loopback
// sandbox it starts. Sizes come from the environment:
//
//	LIFEGUARD_ATTACK_SECONDS  concurrent-client phase, default 30
//	LIFEGUARD_ATTACK_CLIENTS  concurrent clients, default 200
//	LIFEGUARD_ATTACK_FUZZ     fuzzed requests, default 36000
//	LIFEGUARD_ATTACK_FLOOD    SQS messages for the history check, default 100000
//
// Run: go test -run='^$' -bench=Attack -benchtime=1x ./internal/systest/
func BenchmarkAttack(b *testing.B) {
	seconds := envInt("LIFEGUARD_ATTACK_SECONDS", 30)
	nClients := envInt("LIFEGUARD_ATTACK_CLIENTS", 200)
	nFuzz := envInt("LIFEGUARD_ATTACK_FUZZ", 36000)
	nFlood := envInt("LIFEGUARD_ATTACK_FLOOD", 100000)
	for b.Loop() {
		sb := startSandbox(b, "--relax-limits", "--no-processes")
		pid := sb.cmd.Process.Pid
		rssStart := rssKiB(b, pid)
		cfg := aws.Config{
			Region: "us-east-1", BaseEndpoint: aws.String(sb.endpoint),
			Credentials:      credentials.NewStaticCredentialsProvider("sandbox", "sandbox", ""),
			RetryMaxAttempts: 1,
			HTTPClient:       &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: nClients}},
		}
		asg := autoscaling.NewFromConfig(cfg)
		q := sqs.NewFromConfig(cfg)
		ctx := context.Background()

		// A group with a history the flood must not evict.
		must(b, attackGroup(ctx, asg))

		fuzz5xx, fuzzCodes := attackFuzz(b, sb.endpoint, nFuzz)
		bigStatus := attackBigBody(b, sb.endpoint)
		halfOpenOK := attackHalfOpen(b, sb.endpoint, 1000)
		rssMid := rssKiB(b, pid)
		load := attackClients(b, ctx, q, asg, nClients, time.Duration(seconds)*time.Second)
		flooded := attackFlood(b, ctx, q, nFlood)
		history := attackHistory(b, sb.endpoint)
		rssEnd := rssKiB(b, pid)

		b.ReportMetric(float64(fuzz5xx), "fuzz-5xx")
		b.ReportMetric(float64(load.requests), "load-requests")
		b.ReportMetric(float64(load.errors), "load-errors")
		b.ReportMetric(float64(load.lost), "messages-lost")
		b.ReportMetric(float64(rssEnd)/1024, "rss-end-MiB")
		fmt.Fprintf(os.Stderr, `
attack on the sandbox (loopback, bounded)
  fuzzed requests          %d over %d operations, 5xx: %d, status codes: %v
  100 MB body              answered %d
  1,000 half-open conns    normal request still served: %v
  %d clients for %ds      %d requests, %d errors, %d messages sent, %d received+deleted, %d lost
  SQS flood                %d messages sent
  event log afterwards     group events %d, launches %d, lifecycle/state events %d, other events %d, first seq %d
  RSS                      start %.1f MiB, after fuzz+big body+half-open %.1f MiB, end %.1f MiB
`, nFuzz, len(fuzzOps), fuzz5xx, fuzzCodes, bigStatus, halfOpenOK, nClients, seconds,
			load.requests, load.errors, load.sent, load.deleted, load.lost,
			flooded, history.groups, history.launches, history.states, history.other, history.firstSeq,
			float64(rssStart)/1024, float64(rssMid)/1024, float64(rssEnd)/1024)
		if fuzz5xx > 0 || load.errors > 0 || load.lost > 0 || history.groups == 0 || history.launches == 0 {
			b.Errorf("attack found a problem: fuzz 5xx %d, load errors %d, lost %d, group events %d, launches %d",
				fuzz5xx, load.errors, load.lost, history.groups, history.launches)
		}
		sb.stop(b)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

func rssKiB(b *testing.B, pid int) int {
	kib, err := proc.StatusKiB(pid, "VmRSS")
	if err != nil {
		b.Fatal(err)
	}
	return int(kib)
}

func attackGroup(ctx context.Context, asg *autoscaling.Client) error {
	if _, err := asg.CreateLaunchConfiguration(ctx, &autoscaling.CreateLaunchConfigurationInput{
		LaunchConfigurationName: aws.String("attack"), ImageId: aws.String("ami-0abcdef1234567890"), InstanceType: aws.String("t3.micro"),
	}); err != nil {
		return err
	}
	_, err := asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("attack"), LaunchConfigurationName: aws.String("attack"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(10), DesiredCapacity: aws.Int32(3),
		AvailabilityZones: []string{"us-east-1a"},
	})
	return err
}

// fuzzOps are the operations the fuzz phase aims at: (protocol, service
// prefix or API version, operation).
var fuzzOps = func() [][3]string {
	var ops [][3]string
	add := func(proto, svc string, names ...string) {
		for _, n := range names {
			ops = append(ops, [3]string{proto, svc, n})
		}
	}
	add("query", "2011-01-01", "CreateAutoScalingGroup", "UpdateAutoScalingGroup", "DeleteAutoScalingGroup", "DescribeAutoScalingGroups",
		"SetDesiredCapacity", "TerminateInstanceInAutoScalingGroup", "PutLifecycleHook", "DeleteLifecycleHook", "DescribeLifecycleHooks",
		"CompleteLifecycleAction", "RecordLifecycleActionHeartbeat", "DescribeAutoScalingInstances", "SetInstanceHealth",
		"SetInstanceProtection", "EnterStandby", "ExitStandby", "CreateLaunchConfiguration", "DescribeLaunchConfigurations",
		"DeleteLaunchConfiguration", "CreateOrUpdateTags", "DeleteTags", "DescribeTags", "DescribeScalingActivities",
		"PutNotificationConfiguration", "DescribeNotificationConfigurations", "DetachInstances", "AttachInstances", "Bogus")
	add("ec2", "2016-11-15", "DescribeInstances", "TerminateInstances", "CreateTags", "DeleteTags", "DescribeTags",
		"CreateLaunchTemplate", "CreateLaunchTemplateVersion", "DescribeLaunchTemplates", "DescribeLaunchTemplateVersions",
		"DeleteLaunchTemplate", "GetConsoleOutput", "ModifyInstanceMetadataOptions", "Bogus")
	add("json1.0", "AmazonSQS", "CreateQueue", "GetQueueUrl", "ListQueues", "DeleteQueue", "SendMessage", "SendMessageBatch",
		"ReceiveMessage", "DeleteMessage", "DeleteMessageBatch", "ChangeMessageVisibility", "ChangeMessageVisibilityBatch",
		"GetQueueAttributes", "SetQueueAttributes", "PurgeQueue", "TagQueue", "UntagQueue", "ListQueueTags", "Bogus")
	add("query", "2012-11-05", "CreateQueue", "SendMessage", "ReceiveMessage", "DeleteMessage", "GetQueueAttributes", "ListQueues")
	add("query", "2010-03-31", "CreateTopic", "DeleteTopic", "ListTopics", "Subscribe", "Unsubscribe", "ConfirmSubscription",
		"Publish", "PublishBatch", "GetTopicAttributes", "SetTopicAttributes", "GetSubscriptionAttributes",
		"SetSubscriptionAttributes", "ListSubscriptions", "ListSubscriptionsByTopic", "Bogus")
	add("json1.1", "AWSEvents", "PutRule", "DeleteRule", "DescribeRule", "ListRules", "PutTargets", "RemoveTargets",
		"ListTargetsByRule", "PutEvents", "EnableRule", "DisableRule", "Bogus")
	return ops
}()

// fuzzValue is a random value: numbers, huge numbers, names, ARNs, JSON
// fragments, control characters and invalid UTF-8.
func fuzzValue(r *rand.Rand) string {
	switch r.IntN(10) {
	case 0:
		return strconv.Itoa(r.IntN(1 << 20))
	case 1:
		return "-99999999999999999999"
	case 2:
		return "arn:aws:sqs:us-east-1:123456789012:q" + strconv.Itoa(r.IntN(5))
	case 3:
		return "http://127.0.0.1:1/123456789012/q" + strconv.Itoa(r.IntN(5))
	case 4:
		return string([]byte{0xff, 0xfe, 'a', 0x00, '\n'})
	case 5:
		return strings.Repeat("x", r.IntN(300000))
	case 6:
		return `{"a":[1,{"b":null}],"c":"` + strings.Repeat("{", r.IntN(100)) + `"}`
	case 7:
		return "attack"
	case 8:
		return ""
	default:
		return "q" + strconv.Itoa(r.IntN(5))
	}
}

var fuzzParams = []string{"QueueName", "QueueUrl", "MessageBody", "AutoScalingGroupName", "LaunchConfigurationName",
	"DesiredCapacity", "MinSize", "MaxSize", "Name", "TopicArn", "Endpoint", "Protocol", "Message", "InstanceId",
	"InstanceId.1", "LifecycleHookName", "HeartbeatTimeout", "MaxNumberOfMessages", "WaitTimeSeconds", "Entries",
	"Attributes", "Tags", "Filters.1.Name", "Filters.1.Value.1", "ReceiptHandle", "VisibilityTimeout", "EventPattern",
	"ScheduleExpression", "Rule", "Targets"}

func attackFuzz(b *testing.B, endpoint string, n int) (int64, map[int]int) {
	r := rand.New(rand.NewPCG(1, 2))
	client := &http.Client{Timeout: 30 * time.Second}
	var fives int64
	codes := map[int]int{}
	for range n {
		op := fuzzOps[r.IntN(len(fuzzOps))]
		var req *http.Request
		switch op[0] {
		case "query", "ec2":
			form := url.Values{"Action": {op[2]}, "Version": {op[1]}}
			for range r.IntN(6) {
				form.Set(fuzzParams[r.IntN(len(fuzzParams))], fuzzValue(r))
			}
			req, _ = http.NewRequest(http.MethodPost, endpoint+"/", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		default:
			body := map[string]any{}
			for range r.IntN(6) {
				if r.IntN(4) == 0 {
					body[fuzzParams[r.IntN(len(fuzzParams))]] = []any{fuzzValue(r), r.IntN(100)}
				} else {
					body[fuzzParams[r.IntN(len(fuzzParams))]] = fuzzValue(r)
				}
			}
			raw, _ := json.Marshal(body)
			if r.IntN(8) == 0 {
				raw = raw[:r.IntN(len(raw)+1)] // truncated JSON
			}
			req, _ = http.NewRequest(http.MethodPost, endpoint+"/", bytes.NewReader(raw))
			req.Header.Set("Content-Type", "application/x-amz-"+strings.ReplaceAll(op[0], "json", "json-"))
			req.Header.Set("X-Amz-Target", op[1]+"."+op[2])
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatalf("fuzz %s %s: %v", op[1], op[2], err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes[resp.StatusCode]++
		if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
			fives++
			b.Logf("fuzz %s %s answered %s", op[1], op[2], resp.Status)
		}
	}
	return fives, codes
}

// attackBigBody posts 100 MB to the SQS JSON endpoint and returns the
// status the sandbox answered with (it must answer, not fall over).
func attackBigBody(b *testing.B, endpoint string) int {
	body := io.LimitReader(zeroReader{}, 100<<20)
	req, _ := http.NewRequest(http.MethodPost, endpoint+"/", body)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "AmazonSQS.SendMessage")
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		// The server may close the connection once it has refused the
		// body; what matters is that it still serves the next request.
		b.Logf("100 MB body: %v", err)
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

// attackHalfOpen opens n connections that send half a request and stop,
// then checks that a normal request is still served.
func attackHalfOpen(b *testing.B, endpoint string, n int) bool {
	host := strings.TrimPrefix(endpoint, "http://")
	var conns []net.Conn
	for range n {
		c, err := net.Dial("tcp", host)
		if err != nil {
			b.Logf("half-open dial: %v", err)
			break
		}
		_, _ = fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: 100\r\n\r\n{\"Queue", host)
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(endpoint + "/_sandbox/health")
	if err != nil {
		b.Logf("health with %d half-open connections: %v", len(conns), err)
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

type loadResult struct {
	requests, errors, sent, deleted, lost int64
}

// attackClients runs n clients for d: each sends, receives and deletes on
// one of ten queues, with a describe of the group now and then. Afterwards
// the queues are drained: every message sent must have been received and
// deleted exactly once.
func attackClients(b *testing.B, ctx context.Context, q *sqs.Client, asg *autoscaling.Client, n int, d time.Duration) loadResult {
	var urls []string
	for i := range 10 {
		out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprintf("attack-%d", i))})
		must(b, err)
		urls = append(urls, *out.QueueUrl)
	}
	var res loadResult
	var seen sync.Map
	var dup atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	fail := func(err error) {
		if atomic.AddInt64(&res.errors, 1) <= 5 {
			b.Logf("load: %v", err)
		}
	}
	receive := func(url string, wait int32) int {
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10, WaitTimeSeconds: wait, VisibilityTimeout: 30})
		atomic.AddInt64(&res.requests, 1)
		if err != nil {
			fail(err)
			return 0
		}
		if len(out.Messages) == 0 {
			return 0
		}
		var entries []sqstypes.DeleteMessageBatchRequestEntry
		for i, m := range out.Messages {
			if _, loaded := seen.LoadOrStore(*m.Body, true); loaded {
				dup.Add(1)
			}
			entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
		del, err := q.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &url, Entries: entries})
		atomic.AddInt64(&res.requests, 1)
		if err != nil {
			fail(err)
			return 0
		}
		if len(del.Failed) > 0 {
			fail(fmt.Errorf("%d deletes failed", len(del.Failed)))
		}
		atomic.AddInt64(&res.deleted, int64(len(del.Successful)))
		return len(del.Successful)
	}
	for c := range n {
		wg.Go(func() {
			url := urls[c%len(urls)]
			for i := 0; time.Now().Before(deadline); i++ {
				body := fmt.Sprintf("c%d-m%d", c, i)
				if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: &body}); err != nil {
					fail(err)
				} else {
					atomic.AddInt64(&res.sent, 1)
				}
				atomic.AddInt64(&res.requests, 1)
				receive(url, 0)
				if i%20 == 0 {
					if _, err := asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{}); err != nil {
						fail(err)
					}
					atomic.AddInt64(&res.requests, 1)
				}
			}
		})
	}
	wg.Wait()
	// Drain: messages still in flight become visible after 30 s; the
	// drain waits for them with long polls, bounded.
	drainUntil := time.Now().Add(45 * time.Second)
	for _, url := range urls {
		for time.Now().Before(drainUntil) {
			attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &url,
				AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"}})
			must(b, err)
			if attrs.Attributes["ApproximateNumberOfMessages"] == "0" && attrs.Attributes["ApproximateNumberOfMessagesNotVisible"] == "0" {
				break
			}
			receive(url, 1)
		}
	}
	res.lost = res.sent - res.deleted + dup.Load()
	return res
}

func attackFlood(b *testing.B, ctx context.Context, q *sqs.Client, n int) int {
	out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("attack-flood")})
	must(b, err)
	sent := 0
	for sent < n {
		var entries []sqstypes.SendMessageBatchRequestEntry
		for i := 0; i < 10 && sent+i < n; i++ {
			entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String("flood")})
		}
		res, err := q.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: out.QueueUrl, Entries: entries})
		must(b, err)
		sent += len(res.Successful)
		if len(res.Failed) > 0 {
			b.Fatalf("flood: %d sends failed", len(res.Failed))
		}
	}
	return sent
}

type historyCounts struct {
	groups, launches, states, other int
	firstSeq                        int64
}

// attackHistory reads the whole event log and counts the attack group's
// history in it.
func attackHistory(b *testing.B, endpoint string) historyCounts {
	resp, err := http.Get(endpoint + "/_sandbox/events")
	must(b, err)
	defer resp.Body.Close()
	var h historyCounts
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		if h.firstSeq == 0 {
			h.firstSeq = e.Seq
		}
		if e.Group != "attack" {
			h.other++
			continue
		}
		switch {
		case e.Kind == "group-created":
			h.groups++
		case e.Kind == "instance-launched":
			h.launches++
		case e.Kind == "instance-state" || strings.HasPrefix(e.Kind, "action-"):
			h.states++
		}
	}
	return h
}
