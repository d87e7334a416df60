package lambda_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/functions"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

type echoReply struct {
	Event      map[string]any    `json:"event"`
	RequestID  string            `json:"requestId"`
	ARN        string            `json:"arn"`
	DeadlineMs int64             `json:"deadlineMs"`
	Pid        int               `json:"pid"`
	Env        map[string]string `json:"env"`
	Functions  []string          `json:"functions"`
}

func (e *env) invoke(t *testing.T, name, payload string, mod func(*awslambda.InvokeInput)) *awslambda.InvokeOutput {
	t.Helper()
	in := &awslambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(payload)}
	if mod != nil {
		mod(in)
	}
	out, err := e.c.Invoke(t.Context(), in)
	if err != nil {
		t.Fatalf("Invoke %s: %v", name, err)
	}
	return out
}

func (e *env) echo(t *testing.T, name, payload string) echoReply {
	t.Helper()
	out := e.invoke(t, name, payload, nil)
	if out.FunctionError != nil {
		t.Fatalf("Invoke %s: function error %s: %s", name, *out.FunctionError, out.Payload)
	}
	var r echoReply
	if err := json.Unmarshal(out.Payload, &r); err != nil {
		t.Fatalf("reply %s: %v", out.Payload, err)
	}
	return r
}

// TestGoFunctionThroughItsRuntimeClient runs a function built with
// aws-lambda-go: its own Runtime API client takes the event, the request
// id, the deadline and the ARN; the environment is reused while warm and
// replaced when the configuration changes.
func TestGoFunctionThroughItsRuntimeClient(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	created := e.create(t, "echo", zipOf(t, map[string][]byte{"bootstrap": echoBootstrap}), func(in *awslambda.CreateFunctionInput) {
		in.Environment = &types.Environment{Variables: map[string]string{"GREETING": "hello"}}
		in.Timeout = aws.Int32(7)
	})
	arn := "arn:aws:lambda:us-east-1:123456789012:function:echo"
	if aws.ToString(created.FunctionArn) != arn || created.State != types.StateActive || aws.ToInt32(created.Timeout) != 7 ||
		aws.ToInt32(created.MemorySize) != 128 || created.Runtime != types.RuntimeProvidedal2023 || aws.ToString(created.CodeSha256) == "" {
		t.Errorf("CreateFunction: %+v", created)
	}

	before := time.Now()
	out := e.invoke(t, "echo", `{"name":"first"}`, func(in *awslambda.InvokeInput) { in.LogType = types.LogTypeTail })
	if out.StatusCode != 200 || out.FunctionError != nil || aws.ToString(out.ExecutedVersion) != "$LATEST" {
		t.Fatalf("Invoke: status %d, function error %v, version %v", out.StatusCode, out.FunctionError, out.ExecutedVersion)
	}
	var r echoReply
	if err := json.Unmarshal(out.Payload, &r); err != nil {
		t.Fatalf("reply %s: %v", out.Payload, err)
	}
	if r.Event["name"] != "first" || r.ARN != arn || r.RequestID == "" {
		t.Errorf("reply: %+v", r)
	}
	if d := time.UnixMilli(r.DeadlineMs).Sub(before); d < 6*time.Second || d > 8*time.Second {
		t.Errorf("deadline %s after the call, want about the 7 s timeout", d)
	}
	if r.Env["GREETING"] != "hello" || r.Env["AWS_ENDPOINT_URL"] != e.sb.Endpoint || r.Env["AWS_LAMBDA_FUNCTION_NAME"] != "echo" ||
		r.Env["AWS_REGION"] != "us-east-1" || r.Env["_HANDLER"] != "bootstrap" || r.Env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] != "128" {
		t.Errorf("environment: %v", r.Env)
	}
	tail, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if err != nil {
		t.Fatalf("LogResult: %v", err)
	}
	for _, want := range []string{"START RequestId: " + r.RequestID + " Version: $LATEST", "handling first", "END RequestId: " + r.RequestID, "REPORT RequestId: " + r.RequestID, "Init Duration:"} {
		if !strings.Contains(string(tail), want) {
			t.Errorf("LogResult lacks %q:\n%s", want, tail)
		}
	}

	warm := e.echo(t, "echo", `{"name":"second","call":true}`)
	if !slices.Equal(warm.Functions, []string{"echo"}) {
		t.Errorf("the function called ListFunctions at its AWS_ENDPOINT_URL and got %v, want [echo]", warm.Functions)
	}
	if warm.Pid != r.Pid || warm.RequestID == r.RequestID {
		t.Errorf("second invocation: pid %d request %s, want the warm environment (pid %d) and a new request id", warm.Pid, warm.RequestID, r.Pid)
	}

	failed := e.invoke(t, "echo", `{"name":"third","fail":true}`, nil)
	if aws.ToString(failed.FunctionError) != "Unhandled" || failed.StatusCode != 200 {
		t.Fatalf("failing invocation: status %d, function error %v", failed.StatusCode, failed.FunctionError)
	}
	var fe struct{ ErrorMessage, ErrorType string }
	if err := json.Unmarshal(failed.Payload, &fe); err != nil || fe.ErrorMessage != "asked to fail" || fe.ErrorType != "errorString" {
		t.Errorf("function error payload %s (%v)", failed.Payload, err)
	}
	if again := e.echo(t, "echo", `{"name":"fourth"}`); again.Pid != r.Pid {
		t.Errorf("after a handled error the environment is reused: pid %d, want %d", again.Pid, r.Pid)
	}

	if _, err := e.c.UpdateFunctionConfiguration(t.Context(), &awslambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("echo"), Environment: &types.Environment{Variables: map[string]string{"GREETING": "bonjour"}},
		MemorySize: aws.Int32(256),
	}); err != nil {
		t.Fatal(err)
	}
	changed := e.echo(t, "echo", `{"name":"fifth"}`)
	if changed.Pid == r.Pid || changed.Env["GREETING"] != "bonjour" || changed.Env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] != "256" {
		t.Errorf("after UpdateFunctionConfiguration: %+v, want a new environment (not pid %d) with the new variables", changed, r.Pid)
	}

	logs := adminGet(t, e, "/_sandbox/functions/echo/logs")
	for _, want := range []string{"handling first", "handling second", "handling fifth"} {
		if !strings.Contains(logs, want) {
			t.Errorf("admin logs lack %q:\n%s", want, logs)
		}
	}
	var invokes, envEvents int
	for _, ev := range e.sb.Events.Events(eventlog.All) {
		switch ev.Kind {
		case functions.EvInvoke:
			invokes++
			if !ev.Data {
				t.Errorf("invocation event on the control stream: %+v", ev)
			}
		case functions.EvEnvironment:
			envEvents++
		}
	}
	if invokes != 5 || envEvents < 3 {
		t.Errorf("events: %d invocations, %d environment events; want 5 and at least 3 (two starts, one stop)", invokes, envEvents)
	}
}

func adminGet(t *testing.T, e *env, path string) string {
	t.Helper()
	resp, err := e.sb.HTTP.Get(e.sb.Endpoint + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// TestShellFunctionErrorAndTimeout drives the Runtime API from a shell
// script: an error posted to /error is an Unhandled function error; a
// function that outlives its timeout is killed and answered as Lambda
// does, and the next invocation starts a new environment.
func TestShellFunctionErrorAndTimeout(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	e.create(t, "boom", zipOf(t, map[string][]byte{"bootstrap": nextLoop(`  echo "failing $ID"
  curl -sS -o /dev/null -X POST -H 'Lambda-Runtime-Function-Error-Type: Custom.Boom' -d '{"errorMessage":"boom","errorType":"Custom.Boom"}' "$API/invocation/$ID/error"`)}), nil)
	out := e.invoke(t, "boom", `{}`, func(in *awslambda.InvokeInput) { in.LogType = types.LogTypeTail })
	if aws.ToString(out.FunctionError) != "Unhandled" || string(out.Payload) != `{"errorMessage":"boom","errorType":"Custom.Boom"}` {
		t.Errorf("error: function error %v, payload %s", out.FunctionError, out.Payload)
	}
	if tail, _ := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult)); !strings.Contains(string(tail), "failing ") {
		t.Errorf("LogResult lacks the script's line: %s", tail)
	}

	e.create(t, "slow", zipOf(t, map[string][]byte{"bootstrap": nextLoop(`  echo "sleeping $ID"
  sleep 600`)}), func(in *awslambda.CreateFunctionInput) { in.Timeout = aws.Int32(2) })
	type result struct {
		out *awslambda.InvokeOutput
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := e.c.Invoke(context.Background(), &awslambda.InvokeInput{FunctionName: aws.String("slow"), Payload: []byte(`{}`)})
		done <- result{out, err}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), waitBound)
	defer cancel()
	if _, err := e.sb.Functions.WaitLogs(ctx, "slow", "sleeping "); err != nil {
		t.Fatalf("waiting for the function to take the event: %v", err)
	}
	e.sb.Clock.Advance(2 * time.Second) // the timeout runs on the sandbox clock
	res := <-done
	if res.err != nil {
		t.Fatalf("Invoke slow: %v", res.err)
	}
	var te struct{ ErrorMessage, ErrorType string }
	_ = json.Unmarshal(res.out.Payload, &te)
	if aws.ToString(res.out.FunctionError) != "Unhandled" || te.ErrorType != "Sandbox.Timedout" || !strings.HasSuffix(te.ErrorMessage, "Error: Task timed out after 2.00 seconds") {
		t.Errorf("timeout: function error %v, payload %s", res.out.FunctionError, res.out.Payload)
	}
	logs, _ := e.sb.Functions.Logs("slow")
	if !strings.Contains(string(logs), "Task timed out after 2.00 seconds") {
		t.Errorf("logs lack the timeout line:\n%s", logs)
	}
	stopped := slices.ContainsFunc(e.sb.Events.Events(eventlog.Control), func(ev eventlog.Event) bool {
		return ev.Kind == functions.EvEnvironment && strings.Contains(ev.Detail, "slow-") && strings.Contains(ev.Detail, "stopped: its invocation failed (Sandbox.Timedout)")
	})
	if !stopped {
		t.Error("no event says the timed-out environment was stopped")
	}
}

// TestInitErrorAndMissingBootstrap covers the two ways a function fails
// before its handler runs.
func TestInitErrorAndMissingBootstrap(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	e.create(t, "noinit", zipOf(t, map[string][]byte{"bootstrap": script(`curl -sS -o /dev/null -X POST -H 'Lambda-Runtime-Function-Error-Type: Runtime.ConfigError' -d '{"errorMessage":"no configuration","errorType":"Runtime.ConfigError"}' "$API/init/error"
sleep 600`)}), nil)
	out := e.invoke(t, "noinit", `{}`, nil)
	if aws.ToString(out.FunctionError) != "Unhandled" || !strings.Contains(string(out.Payload), "no configuration") {
		t.Errorf("init error: %v %s", out.FunctionError, out.Payload)
	}
	e.create(t, "empty", zipOf(t, map[string][]byte{"handler.py": []byte("print(1)")}), nil)
	out = e.invoke(t, "empty", `{}`, nil)
	if aws.ToString(out.FunctionError) != "Unhandled" || !strings.Contains(string(out.Payload), "Runtime.InvalidEntrypoint") ||
		!strings.Contains(string(out.Payload), "Couldn't find valid bootstrap(s)") {
		t.Errorf("missing bootstrap: %v %s", out.FunctionError, out.Payload)
	}
}

// TestAPIErrorsAndStoredSettings checks AWS's error shapes, the
// invocation types, permissions and enforced concurrency.
func TestAPIErrorsAndStoredSettings(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	ctx := t.Context()
	_, err := e.c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("nope")})
	if code, msg := apiError(t, err); code != "ResourceNotFoundException" || msg != "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope" {
		t.Errorf("GetFunction nope: %s %s", code, msg)
	}
	_, err = e.c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:123456789012:function:nope")})
	if code, _ := apiError(t, err); code != "ResourceNotFoundException" {
		t.Errorf("Invoke nope: %s", code)
	}
	_, err = e.c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("py"), Runtime: types.RuntimePython312,
		Role: aws.String(role), Handler: aws.String("app.handler"), Code: &types.FunctionCode{ZipFile: zipOf(t, map[string][]byte{"app.py": nil})}})
	if code, msg := apiError(t, err); code != "InvalidParameterValueException" || !strings.Contains(msg, "The runtime parameter of python3.12") {
		t.Errorf("python runtime: %s %s", code, msg)
	}
	_, err = e.c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("bad"), Runtime: types.RuntimeProvidedal2,
		Role: aws.String(role), Code: &types.FunctionCode{ZipFile: []byte("not a zip")}})
	if code, msg := apiError(t, err); code != "InvalidParameterValueException" || msg != "Could not unzip uploaded file. Please check your file, then try to upload again." {
		t.Errorf("bad zip: %s %s", code, msg)
	}
	zip := zipOf(t, map[string][]byte{"bootstrap": echoBootstrap})
	e.create(t, "fn", zip, nil)
	_, err = e.c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("fn"), Runtime: types.RuntimeProvidedal2023,
		Role: aws.String(role), Code: &types.FunctionCode{ZipFile: zip}})
	if code, msg := apiError(t, err); code != "ResourceConflictException" || msg != "Function already exist: fn" {
		t.Errorf("duplicate: %s %s", code, msg)
	}

	if out := e.invoke(t, "fn", `{}`, func(in *awslambda.InvokeInput) { in.InvocationType = types.InvocationTypeDryRun }); out.StatusCode != 204 {
		t.Errorf("DryRun: status %d", out.StatusCode)
	}
	_, err = e.c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("fn"), Payload: []byte("{not json")})
	if code, _ := apiError(t, err); code != "InvalidRequestContentException" {
		t.Errorf("bad payload: %s", code)
	}

	st, err := e.c.AddPermission(ctx, &awslambda.AddPermissionInput{FunctionName: aws.String("fn"), StatementId: aws.String("sns"),
		Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("sns.amazonaws.com"), SourceArn: aws.String("arn:aws:sns:us-east-1:123456789012:t")})
	if err != nil || !strings.Contains(aws.ToString(st.Statement), `"Service":"sns.amazonaws.com"`) {
		t.Fatalf("AddPermission: %v %v", st, err)
	}
	_, err = e.c.AddPermission(ctx, &awslambda.AddPermissionInput{FunctionName: aws.String("fn"), StatementId: aws.String("sns"),
		Action: aws.String("lambda:InvokeFunction"), Principal: aws.String("sns.amazonaws.com")})
	if code, _ := apiError(t, err); code != "ResourceConflictException" {
		t.Errorf("AddPermission again: %s", code)
	}
	pol, err := e.c.GetPolicy(ctx, &awslambda.GetPolicyInput{FunctionName: aws.String("fn")})
	if err != nil || !strings.Contains(aws.ToString(pol.Policy), `"AWS:SourceArn":"arn:aws:sns:us-east-1:123456789012:t"`) {
		t.Errorf("GetPolicy: %v %v", pol, err)
	}
	if _, err := e.c.RemovePermission(ctx, &awslambda.RemovePermissionInput{FunctionName: aws.String("fn"), StatementId: aws.String("sns")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.c.GetPolicy(ctx, &awslambda.GetPolicyInput{FunctionName: aws.String("fn")})
	if code, msg := apiError(t, err); code != "ResourceNotFoundException" || msg != "The resource you requested does not exist." {
		t.Errorf("GetPolicy after removal: %s %s", code, msg)
	}

	if _, err := e.c.PutFunctionConcurrency(ctx, &awslambda.PutFunctionConcurrencyInput{FunctionName: aws.String("fn"), ReservedConcurrentExecutions: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("fn")})
	var tm *types.TooManyRequestsException
	if code, msg := apiError(t, err); code != "TooManyRequestsException" || msg != "Rate Exceeded." || !errorsAs(err, &tm) || tm.Reason != types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded {
		t.Errorf("throttled: %s %s %+v", code, msg, tm)
	}
	g, err := e.c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("fn")})
	if err != nil || g.Concurrency == nil || aws.ToInt32(g.Concurrency.ReservedConcurrentExecutions) != 0 || aws.ToString(g.Configuration.FunctionName) != "fn" {
		t.Errorf("GetFunction: %+v %v", g, err)
	}
	if _, err := e.c.DeleteFunctionConcurrency(ctx, &awslambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String("fn")}); err != nil {
		t.Fatal(err)
	}
	if out := e.invoke(t, "fn", `{"name":"async"}`, func(in *awslambda.InvokeInput) { in.InvocationType = types.InvocationTypeEvent }); out.StatusCode != 202 {
		t.Errorf("Event: status %d", out.StatusCode)
	}
	wctx, cancel := context.WithTimeout(ctx, waitBound)
	defer cancel()
	if _, err := e.sb.Functions.WaitLogs(wctx, "fn", "handling async"); err != nil {
		t.Errorf("the Event invocation never ran: %v", err)
	}

	l, err := e.c.ListFunctions(ctx, &awslambda.ListFunctionsInput{})
	if err != nil || len(l.Functions) != 1 || aws.ToString(l.Functions[0].FunctionName) != "fn" {
		t.Errorf("ListFunctions: %+v %v", l, err)
	}
	if _, err := e.c.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("fn")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.c.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("fn")})
	if code, _ := apiError(t, err); code != "ResourceNotFoundException" {
		t.Errorf("DeleteFunction again: %s", code)
	}
}

// TestReservedConcurrencyEnforced: with one reserved, a second concurrent
// invocation is throttled while the first runs.
func TestReservedConcurrencyEnforced(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	e.create(t, "one", zipOf(t, map[string][]byte{"bootstrap": nextLoop(`  echo "busy $ID"
  sleep 600`)}), func(in *awslambda.CreateFunctionInput) { in.Timeout = aws.Int32(5) })
	if _, err := e.c.PutFunctionConcurrency(t.Context(), &awslambda.PutFunctionConcurrencyInput{FunctionName: aws.String("one"), ReservedConcurrentExecutions: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.c.Invoke(context.Background(), &awslambda.InvokeInput{FunctionName: aws.String("one")})
		done <- err
	}()
	ctx, cancel := context.WithTimeout(t.Context(), waitBound)
	defer cancel()
	if _, err := e.sb.Functions.WaitLogs(ctx, "one", "busy "); err != nil {
		t.Fatal(err)
	}
	_, err := e.c.Invoke(t.Context(), &awslambda.InvokeInput{FunctionName: aws.String("one")})
	if code, _ := apiError(t, err); code != "TooManyRequestsException" {
		t.Errorf("second invocation: %s, want TooManyRequestsException", code)
	}
	e.sb.Clock.Advance(5 * time.Second)
	if err := <-done; err != nil {
		t.Errorf("first invocation: %v", err)
	}
}

// TestAsyncInvocationRetriedTwice: an Event invocation whose function
// fails runs three times, 1 s apart on the sandbox clock (relaxed limits),
// then is dropped.
func TestAsyncInvocationRetriedTwice(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	e.create(t, "flaky", zipOf(t, map[string][]byte{"bootstrap": nextLoop(`  echo "attempt $ID"
  curl -sS -o /dev/null -X POST -d '{"errorMessage":"no","errorType":"E"}' "$API/invocation/$ID/error"`)}), nil)
	if out := e.invoke(t, "flaky", `{}`, func(in *awslambda.InvokeInput) { in.InvocationType = types.InvocationTypeEvent }); out.StatusCode != 202 {
		t.Fatalf("status %d", out.StatusCode)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitBound)
	defer cancel()
	var seq int64
	var retries int
	for {
		evs, err := e.sb.Events.Wait(ctx, seq, eventlog.Data)
		if err != nil {
			t.Fatalf("retries seen %d: %v", retries, err)
		}
		seq = evs[len(evs)-1].Seq
		failed := false
		for _, ev := range evs {
			switch ev.Kind {
			case functions.EvInvokeRetry:
				retries++
				e.sb.Clock.Advance(time.Second)
			case functions.EvInvokeFailed:
				failed = true
			}
		}
		if failed {
			break
		}
	}
	logs, _ := e.sb.Functions.Logs("flaky")
	if retries != 2 || strings.Count(string(logs), "attempt ") != 3 {
		t.Errorf("%d retries, %d attempts; want 2 and 3:\n%s", retries, strings.Count(string(logs), "attempt "), logs)
	}
}

// TestInMemoryRefusesInvoke: a sandbox without processes stores
// functions but cannot run them, and says so.
func TestInMemoryRefusesInvoke(t *testing.T) {
	e := newEnv(t, sandbox.Config{InMemory: true})
	e.create(t, "fn", zipOf(t, map[string][]byte{"bootstrap": []byte("#!/bin/sh\n")}), nil)
	_, err := e.c.Invoke(t.Context(), &awslambda.InvokeInput{FunctionName: aws.String("fn")})
	if code, msg := apiError(t, err); code != "ResourceConflictException" || !strings.Contains(msg, "runs no processes") {
		t.Errorf("Invoke in memory: %s %s", code, msg)
	}
}

// TestSNSAndEventBridgeInvokeForReal: an SNS lambda subscription and an
// EventBridge schedule rule's Lambda target run the function.
func TestSNSAndEventBridgeInvokeForReal(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	fn := e.create(t, "printer", zipOf(t, map[string][]byte{"bootstrap": nextLoop(`  echo "event $EVENT"
  curl -sS -o /dev/null -X POST -d '{"ok":true}' "$API/invocation/$ID/response"`)}), nil)
	arn := aws.ToString(fn.FunctionArn)
	topics := e.sb.Messaging.Topics()
	topic, err := topics.CreateTopic(messaging.CreateTopicInput{Name: "asg-events"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topics.Subscribe(messaging.SubscribeInput{TopicARN: topic, Protocol: messaging.ProtocolLambda, Endpoint: arn}); err != nil {
		t.Fatal(err)
	}
	if _, err := topics.Publish(messaging.PublishRequest{TopicARN: topic, Subject: "hello", Message: "launch of i-0abc"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitBound)
	defer cancel()
	logs, err := e.sb.Functions.WaitLogs(ctx, "printer", `"Message":"launch of i-0abc"`)
	if err != nil {
		t.Fatalf("the SNS message never reached the function: %v", err)
	}
	if !strings.Contains(string(logs), `"EventSource":"aws:sns"`) || !strings.Contains(string(logs), `"TopicArn":"`+topic+`"`) {
		t.Errorf("SNS event as the function saw it:\n%s", logs)
	}

	buses := e.sb.Messaging.Buses()
	rule, err := buses.PutRule(messaging.PutRuleInput{Name: "every-minute", ScheduleExpression: "rate(1 minute)"})
	if err != nil {
		t.Fatal(err)
	}
	if failed, err := buses.PutTargets("", "every-minute", []messaging.EventTarget{{ID: "printer", ARN: arn}}); err != nil || len(failed) > 0 {
		t.Fatalf("PutTargets: %v %+v", err, failed)
	}
	e.sb.Clock.Advance(time.Minute)
	logs, err = e.sb.Functions.WaitLogs(ctx, "printer", `"detail-type":"Scheduled Event"`)
	if err != nil {
		t.Fatalf("the schedule never invoked the function: %v", err)
	}
	if !strings.Contains(string(logs), `"resources":["`+rule+`"]`) {
		t.Errorf("scheduled event as the function saw it:\n%s", logs)
	}
}

// TestIdleEnvironmentStops: a warm environment idle for the idle timeout
// (on the sandbox clock) is stopped, and the next invocation starts cold.
func TestIdleEnvironmentStops(t *testing.T) {
	e := newEnv(t, sandbox.Config{FunctionIdle: 3 * time.Minute})
	e.create(t, "idle", zipOf(t, map[string][]byte{"bootstrap": echoBootstrap}), nil)
	first := e.echo(t, "idle", `{"name":"a"}`)
	if again := e.echo(t, "idle", `{"name":"b"}`); again.Pid != first.Pid {
		t.Fatalf("second invocation ran in pid %d, want the warm %d", again.Pid, first.Pid)
	}
	seq := e.sb.Events.Events(eventlog.All)
	after := seq[len(seq)-1].Seq
	e.sb.Clock.Advance(3 * time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), waitBound)
	defer cancel()
	for stopped := false; !stopped; {
		evs, err := e.sb.Events.Wait(ctx, after, eventlog.Control)
		if err != nil {
			t.Fatalf("waiting for the idle environment to stop: %v", err)
		}
		after = evs[len(evs)-1].Seq
		stopped = slices.ContainsFunc(evs, func(ev eventlog.Event) bool {
			return ev.Kind == functions.EvEnvironment && strings.HasSuffix(ev.Detail, "stopped: idle for 3m0s")
		})
	}
	if cold := e.echo(t, "idle", `{"name":"c"}`); cold.Pid == first.Pid {
		t.Errorf("after the idle timeout the invocation ran in the old pid %d", cold.Pid)
	}
}

// TestAutoScalingNotificationReachesFunction: the seed's chain, group →
// notification topic → lambda subscription → function, with the world
// notifying under its own lock and the function invoked outside every
// owner's lock.
func TestAutoScalingNotificationReachesFunction(t *testing.T) {
	e := newEnv(t, sandbox.Config{})
	fn := e.create(t, "leader", zipOf(t, map[string][]byte{"bootstrap": nextLoop(`  echo "event $EVENT"
  curl -sS -o /dev/null -X POST -d '{}' "$API/invocation/$ID/response"`)}), nil)
	topics := e.sb.Messaging.Topics()
	topic, err := topics.CreateTopic(messaging.CreateTopicInput{Name: "asg"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topics.Subscribe(messaging.SubscribeInput{TopicARN: topic, Protocol: messaging.ProtocolLambda, Endpoint: aws.ToString(fn.FunctionArn)}); err != nil {
		t.Fatal(err)
	}
	w := e.sb.World
	if err := w.CreateLaunchConfiguration(world.LaunchConfiguration{Name: "lc", ImageID: "ami-0abcdef1234567890", InstanceType: "t3.micro"}); err != nil {
		t.Fatal(err)
	}
	one := 1
	if err := w.CreateAutoScalingGroup(world.CreateGroupInput{Name: "g", LaunchConfiguration: "lc", MinSize: new(int), MaxSize: &one, Desired: new(int), AvailabilityZones: []string{"us-east-1a"}}); err != nil {
		t.Fatal(err)
	}
	if err := w.PutNotificationConfiguration("g", topic, []string{"autoscaling:EC2_INSTANCE_LAUNCH", "autoscaling:EC2_INSTANCE_TERMINATE"}); err != nil {
		t.Fatal(err)
	}
	if err := w.SetDesiredCapacity("g", 1, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitBound)
	defer cancel()
	for _, want := range []string{`autoscaling:TEST_NOTIFICATION`, `autoscaling:EC2_INSTANCE_LAUNCH`} {
		if _, err := e.sb.Functions.WaitLogs(ctx, "leader", want); err != nil {
			logs, _ := e.sb.Functions.Logs("leader")
			t.Fatalf("the function never saw %s: %v\n%s", want, err, logs)
		}
	}
}

// TestInjectedThrottlingInLambdasShape: the router's injected faults
// answer in Lambda's own error shape.
func TestInjectedThrottlingInLambdasShape(t *testing.T) {
	e := newEnv(t, sandbox.Config{InMemory: true})
	if err := e.sb.Server.SetFault(sandbox.Fault{Throttle: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := e.c.ListFunctions(t.Context(), &awslambda.ListFunctionsInput{})
	if code, msg := apiError(t, err); code != "TooManyRequestsException" || msg != "Rate exceeded" {
		t.Errorf("throttled ListFunctions: %s %s", code, msg)
	}
	resp, err := e.sb.HTTP.Get(e.sb.Endpoint + "/_sandbox/functions/nope/logs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("logs of a missing function: %d", resp.StatusCode)
	}
}
