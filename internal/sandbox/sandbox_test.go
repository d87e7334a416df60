package sandbox_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/proc"
	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

func TestMain(m *testing.M) {
	proc.Main() // instances with user data re-execute this binary as their supervisor
	goleak.VerifyTestMain(m)
}

// start runs a sandbox without processes on a free port for one test or
// benchmark.
func start(t testing.TB, cfg sandbox.Config) (*sandbox.Server, string) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	cfg.NoProcesses = true
	srv, err := sandbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	endpoint, stop, err := srv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("run: %v", err)
		}
		http.DefaultClient.CloseIdleConnections()
	})
	return srv, endpoint
}

func asgClient(endpoint string, maxAttempts int) *autoscaling.Client {
	return autoscaling.NewFromConfig(aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("x", "x", ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.MaxBackoff = time.Millisecond
			})
		},
	})
}

func post(t *testing.T, endpoint string, header http.Header, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, endpoint+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBadRequestsGetAWSErrorEnvelopes(t *testing.T) {
	_, endpoint := start(t, sandbox.Config{})
	cases := []struct {
		name   string
		header http.Header
		body   string
		status int
		want   string
	}{
		{"unknown version", nil, "Action=Foo&Version=1999-01-01", 400, "<Code>InvalidAction</Code>"},
		{"no version", nil, "Action=DescribeAutoScalingGroups", 400, "<Code>MissingParameter</Code>"},
		{"unknown Auto Scaling action", nil, "Action=LaunchRockets&Version=2011-01-01", 400, "<Code>InvalidAction</Code>"},
		{"no action", nil, "Version=2011-01-01", 400, "<Code>MissingAction</Code>"},
		{"unknown EC2 action", nil, "Action=LaunchRockets&Version=2016-11-15", 400, "<Response><Errors><Error><Code>InvalidAction</Code>"},
		{"missing required parameter", nil, "Action=SetDesiredCapacity&Version=2011-01-01&DesiredCapacity=1", 400, "Value null at &#39;autoScalingGroupName&#39; failed to satisfy constraint: Member must not be null"},
		{"malformed integer", nil, "Action=SetDesiredCapacity&Version=2011-01-01&AutoScalingGroupName=g&DesiredCapacity=lots", 400, "<Code>ValidationError</Code>"},
		{"JSON service the sandbox does not serve", http.Header{"X-Amz-Target": {"Kinesis_20131202.ListStreams"}, "Content-Type": {"application/x-amz-json-1.1"}}, "{}", 400, `"__type":"com.amazon.coral.service#UnknownOperationException"`},
		{"undecodable body", nil, "Action=%zz", 400, "<Code>MalformedQueryString</Code>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := post(t, endpoint, c.header, c.body)
			if status != c.status || !strings.Contains(body, c.want) {
				t.Errorf("%d %s\nwant %d containing %s", status, body, c.status, c.want)
			}
		})
	}
	// The server is still up after all of that.
	if status, _ := post(t, endpoint, nil, "Action=DescribeAutoScalingGroups&Version=2011-01-01"); status != 200 {
		t.Errorf("DescribeAutoScalingGroups after bad requests: %d", status)
	}
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestFaults(t *testing.T) {
	t.Run("full throttling surfaces Auto Scaling's code after the SDK's retries", func(t *testing.T) {
		srv, endpoint := start(t, sandbox.Config{})
		if err := srv.SetFault(sandbox.Fault{Throttle: 1}); err != nil {
			t.Fatal(err)
		}
		_, err := asgClient(endpoint, 2).DescribeAutoScalingGroups(context.Background(), &autoscaling.DescribeAutoScalingGroupsInput{})
		if got := apiCode(err); got != "Throttling" {
			t.Errorf("error %v, want Throttling", err)
		}
	})
	t.Run("a share of throttling is retried away by the SDK", func(t *testing.T) {
		srv, endpoint := start(t, sandbox.Config{Seed: 1})
		if err := srv.SetFault(sandbox.Fault{Throttle: 0.3, Errors: 0.1}); err != nil {
			t.Fatal(err)
		}
		c := asgClient(endpoint, 10)
		for i := range 30 {
			if _, err := c.DescribeAutoScalingGroups(context.Background(), &autoscaling.DescribeAutoScalingGroupsInput{}); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
	})
	t.Run("the same seed draws the same faults", func(t *testing.T) {
		draw := func() string {
			srv, endpoint := start(t, sandbox.Config{Seed: 42})
			if err := srv.SetFault(sandbox.Fault{Throttle: 0.5}); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for range 40 {
				status, _ := post(t, endpoint, nil, "Action=DescribeAutoScalingGroups&Version=2011-01-01")
				b.WriteString(map[bool]string{true: "T", false: "."}[status == 400])
			}
			return b.String()
		}
		a, b := draw(), draw()
		if a != b || !strings.Contains(a, "T") || !strings.Contains(a, ".") {
			t.Errorf("draws %s and %s; want equal and mixed", a, b)
		}
	})
	t.Run("latency delays calls", func(t *testing.T) {
		srv, endpoint := start(t, sandbox.Config{})
		if err := srv.SetFault(sandbox.Fault{Latency: sandbox.Duration(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := asgClient(endpoint, 1).DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v, want the call to be still waiting at its deadline", err)
		}
	})
	t.Run("cut affects one instance's port only", func(t *testing.T) {
		srv, endpoint := start(t, sandbox.Config{})
		c := asgClient(endpoint, 1)
		ctx := context.Background()
		infos := launch(t, srv, c, 2)
		if err := srv.SetFault(sandbox.Fault{Instance: infos[0].ID, Cut: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := asgClient(infos[0].API, 1).DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{}); err == nil || apiCode(err) != "" {
			t.Errorf("cut instance's call: %v, want a connection error", err)
		}
		if _, err := asgClient(infos[1].API, 1).DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{}); err != nil {
			t.Errorf("other instance's call: %v", err)
		}
		if _, err := c.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{}); err != nil {
			t.Errorf("main port's call: %v", err)
		}
	})
	t.Run("bad faults are refused with the field named", func(t *testing.T) {
		srv, _ := start(t, sandbox.Config{})
		for f, want := range map[*sandbox.Fault]string{
			{Throttle: 2}:                         "throttle:",
			{Instance: "i-00000000000000000"}:     "instance: i-00000000000000000 is not an instance of this sandbox",
			{ErrorStatus: 418, Errors: 0.1}:       "error_status: 418",
			{ThrottleCode: "Slow", Throttle: 0.1}: "throttle_code:",
		} {
			if err := srv.SetFault(*f); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("SetFault(%+v) = %v, want %q", *f, err, want)
			}
		}
	})
}

// launch creates a group of n instances and waits until they are all in
// service with their own API ports.
func launch(t *testing.T, srv *sandbox.Server, c *autoscaling.Client, n int32) []sandbox.InstanceInfo {
	t.Helper()
	return launchWith(t, srv, c, n, "")
}

// launchWith is launch with user data (base64, as the API takes it).
func launchWith(t *testing.T, srv *sandbox.Server, c *autoscaling.Client, n int32, userData string) []sandbox.InstanceInfo {
	t.Helper()
	ctx := context.Background()
	lc := &autoscaling.CreateLaunchConfigurationInput{LaunchConfigurationName: aws.String("lc"), ImageId: aws.String("ami-0abcdef1234567890"), InstanceType: aws.String("t3.micro")}
	if userData != "" {
		lc.UserData = aws.String(userData)
	}
	if _, err := c.CreateLaunchConfiguration(ctx, lc); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String("g"), LaunchConfigurationName: aws.String("lc"), MinSize: aws.Int32(n), MaxSize: aws.Int32(n), AvailabilityZones: []string{"us-east-1a"}}); err != nil {
		t.Fatal(err)
	}
	var infos []sandbox.InstanceInfo
	for seq := int64(0); len(infos) < int(n); {
		evs, err := srv.World().EventsAfter(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		seq = evs[len(evs)-1].Seq
		infos = infos[:0]
		for _, in := range srv.Instances() {
			if in.State == world.StateInService && in.API != "" {
				infos = append(infos, in)
			}
		}
	}
	return infos
}

// TestAdminAPIIsNotOnInstancePorts: an instance's own API port serves the
// AWS APIs only, so a cut instance cannot read or push the clock, nor
// clear its own fault, through it.
func TestAdminAPIIsNotOnInstancePorts(t *testing.T) {
	srv, endpoint := start(t, sandbox.Config{})
	infos := launch(t, srv, asgClient(endpoint, 1), 2)
	cut, other := infos[0], infos[1]
	if err := srv.SetFault(sandbox.Fault{Instance: cut.ID, Cut: true}); err != nil {
		t.Fatal(err)
	}
	call := func(method, url, body string) (int, string) {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, in := range []sandbox.InstanceInfo{cut, other} {
		for _, c := range []struct{ method, path, body string }{
			{"GET", "/_sandbox/clock", ""},
			{"POST", "/_sandbox/clock", `{"advance":"1h"}`},
			{"GET", "/_sandbox/faults", ""},
			{"DELETE", "/_sandbox/faults?instance=" + in.ID, ""},
			{"DELETE", "/_sandbox/faults", ""},
			{"GET", "/_sandbox/events", ""},
			{"GET", "/_sandbox/health", ""},
		} {
			code, body := call(c.method, in.API+c.path, c.body)
			if code != 403 || !strings.Contains(body, "<Code>AccessDenied</Code>") {
				t.Errorf("%s %s on %s's API port: %d %s, want 403 AccessDenied", c.method, c.path, in.ID, code, body)
			}
		}
	}
	if off := srv.Clock().Offset(); off != 0 {
		t.Errorf("the clock moved by %s through an instance's port", off)
	}
	code, body := call("GET", endpoint+"/_sandbox/faults", "")
	if code != 200 || !strings.Contains(body, cut.ID) || !strings.Contains(body, `"cut":true`) {
		t.Errorf("faults on the main port: %d %s, want %s still cut", code, body, cut.ID)
	}
}

func TestAdminAPI(t *testing.T) {
	srv, endpoint := start(t, sandbox.Config{})
	t.Run("clock advances and refuses going back", func(t *testing.T) {
		resp, err := http.Post(endpoint+"/_sandbox/clock", "application/json", strings.NewReader(`{"advance":"2h"}`))
		if err != nil {
			t.Fatal(err)
		}
		var st sandbox.ClockState
		_ = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if resp.StatusCode != 200 || time.Duration(st.Offset) != 2*time.Hour || srv.Clock().Offset() != 2*time.Hour {
			t.Errorf("%d %+v", resp.StatusCode, st)
		}
		resp, err = http.Post(endpoint+"/_sandbox/clock", "application/json", strings.NewReader(`{"advance":"-1h"}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), "advance: must be a positive duration") {
			t.Errorf("%d %s", resp.StatusCode, b)
		}
	})
	t.Run("events stream as JSON lines", func(t *testing.T) {
		resp, err := http.Get(endpoint + "/_sandbox/events")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var kinds []string
		for sc.Scan() {
			var e world.Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			kinds = append(kinds, e.Kind)
		}
		if len(kinds) == 0 || kinds[0] != sandbox.EvClock {
			t.Errorf("events %v, want the clock advance first", kinds)
		}
	})
	t.Run("spot for an unknown instance is refused", func(t *testing.T) {
		resp, err := http.Post(endpoint+"/_sandbox/faults", "application/json", strings.NewReader(`{"instance":"i-00000000000000000","spot":"2m"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	})
	t.Run("unknown admin path names the real ones", func(t *testing.T) {
		resp, err := http.Get(endpoint + "/_sandbox/nope")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 || !strings.Contains(string(b), "health, clock, faults, events, instances") {
			t.Errorf("%d %s", resp.StatusCode, b)
		}
	})
}

// TestDynamoDBIsServed drives the sandbox's DynamoDB through the router
// with raw awsJson1_0 requests: a table's life lands in the control stream,
// item writes only in the data stream's counts.
func TestDynamoDBIsServed(t *testing.T) {
	srv, endpoint := start(t, sandbox.Config{})
	h := http.Header{"Content-Type": {"application/x-amz-json-1.0"}}
	call := func(op, body string) (int, string) {
		h.Set("X-Amz-Target", "DynamoDB_20120810."+op)
		return post(t, endpoint, h, body)
	}
	if code, body := call("CreateTable", `{"TableName":"leases","KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"BillingMode":"PAY_PER_REQUEST"}`); code != 200 || !strings.Contains(body, `"TableStatus":"CREATING"`) {
		t.Fatalf("CreateTable: %d %s", code, body)
	}
	srv.Clock().Advance(2 * time.Second)
	if code, body := call("PutItem", `{"TableName":"leases","Item":{"pk":{"S":"a"}},"ConditionExpression":"attribute_not_exists(pk)"}`); code != 200 {
		t.Fatalf("PutItem: %d %s", code, body)
	}
	code, body := call("PutItem", `{"TableName":"leases","Item":{"pk":{"S":"a"}},"ConditionExpression":"attribute_not_exists(pk)"}`)
	if code != 400 || !strings.Contains(body, "ConditionalCheckFailedException") {
		t.Fatalf("second PutItem: %d %s, want ConditionalCheckFailedException", code, body)
	}
	var kinds []string
	for _, e := range srv.Events().Events(eventlog.Control) {
		if e.Service == "dynamodb" {
			kinds = append(kinds, e.Kind+" "+e.Resource)
		}
	}
	if want := []string{"table-created leases", "table-active leases"}; !slices.Equal(kinds, want) {
		t.Errorf("control events %q, want %q", kinds, want)
	}
	if got := srv.Events().Stats().Data.Counts; got["item-put"] != 1 || got["condition-failed"] != 1 {
		t.Errorf("data counts %v, want one item-put and one condition-failed", got)
	}
}

// postAdmin posts a JSON body to an admin path and returns the status and
// the body.
func postAdmin(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestClockNeverWrapsToThePast pushes the clock to the edge of what it
// holds: the advance that would overflow is refused with the field named,
// and the simulated time stays where it was (it used to land in 1734).
func TestClockNeverWrapsToThePast(t *testing.T) {
	srv, endpoint := start(t, sandbox.Config{})
	if code, body := postAdmin(t, endpoint+"/_sandbox/clock", `{"advance":"2562047h"}`); code != 200 {
		t.Fatalf("first advance: %d %s", code, body)
	}
	before := srv.Clock().Now()
	code, body := postAdmin(t, endpoint+"/_sandbox/clock", `{"advance":"1h"}`)
	var e struct{ Code, Field, Error string }
	_ = json.Unmarshal([]byte(body), &e)
	if code != 400 || e.Code != "ValidationException" || e.Field != "advance" || !strings.HasPrefix(e.Error, "advance: 1h0m0s would carry the clock past the latest time it can hold") {
		t.Errorf("second advance: %d %s, want 400 ValidationException naming advance", code, body)
	}
	if now := srv.Clock().Now(); now.Before(before) || now.Year() < 2200 {
		t.Errorf("the clock reads %s after a refused advance, want it where it was (%s)", now, before)
	}
	if err := srv.AdvanceClock(time.Hour); err == nil || !strings.Contains(err.Error(), "advance: ") {
		t.Errorf("AdvanceClock past the edge: %v, want the advance refused", err)
	}
	var clockEvents int
	for _, ev := range srv.Events().Events(eventlog.Control) {
		if ev.Kind == sandbox.EvClock {
			clockEvents++
		}
	}
	if clockEvents != 1 {
		t.Errorf("%d clock-advanced events, want 1 (refused advances are not history)", clockEvents)
	}
}

func TestAdminDurationErrorsNameTheirField(t *testing.T) {
	_, endpoint := start(t, sandbox.Config{})
	cases := []struct {
		path, body, field string
	}{
		{"/_sandbox/clock", `{"advance":"banana"}`, "advance"},
		{"/_sandbox/clock", `{"advance":"9999999h"}`, "advance"},
		{"/_sandbox/clock", `{"advance":true}`, "advance"},
		{"/_sandbox/clock", `{}`, "advance"},
		{"/_sandbox/faults", `{"latency":"banana"}`, "latency"},
		{"/_sandbox/faults", `{"instance":"i-00000000000000000","spot":"banana"}`, "spot"},
	}
	for _, c := range cases {
		t.Run(c.path+" "+c.body, func(t *testing.T) {
			code, body := postAdmin(t, endpoint+c.path, c.body)
			var e struct{ Field, Error string }
			_ = json.Unmarshal([]byte(body), &e)
			if code != 400 || e.Field != c.field || !strings.HasPrefix(e.Error, c.field+": ") {
				t.Errorf("%d %s, want 400 naming %s", code, body, c.field)
			}
		})
	}
}

// TestStateDirIsNeverShared: a second run in the same state directory
// would give its instances (same seed, same ids) the first run's files and
// journals; the sandbox refuses a directory that is not empty.
func TestStateDirIsNeverShared(t *testing.T) {
	dir := t.TempDir() + "/state"
	run := func() error {
		srv, err := sandbox.New(sandbox.Config{Listen: "127.0.0.1:0", StateDir: dir, Seed: 7})
		if err != nil {
			return err
		}
		endpoint, stop, err := srv.Start()
		if err != nil {
			return err
		}
		defer func() { _ = stop(); http.DefaultClient.CloseIdleConnections() }()
		// An instance that runs something keeps its console in the
		// state directory.
		launchWith(t, srv, asgClient(endpoint, 1), 1, base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho hello\n")))
		return nil
	}
	if err := run(); err != nil {
		t.Fatalf("first run in a new directory: %v", err)
	}
	if entries, _ := os.ReadDir(dir + "/instances"); len(entries) != 1 {
		t.Fatalf("the first run left %d instance directories, want 1 (kept after exit)", len(entries))
	}
	err := run()
	if err == nil || !strings.HasPrefix(err.Error(), "state-dir: "+dir+" is not empty") {
		t.Fatalf("second run in the same directory: %v, want it refused naming state-dir", err)
	}
	empty := t.TempDir()
	if _, err := sandbox.New(sandbox.Config{InMemory: true, StateDir: empty}); err != nil {
		t.Errorf("an empty existing directory: %v, want it accepted", err)
	}
}

func TestListenIsLoopbackUnlessAllowed(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:4566", "[::]:4566", ":4566", "192.0.2.1:4566", "example.com:4566"} {
		err := sandbox.Config{Listen: listen}.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), "listen: ") || !strings.Contains(err.Error(), "--allow-non-loopback") {
			t.Errorf("Listen %s: %v, want it refused naming listen and --allow-non-loopback", listen, err)
		}
		if err := (sandbox.Config{Listen: listen, AllowNonLoopback: true}).Validate(); err != nil {
			t.Errorf("Listen %s with AllowNonLoopback: %v", listen, err)
		}
	}
	for _, listen := range []string{"127.0.0.1:4566", "127.0.0.9:0", "[::1]:4566", "localhost:4566"} {
		if err := (sandbox.Config{Listen: listen}).Validate(); err != nil {
			t.Errorf("Listen %s: %v, want it accepted", listen, err)
		}
	}
	// On every interface, the endpoint is the loopback URL this host
	// reaches, never http://[::]:PORT; the others are listed apart.
	srv, err := sandbox.New(sandbox.Config{Listen: "0.0.0.0:0", AllowNonLoopback: true, NoProcesses: true})
	if err != nil {
		t.Fatal(err)
	}
	endpoint, stop, err := srv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stop() }()
	if !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
		t.Errorf("endpoint %s, want the loopback URL", endpoint)
	}
	for _, a := range srv.Addresses() {
		if strings.Contains(a, "[::]") || strings.Contains(a, "0.0.0.0") {
			t.Errorf("address %s is not one a client can reach", a)
		}
	}
}
