package imds_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/imds"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// FuzzHandler sends arbitrary methods, paths and headers, with or without a
// valid token: the handler never panics and answers only with the statuses
// IMDS uses.
func FuzzHandler(f *testing.F) {
	f.Add("GET", "/latest/meta-data/instance-id", "X-aws-ec2-metadata-token", "x", true, int64(0))
	f.Add("PUT", "/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds", "300", false, int64(0))
	f.Add("PUT", "/latest/api/token", "X-Forwarded-For", "1.2.3.4", false, int64(0))
	f.Add("GET", "/latest/meta-data/tags/instance/", "", "", true, int64(0))
	f.Add("GET", "/2021-03-23/dynamic/instance-identity/document", "", "", true, int64(30000))
	f.Add("HEAD", "/latest/meta-data/iam/security-credentials/lifeguard-sandbox", "", "", true, int64(0))
	f.Add("DELETE", "//../latest/%2e%2e/user-data", "Host", "", true, int64(-1))
	f.Add("GET", "/latest/meta-data/spot/instance-action", "", "", true, int64(0))
	f.Fuzz(func(t *testing.T, method, path, hname, hvalue string, withToken bool, advance int64) {
		src := newSource(t)
		src.set(func(md *world.Metadata) {
			md.UserData = []byte("#!/bin/sh")
			md.TagsEnabled = true
			md.Tags = map[string]string{"team": "blue", "bad key": "x"}
			md.Target = "InService"
			md.Spot = &world.SpotNotice{Time: time.Unix(1_700_000_000, 0)}
		})
		clock := newClock()
		h := imds.NewHandler(src, instanceID, clock.Now)
		r := &http.Request{Method: method, URL: &url.URL{Path: path}, Header: http.Header{}}
		if withToken {
			tr := httptest.NewRequest(http.MethodPut, "/latest/api/token", nil)
			tr.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "21600")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tr)
			r.Header.Set("X-aws-ec2-metadata-token", w.Body.String())
		}
		if hname != "" {
			r.Header[hname] = append(r.Header[hname], hvalue)
		}
		clock.Advance(time.Duration(advance) * time.Second)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case 200, 400, 401, 403, 404, 405:
		default:
			t.Fatalf("%s %q (%s: %q): status %d", method, path, hname, hvalue, w.Code)
		}
		if w.Code == http.StatusOK && !withToken && path != "/latest/api/token" {
			t.Fatalf("%s %q (%s: %q): 200 without a token", method, path, hname, hvalue)
		}
	})
}
