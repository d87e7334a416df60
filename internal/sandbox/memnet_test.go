package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/eventlog"
)

// startInMemory starts an in-memory sandbox for a test running inside a
// synctest bubble, and stops it (Run returning) when the test ends: the
// bubble ends only when every goroutine the sandbox started has returned.
func startInMemory(t *testing.T) (*Server, *http.Client) {
	t.Helper()
	srv, err := New(Config{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	endpoint, stop, err := srv.Start()
	if err != nil || endpoint != "http://"+memDomain {
		t.Fatalf("Start = %q, %v; want the in-memory endpoint", endpoint, err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	return srv, &http.Client{Transport: srv.Transport()}
}

// A followed event log streams as it grows, and closing the body ends
// the handler.
func TestInMemoryStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, client := startInMemory(t)
		resp, err := client.Get(srv.Endpoint() + "/_sandbox/events?follow=true")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("%d %q, want 200 application/x-ndjson", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		lines := bufio.NewScanner(resp.Body)
		for _, detail := range []string{"first", "second"} {
			srv.Events().Append(eventlog.Event{Kind: "note", Detail: detail})
			if !lines.Scan() {
				t.Fatalf("stream ended before %q: %v", detail, lines.Err())
			}
			var e eventlog.Event
			if err := json.Unmarshal(lines.Bytes(), &e); err != nil || e.Detail != detail {
				t.Fatalf("line %q (%v), want the event %q", lines.Text(), err, detail)
			}
		}
		_ = resp.Body.Close()
	})
}

// A long poll ends with its request's context.
func TestInMemoryLongPollCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, client := startInMemory(t)
		call := func(ctx context.Context, target, body string) (*http.Response, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.Endpoint(), strings.NewReader(body))
			req.Header.Set("X-Amz-Target", "AmazonSQS."+target)
			req.Header.Set("Content-Type", "application/x-amz-json-1.0")
			return client.Do(req)
		}
		resp, err := call(t.Context(), "CreateQueue", `{"QueueName":"q"}`)
		if err != nil {
			t.Fatal(err)
		}
		var created struct{ QueueUrl string }
		if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || created.QueueUrl == "" {
			t.Fatalf("CreateQueue: %v %+v", err, created)
		}
		_ = resp.Body.Close()
		ctx, stop := context.WithTimeout(t.Context(), 5*time.Second)
		defer stop()
		start := time.Now()
		resp, err = call(ctx, "ReceiveMessage", `{"QueueUrl":"`+created.QueueUrl+`","WaitTimeSeconds":20}`)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			_ = resp.Body.Close()
		}
		if err == nil || time.Since(start) != 5*time.Second {
			t.Errorf("ReceiveMessage = %v after %v; want the context's error after 5s", err, time.Since(start))
		}
	})
}

// A host the sandbox does not serve is an error naming it.
func TestInMemoryUnknownHost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, client := startInMemory(t)
		_, err := client.Get("http://i-0123456789abcdef0.imds." + memDomain + "/latest/api/token")
		if err == nil || !strings.Contains(err.Error(), `no such host "i-0123456789abcdef0.imds.sandbox.invalid"`) {
			t.Errorf("error %v, want one naming the host", err)
		}
	})
}
