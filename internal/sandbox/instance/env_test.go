package instance_test

import (
	"strings"
	"testing"
)

func TestInstanceInheritsNoAWSVariables(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "operator-secret")
	t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/operator")
	p, _ := start(t, []byte("#!/bin/sh\nenv\n"), "AWS_REGION=eu-west-1")
	waitUserData(t, p)
	console := string(p.Console())
	if strings.Contains(console, "operator") {
		t.Errorf("the instance sees the operator's AWS variables:\n%s", console)
	}
	if !strings.Contains(console, "AWS_REGION=eu-west-1") {
		t.Errorf("the instance lacks the variables it was given:\n%s", console)
	}
}
