package awsproto_test

import (
	"compress/gzip"
	"io"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// TestQueryServiceCompressesWhenAsked: a query-protocol answer of 1 KiB or
// more is gzipped for a client whose Accept-Encoding admits gzip, with a
// Content-Length that counts the compressed bytes; a smaller answer, or a
// client that does not admit gzip, gets the body as it is. Either way the
// answer says it varies with Accept-Encoding.
func TestQueryServiceCompressesWhenAsked(t *testing.T) {
	tests := []struct {
		accept  string
		records int // widgets listed: 100 make ~4 KiB, 2 under 1 KiB
		want    bool
	}{
		{"gzip", 100, true},
		{"", 100, false},
		{"identity", 100, false},
		{"gzip;q=0", 100, false},
		{"deflate, GZIP;q=0.5", 100, true},
		{"x-gzip", 100, true},
		{"*", 100, true},
		{"*;q=0", 100, false},
		{"gzip", 2, false},
	}
	for _, ec2 := range []bool{false, true} {
		for _, tt := range tests {
			name := tt.accept + "/" + strconv.Itoa(tt.records)
			if ec2 {
				name = "ec2/" + name
			}
			t.Run(name, func(t *testing.T) {
				form := "Action=DescribeWidgets&Version=2020-01-01&MaxRecords=" + strconv.Itoa(tt.records)
				plain := serveQuery(queryService(ec2), "POST", "", form)
				req := httptest.NewRequest("POST", "/", strings.NewReader(form))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if tt.accept != "" {
					req.Header.Set("Accept-Encoding", tt.accept)
				}
				rec := httptest.NewRecorder()
				queryService(ec2).ServeHTTP(rec, req)

				h := rec.Header()
				if rec.Code != 200 || plain.Code != 200 {
					t.Fatalf("status %d and %d, want 200: %s", rec.Code, plain.Code, rec.Body)
				}
				if got := h.Get("Content-Length"); got != strconv.Itoa(rec.Body.Len()) {
					t.Errorf("Content-Length %s for a body of %d bytes", got, rec.Body.Len())
				}
				if got := h.Get("Vary"); got != "Accept-Encoding" {
					t.Errorf("Vary %q, want Accept-Encoding", got)
				}
				body := rec.Body.String()
				if got := h.Get("Content-Encoding"); (got == "gzip") != tt.want {
					t.Fatalf("Content-Encoding %q; gzip wanted: %v", got, tt.want)
				}
				if tt.want {
					zr, err := gzip.NewReader(rec.Body)
					if err != nil {
						t.Fatal(err)
					}
					b, err := io.ReadAll(zr)
					if err != nil {
						t.Fatal(err)
					}
					if len(b) <= rec.Body.Len() {
						t.Errorf("compressed %d bytes into %d", len(b), rec.Body.Len())
					}
					body = string(b)
				}
				if got, want := withoutID(body, h.Get("X-Amzn-Requestid")), withoutID(plain.Body.String(), plain.Header().Get("X-Amzn-Requestid")); got != want {
					t.Errorf("body differs from the plain answer:\n got %.300s\nwant %.300s", got, want)
				}
			})
		}
	}
}

func withoutID(body, id string) string { return strings.ReplaceAll(body, id, "ID") }
