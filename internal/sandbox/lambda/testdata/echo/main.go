// Command echo is a Lambda function for the sandbox's tests, run through
// aws-lambda-go's own Runtime API client: it answers with the event, what
// its context says and some of its environment, prints a line, and fails
// when asked.
package main

import (
	"context"
	"errors"
	"fmt"
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
	return reply{Event: ev, RequestID: lc.AwsRequestID, ARN: lc.InvokedFunctionArn, DeadlineMs: dl.UnixMilli(), Pid: os.Getpid(), Env: env}, nil
}

func main() { lambda.Start(handle) }
