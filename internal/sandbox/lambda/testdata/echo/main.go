// Command echo is a Lambda function for the sandbox's tests, run through
// aws-lambda-go's own Runtime API client: it answers with the event, what
// its context says and some of its environment, prints a line, and fails
// when asked.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type reply struct {
	Event      map[string]any    `json:"event"`
	RequestID  string            `json:"requestId"`
	ARN        string            `json:"arn"`
	DeadlineMs int64             `json:"deadlineMs"`
	Pid        int               `json:"pid"`
	Env        map[string]string `json:"env"`
	// Functions are the names ListFunctions returned, when the event
	// asked the function to call the sandbox ({"call":true}).
	Functions []string `json:"functions,omitempty"`
}

func handle(ctx context.Context, ev map[string]any) (reply, error) {
	lc, _ := lambdacontext.FromContext(ctx)
	fmt.Printf("handling %v\n", ev["name"])
	if ev["fail"] == true {
		return reply{}, errors.New("asked to fail")
	}
	dl, _ := ctx.Deadline()
	env := map[string]string{}
	for _, k := range []string{"GREETING", "AWS_ENDPOINT_URL", "AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION", "_HANDLER", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"} {
		env[k] = os.Getenv(k)
	}
	r := reply{Event: ev, RequestID: lc.AwsRequestID, ARN: lc.InvokedFunctionArn, DeadlineMs: dl.UnixMilli(), Pid: os.Getpid(), Env: env}
	if ev["call"] == true {
		names, err := listFunctions(ctx)
		if err != nil {
			return reply{}, err
		}
		r.Functions = names
	}
	return r, nil
}

// listFunctions calls Lambda's ListFunctions at AWS_ENDPOINT_URL.
func listFunctions(ctx context.Context) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, os.Getenv("AWS_ENDPOINT_URL")+"/2015-03-31/functions/", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+os.Getenv("AWS_ACCESS_KEY_ID")+"/20260101/"+os.Getenv("AWS_REGION")+"/lambda/aws4_request")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Functions []struct{ FunctionName string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("ListFunctions: %s: %w", resp.Status, err)
	}
	var names []string
	for _, f := range out.Functions {
		names = append(names, f.FunctionName)
	}
	return names, nil
}

func main() { lambda.Start(handle) }
