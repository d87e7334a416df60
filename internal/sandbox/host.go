package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/imds"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/instance"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// host backs each simulated instance with its own IMDS server, its own API
// port (so faults can target one instance) and, when it has user data, a
// process group running that user data. It implements world.Host.
type host struct {
	dir       string
	region    string
	log       *slog.Logger
	api       http.Handler         // the sandbox router, served on every instance's API port
	processes bool                 // false: instances get IMDS and API ports but run nothing
	mem       *memNet              // in memory: instances' API and IMDS are hosts of it, not ports
	sup       *instance.Supervisor // runs every instance's user data; nil without processes

	mu    sync.Mutex
	src   imds.Source
	insts map[string]*hostInstance
	calls map[string]*callCounter // every booted instance's calls, until the world forgets it
}

// callCounter counts the requests an instance made to its own API port
// and to its IMDS.
type callCounter struct{ api, imds atomic.Int64 }

// CallCount is what one instance asked of the sandbox: requests on its
// own API port (every AWS call, whatever the answer, faults included) and
// on its IMDS (token PUTs and GETs alike).
type CallCount struct {
	API  int64 `json:"api"`
	IMDS int64 `json:"imds"`
}

// counted counts every request h serves.
func counted(n *atomic.Int64, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, r)
	})
}

type hostInstance struct {
	dir      string
	imds     *imds.Server
	apiSrv   *http.Server
	apiDone  chan struct{}
	apiURL   string
	imdsURL  string
	memHost  []string // hosts registered on host.mem
	proc     *instance.Process
	ran      bool // it had processes: its console output stays in dir
	stopped  bool
	stopDone chan struct{} // made by the first Stop, closed when it returns
}

var _ world.Host = (*host)(nil)

// Boot starts an instance's IMDS, API port and user data.
func (h *host) Boot(b world.Boot) (err error) {
	hi := &hostInstance{dir: filepath.Join(h.dir, "instances", b.InstanceID)}
	defer func() {
		if err != nil {
			hi.close()
		}
	}()
	h.mu.Lock()
	src := h.src
	h.mu.Unlock()
	// Tokens expire on the wall clock: a token's TTL is transport, not
	// lifecycle semantics, and pushing the simulated clock must not make
	// every instance's next IMDS call fail with 401.
	calls := &callCounter{}
	h.mu.Lock()
	if h.calls == nil {
		h.calls = map[string]*callCounter{}
	}
	h.calls[b.InstanceID] = calls
	h.mu.Unlock()
	mdHandler := counted(&calls.imds, imds.NewHandler(src, b.InstanceID, time.Now))
	api := counted(&calls.api, withCaller(b.InstanceID, h.api))
	if h.mem != nil {
		apiHost, mdHost := b.InstanceID+".api."+memDomain, b.InstanceID+".imds."+memDomain
		h.mem.handle(apiHost, api)
		h.mem.handle(mdHost, mdHandler)
		hi.memHost = []string{apiHost, mdHost}
		hi.apiURL, hi.imdsURL = "http://"+apiHost, "http://"+mdHost
	} else {
		hi.imds, err = imds.Start("127.0.0.1:0", mdHandler)
		if err != nil {
			return fmt.Errorf("start IMDS: %w", err)
		}
		hi.imdsURL = hi.imds.Endpoint()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("listen for the instance's API port: %w", err)
		}
		hi.apiURL = "http://" + ln.Addr().String()
		hi.apiSrv = &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
		hi.apiDone = make(chan struct{})
		go func() {
			defer close(hi.apiDone)
			_ = hi.apiSrv.Serve(ln)
		}()
	}
	if h.processes && len(b.UserData) > 0 {
		hi.proc, err = h.sup.Start(instance.Spec{
			ID:       b.InstanceID,
			UserData: b.UserData,
			Dir:      hi.dir,
			Env:      h.instanceEnv(hi),
		})
		if err != nil {
			return fmt.Errorf("start user data: %w", err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.insts == nil {
		h.insts = map[string]*hostInstance{}
	}
	h.insts[b.InstanceID] = hi
	return nil
}

// instanceEnv is the environment an instance's programs see on top of the
// sandbox's own, less every inherited AWS_* variable (see package
// instance): the SDK's standard variables point at this instance's own API
// port and IMDS, so programs take the role credentials from IMDS as on EC2.
func (h *host) instanceEnv(hi *hostInstance) []string {
	return []string{
		"AWS_ENDPOINT_URL=" + hi.apiURL,
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + hi.imdsURL,
		"AWS_REGION=" + h.region,
		"AWS_DEFAULT_REGION=" + h.region,
		"AWS_CONFIG_FILE=" + filepath.Join(hi.dir, ".aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(hi.dir, ".aws-credentials"),
		"HOME=" + hi.dir,
	}
}

// Stop terminates an instance's processes, then closes its ports.
//
// It may be called again for the same instance (the sandbox closing while
// the instance terminates): a later call waits for the first to finish.
func (h *host) Stop(id string, grace time.Duration) error {
	h.mu.Lock()
	hi, ok := h.insts[id]
	if !ok {
		h.mu.Unlock()
		return nil
	}
	if done := hi.stopDone; done != nil {
		h.mu.Unlock()
		<-done
		return nil
	}
	hi.stopDone = make(chan struct{})
	h.mu.Unlock()
	defer close(hi.stopDone)
	var err error
	if hi.proc != nil {
		ctx, cancel := context.WithTimeout(context.Background(), grace+10*time.Second)
		err = hi.proc.Stop(ctx, grace)
		cancel()
	}
	h.mu.Lock()
	hi.stopped = true
	h.mu.Unlock()
	hi.close()
	for _, host := range hi.memHost {
		h.mem.remove(host)
	}
	// Only the console output outlives the instance (GetConsoleOutput of a
	// terminated instance), in its directory until Forget; its servers and
	// process are let go, and an instance that ran nothing is forgotten
	// altogether.
	h.mu.Lock()
	hi.ran = hi.proc != nil
	hi.imds, hi.apiSrv, hi.proc, hi.memHost = nil, nil, nil, nil
	if !hi.ran && h.insts[id] == hi {
		delete(h.insts, id)
	}
	h.mu.Unlock()
	return err
}

// close stops the process that ran the instances' user data, once the
// world has stopped them.
func (h *host) close() {
	if h.sup == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.sup.Close(ctx); err != nil {
		h.log.Warn("close the instance supervisor", "err", err)
	}
}

func (hi *hostInstance) close() {
	if hi.apiSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := hi.apiSrv.Shutdown(ctx); err != nil {
			_ = hi.apiSrv.Close()
		}
		cancel()
		<-hi.apiDone
	}
	if hi.imds != nil {
		_ = hi.imds.Close()
	}
}

// Forget lets go of what the host still holds of an instance the world no
// longer shows (a terminated instance aged out): the way to its console
// output and its call counts. The world calls it under its lock (world → host).
func (h *host) Forget(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if hi, ok := h.insts[id]; ok && hi.stopped {
		delete(h.insts, id)
	}
	delete(h.calls, id)
}

// calls returns every instance's call counts, by instance id.
func (h *host) callCounts() map[string]CallCount {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]CallCount, len(h.calls))
	for id, c := range h.calls {
		out[id] = CallCount{API: c.api.Load(), IMDS: c.imds.Load()}
	}
	return out
}

// Console returns what the instance's user data printed.
// It reads the file outside the host's lock.
func (h *host) Console(id string) []byte {
	h.mu.Lock()
	hi, ok := h.insts[id]
	ran := ok && (hi.proc != nil || hi.ran)
	h.mu.Unlock()
	if !ran {
		return nil
	}
	return instance.Console(hi.dir)
}

// endpoints returns an instance's API and IMDS endpoints.
func (h *host) endpoints(id string) (api, md string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hi, ok := h.insts[id]
	if !ok || hi.stopped {
		return "", "", errors.New("instance " + id + " is not running")
	}
	return hi.apiURL, hi.imdsURL, nil
}

// instanceDir is where an instance that runs user data keeps its files;
// "" for one that ran nothing, which has none.
func (h *host) instanceDir(id string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if hi, ok := h.insts[id]; ok && (hi.proc != nil || hi.ran) {
		return hi.dir
	}
	return ""
}
