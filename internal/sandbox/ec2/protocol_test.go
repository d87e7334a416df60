package ec2_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/ec2"
)

const ns = "http://ec2.amazonaws.com/doc/2016-11-15/"

// errorEnvelope is EC2's error body.
type errorEnvelope struct {
	XMLName xml.Name `xml:"Response"`
	Errors  []struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Errors>Error"`
	RequestID string `xml:"RequestID"`
}

// checkResponse checks that an answer is either a 200 ec2query success
// envelope (<OpResponse xmlns=…><requestId>…) or a 4xx/5xx EC2 error
// envelope, and returns the error envelope when it is one.
func checkResponse(status int, header http.Header, body []byte) (*errorEnvelope, error) {
	switch {
	case status == http.StatusOK:
		return nil, checkSuccess(body)
	case status >= 400 && status < 600:
		var env errorEnvelope
		if err := xml.Unmarshal(body, &env); err != nil {
			return nil, fmt.Errorf("status %d: error body is not EC2's envelope: %v\n%s", status, err, body)
		}
		if len(env.Errors) != 1 || env.Errors[0].Code == "" || env.RequestID == "" {
			return nil, fmt.Errorf("status %d: error envelope lacks a code or request id:\n%s", status, body)
		}
		if got := header.Get("x-amzn-RequestId"); got != env.RequestID {
			return nil, fmt.Errorf("x-amzn-RequestId = %q, want the envelope's %q", got, env.RequestID)
		}
		return &env, nil
	}
	return nil, fmt.Errorf("status %d, want 200 or an error status:\n%s", status, body)
}

// checkSuccess checks a well-formed <OpResponse xmlns=ns> whose first
// child is a non-empty <requestId>.
func checkSuccess(body []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(body))
	depth, sawID := 0, false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("success body is not well-formed XML: %v\n%s", err, body)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 && (!strings.HasSuffix(tok.Name.Local, "Response") || tok.Name.Space != ns) {
				return fmt.Errorf("root element %s in %q, want <OpResponse xmlns=%q>", tok.Name.Local, tok.Name.Space, ns)
			}
			if depth == 2 && !sawID {
				if tok.Name.Local != "requestId" {
					return fmt.Errorf("first child <%s>, want <requestId>", tok.Name.Local)
				}
				var id string
				if err := dec.DecodeElement(&id, &tok); err != nil || id == "" {
					return fmt.Errorf("requestId %q: %v", id, err)
				}
				sawID = true
				depth--
			}
		case xml.EndElement:
			depth--
		}
	}
	if !sawID {
		return fmt.Errorf("no requestId in\n%s", body)
	}
	return nil
}

// post sends a raw form body to the server.
func post(t *testing.T, e *env, body string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := e.srv.Client().Post(e.srv.URL, "application/x-www-form-urlencoded", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func TestProtocolErrors(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		name       string
		body       string
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{"an unknown action is invalid", "Action=RunInstances&Version=2016-11-15&ImageId=" + ami, 400,
			"InvalidAction", "The action RunInstances is not valid for this web service."},
		{"a request without an action", "Version=2016-11-15", 400,
			"MissingAction", "The request must contain the parameter Action."},
		{"a body that is not a form", "Action=DescribeInstances&Version=2016-11-15&%zz", 400,
			"MalformedQueryString", ""},
		{"a malformed boolean", "Action=DescribeInstances&Version=2016-11-15&DryRun=perhaps", 400,
			"InvalidParameterValue", ""},
		{"a filter without a name", "Action=DescribeInstances&Version=2016-11-15&Filter.1.Value.1=x", 400,
			"InvalidParameterValue", "The filter 'null' is invalid"},
		{"a malformed MaxResults", "Action=DescribeTags&Version=2016-11-15&MaxResults=many", 400,
			"InvalidParameterValue", ""},
		{"a missing parameter", "Action=GetConsoleOutput&Version=2016-11-15", 400,
			"MissingParameter", "The request must contain the parameter InstanceId"},
		{"a dry run", "Action=DescribeInstances&Version=2016-11-15&DryRun=true", 412,
			"DryRunOperation", "Request would have succeeded, but DryRun flag is set."},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, header, body := post(t, e, c.body)
			if status != c.wantStatus {
				t.Errorf("status = %d, want %d", status, c.wantStatus)
			}
			env, err := checkResponse(status, header, body)
			if err != nil {
				t.Fatal(err)
			}
			if env == nil {
				t.Fatalf("got a success envelope, want error %s:\n%s", c.wantCode, body)
			}
			if got := env.Errors[0].Code; got != c.wantCode {
				t.Errorf("Code = %q, want %q", got, c.wantCode)
			}
			if got := env.Errors[0].Message; c.wantMsg != "" && got != c.wantMsg {
				t.Errorf("Message = %q, want %q", got, c.wantMsg)
			}
		})
	}
}

func TestProtocolSuccess(t *testing.T) {
	e := newEnv(t)
	e.template(t, "web", fullData())
	id := e.group(t, "web", "web", 1, "")[0]

	t.Run("CreateTags answers return true in the EC2 envelope", func(t *testing.T) {
		status, header, body := post(t, e, url.Values{
			"Action": {"CreateTags"}, "Version": {"2016-11-15"},
			"ResourceId.1": {id}, "Tag.1.Key": {"leader"}, "Tag.1.Value": {"true"},
		}.Encode())
		if env, err := checkResponse(status, header, body); err != nil || env != nil {
			t.Fatalf("want a success envelope, got %d (%v):\n%s", status, err, body)
		}
		var got struct {
			XMLName   xml.Name
			RequestID string `xml:"requestId"`
			Return    string `xml:"return"`
		}
		if err := xml.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		if got.XMLName.Local != "CreateTagsResponse" || got.Return != "true" {
			t.Errorf("got <%s> return %q, want <CreateTagsResponse> return true", got.XMLName.Local, got.Return)
		}
		if h := header.Get("x-amzn-RequestId"); h != got.RequestID {
			t.Errorf("x-amzn-RequestId = %q, want the body's %q", h, got.RequestID)
		}
		if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
			t.Errorf("Content-Type = %q, want text/xml", ct)
		}
	})

	t.Run("every response has a fresh request id", func(t *testing.T) {
		seen := map[string]bool{}
		for range 3 {
			_, header, _ := post(t, e, "Action=DescribeInstances&Version=2016-11-15")
			rid := header.Get("x-amzn-RequestId")
			if rid == "" || seen[rid] {
				t.Errorf("request id %q is empty or repeated", rid)
			}
			seen[rid] = true
		}
	})

	t.Run("the SDK reports a dry run as DryRunOperation", func(t *testing.T) {
		_, err := e.c.TerminateInstances(t.Context(), &awsec2.TerminateInstancesInput{InstanceIds: []string{id}, DryRun: aws.Bool(true)})
		code, msg := apiError(t, err)
		if want := "DryRunOperation"; code != want {
			t.Errorf("code = %q (%s), want %q", code, msg, want)
		}
		ins, err := e.c.DescribeInstances(t.Context(), &awsec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		if got := ins.Reservations[0].Instances[0].State.Name; got != types.InstanceStateNameRunning {
			t.Errorf("state after a dry run = %s, want running", got)
		}
	})
}

func FuzzEC2Handler(f *testing.F) {
	e := newEnv(f)
	e.template(f, "web", fullData())
	instance := e.group(f, "web", "web", 1, "")[0]
	h := ec2.New(e.w)
	for _, seed := range []string{
		"",
		"Action=DescribeInstances&Version=2016-11-15",
		"Action=DescribeInstances&Version=2016-11-15&MaxResults=5&Filter.1.Name=instance-state-name&Filter.1.Value.1=running",
		"Action=DescribeInstances&Version=2016-11-15&InstanceId.1=" + instance,
		"Action=DescribeInstances&Version=2016-11-15&NextToken=bGlmZWd1YXJk",
		"Action=DescribeTags&Version=2016-11-15&Filter.1.Name=tag:team&Filter.1.Value.1=b*&MaxResults=5",
		"Action=CreateTags&Version=2016-11-15&ResourceId.1=" + instance + "&Tag.1.Key=k&Tag.1.Value=v",
		"Action=DeleteTags&Version=2016-11-15&ResourceId.1=" + instance + "&Tag.1.Key=k&Tag.1.Value=",
		"Action=CreateLaunchTemplate&Version=2016-11-15&LaunchTemplateName=fz&LaunchTemplateData.ImageId=" + ami +
			"&LaunchTemplateData.MetadataOptions.HttpPutResponseHopLimit=2&LaunchTemplateData.TagSpecification.1.ResourceType=instance" +
			"&LaunchTemplateData.TagSpecification.1.Tag.1.Key=a&LaunchTemplateData.TagSpecification.1.Tag.1.Value=b" +
			"&TagSpecification.1.ResourceType=launch-template&TagSpecification.1.Tag.1.Key=o&TagSpecification.1.Tag.1.Value=p",
		"Action=CreateLaunchTemplateVersion&Version=2016-11-15&LaunchTemplateName=web&SourceVersion=$Latest&LaunchTemplateData.InstanceType=m5.large",
		"Action=DescribeLaunchTemplates&Version=2016-11-15&Filter.1.Name=launch-template-name&Filter.1.Value.1=w*&MaxResults=1",
		"Action=DescribeLaunchTemplateVersions&Version=2016-11-15&LaunchTemplateVersion.1=$Latest&LaunchTemplateVersion.2=$Default",
		"Action=DeleteLaunchTemplate&Version=2016-11-15&LaunchTemplateName=fz",
		"Action=GetConsoleOutput&Version=2016-11-15&InstanceId=" + instance + "&Latest=true",
		"Action=TerminateInstances&Version=2016-11-15&InstanceId.1=i-0123456789abcdef0",
		"Action=RunInstances&Version=2016-11-15",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if _, err := checkResponse(rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
	})
}
