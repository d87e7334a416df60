package imds_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/imds"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const instanceID = "i-0123456789abcdef0"

// fakeSource serves one instance's metadata, which tests change between
// requests; asking for any other instance fails the test.
type fakeSource struct {
	t     testing.TB
	mu    sync.Mutex
	md    world.Metadata
	known bool
}

func newSource(t testing.TB) *fakeSource {
	return &fakeSource{t: t, known: true, md: world.Metadata{
		InstanceID:    instanceID,
		AZ:            "us-east-1b",
		Region:        "us-east-1",
		Account:       "123456789012",
		PrivateIP:     "127.0.0.5",
		ImageID:       "ami-0abcdef1234567890",
		InstanceType:  "m5.large",
		ReservationID: "r-0fedcba9876543210",
		LaunchTime:    time.Date(2024, 5, 6, 7, 8, 9, 500, time.UTC),
		Options:       world.MetadataOptions{HttpTokens: "optional", HttpEndpoint: "enabled", HttpPutResponseHopLimit: 1},
	}}
}

func (f *fakeSource) InstanceMetadata(id string) (world.Metadata, bool) {
	if id != instanceID {
		f.t.Errorf("InstanceMetadata(%q), want %q", id, instanceID)
		return world.Metadata{}, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.md, f.known
}

// set changes the metadata; the tag map is copied first so a handler still
// reading the old one is not disturbed.
func (f *fakeSource) set(change func(md *world.Metadata)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.md.Tags = maps.Clone(f.md.Tags)
	change(&f.md)
}

func (f *fakeSource) setKnown(known bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.known = known
}

// fakeClock is a clock tests move by hand. It starts at the wall-clock time
// because the SDK judges credential expiry by the wall clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.Now().UTC().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// do sends one request straight to h; hdr is name, value pairs.
func do(h http.Handler, method, path string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func token(t *testing.T, h http.Handler, ttl string) string {
	t.Helper()
	w := do(h, http.MethodPut, "/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds", ttl)
	if w.Code != http.StatusOK {
		t.Fatalf("PUT token: status %d, body %q", w.Code, w.Body)
	}
	return w.Body.String()
}

func TestTokenRequest(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		hdr        []string
		wantStatus int
	}{
		{"default SDK ttl", http.MethodPut, []string{"X-aws-ec2-metadata-token-ttl-seconds", "300"}, 200},
		{"minimum ttl", http.MethodPut, []string{"X-aws-ec2-metadata-token-ttl-seconds", "1"}, 200},
		{"maximum ttl", http.MethodPut, []string{"X-aws-ec2-metadata-token-ttl-seconds", "21600"}, 200},
		{"header name in any case", http.MethodPut, []string{"x-aws-ec2-metadata-token-ttl-seconds", "60"}, 200},
		{"missing ttl", http.MethodPut, nil, 400},
		{"empty ttl", http.MethodPut, []string{"X-aws-ec2-metadata-token-ttl-seconds", ""}, 400},
		{"zero ttl", http.MethodPut, []string{"X-aws-ec2-metadata-token-ttl-seconds", "0"}, 400},
		{"ttl above six hours", http.MethodPut, []string{"X-aws-ec2-metadata-token-ttl-seconds", "21601"}, 400},
		{"negative ttl", http.MethodPut, []string{"X-aws-ec2-metadata-token-ttl-seconds", "-5"}, 400},
		{"ttl not a number", http.MethodPut, []string{"X-aws-ec2-metadata-token-ttl-seconds", "5m"}, 400},
		{"forwarded request", http.MethodPut, []string{"X-aws-ec2-metadata-token-ttl-seconds", "300", "X-Forwarded-For", "10.0.0.1"}, 403},
		{"GET", http.MethodGet, []string{"X-aws-ec2-metadata-token-ttl-seconds", "300"}, 405},
		{"POST", http.MethodPost, []string{"X-aws-ec2-metadata-token-ttl-seconds", "300"}, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := imds.NewHandler(newSource(t), instanceID, newClock().Now)
			w := do(h, tt.method, "/latest/api/token", tt.hdr...)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d (body %q)", w.Code, tt.wantStatus, w.Body)
			}
			if tt.wantStatus != http.StatusOK {
				if got := w.Header().Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"); got != "" {
					t.Errorf("TTL header %q on an error", got)
				}
				return
			}
			if got, want := w.Header().Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"), tt.hdr[1]; got != want {
				t.Errorf("TTL header %q, want %q", got, want)
			}
			if len(w.Body.String()) < 40 {
				t.Errorf("token %q is too short to be random", w.Body)
			}
		})
	}
}

func TestTokensAreDistinct(t *testing.T) {
	h := imds.NewHandler(newSource(t), instanceID, newClock().Now)
	a, b := token(t, h, "300"), token(t, h, "300")
	if a == b {
		t.Errorf("two PUTs returned the same token %q", a)
	}
	for _, tok := range []string{a, b} {
		if w := do(h, http.MethodGet, "/latest/meta-data/instance-id", "X-aws-ec2-metadata-token", tok); w.Code != http.StatusOK {
			t.Errorf("token %q: status %d", tok, w.Code)
		}
	}
}

func TestGetNeedsAValidToken(t *testing.T) {
	src := newSource(t)
	clock := newClock()
	h := imds.NewHandler(src, instanceID, clock.Now)
	other := imds.NewHandler(src, instanceID, clock.Now)
	foreign := token(t, other, "300")

	tests := []struct {
		name string
		hdr  []string
	}{
		{"IMDSv1 request without a token", nil},
		{"empty token", []string{"X-aws-ec2-metadata-token", ""}},
		{"made-up token", []string{"X-aws-ec2-metadata-token", "AQAEAFakeToken=="}},
		{"token from another instance's IMDS", []string{"X-aws-ec2-metadata-token", foreign}},
		{"TTL header instead of a token", []string{"X-aws-ec2-metadata-token-ttl-seconds", "300"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(h, http.MethodGet, "/latest/meta-data/instance-id", tt.hdr...)
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401 (body %q)", w.Code, w.Body)
			}
			if strings.Contains(w.Body.String(), instanceID) {
				t.Errorf("401 body leaks metadata: %q", w.Body)
			}
			if !strings.Contains(w.Body.String(), "401 - Unauthorized") {
				t.Errorf("body %q, want AWS's 401 page", w.Body)
			}
		})
	}
}

func TestHttpTokensOptionalIsStillIMDSv2Only(t *testing.T) {
	src := newSource(t)
	src.set(func(md *world.Metadata) { md.Options.HttpTokens = "optional" })
	h := imds.NewHandler(src, instanceID, newClock().Now)
	if w := do(h, http.MethodGet, "/latest/meta-data/instance-id"); w.Code != http.StatusUnauthorized {
		t.Errorf("IMDSv1 GET with HttpTokens=optional: status %d, want 401", w.Code)
	}
}

func TestTokenExpires(t *testing.T) {
	clock := newClock()
	h := imds.NewHandler(newSource(t), instanceID, clock.Now)
	tok := token(t, h, "60")
	get := func() int {
		return do(h, http.MethodGet, "/latest/meta-data/instance-id", "X-aws-ec2-metadata-token", tok).Code
	}
	if got := get(); got != http.StatusOK {
		t.Fatalf("fresh token: status %d", got)
	}
	clock.Advance(59 * time.Second)
	if got := get(); got != http.StatusOK {
		t.Fatalf("after 59 s of a 60 s token: status %d", got)
	}
	clock.Advance(time.Second)
	if got := get(); got != http.StatusUnauthorized {
		t.Fatalf("after 60 s of a 60 s token: status %d, want 401", got)
	}
	fresh := token(t, h, "60")
	if got := do(h, http.MethodGet, "/latest/meta-data/instance-id", "X-aws-ec2-metadata-token", fresh).Code; got != http.StatusOK {
		t.Errorf("new token after expiry: status %d", got)
	}
}

func TestNonGetMethodsOnMetadata(t *testing.T) {
	h := imds.NewHandler(newSource(t), instanceID, newClock().Now)
	tok := token(t, h, "300")
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		if w := do(h, m, "/latest/meta-data/instance-id", "X-aws-ec2-metadata-token", tok); w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: status %d, want 405", m, w.Code)
		}
	}
	w := do(h, http.MethodHead, "/latest/meta-data/instance-id", "X-aws-ec2-metadata-token", tok)
	if w.Code != http.StatusOK {
		t.Errorf("HEAD: status %d, want 200", w.Code)
	}
}

func TestUnknownInstance(t *testing.T) {
	src := newSource(t)
	h := imds.NewHandler(src, instanceID, newClock().Now)
	tok := token(t, h, "300")
	src.setKnown(false)
	for _, p := range []string{"/latest/meta-data/instance-id", "/latest/meta-data/", "/latest/user-data", "/"} {
		if w := do(h, http.MethodGet, p, "X-aws-ec2-metadata-token", tok); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, w.Code)
		}
	}
	if w := do(h, http.MethodGet, "/latest/api/token"); w.Code != http.StatusNotFound {
		t.Errorf("GET token: status %d, want 404", w.Code)
	}
	token(t, h, "300") // the token PUT still works

	src.setKnown(true)
	if w := do(h, http.MethodGet, "/latest/meta-data/instance-id", "X-aws-ec2-metadata-token", tok); w.Code != http.StatusOK {
		t.Errorf("once known: status %d, want 200", w.Code)
	}
}

func TestNilSourceKnowsNoInstance(t *testing.T) {
	h := imds.NewHandler(nil, instanceID, nil)
	tok := token(t, h, "300")
	if w := do(h, http.MethodGet, "/latest/meta-data/instance-id", "X-aws-ec2-metadata-token", tok); w.Code != http.StatusNotFound {
		t.Errorf("status %d, want 404", w.Code)
	}
}

func TestDisabledEndpoint(t *testing.T) {
	src := newSource(t)
	h := imds.NewHandler(src, instanceID, newClock().Now)
	tok := token(t, h, "300")
	src.set(func(md *world.Metadata) { md.Options.HttpEndpoint = "disabled" })
	for _, c := range []struct{ method, path string }{
		{http.MethodPut, "/latest/api/token"},
		{http.MethodGet, "/latest/api/token"},
		{http.MethodGet, "/latest/meta-data/instance-id"},
		{http.MethodGet, "/latest/meta-data/"},
		{http.MethodGet, "/nonexistent"},
	} {
		w := do(h, c.method, c.path, "X-aws-ec2-metadata-token", tok, "X-aws-ec2-metadata-token-ttl-seconds", "300")
		if w.Code != http.StatusNotFound {
			t.Errorf("%s %s: status %d, want 404", c.method, c.path, w.Code)
		}
	}
}

func TestNotFoundPage(t *testing.T) {
	h := imds.NewHandler(newSource(t), instanceID, newClock().Now)
	tok := token(t, h, "300")
	w := do(h, http.MethodGet, "/latest/meta-data/public-ipv4", "X-aws-ec2-metadata-token", tok)
	if w.Code != http.StatusNotFound {
		t.Fatalf("status %d, want 404", w.Code)
	}
	if got := w.Header().Get("Content-Type"); got != "text/html" {
		t.Errorf("Content-Type %q, want text/html", got)
	}
	for _, want := range []string{"<title>404 - Not Found</title>", "<h1>404 - Not Found</h1>"} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("body %q lacks %q", w.Body, want)
		}
	}
}

// TestListingsResolve walks the tree from /latest/ as a crawler would:
// every listed entry answers 200, every directory lists something.
func TestListingsResolve(t *testing.T) {
	src := newSource(t)
	src.set(func(md *world.Metadata) {
		md.UserData = []byte("#!/bin/sh\n")
		md.Target = "InService"
		md.Spot = &world.SpotNotice{Action: "terminate", Time: time.Date(2024, 1, 1, 0, 2, 0, 0, time.UTC)}
		md.TagsEnabled = true
		md.Tags = map[string]string{"Name": "web", "bad key": "x"}
	})
	h := imds.NewHandler(src, instanceID, newClock().Now)
	tok := token(t, h, "300")
	seen := 0
	var walk func(path string)
	walk = func(path string) {
		w := do(h, http.MethodGet, path, "X-aws-ec2-metadata-token", tok)
		if w.Code != http.StatusOK {
			t.Errorf("GET %s: status %d", path, w.Code)
			return
		}
		seen++
		if !strings.HasSuffix(path, "/") {
			return
		}
		if w.Body.Len() == 0 {
			t.Errorf("directory %s lists nothing", path)
		}
		for name := range strings.SplitSeq(w.Body.String(), "\n") {
			switch {
			case path == "/latest/" && name != "user-data":
				walk(path + name + "/") // /latest/ lists its directories without a slash
			default:
				walk(path + name)
			}
		}
	}
	walk("/latest/")
	if seen < 30 {
		t.Errorf("walked %d items, want at least 30", seen)
	}
}

func TestPlacementAvailabilityZoneID(t *testing.T) {
	tests := []struct{ region, az, want string }{
		{"us-east-1", "us-east-1a", "use1-az1"},
		{"us-east-1", "us-east-1b", "use1-az2"},
		{"us-west-2", "us-west-2c", "usw2-az3"},
		{"eu-central-1", "eu-central-1a", "euc1-az1"},
		{"ap-northeast-1", "ap-northeast-1d", "apne1-az4"},
		{"ap-southeast-2", "ap-southeast-2a", "apse2-az1"},
		{"cn-northwest-1", "cn-northwest-1b", "cnnw1-az2"},
		{"us-gov-west-1", "us-gov-west-1a", "usgw1-az1"},
		{"sa-east-1", "sa-east-1a", "sae1-az1"},
	}
	for _, tt := range tests {
		t.Run(tt.az, func(t *testing.T) {
			src := newSource(t)
			src.set(func(md *world.Metadata) { md.Region, md.AZ = tt.region, tt.az })
			h := imds.NewHandler(src, instanceID, newClock().Now)
			w := do(h, http.MethodGet, "/latest/meta-data/placement/availability-zone-id", "X-aws-ec2-metadata-token", token(t, h, "300"))
			if w.Code != http.StatusOK || w.Body.String() != tt.want {
				t.Errorf("got %d %q, want %q", w.Code, w.Body, tt.want)
			}
		})
	}
}

func TestHostnameOutsideUSEast1(t *testing.T) {
	src := newSource(t)
	src.set(func(md *world.Metadata) { md.Region, md.AZ = "eu-west-1", "eu-west-1a" })
	h := imds.NewHandler(src, instanceID, newClock().Now)
	w := do(h, http.MethodGet, "/latest/meta-data/local-hostname", "X-aws-ec2-metadata-token", token(t, h, "300"))
	if got, want := w.Body.String(), "ip-127-0-0-5.eu-west-1.compute.internal"; got != want {
		t.Errorf("local-hostname %q, want %q", got, want)
	}
}

func TestVersionedPaths(t *testing.T) {
	h := imds.NewHandler(newSource(t), instanceID, newClock().Now)
	tok := token(t, h, "300")
	for _, p := range []string{"/latest/meta-data/instance-id", "/2021-03-23/meta-data/instance-id", "/1.0/meta-data/instance-id/"} {
		w := do(h, http.MethodGet, p, "X-aws-ec2-metadata-token", tok)
		if w.Code != http.StatusOK || w.Body.String() != instanceID {
			t.Errorf("GET %s: %d %q", p, w.Code, w.Body)
		}
	}
	for _, p := range []string{"/2021-13-45/meta-data/instance-id", "/latest//meta-data/instance-id", "/latest/meta-data/instance-id//"} {
		if w := do(h, http.MethodGet, p, "X-aws-ec2-metadata-token", tok); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", p, w.Code)
		}
	}
}

func TestIdentityDocumentNulls(t *testing.T) {
	h := imds.NewHandler(newSource(t), instanceID, newClock().Now)
	w := do(h, http.MethodGet, "/latest/dynamic/instance-identity/document", "X-aws-ec2-metadata-token", token(t, h, "300"))
	var doc map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatalf("document %q: %v", w.Body, err)
	}
	for _, k := range []string{"kernelId", "ramdiskId", "billingProducts", "devpayProductCodes", "marketplaceProductCodes"} {
		if v, ok := doc[k]; !ok || v != nil {
			t.Errorf("%s = %v (present %v), want null", k, v, ok)
		}
	}
	want := map[string]any{
		"accountId": "123456789012", "architecture": "x86_64", "availabilityZone": "us-east-1b",
		"imageId": "ami-0abcdef1234567890", "instanceId": instanceID, "instanceType": "m5.large",
		"pendingTime": "2024-05-06T07:08:09Z", "privateIp": "127.0.0.5", "region": "us-east-1", "version": "2017-09-30",
	}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %v, want %v", k, doc[k], v)
		}
	}
	if len(doc) != 15 {
		t.Errorf("%d keys, want 15: %v", len(doc), doc)
	}
}

func TestGravitonArchitecture(t *testing.T) {
	src := newSource(t)
	src.set(func(md *world.Metadata) { md.InstanceType = "c7gn.xlarge" })
	h := imds.NewHandler(src, instanceID, newClock().Now)
	w := do(h, http.MethodGet, "/latest/dynamic/instance-identity/document", "X-aws-ec2-metadata-token", token(t, h, "300"))
	if !strings.Contains(w.Body.String(), `"architecture": "arm64"`) {
		t.Errorf("document %s, want arm64", w.Body)
	}
}

func TestManyTokensStayBounded(t *testing.T) {
	clock := newClock()
	h := imds.NewHandler(newSource(t), instanceID, clock.Now)
	first := token(t, h, "21600")
	clock.Advance(time.Second) // the first token is now the closest to expiry
	last := ""
	for range 4100 {
		last = token(t, h, "21600")
	}
	if w := do(h, http.MethodGet, "/latest/meta-data/instance-id", "X-aws-ec2-metadata-token", last); w.Code != http.StatusOK {
		t.Errorf("latest token: status %d", w.Code)
	}
	if w := do(h, http.MethodGet, "/latest/meta-data/instance-id", "X-aws-ec2-metadata-token", first); w.Code != http.StatusUnauthorized {
		t.Errorf("token evicted past the bound: status %d, want 401", w.Code)
	}
}
