package cli_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSandboxLogsPrintsTheFunctionsConsole(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/_sandbox/functions/report/logs" {
			http.Error(w, `{"error":"no function"}`, http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte("START RequestId: 1\nhello\nEND RequestId: 1\n"))
	}))
	defer srv.Close()
	out, err := run(t, "sandbox", "logs", "report", "--endpoint", srv.URL)
	if err != nil || !strings.Contains(out, "hello\nEND RequestId: 1") {
		t.Errorf("sandbox logs = %q, %v; want the function's console", out, err)
	}
	if _, err := run(t, "sandbox", "logs", "missing", "--endpoint", srv.URL); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("sandbox logs of a missing function: %v, want the sandbox's 404", err)
	}
}
