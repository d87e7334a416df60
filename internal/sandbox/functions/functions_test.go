package functions_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/functions"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newOwner(t *testing.T) *functions.Functions {
	t.Helper()
	f := functions.New(functions.Config{Dir: t.TempDir()}, simclock.NewSim())
	t.Cleanup(f.Close)
	return f
}

func zipWith(t *testing.T, name string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create(name)
	if err == nil {
		_, err = w.Write([]byte("#!/bin/sh\n"))
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func code(err error) string {
	var e *awsproto.Error
	if errors.As(err, &e) {
		return e.Code + ": " + e.Message
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

func ptr(v int) *int { return &v }

const role = "arn:aws:iam::123456789012:role/r"

func TestParseName(t *testing.T) {
	f := newOwner(t)
	for _, c := range []struct{ ref, qualifier, name, err string }{
		{"fn", "", "fn", ""},
		{"arn:aws:lambda:us-east-1:123456789012:function:fn", "", "fn", ""},
		{"123456789012:function:fn", "", "fn", ""},
		{"fn:$LATEST", "", "fn", ""},
		{"fn", "$LATEST", "fn", ""},
		{"fn:prod", "", "", "ResourceNotFoundException: Function not found: arn:aws:lambda:us-east-1:123456789012:function:fn:prod"},
		{"fn:1", "2", "", "InvalidParameterValueException: The derived qualifier from the function name does not match the specified qualifier."},
		{"arn:aws:lambda:eu-west-1:123456789012:function:fn", "", "", "InvalidParameterValueException"},
		{"arn:aws:lambda:us-east-1:210987654321:function:fn", "", "", "AccessDeniedException"},
		{"not a name", "", "", "ValidationException: 1 validation error detected: Value 'not a name' at 'functionName'"},
	} {
		name, err := f.ParseName(c.ref, c.qualifier)
		if name != c.name || !strings.HasPrefix(code(err), c.err) || (c.err == "") != (err == nil) {
			t.Errorf("ParseName(%q, %q) = %q, %v; want %q, %s", c.ref, c.qualifier, name, err, c.name, c.err)
		}
	}
}

func TestCreateValidation(t *testing.T) {
	f := newOwner(t)
	z := zipWith(t, "bootstrap")
	for _, c := range []struct {
		in  functions.CreateInput
		err string
	}{
		{functions.CreateInput{Name: "f", Runtime: "nodejs20.x", Role: role, ZipFile: z}, "InvalidParameterValueException: The runtime parameter of nodejs20.x is not supported by the lifeguard sandbox"},
		{functions.CreateInput{Name: "f", Runtime: "provided.al2", Role: role, ZipFile: z, Timeout: ptr(0)}, "ValidationException: 1 validation error detected: Value '0' at 'timeout' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{functions.CreateInput{Name: "f", Runtime: "provided.al2", Role: role, ZipFile: z, MemorySize: ptr(64)}, "ValidationException: 1 validation error detected: Value '64' at 'memorySize'"},
		{functions.CreateInput{Name: "f", Runtime: "provided.al2", Role: role, ZipFile: z, Environment: map[string]string{"AWS_REGION": "x"}}, "InvalidParameterValueException: Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys"},
		{functions.CreateInput{Name: "f", Runtime: "provided.al2", Role: "admin", ZipFile: z}, "ValidationException: 1 validation error detected: Value 'admin' at 'role'"},
		{functions.CreateInput{Name: "f", Runtime: "provided.al2", Role: role}, "InvalidParameterValueException: Please provide a source for function code"},
		{functions.CreateInput{Name: "f", Runtime: "provided.al2", Role: role, ZipFile: zipWith(t, "../escape")}, "InvalidParameterValueException: Could not unzip uploaded file: the entry \"../escape\" points outside"},
	} {
		if _, err := f.Create(c.in); !strings.HasPrefix(code(err), c.err) {
			t.Errorf("Create(%+v): %v; want %s", c.in, err, c.err)
		}
	}
	if got := f.List(); len(got) != 0 {
		t.Errorf("refused functions were kept: %+v", got)
	}
}

func TestWithoutProcessesInvokeIsRefused(t *testing.T) {
	f := newOwner(t)
	if _, err := f.Create(functions.CreateInput{Name: "f", Runtime: "provided.al2023", Role: role, ZipFile: zipWith(t, "bootstrap")}); err != nil {
		t.Fatal(err)
	}
	_, err := f.Invoke(context.Background(), functions.InvokeInput{Name: "f"})
	if !strings.HasPrefix(code(err), "ResourceConflictException: The lifeguard sandbox runs no processes") {
		t.Errorf("Invoke: %v", err)
	}
	if out, err := f.Invoke(context.Background(), functions.InvokeInput{Name: "f", Type: functions.DryRun}); err != nil || out.Status != 204 {
		t.Errorf("DryRun: %+v %v", out, err)
	}
	if err := f.InvokeAsync("arn:aws:lambda:us-east-1:123456789012:function:nope", []byte(`{}`)); !strings.HasPrefix(code(err), "ResourceNotFoundException: Function not found") {
		t.Errorf("InvokeAsync of a missing function: %v", err)
	}
	if err := f.SetConcurrency("f", ptr(-1)); !strings.HasPrefix(code(err), "ValidationException") {
		t.Errorf("SetConcurrency -1: %v", err)
	}
}
