package agent_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/lease/leasetest"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle/lifecycletest"
)

// fakeTags records the tag calls.
type fakeTags struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeTags) SetTag(_ context.Context, instance, key, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "set "+instance+" "+key+"="+value)
	return nil
}

func (f *fakeTags) DeleteTag(_ context.Context, instance, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "delete "+instance+" "+key)
	return nil
}

func (f *fakeTags) all() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// peekingSteps records the lease record as each step starts.
type peekingSteps struct {
	*lifecycletest.StepRunner
	store *leasetest.Store
	mu    sync.Mutex
	seen  map[string]bool // step → the lease was released when it started
}

func (p *peekingSteps) Start(ctx context.Context, id lifecycle.StepID, s lifecycle.Step, env []string) (lifecycle.StepHandle, error) {
	p.mu.Lock()
	p.seen[s.Name] = p.store.Peek(groupName).Released
	p.mu.Unlock()
	return p.StepRunner.Start(ctx, id, s, env)
}

func leaderConfig(t *testing.T) config.Agent {
	cfg := newConfig(t)
	cfg.IMDS.PollInterval = config.Duration(time.Second)
	cfg.Leader.Mode, cfg.Leader.Table = config.LeaderLease, "leases"
	cfg.Leader.MarkerFile = filepath.Join(t.TempDir(), "leader", "is-leader")
	cfg.Leader.Tag.Enabled = true
	return cfg
}

func leaderDoc(t *testing.T, h http.Handler) agent.LeaderDoc {
	t.Helper()
	code, body := get(t, h, "/leader")
	var d agent.LeaderDoc
	if err := json.Unmarshal([]byte(body), &d); err != nil || code != http.StatusOK {
		t.Fatalf("GET /leader = %d %s (%v)", code, body, err)
	}
	return d
}

func TestLeaderLeadsMirrorsAndHandsOffBeforeTheSteps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := leaderConfig(t)
		cfg.Terminate.Steps = []config.Step{step("drain")}
		store := &leasetest.Store{}
		tags := &fakeTags{}
		md := &fakeMetadata{target: "InService"}
		asg := &fakeGroup{t: t, state: "InService", hooks: []lifecycle.Hook{terminateHook("bye", 10*time.Minute)}}
		steps := &peekingSteps{store: store, seen: map[string]bool{},
			StepRunner: &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"drain": {Duration: time.Minute}}}}
		a := newAgent(t, cfg, agent.Deps{Metadata: md, Group: asg, Completer: okCompleter(t), Steps: steps,
			Leader: agent.LeaderDeps{Store: store, Roster: store, Tags: tags}})
		h := a.Handler()
		r := start(t, a)

		time.Sleep(3 * time.Second)
		synctest.Wait()
		rec := store.Peek(groupName)
		if rec.Holder != instanceID || rec.Token != 1 || rec.Released {
			t.Fatalf("lease record %+v; want held by %s with token 1", rec, instanceID)
		}
		d := leaderDoc(t, h)
		if !d.Leading || !d.Known || d.Holder != instanceID || d.Token != 1 || d.Group != groupName || d.LeaseEnd.IsZero() ||
			d.StopGrace != config.Duration(2*time.Second) || d.Margin != config.Duration(4*time.Second) {
			t.Errorf("GET /leader = %+v; want leading, token 1, with the lease end, grace and margin", d)
		}
		if b, err := os.ReadFile(cfg.Leader.MarkerFile); err != nil || string(b) != "token=1\n" {
			t.Errorf("marker file = %q, %v; want token=1", b, err)
		}
		_, metrics := get(t, h, "/metrics")
		for _, want := range []string{"lifeguard_leader_is_leader 1", "lifeguard_leader_token 1", "lifeguard_leader_transitions_total 1"} {
			if !strings.Contains(metrics, want+"\n") {
				t.Errorf("/metrics lacks %q", want)
			}
		}
		// At start a follower's tag is deleted; that may be coalesced
		// with the leader's tag when leadership comes at once.
		if got := tags.all(); len(got) == 0 || got[len(got)-1] != "set "+instanceID+" app:isLeader=true" {
			t.Errorf("tag calls %q; want the leader's tag last", got)
		}

		// Scale-in: the hand-off is the plan's first step.
		md.setTarget("Terminated")
		asg.setState("Terminating:Wait")
		<-r.done
		if r.err != nil {
			t.Errorf("Run = %v", r.err)
		}
		if released, ok := steps.seen["drain"]; !ok || !released {
			t.Errorf("drain started with the lease released = %v (started %v); want the hand-off first", released, ok)
		}
		if _, err := os.Stat(cfg.Leader.MarkerFile); !os.IsNotExist(err) {
			t.Errorf("marker file after the hand-off: %v; want none", err)
		}
		if got := tags.all(); got[len(got)-1] != "delete "+instanceID+" app:isLeader" {
			t.Errorf("tag calls %q; want the tag deleted last", got)
		}
		if ms, _ := store.Members(t.Context(), groupName); len(ms) != 0 {
			t.Errorf("members after the agent stopped: %+v; want none", ms)
		}
	})
}

func TestLeaderWaitsForInServiceAndLongPolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := leaderConfig(t)
		cfg.Leader.Tag.Enabled = false
		store := &leasetest.Store{}
		asg := &fakeGroup{t: t, state: "Standby"}
		md := &fakeMetadata{}
		a := newAgent(t, cfg, agent.Deps{Metadata: md, Group: asg, Completer: noCalls(t),
			Leader: agent.LeaderDeps{Store: store, Roster: store}})
		h := a.Handler()
		r := start(t, a)
		defer r.stop()

		time.Sleep(20 * time.Second)
		synctest.Wait()
		if rec := store.Peek(groupName); rec.Exists() {
			t.Fatalf("a Standby instance took the lease: %+v", rec)
		}
		if d := leaderDoc(t, h); d.Leading || !d.Known || d.Holder != "" {
			t.Errorf("GET /leader = %+v; want known, not leading, no holder", d)
		}

		// A long poll answers when leadership starts, not at its bound.
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/leader?wait=30s&leading=false&token=0", nil))
		}()
		t0 := time.Now()
		asg.setState("InService")
		md.setTarget("InService") // the agent asks Auto Scaling again
		<-done
		var d agent.LeaderDoc
		if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil || !d.Leading || d.Token != 1 {
			t.Fatalf("long poll answered %s (%v); want leading with token 1", rec.Body, err)
		}
		if waited := time.Since(t0); waited > 3*time.Second {
			t.Errorf("long poll answered after %v; want within a poll or two of InService", waited)
		}
	})
}

func TestLeaderOff(t *testing.T) {
	cfg := newConfig(t)
	a := newAgent(t, cfg, agent.Deps{Metadata: &fakeMetadata{}, Group: &fakeGroup{t: t}, Completer: noCalls(t)})
	code, body := get(t, a.Handler(), "/leader")
	if code != http.StatusNotFound || !strings.Contains(body, "leader election is off") {
		t.Errorf("GET /leader with leader.mode off = %d %s; want 404 saying it is off", code, body)
	}
}

func TestLeaderNeedsItsDeps(t *testing.T) {
	cfg := leaderConfig(t)
	_, err := agent.New(cfg, agent.Deps{Metadata: &fakeMetadata{}, Group: &fakeGroup{t: t}, Completer: noCalls(t)}, nil)
	if err == nil || !strings.Contains(err.Error(), "deps.Leader.Store") || !strings.Contains(err.Error(), "deps.Leader.Tags") {
		t.Errorf("New without the lease store and tagger = %v; want both named", err)
	}
}
