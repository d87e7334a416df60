package lambda_test

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/sandboxtest"
)

// echoBootstrap is testdata/echo built once for the whole test binary.
var echoBootstrap []byte

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lambda-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out := filepath.Join(dir, "bootstrap")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./testdata/echo")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build testdata/echo: %v\n%s", err, b)
		os.Exit(1)
	}
	echoBootstrap, err = os.ReadFile(out)
	_ = os.RemoveAll(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m)
}

const role = "arn:aws:iam::123456789012:role/lambda-role"

// env is a sandbox that runs functions, and a real SDK client for it.
type env struct {
	sb *sandboxtest.Sandbox
	c  *awslambda.Client
}

func newEnv(t testing.TB, cfg sandbox.Config) *env {
	t.Helper()
	cfg.RelaxLimits = true
	var sb *sandboxtest.Sandbox
	if cfg.InMemory {
		sb = sandboxtest.Start(t, cfg)
	} else {
		sb = sandboxtest.StartProcesses(t, cfg)
	}
	c := awslambda.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(sb.Endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:       sb.HTTP,
		RetryMaxAttempts: 1,
	})
	return &env{sb: sb, c: c}
}

// zipOf zips files (name → content), each executable.
func zipOf(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate}
		h.SetMode(0o755)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// script is a shell bootstrap speaking the Runtime API with curl.
func script(body string) []byte {
	return []byte("#!/bin/sh\nAPI=http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime\n" + body)
}

// nextLoop is a shell loop taking invocations: $ID is the request id, the
// event is in $EVENT; body answers it.
func nextLoop(body string) []byte {
	return script(`while true; do
  H=$(mktemp)
  EVENT=$(curl -sS -D "$H" "$API/invocation/next")
  ID=$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$H" | cut -d: -f2 | tr -d '[:space:]')
  rm -f "$H"
` + body + `
done
`)
}

func (e *env) create(t testing.TB, name string, zip []byte, mod func(*awslambda.CreateFunctionInput)) *awslambda.CreateFunctionOutput {
	t.Helper()
	in := &awslambda.CreateFunctionInput{
		FunctionName: aws.String(name), Runtime: types.RuntimeProvidedal2023, Role: aws.String(role),
		Handler: aws.String("bootstrap"), Code: &types.FunctionCode{ZipFile: zip},
	}
	if mod != nil {
		mod(in)
	}
	out, err := e.c.CreateFunction(t.Context(), in)
	if err != nil {
		t.Fatalf("CreateFunction %s: %v", name, err)
	}
	return out
}

// apiError returns an API error's code and message.
func apiError(t testing.TB, err error) (code, msg string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("not an API error: %v", err)
	}
	return ae.ErrorCode(), ae.ErrorMessage()
}

// waitBound bounds every wait.
const waitBound = 30 * time.Second

func errorsAs(err error, target any) bool { return errors.As(err, target) }
