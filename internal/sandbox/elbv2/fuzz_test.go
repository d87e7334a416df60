package elbv2_test

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/balancers"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/elbv2"
	"github.com/lifeguardhq/lifeguard/internal/simclock"
)

// fuzzTG is the fuzz owner's target group ("ip" targets, so any address
// registers without a world).
const fuzzTG = "arn%3Aaws%3Aelasticloadbalancing%3Aus-east-1%3A123456789012%3Atargetgroup%2Fweb%2F"

// fuzzSeeds are request bodies as the Go SDK sends them (keys sorted).
var fuzzSeeds = []string{
	"Action=RegisterTargets&TargetGroupArn=" + fuzzTG + "&Targets.member.1.Id=127.0.0.5&Targets.member.1.Port=8080&Version=2015-12-01",
	"Action=RegisterTargets&TargetGroupArn=" + fuzzTG + "&Targets.member.1.Id=127.0.0.5&Targets.member.2.Id=127.0.0.6&Targets.member.2.Port=99999&Version=2015-12-01",
	"Action=RegisterTargets&TargetGroupArn=" + fuzzTG + "&Targets=&Version=2015-12-01",
	"Action=RegisterTargets&TargetGroupArn=" + fuzzTG + "&Targets.member.1.Port=x&Version=2015-12-01",
	"Action=RegisterTargets&TargetGroupArn=nope&Targets.member.1.Id=i-0598c7d356eba48d7&Version=2015-12-01",
	"Action=DeregisterTargets&TargetGroupArn=" + fuzzTG + "&Targets.member.1.Id=127.0.0.5&Version=2015-12-01",
	"Action=DescribeTargetHealth&TargetGroupArn=" + fuzzTG + "&Targets.member.1.Id=127.0.0.5&Targets.member.1.Port=8080&Version=2015-12-01",
	"Action=RegisterTargets&Version=2015-12-01",
	"Action=RegisterTargets&Bad=%zz",
}

type errorResponse struct {
	Error struct {
		Code    string
		Message string
	}
}

// FuzzRegisterTargets sends any body to the ELBv2 handler over an owner
// with one target group: nothing answers 5xx, every error is AWS's
// envelope with a code and a message.
func FuzzRegisterTargets(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		b := balancers.New(balancers.Config{Seed: 1}, simclock.NewSim(), nil, nil)
		defer b.Close()
		tg, err := b.CreateTargetGroup(balancers.CreateTargetGroupInput{Name: "web", Protocol: "HTTP", Port: 80, VPCID: "vpc-1", TargetType: "ip"})
		if err != nil {
			t.Fatal(err)
		}
		// The seeds name the group by its ARN without its random suffix.
		body = strings.ReplaceAll(body, fuzzTG+"&", strings.NewReplacer(":", "%3A", "/", "%2F").Replace(tg.ARN)+"&")
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		elbv2.New(b).ServeHTTP(rec, req)
		resp := rec.Result()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 500 {
			t.Fatalf("%q answered %d: %s", body, resp.StatusCode, out)
		}
		if resp.StatusCode != http.StatusOK {
			var e errorResponse
			if err := xml.Unmarshal(out, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%q answered %d without AWS's error envelope: %s", body, resp.StatusCode, out)
			}
		}
	})
}
