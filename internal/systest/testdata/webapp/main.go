// Command webapp is the app of the traffic scenarios: an HTTP server on
// the address given as its argument that answers every request 200 with
// the host's name. It has no graceful shutdown: SIGTERM stops it at once,
// as a naive app would, so only the load balancer's draining protects its
// requests.
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: webapp HOST:PORT")
		os.Exit(2)
	}
	addr := os.Args[1]
	srv := &http.Server{
		Addr:              addr,
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "ok from %s\n", addr)
		}),
	}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
