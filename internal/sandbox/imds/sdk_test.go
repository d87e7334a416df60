package imds_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	sdkimds "github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/smithy-go/logging"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/imds"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// start serves h on a loopback port until the test ends.
func start(t *testing.T, h http.Handler) *imds.Server {
	t.Helper()
	srv, err := imds.Start("127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return srv
}

// newClient is the SDK's IMDS client for srv, with the IMDSv1 fallback off
// and a logger that fails the test if the client ever falls back.
func newClient(t *testing.T, srv *imds.Server) *sdkimds.Client {
	return sdkimds.New(sdkimds.Options{
		Endpoint:          srv.Endpoint(),
		ClientEnableState: sdkimds.ClientEnabled,
		EnableFallback:    aws.FalseTernary,
		Logger: logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
			if strings.Contains(format, "falling back") {
				t.Errorf("IMDS client fell back to IMDSv1: "+format, v...)
			}
		}),
	})
}

// get fetches a meta-data path; status is 200 or the HTTP error status.
func get(t *testing.T, c *sdkimds.Client, path string) (body string, status int) {
	t.Helper()
	out, err := c.GetMetadata(context.Background(), &sdkimds.GetMetadataInput{Path: path})
	if err != nil {
		return "", statusOf(t, err)
	}
	defer out.Content.Close()
	b, err := io.ReadAll(out.Content)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b), http.StatusOK
}

func statusOf(t *testing.T, err error) int {
	t.Helper()
	var se interface{ HTTPStatusCode() int }
	if !errors.As(err, &se) {
		t.Fatalf("error without an HTTP status: %v", err)
	}
	return se.HTTPStatusCode()
}

func TestSDKReadsMetadata(t *testing.T) {
	c := newClient(t, start(t, imds.NewHandler(newSource(t), instanceID, newClock().Now)))
	tests := []struct{ path, want string }{
		{"instance-id", instanceID},
		{"ami-id", "ami-0abcdef1234567890"},
		{"instance-type", "m5.large"},
		{"local-ipv4", "127.0.0.5"},
		{"local-hostname", "ip-127-0-0-5.ec2.internal"},
		{"hostname", "ip-127-0-0-5.ec2.internal"},
		{"reservation-id", "r-0fedcba9876543210"},
		{"placement/availability-zone", "us-east-1b"},
		{"placement/region", "us-east-1"},
		{"placement/availability-zone-id", "use1-az2"},
		{"mac", "02:00:00:00:00:05"},
		{"iam/security-credentials/", imds.DefaultRoleName},
		{"", "ami-id\nhostname\niam/\ninstance-id\ninstance-life-cycle\ninstance-type\nlocal-hostname\nlocal-ipv4\nmac\nplacement/\nreservation-id"},
		{"placement/", "availability-zone\navailability-zone-id\nregion"},
		{"placement", "availability-zone\navailability-zone-id\nregion"},
		{"iam/", "info\nsecurity-credentials/"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, status := get(t, c, tt.path)
			if status != http.StatusOK || got != tt.want {
				t.Errorf("got %d %q, want %q", status, got, tt.want)
			}
		})
	}
}

func TestSDKNotFound(t *testing.T) {
	c := newClient(t, start(t, imds.NewHandler(newSource(t), instanceID, newClock().Now)))
	for _, path := range []string{
		"public-ipv4",
		"events/recommendations/rebalance",
		"autoscaling/target-lifecycle-state",
		"spot/instance-action",
		"spot/termination-time",
		"tags/instance",
		"instance-id/extra",
		"no-such-item",
	} {
		t.Run(path, func(t *testing.T) {
			if got, status := get(t, c, path); status != http.StatusNotFound {
				t.Errorf("got %d %q, want 404", status, got)
			}
		})
	}
}

func TestSDKRegionIdentityAndIAMInfo(t *testing.T) {
	c := newClient(t, start(t, imds.NewHandler(newSource(t), instanceID, newClock().Now)))
	ctx := context.Background()

	region, err := c.GetRegion(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if region.Region != "us-east-1" {
		t.Errorf("region %q", region.Region)
	}

	doc, err := c.GetInstanceIdentityDocument(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := doc.InstanceIdentityDocument
	if d.InstanceID != instanceID || d.AccountID != "123456789012" || d.AvailabilityZone != "us-east-1b" ||
		d.ImageID != "ami-0abcdef1234567890" || d.InstanceType != "m5.large" || d.PrivateIP != "127.0.0.5" ||
		d.Region != "us-east-1" || d.Version != "2017-09-30" || d.Architecture != "x86_64" ||
		!d.PendingTime.Equal(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)) {
		t.Errorf("identity document %+v", d)
	}

	info, err := c.GetIAMInfo(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "arn:aws:iam::123456789012:instance-profile/" + imds.DefaultRoleName; info.InstanceProfileArn != want {
		t.Errorf("InstanceProfileArn %q, want %q", info.InstanceProfileArn, want)
	}
	if !strings.HasPrefix(info.InstanceProfileID, "AIPA") || info.Code != "Success" || info.LastUpdated.IsZero() {
		t.Errorf("IAM info %+v", info.IAMInfo)
	}
}

func TestSDKTags(t *testing.T) {
	src := newSource(t)
	src.set(func(md *world.Metadata) {
		md.Tags = map[string]string{
			"aws:autoscaling:groupName": "web",
			"team":                      "blue",
			"Name":                      "web-1",
			"has space":                 "hidden",
			"a/b":                       "hidden",
			"_index":                    "hidden",
			".":                         "hidden",
			"email@x.com+1=2,3":         "shown",
		}
	})
	c := newClient(t, start(t, imds.NewHandler(src, instanceID, newClock().Now)))

	if _, status := get(t, c, "tags/instance"); status != http.StatusNotFound {
		t.Errorf("tags disabled: tags/instance status %d, want 404", status)
	}
	if _, status := get(t, c, "tags/instance/team"); status != http.StatusNotFound {
		t.Errorf("tags disabled: tags/instance/team status %d, want 404", status)
	}

	src.set(func(md *world.Metadata) { md.TagsEnabled = true })
	keys, status := get(t, c, "tags/instance")
	if want := "Name\naws:autoscaling:groupName\nemail@x.com+1=2,3\nteam"; status != http.StatusOK || keys != want {
		t.Errorf("tags/instance: %d %q, want %q", status, keys, want)
	}
	for k, want := range map[string]string{"team": "blue", "aws:autoscaling:groupName": "web", "email@x.com+1=2,3": "shown"} {
		if got, status := get(t, c, "tags/instance/"+k); status != http.StatusOK || got != want {
			t.Errorf("tags/instance/%s: %d %q, want %q", k, status, got, want)
		}
	}
	if _, status := get(t, c, "tags/instance/_index"); status != http.StatusNotFound {
		t.Errorf("tags/instance/_index: status %d, want 404", status)
	}
	if listing, _ := get(t, c, ""); !strings.Contains(listing, "\ntags/") {
		t.Errorf("meta-data listing %q lacks tags/", listing)
	}

	src.set(func(md *world.Metadata) { md.Tags["team"] = "green" })
	if got, _ := get(t, c, "tags/instance/team"); got != "green" {
		t.Errorf("after a tag change: %q, want green", got)
	}
}

func TestSDKTargetLifecycleState(t *testing.T) {
	src := newSource(t)
	c := newClient(t, start(t, imds.NewHandler(src, instanceID, newClock().Now)))
	const path = "autoscaling/target-lifecycle-state"
	if got, status := get(t, c, path); status != http.StatusNotFound {
		t.Errorf("before any transition: %d %q, want 404", status, got)
	}
	for _, state := range []string{world.StateInService, world.StateTerminated} {
		src.set(func(md *world.Metadata) { md.Target = state })
		if got, status := get(t, c, path); status != http.StatusOK || got != state {
			t.Errorf("got %d %q, want %q", status, got, state)
		}
	}
}

func TestSDKSpotInterruption(t *testing.T) {
	src := newSource(t)
	c := newClient(t, start(t, imds.NewHandler(src, instanceID, newClock().Now)))
	if _, status := get(t, c, "spot/instance-action"); status != http.StatusNotFound {
		t.Errorf("before a notice: status %d, want 404", status)
	}
	src.set(func(md *world.Metadata) {
		md.Spot = &world.SpotNotice{Action: "terminate", Time: time.Date(2017, 9, 18, 8, 22, 0, 123, time.FixedZone("x", 3600))}
	})
	if got, status := get(t, c, "spot/instance-action"); status != http.StatusOK || got != `{"action": "terminate", "time": "2017-09-18T07:22:00Z"}` {
		t.Errorf("instance-action: %d %q", status, got)
	}
	if got, status := get(t, c, "spot/termination-time"); status != http.StatusOK || got != "2017-09-18T07:22:00Z" {
		t.Errorf("termination-time: %d %q", status, got)
	}
	if got, _ := get(t, c, "spot/"); got != "instance-action\ntermination-time" {
		t.Errorf("spot/ listing %q", got)
	}
	if _, status := get(t, c, "events/recommendations/rebalance"); status != http.StatusNotFound {
		t.Errorf("rebalance: status %d, want 404", status)
	}
}

func TestSDKUserData(t *testing.T) {
	src := newSource(t)
	c := newClient(t, start(t, imds.NewHandler(src, instanceID, newClock().Now)))
	ctx := context.Background()
	if _, err := c.GetUserData(ctx, nil); err == nil || statusOf(t, err) != http.StatusNotFound {
		t.Errorf("no user data: err %v, want 404", err)
	}
	want := []byte("#!/bin/sh\necho hi\x00\xff\xfe\r\n")
	src.set(func(md *world.Metadata) { md.UserData = want })
	out, err := c.GetUserData(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Content.Close()
	got, err := io.ReadAll(out.Content)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("user data %q, want %q", got, want)
	}
}

// TestSDKRenewsTokenAfterServerSideExpiry moves the sandbox clock past the
// SDK's 5-minute token: the server answers 401, the SDK asks for a new
// token and retries, and the caller sees no error.
func TestSDKRenewsTokenAfterServerSideExpiry(t *testing.T) {
	clock := newClock()
	var puts atomic.Int32
	h := imds.NewHandler(newSource(t), instanceID, clock.Now)
	counting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			puts.Add(1)
		}
		h.ServeHTTP(w, r)
	})
	c := newClient(t, start(t, counting))
	if got, status := get(t, c, "instance-id"); status != http.StatusOK || got != instanceID {
		t.Fatalf("first GET: %d %q", status, got)
	}
	clock.Advance(301 * time.Second)
	if got, status := get(t, c, "instance-id"); status != http.StatusOK || got != instanceID {
		t.Fatalf("GET after server-side expiry: %d %q", status, got)
	}
	if got := puts.Load(); got != 2 {
		t.Errorf("%d token requests, want 2", got)
	}
}

// sdkEnv points the SDK's default configuration at endpoint with no other
// source of credentials.
func sdkEnv(t *testing.T, endpoint string) {
	for _, k := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY", "AWS_SECRET_KEY",
		"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_ROLE_ARN", "AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
		"AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION",
	} {
		t.Setenv(k, "") // restores the old value after the test
		os.Unsetenv(k)
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "no-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "no-credentials"))
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint)
	t.Setenv("AWS_EC2_METADATA_V1_DISABLED", "true")
}

func TestSDKDefaultCredentialChain(t *testing.T) {
	tests := []struct {
		name, role, wantRole string
	}{
		{"instance without a profile gets the sandbox role", "", imds.DefaultRoleName},
		{"instance with a profile gets its role", "web-server", "web-server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newSource(t)
			src.set(func(md *world.Metadata) { md.RoleName = tt.role })
			clock := newClock()
			srv := start(t, imds.NewHandler(src, instanceID, clock.Now))
			if got, _ := get(t, newClient(t, srv), "iam/security-credentials/"); got != tt.wantRole {
				t.Errorf("role listing %q, want %q", got, tt.wantRole)
			}
			body, status := get(t, newClient(t, srv), "iam/security-credentials/"+tt.wantRole)
			if status != http.StatusOK {
				t.Fatalf("credentials: status %d", status)
			}
			var doc map[string]string
			if err := json.Unmarshal([]byte(body), &doc); err != nil {
				t.Fatalf("credentials %q: %v", body, err)
			}
			now := clock.Now()
			for k, want := range map[string]string{
				"Code":        "Success",
				"Type":        "AWS-HMAC",
				"LastUpdated": now.Format(time.RFC3339),
				"Expiration":  now.Add(6 * time.Hour).Format(time.RFC3339),
			} {
				if doc[k] != want {
					t.Errorf("%s = %q, want %q", k, doc[k], want)
				}
			}
			for _, k := range []string{"AccessKeyId", "SecretAccessKey", "Token"} {
				if doc[k] == "" {
					t.Errorf("%s missing in %s", k, body)
				}
			}
			if _, status := get(t, newClient(t, srv), "iam/security-credentials/other-role"); status != http.StatusNotFound {
				t.Errorf("another role's credentials: status %d, want 404", status)
			}

			sdkEnv(t, srv.Endpoint())
			ctx := context.Background()
			cfg, err := config.LoadDefaultConfig(ctx)
			if err != nil {
				t.Fatal(err)
			}
			creds, err := cfg.Credentials.Retrieve(ctx)
			if err != nil {
				t.Fatalf("retrieve credentials: %v", err)
			}
			if creds.Source != "EC2RoleProvider" {
				t.Errorf("source %q, want EC2RoleProvider", creds.Source)
			}
			if !strings.HasPrefix(creds.AccessKeyID, "ASIA") || len(creds.AccessKeyID) != 20 {
				t.Errorf("access key %q", creds.AccessKeyID)
			}
			if len(creds.SecretAccessKey) != 40 || creds.SessionToken == "" {
				t.Errorf("secret %q, token %q", creds.SecretAccessKey, creds.SessionToken)
			}
			// The SDK caps role credentials at one hour from its own clock.
			if soon := time.Now().Add(50 * time.Minute); !creds.CanExpire || creds.Expires.Before(soon) {
				t.Errorf("expires %v (can expire %v), want after %v", creds.Expires, creds.CanExpire, soon)
			}
		})
	}
}

func TestServerLifecycle(t *testing.T) {
	srv, err := imds.Start("127.0.0.1:0", imds.NewHandler(newSource(t), instanceID, newClock().Now))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(srv.Endpoint(), "http://127.0.0.1:") {
		t.Errorf("endpoint %q", srv.Endpoint())
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := hc.Get(srv.Endpoint() + "/latest/meta-data/instance-id")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Server") != "EC2ws" {
		t.Errorf("IMDSv1 GET over the wire: %d, Server %q", resp.StatusCode, resp.Header.Get("Server"))
	}
	// An idle keep-alive connection is open; Close must still return.
	if err := srv.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	tr.CloseIdleConnections()
	if resp, err := hc.Get(srv.Endpoint() + "/latest/meta-data/instance-id"); err == nil {
		resp.Body.Close()
		t.Error("request after Close succeeded")
	}
}

func TestStartFailsOnABadAddress(t *testing.T) {
	if srv, err := imds.Start("256.0.0.1:0", http.NotFoundHandler()); err == nil {
		srv.Close()
		t.Fatal("Start succeeded on 256.0.0.1")
	}
}
