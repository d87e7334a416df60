package awsproto_test

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"
)

// counters is a made-up awsJson1_0 service with two operations, declared
// the way a sandbox service declares itself: a state owner, a handler per
// operation, and a JSONService holding the table.
type counters struct {
	mu sync.Mutex
	n  map[string]int
}

type addIn struct {
	Name  string `json:"Name"`
	Delta *int   `json:"Delta"`
}

type countOut struct {
	Name  string `json:"Name"`
	Count int    `json:"Count"`
}

func (c *counters) add(_ *awsproto.JSONRequest, in addIn) (any, error) {
	if in.Name == "" {
		return nil, awsproto.Errorf("ValidationException", "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
	}
	delta := 1
	if in.Delta != nil {
		delta = *in.Delta
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[in.Name] += delta
	return countOut{Name: in.Name, Count: c.n[in.Name]}, nil
}

type getIn struct {
	Name string `json:"Name"`
}

func (c *counters) get(_ *awsproto.JSONRequest, in getIn) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.n[in.Name]
	if !ok {
		// A service error with a query-compatible code and an extra member.
		return nil, &awsproto.Error{Code: "Counters.NoSuchCounter", Message: "Counter " + in.Name + " does not exist.", Fields: map[string]any{"Name": in.Name}}
	}
	return countOut{Name: in.Name, Count: n}, nil
}

// newCounters serves the made-up service on a loopback HTTP server.
func newCounters(t *testing.T) (string, *http.Client) {
	c := &counters{n: map[string]int{}}
	svc := &awsproto.JSONService{
		TargetPrefix: "Counters_20240101",
		ContentType:  awsproto.JSON10,
		Namespace:    "com.example.counters",
		MaxBody:      64,
		CRC32:        true,
		Operations: map[string]awsproto.JSONOperation{
			"Add": awsproto.JSONOp(c.add),
			"Get": awsproto.JSONOp(c.get),
		},
		// The service's errors go out under their JSON shape name, with the
		// query-compatible code in x-amzn-query-error (as SQS does).
		MapError: func(e *awsproto.Error) *awsproto.Error {
			if short, ok := strings.CutPrefix(e.Code, "Counters."); ok {
				je := *e
				je.Code, je.QueryCode = short, e.Code
				return &je
			}
			return e
		},
	}
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	return srv.URL, srv.Client()
}

// call is one raw awsJson exchange.
type call struct {
	status int
	header http.Header
	body   string
}

func post(t *testing.T, c *http.Client, url, method, target, body string) call {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", awsproto.JSON10)
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return call{resp.StatusCode, resp.Header, string(b)}
}

func TestJSONServiceServesItsOperationTable(t *testing.T) {
	url, c := newCounters(t)
	if got := post(t, c, url, http.MethodPost, "Counters_20240101.Add", `{"Name":"a","Delta":2}`); got.status != 200 || got.body != `{"Name":"a","Count":2}` {
		t.Fatalf("Add: %d %s", got.status, got.body)
	}
	if got := post(t, c, url, http.MethodPost, "Counters_20240101.Add", `{"Name":"a"}`); got.body != `{"Name":"a","Count":3}` {
		t.Fatalf("second Add: %s", got.body)
	}
	got := post(t, c, url, http.MethodPost, "Counters_20240101.Get", `{"Name":"a"}`)
	if got.status != 200 || got.body != `{"Name":"a","Count":3}` {
		t.Fatalf("Get: %d %s", got.status, got.body)
	}
	if ct := got.header.Get("Content-Type"); ct != awsproto.JSON10 {
		t.Errorf("Content-Type %q, want %q", ct, awsproto.JSON10)
	}
	if got.header.Get("x-amzn-RequestId") == "" {
		t.Error("no x-amzn-RequestId")
	}
	if crc, want := got.header.Get("X-Amz-Crc32"), strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(got.body))), 10); crc != want {
		t.Errorf("X-Amz-Crc32 %q, want %q", crc, want)
	}
}

func TestJSONServiceErrors(t *testing.T) {
	url, c := newCounters(t)
	tests := []struct {
		name, method, target, body string
		wantStatus                 int
		wantBody                   string // substring
		wantQueryError             string
	}{
		{"service error in the service's namespace with its query code and fields", "POST", "Counters_20240101.Get", `{"Name":"zz"}`, 400,
			`{"Name":"zz","__type":"com.example.counters#NoSuchCounter","message":"Counter zz does not exist."}`, "Counters.NoSuchCounter;Sender"},
		{"validation error", "POST", "Counters_20240101.Add", `{}`, 400,
			`"__type":"com.example.counters#ValidationException"`, ""},
		{"unknown operation", "POST", "Counters_20240101.Reset", `{}`, 400,
			`{"__type":"com.amazon.coral.service#UnknownOperationException","message":"The lifeguard sandbox does not serve operation Counters_20240101.Reset."}`, ""},
		{"another service's target", "POST", "DynamoDB_20120810.Add", `{}`, 400,
			`"__type":"com.amazon.coral.service#UnknownOperationException"`, ""},
		{"no target", "POST", "", `{}`, 400,
			`"__type":"com.amazon.coral.service#UnknownOperationException"`, ""},
		{"not a POST", "PUT", "Counters_20240101.Get", `{}`, 400,
			`"message":"Counters_20240101 operations take POST, not PUT."`, ""},
		{"member of the wrong type is named", "POST", "Counters_20240101.Add", `{"Name":"a","Delta":"two"}`, 400,
			`{"__type":"com.amazon.coral.service#SerializationException","message":"STRING_VALUE can not be converted to an Integer (member Delta)"}`, ""},
		{"body that is not JSON", "POST", "Counters_20240101.Add", `{"Name":`, 400,
			`"__type":"com.amazon.coral.service#SerializationException"`, ""},
		{"body over the service's bound", "POST", "Counters_20240101.Add", `{"Name":"` + strings.Repeat("a", 100) + `"}`, 400,
			`"__type":"com.amazon.coral.service#SerializationException"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := post(t, c, url, tt.method, tt.target, tt.body)
			if got.status != tt.wantStatus || !strings.Contains(got.body, tt.wantBody) {
				t.Errorf("got %d %s, want %d containing %s", got.status, got.body, tt.wantStatus, tt.wantBody)
			}
			if q := got.header.Get("x-amzn-query-error"); q != tt.wantQueryError {
				t.Errorf("x-amzn-query-error %q, want %q", q, tt.wantQueryError)
			}
			if crc, want := got.header.Get("X-Amz-Crc32"), strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(got.body))), 10); crc != want {
				t.Errorf("X-Amz-Crc32 %q, want %q", crc, want)
			}
		})
	}
}

// ExampleJSONService declares a one-operation awsJson1_1 service and calls
// it over HTTP.
func ExampleJSONService() {
	svc := &awsproto.JSONService{
		TargetPrefix: "Greeter",
		ContentType:  awsproto.JSON11,
		Namespace:    "com.example.greeter",
		Operations: map[string]awsproto.JSONOperation{
			"Greet": awsproto.JSONOp(func(_ *awsproto.JSONRequest, in struct{ Name string }) (any, error) {
				if in.Name == "" {
					return nil, awsproto.Errorf("ValidationException", "Name is required.")
				}
				return map[string]string{"Greeting": "Hello, " + in.Name}, nil
			}),
		},
	}
	srv := httptest.NewServer(svc)
	defer srv.Close()
	for _, body := range []string{`{"Name":"Ada"}`, `{}`} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		req.Header.Set("X-Amz-Target", "Greeter.Greet")
		resp, err := srv.Client().Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, string(b))
	}
	// Output:
	// 200 {"Greeting":"Hello, Ada"}
	// 400 {"__type":"com.example.greeter#ValidationException","message":"Name is required."}
}

// queryService is a made-up service in each query protocol.
func queryService(ec2 bool) *awsproto.QueryService {
	type widget struct {
		Name string `xml:"Name"`
	}
	svc := &awsproto.QueryService{
		Version:   "2020-01-01",
		Namespace: "http://example.com/doc/2020-01-01/",
		EC2:       ec2,
		ParamCode: "ValidationError",
		Operations: map[string]awsproto.QueryOperation{
			"DescribeWidgets": func(r *awsproto.QueryRequest) (any, error) {
				n, _, err := r.Int("MaxRecords")
				if err != nil {
					return nil, err
				}
				out := struct {
					Widgets awsproto.Members[widget] `xml:"Widgets"`
				}{}
				for i := range n {
					out.Widgets = append(out.Widgets, widget{Name: fmt.Sprintf("w%d", i)})
				}
				return out, nil
			},
			"DeleteWidget": func(r *awsproto.QueryRequest) (any, error) {
				if r.String("Name") == "gone" {
					return nil, awsproto.Errorf("Widget.NotFound", "Widget gone does not exist.")
				}
				return awsproto.NoOutput{}, nil
			},
			"Echo": func(r *awsproto.QueryRequest) (any, error) {
				return struct {
					Action string `xml:"Action"`
					Sent   bool   `xml:"Sent"`
				}{r.Action, r.Sent("Filter")}, nil
			},
		},
		MapError: func(e *awsproto.Error) *awsproto.Error {
			if e.Code == "Widget.NotFound" {
				e.Status = http.StatusNotFound
			}
			return e
		},
	}
	return svc
}

func serveQuery(svc http.Handler, method, query, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/?"+query, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	rec := httptest.NewRecorder()
	svc.ServeHTTP(rec, req)
	return rec
}

func TestQueryServiceEnvelopes(t *testing.T) {
	const ns = `xmlns="http://example.com/doc/2020-01-01/"`
	tests := []struct {
		name        string
		ec2         bool
		method      string
		query, body string
		wantStatus  int
		wantType    string
		wantBody    string // the body with the request id replaced by ID
	}{
		{"awsquery result", false, "POST", "", "Action=DescribeWidgets&Version=2020-01-01&MaxRecords=2", 200, "text/xml",
			`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<DescribeWidgetsResponse ` + ns + `><DescribeWidgetsResult><Widgets><member><Name>w0</Name></member><member><Name>w1</Name></member></Widgets></DescribeWidgetsResult><ResponseMetadata><RequestId>ID</RequestId></ResponseMetadata></DescribeWidgetsResponse>`},
		{"awsquery without output", false, "POST", "", "Action=DeleteWidget&Version=2020-01-01&Name=a", 200, "text/xml",
			`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<DeleteWidgetResponse ` + ns + `><ResponseMetadata><RequestId>ID</RequestId></ResponseMetadata></DeleteWidgetResponse>`},
		{"awsquery reads the URL too", false, "GET", "Action=Echo&Version=2020-01-01&Filter.member.1=x", "", 200, "text/xml",
			`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<EchoResponse ` + ns + `><EchoResult><Action>Echo</Action><Sent>true</Sent></EchoResult><ResponseMetadata><RequestId>ID</RequestId></ResponseMetadata></EchoResponse>`},
		{"awsquery unknown action", false, "POST", "", "Action=LaunchRockets&Version=2020-01-01", 400, "text/xml",
			`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<ErrorResponse ` + ns + `><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>Could not find operation LaunchRockets for version 2020-01-01</Message></Error><RequestId>ID</RequestId></ErrorResponse>`},
		{"awsquery no action", false, "POST", "", "Version=2020-01-01", 400, "text/xml",
			`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<ErrorResponse ` + ns + `><Error><Type>Sender</Type><Code>MissingAction</Code><Message>The request must contain the parameter Action.</Message></Error><RequestId>ID</RequestId></ErrorResponse>`},
		{"awsquery malformed parameter takes the service's code", false, "POST", "", "Action=DescribeWidgets&MaxRecords=two", 400, "text/xml",
			`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<ErrorResponse ` + ns + `><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Invalid value &#34;two&#34; for parameter MaxRecords: must be an integer.</Message></Error><RequestId>ID</RequestId></ErrorResponse>`},
		{"awsquery operation error goes through MapError", false, "POST", "", "Action=DeleteWidget&Name=gone", 404, "text/xml",
			`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<ErrorResponse ` + ns + `><Error><Type>Sender</Type><Code>Widget.NotFound</Code><Message>Widget gone does not exist.</Message></Error><RequestId>ID</RequestId></ErrorResponse>`},
		{"awsquery body that is not a form", false, "POST", "", "Action=%zz", 400, "text/xml", ""},
		{"ec2query result has no Result wrapper", true, "POST", "", "Action=DescribeWidgets&MaxRecords=1", 200, "text/xml;charset=UTF-8",
			`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<DescribeWidgetsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>ID</requestId><Widgets><member><Name>w0</Name></member></Widgets></DescribeWidgetsResponse>`},
		{"ec2query unknown action", true, "POST", "", "Action=LaunchRockets", 400, "text/xml;charset=UTF-8",
			`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<Response><Errors><Error><Code>InvalidAction</Code><Message>The action LaunchRockets is not valid for this web service.</Message></Error></Errors><RequestID>ID</RequestID></Response>`},
		{"ec2query no action", true, "POST", "", "Version=2020-01-01", 400, "text/xml;charset=UTF-8",
			`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<Response><Errors><Error><Code>MissingAction</Code><Message>The request must contain the parameter Action.</Message></Error></Errors><RequestID>ID</RequestID></Response>`},
		{"ec2query reads the body only", true, "POST", "Action=Echo", "Version=2020-01-01", 400, "text/xml;charset=UTF-8",
			`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<Response><Errors><Error><Code>MissingAction</Code><Message>The request must contain the parameter Action.</Message></Error></Errors><RequestID>ID</RequestID></Response>`},
		{"ec2query DryRun answers without running", true, "POST", "", "Action=DeleteWidget&Name=gone&DryRun=true", 412, "text/xml;charset=UTF-8",
			`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<Response><Errors><Error><Code>DryRunOperation</Code><Message>Request would have succeeded, but DryRun flag is set.</Message></Error></Errors><RequestID>ID</RequestID></Response>`},
		{"ec2query DryRun not a boolean", true, "POST", "", "Action=DeleteWidget&DryRun=perhaps", 400, "text/xml;charset=UTF-8",
			`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<Response><Errors><Error><Code>ValidationError</Code><Message>Invalid value &#34;perhaps&#34; for parameter DryRun: must be true or false.</Message></Error></Errors><RequestID>ID</RequestID></Response>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serveQuery(queryService(tt.ec2), tt.method, tt.query, tt.body)
			id := rec.Header().Get("x-amzn-RequestId")
			if id == "" {
				t.Fatal("no x-amzn-RequestId")
			}
			if rec.Code != tt.wantStatus || rec.Header().Get("Content-Type") != tt.wantType {
				t.Errorf("status %d, Content-Type %q; want %d, %q", rec.Code, rec.Header().Get("Content-Type"), tt.wantStatus, tt.wantType)
			}
			if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(rec.Body.Len()) {
				t.Errorf("Content-Length %q for a body of %d bytes", cl, rec.Body.Len())
			}
			got := strings.ReplaceAll(rec.Body.String(), id, "ID")
			if tt.wantBody != "" && got != tt.wantBody {
				t.Errorf("body\n got %s\nwant %s", got, tt.wantBody)
			}
			if tt.wantBody == "" && !strings.Contains(got, "<Code>MalformedQueryString</Code>") {
				t.Errorf("body %s, want MalformedQueryString", got)
			}
		})
	}
}

func TestQueryServiceWriteErrorSpeaksItsProtocol(t *testing.T) {
	for _, ec2 := range []bool{false, true} {
		rec := httptest.NewRecorder()
		queryService(ec2).WriteError(rec, "req-1", awsproto.Errorf("Throttling", "Rate exceeded"))
		want := "<ErrorResponse"
		if ec2 {
			want = "<Response><Errors>"
		}
		if !strings.Contains(rec.Body.String(), want) || rec.Code != 400 {
			t.Errorf("ec2=%t: %d %s", ec2, rec.Code, rec.Body)
		}
	}
}

func TestInternalFailureIsTheFrameworksInJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	svc := &awsproto.JSONService{TargetPrefix: "X", ContentType: awsproto.JSON11, Namespace: "com.example.x",
		Operations: map[string]awsproto.JSONOperation{"Boom": func(*awsproto.JSONRequest) (any, error) { return nil, errors.New("disk on fire") }}}
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}"))
	req.Header.Set("X-Amz-Target", "X.Boom")
	svc.ServeHTTP(rec, req)
	if want := `{"__type":"com.amazon.coral.service#InternalFailure","message":"disk on fire"}`; rec.Code != 500 || rec.Body.String() != want {
		t.Errorf("got %d %s, want 500 %s", rec.Code, rec.Body, want)
	}
}
