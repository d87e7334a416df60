package systest_test

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lambdaZip is a function whose shell bootstrap speaks the Runtime API
// with curl: it prints and echoes each event, or posts an error when the
// event asks for one.
func lambdaZip(t *testing.T) string {
	t.Helper()
	bootstrap := `#!/bin/sh
API=http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime
while true; do
  H=$(mktemp)
  EVENT=$(curl -sS -D "$H" "$API/invocation/next")
  ID=$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$H" | cut -d: -f2 | tr -d '[:space:]')
  rm -f "$H"
  echo "event $EVENT"
  case "$EVENT" in
  *fail*) curl -sS -o /dev/null -X POST -d '{"errorMessage":"asked to fail","errorType":"Test.Failure"}' "$API/invocation/$ID/error" ;;
  *) curl -sS -o /dev/null -X POST -d "{\"echo\":$EVENT,\"function\":\"$AWS_LAMBDA_FUNCTION_NAME\"}" "$API/invocation/$ID/response" ;;
  esac
done
`
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err == nil {
		_, err = w.Write([]byte(bootstrap))
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fn.zip")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLambdaThroughAWSCLIs creates and invokes a function in the sandbox
// (the built binary, running processes) with the AWS CLI v1 and Debian's
// CLI 2.9: clients the sandbox did not write, whose payload and log
// handling differ.
func TestLambdaThroughAWSCLIs(t *testing.T) {
	for _, v := range []struct{ name, major string }{{"v1", "1."}, {"v2.9", "2."}} {
		t.Run(v.name, func(t *testing.T) {
			bin := awsCLI(t, v.major)
			sb := startSandbox(t, "--relax-limits")
			c := newCLI(t, bin, sb.endpoint)
			zipPath := lambdaZip(t)
			var created struct{ FunctionName, FunctionArn, Runtime, State, CodeSha256 string }
			c.ok(&created, "lambda", "create-function", "--function-name", "echo", "--runtime", "provided.al2023",
				"--handler", "bootstrap", "--role", "arn:aws:iam::123456789012:role/fn", "--zip-file", "fileb://"+zipPath)
			if created.FunctionArn != "arn:aws:lambda:us-east-1:123456789012:function:echo" || created.State != "Active" || created.CodeSha256 == "" {
				t.Errorf("create-function: %+v", created)
			}

			payload := []string{"--payload", `{"hello":"cli"}`}
			if v.major == "2." {
				payload = append(payload, "--cli-binary-format", "raw-in-base64-out")
			}
			out := filepath.Join(t.TempDir(), "out.json")
			var inv struct {
				StatusCode                                int
				FunctionError, LogResult, ExecutedVersion string
			}
			c.ok(&inv, append([]string{"lambda", "invoke", "--function-name", "echo", "--log-type", "Tail"}, append(payload, out)...)...)
			body, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			var reply struct {
				Echo     map[string]string `json:"echo"`
				Function string            `json:"function"`
			}
			if err := json.Unmarshal(body, &reply); err != nil || reply.Echo["hello"] != "cli" || reply.Function != "echo" {
				t.Errorf("invoke output %s (%v)", body, err)
			}
			tail, _ := base64.StdEncoding.DecodeString(inv.LogResult)
			if inv.StatusCode != 200 || inv.FunctionError != "" || inv.ExecutedVersion != "$LATEST" ||
				!strings.Contains(string(tail), `event {"hello":"cli"}`) || !strings.Contains(string(tail), "REPORT RequestId:") {
				t.Errorf("invoke: %+v, log tail:\n%s", inv, tail)
			}

			failPayload := []string{"--payload", `{"fail":true}`}
			if v.major == "2." {
				failPayload = append(failPayload, "--cli-binary-format", "raw-in-base64-out")
			}
			c.ok(&inv, append([]string{"lambda", "invoke", "--function-name", "echo"}, append(failPayload, out)...)...)
			body, _ = os.ReadFile(out)
			if inv.FunctionError != "Unhandled" || !strings.Contains(string(body), "asked to fail") {
				t.Errorf("failing invoke: %+v, output %s", inv, body)
			}

			var event struct{ StatusCode int }
			c.ok(&event, "lambda", "invoke", "--function-name", "echo", "--invocation-type", "Event", out)
			if event.StatusCode != 202 {
				t.Errorf("Event invoke: status %d", event.StatusCode)
			}

			_, stderr, code := c.run("lambda", "get-function", "--function-name", "nope")
			if code == 0 || !strings.Contains(stderr, "ResourceNotFoundException") || !strings.Contains(stderr, "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope") {
				t.Errorf("get-function nope: exit %d, stderr %s", code, stderr)
			}
			_, stderr, code = c.run("lambda", "create-function", "--function-name", "py", "--runtime", "python3.12", "--handler", "app.handler",
				"--role", "arn:aws:iam::123456789012:role/fn", "--zip-file", "fileb://"+zipPath)
			if code == 0 || !strings.Contains(stderr, "InvalidParameterValueException") || !strings.Contains(stderr, "provided.al2023") {
				t.Errorf("create-function python3.12: exit %d, stderr %s", code, stderr)
			}
			var list struct {
				Functions []struct{ FunctionName string }
			}
			c.ok(&list, "lambda", "list-functions")
			if len(list.Functions) != 1 || list.Functions[0].FunctionName != "echo" {
				t.Errorf("list-functions: %+v", list)
			}
			c.ok(nil, "lambda", "delete-function", "--function-name", "echo")
		})
	}
}
