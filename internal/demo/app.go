package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// AppWarmUp is how long the web app takes to start serving: the launch
// hook holds the instance in Pending:Wait meanwhile.
const AppWarmUp = 2 * time.Second

// ServeApp is the story's web app, run on each instance of the web group
// (`lifeguard demo app`, hidden): it reads the instance's id and private
// IP from instance metadata (IMDSv2, at AWS_EC2_METADATA_SERVICE_ENDPOINT),
// warms up for AppWarmUp, then answers every request on the private IP and
// port with 200 and the instance's id, and touches app.ready in the
// working directory (the agent's launch probe). It has no graceful
// shutdown: only the load balancer's draining protects its requests.
func ServeApp(ctx context.Context, log io.Writer, port int) error {
	imds := strings.TrimSuffix(os.Getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT"), "/")
	if imds == "" {
		return errors.New("AWS_EC2_METADATA_SERVICE_ENDPOINT is not set: the demo's app runs on a sandbox instance")
	}
	id, err := metadata(ctx, imds, "instance-id")
	if err != nil {
		return err
	}
	ip, err := metadata(ctx, imds, "local-ipv4")
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "app: warming up for %s\n", AppWarmUp)
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(AppWarmUp):
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(port)))
	if err != nil {
		return err
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "ok from %s\n", id)
	})}
	if err := os.WriteFile("app.ready", nil, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(log, "app: serving on %s\n", ln.Addr())
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// metadata reads one path under latest/meta-data with an IMDSv2 token.
func metadata(ctx context.Context, imds, path string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, imds+"/latest/api/token", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("instance metadata token: %w", err)
	}
	token, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, imds+"/latest/meta-data/"+path, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-aws-ec2-metadata-token", string(token))
	resp, err = c.Do(req)
	if err != nil {
		return "", fmt.Errorf("instance metadata %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("instance metadata %s: %s", path, resp.Status)
	}
	return strings.TrimSpace(string(b)), nil
}
