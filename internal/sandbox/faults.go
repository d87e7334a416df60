package sandbox

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Fault is an injected network or API fault for the whole sandbox (empty
// Instance) or for the calls one instance makes through its own API port.
type Fault struct {
	// Instance limits the fault to one instance's calls; "" means every caller.
	Instance string `json:"instance,omitempty"`
	// Cut drops every call: the connection is closed without an answer, as
	// when the instance is cut off from the network.
	Cut bool `json:"cut,omitempty"`
	// Latency delays every call.
	Latency Duration `json:"latency,omitempty"`
	// Throttle is the share (0–1) of calls answered with a throttling error.
	Throttle float64 `json:"throttle,omitempty"`
	// ThrottleCode overrides the throttling error code (Throttling,
	// ThrottlingException, RequestLimitExceeded); the default is the
	// service's own.
	ThrottleCode string `json:"throttle_code,omitempty"`
	// Errors is the share (0–1) of calls answered with a server error.
	Errors float64 `json:"errors,omitempty"`
	// ErrorStatus is the server error's HTTP status (500, 502, 503, 504); default 503.
	ErrorStatus int `json:"error_status,omitempty"`
}

// Validate checks a fault's fields.
func (f Fault) Validate() error {
	switch {
	case f.Throttle < 0 || f.Throttle > 1:
		return fmt.Errorf("throttle: %v is not a share between 0 and 1", f.Throttle)
	case f.Errors < 0 || f.Errors > 1:
		return fmt.Errorf("errors: %v is not a share between 0 and 1", f.Errors)
	case f.Throttle+f.Errors > 1:
		return fmt.Errorf("throttle + errors: %v exceeds 1", f.Throttle+f.Errors)
	case f.Latency < 0:
		return fmt.Errorf("latency: %s is negative", time.Duration(f.Latency))
	case f.ErrorStatus != 0 && !slices.Contains([]int{500, 502, 503, 504}, f.ErrorStatus):
		return fmt.Errorf("error_status: %d is not one of 500, 502, 503, 504", f.ErrorStatus)
	case f.ThrottleCode != "" && !slices.Contains([]string{"Throttling", "ThrottlingException", "RequestLimitExceeded"}, f.ThrottleCode):
		return fmt.Errorf("throttle_code: %q is not one of Throttling, ThrottlingException, RequestLimitExceeded", f.ThrottleCode)
	}
	return nil
}

// Duration is a time.Duration that reads and writes as "200ms" in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "200ms" or a number of milliseconds. Its errors
// say what is wrong with the value; the caller names the field.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as \"200ms\", \"90s\" or \"1h\" (at most 2562047h)", s)
		}
		*d = Duration(v)
		return nil
	}
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return fmt.Errorf("%s is not a duration such as \"200ms\", \"90s\" or \"1h\"", b)
	}
	if ms > float64(math.MaxInt64/int64(time.Millisecond)) || ms < float64(math.MinInt64/int64(time.Millisecond)) {
		return fmt.Errorf("%s milliseconds is more than a duration holds (at most 2562047h)", b)
	}
	*d = Duration(time.Duration(ms * float64(time.Millisecond)))
	return nil
}

// faults holds the active faults and a seeded source per target, so a run
// with the same seed and the same calls draws the same outcomes.
type faults struct {
	mu     sync.Mutex
	seed   uint64
	active map[string]Fault // by instance id, "" for all
	rngs   map[string]*rand.Rand
}

func newFaults(seed uint64) *faults {
	return &faults{seed: seed, active: map[string]Fault{}, rngs: map[string]*rand.Rand{}}
}

func (fs *faults) set(f Fault) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.active[f.Instance] = f
	fs.rngs[f.Instance] = rand.New(rand.NewPCG(fs.seed, hashString(f.Instance)))
}

func (fs *faults) clear(instance string, all bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if all {
		clear(fs.active)
		return
	}
	delete(fs.active, instance)
}

func (fs *faults) list() []Fault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := make([]Fault, 0, len(fs.active))
	for _, f := range fs.active {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b Fault) int {
		switch {
		case a.Instance < b.Instance:
			return -1
		case a.Instance > b.Instance:
			return 1
		}
		return 0
	})
	return out
}

// outcome is what a fault does to one call.
type outcome struct {
	cut      bool
	latency  time.Duration
	throttle string // code, "" for none
	status   int    // server error status, 0 for none
}

// decide draws the outcome for one call from caller (an instance id or "").
// The instance's own fault wins over the sandbox-wide one.
func (fs *faults) decide(caller string) outcome {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	key := caller
	f, ok := fs.active[caller]
	if !ok || caller == "" {
		key = ""
		if f, ok = fs.active[""]; !ok {
			return outcome{}
		}
	}
	o := outcome{cut: f.Cut, latency: time.Duration(f.Latency)}
	if f.Throttle > 0 || f.Errors > 0 {
		x := fs.rngs[key].Float64()
		switch {
		case x < f.Throttle:
			o.throttle = f.ThrottleCode
			if o.throttle == "" {
				o.throttle = "default"
			}
		case x < f.Throttle+f.Errors:
			o.status = f.ErrorStatus
			if o.status == 0 {
				o.status = http.StatusServiceUnavailable
			}
		}
	}
	return o
}

func hashString(s string) uint64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
