package agent_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle/lifecycletest"
)

// fakeIMDSTags is the instance's tags as IMDS shows them.
type fakeIMDSTags struct {
	mu       sync.Mutex
	tags     map[string]string
	disabled bool
}

func (f *fakeIMDSTags) InstanceTag(_ context.Context, key string) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.disabled {
		return "", false, agent.ErrNoMetadataTags
	}
	v, ok := f.tags[key]
	return v, ok, nil
}

func (f *fakeIMDSTags) set(key, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if value == "" {
		delete(f.tags, key)
		return
	}
	f.tags[key] = value
}

// markerSteps records whether the marker file existed when each step
// started.
type markerSteps struct {
	*lifecycletest.StepRunner
	marker string
	mu     sync.Mutex
	seen   map[string]bool
}

func (p *markerSteps) Start(ctx context.Context, id lifecycle.StepID, s lifecycle.Step, env []string) (lifecycle.StepHandle, error) {
	_, err := os.Stat(p.marker)
	p.mu.Lock()
	p.seen[s.Name] = err == nil
	p.mu.Unlock()
	return p.StepRunner.Start(ctx, id, s, env)
}

func TestLeaderTagMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := newConfig(t)
		cfg.IMDS.PollInterval = config.Duration(time.Second)
		cfg.Leader.Mode = config.LeaderByTag
		cfg.Leader.MarkerFile = filepath.Join(t.TempDir(), "leader", "is-leader")
		cfg.Terminate.Steps = []config.Step{step("drain")}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		tags := &fakeIMDSTags{tags: map[string]string{}}
		md := &fakeMetadata{target: "InService"}
		asg := &fakeGroup{t: t, state: "InService", hooks: []lifecycle.Hook{terminateHook("bye", 10*time.Minute)}}
		steps := &markerSteps{marker: cfg.Leader.MarkerFile, seen: map[string]bool{},
			StepRunner: &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"drain": {Duration: time.Minute}}}}
		a := newAgent(t, cfg, agent.Deps{Metadata: md, Group: asg, Completer: okCompleter(t), Steps: steps,
			Leader: agent.LeaderDeps{TagReader: tags}})
		h := a.Handler()
		r := start(t, a)

		time.Sleep(3 * time.Second)
		synctest.Wait()
		if d := leaderDoc(t, h); d.Leading || !d.Known || d.Mode != "tag" {
			t.Errorf("untagged: GET /leader = %+v; want known, not leading", d)
		}
		tags.set("app:isLeader", "false")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if d := leaderDoc(t, h); d.Leading {
			t.Errorf("tagged false: leading; a value other than the leader's must not lead")
		}

		tags.set("app:isLeader", "true")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		d := leaderDoc(t, h)
		if !d.Leading || d.Token != 0 || d.Holder != instanceID {
			t.Errorf("tagged: GET /leader = %+v; want leading with token 0", d)
		}
		if b, err := os.ReadFile(cfg.Leader.MarkerFile); err != nil || string(b) != "token=0\n" {
			t.Errorf("marker file = %q, %v; want token=0", b, err)
		}
		_, metrics := get(t, h, "/metrics")
		if !strings.Contains(metrics, "lifeguard_leader_is_leader 1\n") {
			t.Errorf("/metrics lacks lifeguard_leader_is_leader 1")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/leader/resign", nil))
		if code := rec.Code; code != http.StatusConflict {
			t.Errorf("POST /leader/resign = %d; want 409 (the controller moves the tag)", code)
		}

		// The controller moves the tag away: no longer leading.
		tags.set("app:isLeader", "")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if d := leaderDoc(t, h); d.Leading {
			t.Errorf("tag removed: still leading")
		}
		if _, err := os.Stat(cfg.Leader.MarkerFile); !os.IsNotExist(err) {
			t.Errorf("marker after the tag was removed: %v", err)
		}

		// Tagged again, then scale-in: leadership stops before the
		// user's steps even though the tag is still there.
		tags.set("app:isLeader", "true")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if !leaderDoc(t, h).Leading {
			t.Fatal("not leading after the tag came back")
		}
		md.setTarget("Terminated")
		asg.setState("Terminating:Wait")
		<-r.done
		if r.err != nil {
			t.Errorf("Run = %v", r.err)
		}
		if held, ok := steps.seen["drain"]; !ok || held {
			t.Errorf("drain started with the marker present = %v (started %v); want leadership gone first", held, ok)
		}
	})
}

func TestLeaderTagModeWithoutIMDSTags(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := newConfig(t)
		cfg.IMDS.PollInterval = config.Duration(time.Second)
		cfg.Leader.Mode = config.LeaderByTag
		tags := &fakeIMDSTags{disabled: true}
		a := newAgent(t, cfg, agent.Deps{Metadata: &fakeMetadata{target: "InService"}, Group: &fakeGroup{t: t, state: "InService"}, Completer: noCalls(t),
			Leader: agent.LeaderDeps{TagReader: tags}})
		h := a.Handler()
		r := start(t, a)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if d := leaderDoc(t, h); d.Leading || d.Known {
			t.Errorf("GET /leader = %+v; want unknown and not leading", d)
		}
		r.cancel()
		<-r.done
	})
}

func TestLeaderTagModeNeedsAReader(t *testing.T) {
	cfg := newConfig(t)
	cfg.Leader.Mode = config.LeaderByTag
	_, err := agent.New(cfg, agent.Deps{Metadata: &fakeMetadata{}, Group: &fakeGroup{t: t}, Completer: noCalls(t)}, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "TagReader") {
		t.Errorf("New = %v; want an error naming the tag reader", err)
	}
	if !errors.Is(agent.ErrNoMetadataTags, agent.ErrNoMetadataTags) || !strings.Contains(agent.ErrNoMetadataTags.Error(), "InstanceMetadataTags=enabled") {
		t.Errorf("ErrNoMetadataTags does not say how to fix it: %v", agent.ErrNoMetadataTags)
	}
}

// fakeDescribeTags is EC2's DescribeTags for one instance's tags.
type fakeDescribeTags struct {
	mu    sync.Mutex
	tags  map[string]string
	calls []string // instance/key of each call
}

func (f *fakeDescribeTags) DescribeInstanceTag(_ context.Context, instance, key string) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, instance+"/"+key)
	if instance != instanceID {
		return "", false, nil
	}
	v, ok := f.tags[key]
	return v, ok, nil
}

func (f *fakeDescribeTags) set(key, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tags[key] = value
}

func (f *fakeDescribeTags) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// Without IMDS tags, tag mode reads its own tag with DescribeTags at the
// poll interval, and leads on it like on the IMDS tag.
func TestLeaderTagModeFallsBackOnDescribeTags(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := newConfig(t)
		cfg.IMDS.PollInterval = config.Duration(time.Second)
		cfg.Leader.Mode = config.LeaderByTag
		cfg.Leader.PollInterval = config.Duration(2 * time.Second)
		imds := &fakeIMDSTags{disabled: true}
		api := &fakeDescribeTags{tags: map[string]string{}}
		a := newAgent(t, cfg, agent.Deps{Metadata: &fakeMetadata{target: "InService"}, Group: &fakeGroup{t: t, state: "InService"}, Completer: noCalls(t),
			Leader: agent.LeaderDeps{TagReader: imds, TagDescriber: api}})
		h := a.Handler()
		r := start(t, a)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if d := leaderDoc(t, h); d.Leading || !d.Known {
			t.Errorf("untagged: GET /leader = %+v; want known, not leading", d)
		}
		api.set("app:isLeader", "true")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if d := leaderDoc(t, h); !d.Leading || d.Holder != instanceID {
			t.Errorf("tagged: GET /leader = %+v; want leading", d)
		}
		before := api.count()
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if n := api.count() - before; n < 9 || n > 11 {
			t.Errorf("DescribeTags calls in 20s at a 2s poll = %d; want about 10", n)
		}
		api.set("app:isLeader", "false")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if d := leaderDoc(t, h); d.Leading {
			t.Errorf("tag moved away: still leading")
		}
		api.mu.Lock()
		for _, c := range api.calls {
			if c != instanceID+"/app:isLeader" {
				t.Errorf("DescribeTags for %s; want only %s/app:isLeader", c, instanceID)
				break
			}
		}
		api.mu.Unlock()
		r.cancel()
		<-r.done
	})
}
