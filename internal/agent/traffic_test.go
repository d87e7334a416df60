package agent_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/lb"
	"github.com/lifeguardhq/lifeguard/internal/lease/leasetest"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle/lifecycletest"
)

const webTG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"

// fakeBalancer is one target group or load balancer in time: registered,
// the instance is initial, then healthy healthyAfter later (never when
// negative); deregistered, it drains for drainFor, then is unused. The
// group "deregisters" it with groupDeregister. Calls about another
// instance fail the test. Safe for concurrent use.
type fakeBalancer struct {
	t            *testing.T
	healthyAfter time.Duration
	drainFor     time.Duration

	mu       sync.Mutex
	regAt    time.Time
	deregAt  time.Time
	ops      []string // "register@10s"-like, relative to t0
	t0       time.Time
	portSeen int
}

var _ lb.Registrar = (*fakeBalancer)(nil)

func newBalancer(t *testing.T, healthyAfter, drainFor time.Duration) *fakeBalancer {
	return &fakeBalancer{t: t, healthyAfter: healthyAfter, drainFor: drainFor, t0: time.Now()}
}

func (b *fakeBalancer) note(op, inst string) {
	if inst != instanceID {
		b.t.Errorf("%s(%q), want %q", op, inst, instanceID)
	}
	b.ops = append(b.ops, op+"@"+time.Since(b.t0).String())
}

func (b *fakeBalancer) Register(_ context.Context, inst string, t lb.Target) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.note("register", inst)
	b.portSeen = t.Port
	if b.regAt.IsZero() {
		b.regAt = time.Now()
	}
	b.deregAt = time.Time{}
	return nil
}

func (b *fakeBalancer) Deregister(_ context.Context, inst string, _ lb.Target) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.note("deregister", inst)
	b.deregisterLocked()
	return nil
}

func (b *fakeBalancer) deregisterLocked() {
	if !b.regAt.IsZero() {
		b.regAt, b.deregAt = time.Time{}, time.Now()
	}
}

// groupDeregister is the Auto Scaling group deregistering the instance.
func (b *fakeBalancer) groupDeregister() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deregisterLocked()
}

func (b *fakeBalancer) Health(context.Context, string, lb.Target) (lb.Health, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	switch {
	case !b.regAt.IsZero() && b.healthyAfter < 0:
		return lb.Health{State: lb.StateUnhealthy, Reason: "Target.FailedHealthChecks"}, nil
	case !b.regAt.IsZero() && now.Sub(b.regAt) < b.healthyAfter:
		return lb.Health{State: lb.StateInitial, Reason: "Elb.RegistrationInProgress"}, nil
	case !b.regAt.IsZero():
		return lb.Health{State: lb.StateHealthy}, nil
	case !b.deregAt.IsZero() && now.Sub(b.deregAt) < b.drainFor:
		return lb.Health{State: lb.StateDraining, Reason: "Target.DeregistrationInProgress"}, nil
	}
	return lb.Health{State: lb.StateUnused, Reason: "Target.NotRegistered"}, nil
}

func (b *fakeBalancer) calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string{}, b.ops...)
}

// fakeAttachments is a group attaching the target groups it lists.
type fakeAttachments struct {
	t   *testing.T
	tgs []string
}

func (f fakeAttachments) Attachments(_ context.Context, group string) (lb.Attachments, error) {
	if group != groupName {
		f.t.Errorf("Attachments(%q), want %q", group, groupName)
	}
	return lb.Attachments{TargetGroupARNs: f.tgs}, nil
}

type instanceTags map[string]string

func (f instanceTags) Tags(_ context.Context, _ string, keys ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, k := range keys {
		if v, ok := f[k]; ok {
			out[k] = v
		}
	}
	return out, nil
}

func trafficConfig(t *testing.T, mode config.TrafficMode) config.Agent {
	cfg := newConfig(t)
	cfg.Traffic.Mode = mode
	cfg.Traffic.TargetGroups = []config.TargetGroup{{ARN: webTG, Port: 8080}}
	cfg.Traffic.WaitHealthyTimeout = config.Duration(time.Minute)
	cfg.Traffic.WaitDrainedTimeout = config.Duration(2 * time.Minute)
	cfg.Traffic.PollInterval = config.Duration(5 * time.Second)
	return cfg
}

func trafficDeps(t *testing.T, b *fakeBalancer, attached ...string) agent.TrafficDeps {
	return agent.TrafficDeps{
		Registrars:  map[lb.Kind]lb.Registrar{lb.KindTargetGroup: b},
		Attachments: fakeAttachments{t: t, tgs: attached},
	}
}

func TestTrafficAtLaunch(t *testing.T) {
	for _, c := range []struct {
		name         string
		mode         config.TrafficMode
		attached     []string
		fromTags     instanceTags
		healthyAfter time.Duration
		want         lifecycle.Result
		wantAt       time.Duration
		wantOps      []string
	}{
		{name: "registered, then healthy: CONTINUE", mode: config.TrafficSelf, healthyAfter: 12 * time.Second,
			want: lifecycle.Continue, wantAt: 15 * time.Second, wantOps: []string{"register@0s"}},
		{name: "never healthy: ABANDON at wait_healthy_timeout", mode: config.TrafficSelf, healthyAfter: -1,
			want: lifecycle.Abandon, wantAt: time.Minute, wantOps: []string{"register@0s"}},
		{name: "auto with a target group the group attaches: the group registers after the launch", mode: config.TrafficAuto, attached: []string{webTG},
			want: lifecycle.Continue, wantAt: 0, wantOps: []string{}},
		{name: "auto with a target group the group does not attach: the agent registers", mode: config.TrafficAuto, healthyAfter: 6 * time.Second,
			want: lifecycle.Continue, wantAt: 10 * time.Second, wantOps: []string{"register@0s"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				t0 := time.Now()
				cfg := trafficConfig(t, c.mode)
				b := newBalancer(t, c.healthyAfter, 0)
				md := &fakeMetadata{target: "InService"}
				asg := &fakeGroup{t: t, state: "Pending:Wait", hooks: []lifecycle.Hook{launchHook("warmup", time.Hour)}}
				aws := okCompleter(t)
				r := start(t, newAgent(t, cfg, agent.Deps{Metadata: md, Group: asg, Completer: aws,
					Steps: &lifecycletest.StepRunner{T: t}, Traffic: trafficDeps(t, b, c.attached...)}))
				time.Sleep(3 * time.Minute)
				synctest.Wait()
				comps := aws.Completions()
				if len(comps) != 1 || comps[0].Result != c.want || comps[0].At.Sub(t0) != c.wantAt {
					t.Errorf("completions %+v; want one %s at %v", comps, c.want, c.wantAt)
				}
				if got := b.calls(); !reflect.DeepEqual(got, c.wantOps) && !(len(got) == 0 && len(c.wantOps) == 0) {
					t.Errorf("balancer calls %q, want %q", got, c.wantOps)
				}
				if b.portSeen != 0 && b.portSeen != 8080 {
					t.Errorf("registered on port %d, want 8080", b.portSeen)
				}
				if err := r.stop(); err != nil {
					t.Errorf("Run = %v", err)
				}
			})
		})
	}
}

func TestTrafficFromTags(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := trafficConfig(t, config.TrafficSelf)
		cfg.Traffic.TargetGroups = nil
		cfg.Traffic.FromTags = true
		b := newBalancer(t, 0, 0)
		deps := trafficDeps(t, b)
		deps.Registrars[lb.KindClassic] = b
		deps.Tags = instanceTags{config.TagTargetGroups: webTG + "=9090"}
		aws := okCompleter(t)
		a := newAgent(t, cfg, agent.Deps{Metadata: &fakeMetadata{target: "InService"},
			Group: &fakeGroup{t: t, state: "Pending:Wait", hooks: []lifecycle.Hook{launchHook("warmup", time.Hour)}}, Completer: aws,
			Steps: &lifecycletest.StepRunner{T: t}, Traffic: deps})
		r := start(t, a)
		time.Sleep(time.Minute)
		synctest.Wait()
		if comps := aws.Completions(); len(comps) != 1 || comps[0].Result != lifecycle.Continue {
			t.Errorf("completions %+v, want one CONTINUE", comps)
		}
		if got := b.calls(); !reflect.DeepEqual(got, []string{"register@0s"}) || b.portSeen != 9090 {
			t.Errorf("balancer calls %q on port %d, want one registration on the tag's port 9090", got, b.portSeen)
		}
		rec := httptest.NewRecorder()
		a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status", nil))
		var doc struct{ Traffic []agent.TargetDoc }
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
			t.Fatalf("/status: %v\n%s", err, rec.Body)
		}
		if len(doc.Traffic) != 1 || doc.Traffic[0].Name != webTG || doc.Traffic[0].Port != 9090 || doc.Traffic[0].State != "healthy" {
			t.Errorf("/status traffic = %+v, want the tagged target group healthy", doc.Traffic)
		}
		if err := r.stop(); err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

func TestTrafficAtTermination(t *testing.T) {
	for _, c := range []struct {
		name         string
		mode         config.TrafficMode
		attached     []string
		spot         bool
		groupDeregAt time.Duration // when the group deregisters the instance; 0 = never
		drainFor     time.Duration
		wantOps      []string
		wantStepAt   time.Duration // the user's step
	}{
		{name: "self: deregistered, drained, then the user's step", mode: config.TrafficSelf, drainFor: 30 * time.Second,
			wantOps: []string{"register@0s", "deregister@1m0s"}, wantStepAt: time.Minute + 30*time.Second},
		{name: "group: the agent waits for the group's deregistration", mode: config.TrafficAuto, attached: []string{webTG},
			groupDeregAt: time.Minute + 20*time.Second, drainFor: 30 * time.Second,
			wantOps: []string{"register@0s"}, wantStepAt: time.Minute + 50*time.Second},
		{name: "group, spot interruption: the group will not deregister, the agent does", mode: config.TrafficGroup, spot: true,
			drainFor: 10 * time.Second, wantOps: []string{"register@0s", "deregister@1m0s"}, wantStepAt: time.Minute + 10*time.Second},
		{name: "group that never deregisters: the user's step runs at wait_drained_timeout", mode: config.TrafficGroup,
			drainFor: 10 * time.Second, wantOps: []string{"register@0s"}, wantStepAt: 3 * time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				t0 := time.Now()
				cfg := trafficConfig(t, c.mode)
				cfg.IMDS.PollInterval = config.Duration(5 * time.Second)
				cfg.Terminate.Steps = []config.Step{step("flush")}
				b := newBalancer(t, 0, c.drainFor)
				if err := b.Register(t.Context(), instanceID, lb.Target{}); err != nil { // in service
					t.Fatal(err)
				}
				md := &fakeMetadata{target: "InService"}
				asg := &fakeGroup{t: t, state: "InService", hooks: []lifecycle.Hook{terminateHook("drain", time.Hour)}}
				steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: time.Second}}}
				r := start(t, newAgent(t, cfg, agent.Deps{Metadata: md, Group: asg, Completer: okCompleter(t), Steps: steps,
					Traffic: trafficDeps(t, b, c.attached...)}))
				time.Sleep(time.Minute - time.Second)
				if c.spot {
					md.setSpot(&agent.SpotNotice{Action: "terminate", Time: time.Now().Add(2 * time.Minute)})
				} else {
					md.setTarget("Terminated")
					asg.setState("Terminating:Wait")
				}
				if c.groupDeregAt > 0 {
					time.Sleep(c.groupDeregAt - time.Since(t0))
					b.groupDeregister()
				}
				time.Sleep(5*time.Minute - time.Since(t0))
				synctest.Wait()
				if got := b.calls(); !reflect.DeepEqual(got, c.wantOps) {
					t.Errorf("balancer calls %q, want %q", got, c.wantOps)
				}
				if got := startOffsets(t0, steps.Calls()); !reflect.DeepEqual(got, []time.Duration{c.wantStepAt}) {
					t.Errorf("the user's step started at %v, want %v", got, c.wantStepAt)
				}
				_ = r.stop()
			})
		})
	}
}

func TestTrafficNeedsItsDeps(t *testing.T) {
	cfg := trafficConfig(t, config.TrafficAuto)
	_, err := agent.New(cfg, agent.Deps{Metadata: &fakeMetadata{}, Group: &fakeGroup{t: t}, Completer: noCalls(t)}, nil)
	if err == nil {
		t.Fatal("New without traffic deps = nil error")
	}
	for _, want := range []string{"Registrars[target-group]", "mode auto needs deps.Traffic.Attachments"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New = %v; want it to name %s", err, want)
		}
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub))
}

// TestTrafficStepResumes stops an agent while it waits for the drain and
// starts another on the same journal: the built-in step runs again from
// its start (deregistering again is harmless), the user's step runs once,
// after the drain, and the action is completed once.
func TestTrafficStepResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		cfg := trafficConfig(t, config.TrafficSelf)
		cfg.Terminate.Steps = []config.Step{step("flush")}
		b := newBalancer(t, 0, 40*time.Second)
		if err := b.Register(t.Context(), instanceID, lb.Target{}); err != nil {
			t.Fatal(err)
		}
		md := &fakeMetadata{target: "Terminated"}
		asg := &fakeGroup{t: t, state: "Terminating:Wait", hooks: []lifecycle.Hook{terminateHook("drain", time.Hour)}}
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: time.Second}}}
		first := okCompleter(t)
		r1 := start(t, newAgent(t, cfg, agent.Deps{Metadata: md, Group: asg, Completer: first, Steps: steps, Traffic: trafficDeps(t, b)}))
		time.Sleep(10 * time.Second)
		if err := r1.stop(); err != nil {
			t.Fatalf("first Run = %v", err)
		}
		second := okCompleter(t)
		r2 := start(t, newAgent(t, cfg, agent.Deps{Metadata: md, Group: asg, Completer: second, Steps: steps, Traffic: trafficDeps(t, b)}))
		<-r2.done
		if got, want := b.calls(), []string{"register@0s", "deregister@0s", "deregister@10s"}; !reflect.DeepEqual(got, want) {
			t.Errorf("balancer calls %q, want %q", got, want)
		}
		if got := startOffsets(t0, steps.Calls()); !reflect.DeepEqual(got, []time.Duration{40 * time.Second}) {
			t.Errorf("the user's step started at %v, want once at 40s, when drained", got)
		}
		if n := len(first.Completions()); n != 0 {
			t.Errorf("the first agent completed %d times, want 0", n)
		}
		if comps := second.Completions(); len(comps) != 1 || comps[0].Result != lifecycle.Continue {
			t.Errorf("the second agent's completions %+v, want one CONTINUE", comps)
		}
	})
}

// handOffFirst is a balancer that notes whether leadership had been handed
// off (the lease released) when it was asked to deregister.
type handOffFirst struct {
	*fakeBalancer
	store    *leasetest.Store
	mu       sync.Mutex
	released []bool
}

func (h *handOffFirst) Deregister(ctx context.Context, inst string, t lb.Target) error {
	h.mu.Lock()
	h.released = append(h.released, h.store.Peek(groupName).Released)
	h.mu.Unlock()
	return h.fakeBalancer.Deregister(ctx, inst, t)
}

// TestTrafficStepAfterHandOff: with leader election on, the terminate plan
// hands leadership off, then deregisters and drains, then runs the user's
// steps.
func TestTrafficStepAfterHandOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		cfg := leaderConfig(t)
		cfg.Leader.Tag.Enabled = false
		tc := trafficConfig(t, config.TrafficSelf).Traffic
		cfg.Traffic = tc
		cfg.Terminate.Steps = []config.Step{step("flush")}
		store := &leasetest.Store{}
		b := &handOffFirst{fakeBalancer: newBalancer(t, 0, 20*time.Second), store: store}
		if err := b.Register(t.Context(), instanceID, lb.Target{}); err != nil {
			t.Fatal(err)
		}
		md := &fakeMetadata{target: "InService"}
		asg := &fakeGroup{t: t, state: "InService", hooks: []lifecycle.Hook{terminateHook("bye", 10*time.Minute)}}
		steps := &lifecycletest.StepRunner{T: t, Steps: map[string]lifecycletest.Behavior{"flush": {Duration: time.Second}}}
		r := start(t, newAgent(t, cfg, agent.Deps{Metadata: md, Group: asg, Completer: okCompleter(t), Steps: steps,
			Leader:  agent.LeaderDeps{Store: store, Roster: store},
			Traffic: agent.TrafficDeps{Registrars: map[lb.Kind]lb.Registrar{lb.KindTargetGroup: b}}}))
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if rec := store.Peek(groupName); rec.Holder != instanceID || rec.Released {
			t.Fatalf("lease record %+v; want held by %s", rec, instanceID)
		}
		md.setTarget("Terminated")
		asg.setState("Terminating:Wait")
		<-r.done
		b.mu.Lock()
		released := append([]bool{}, b.released...)
		b.mu.Unlock()
		if !reflect.DeepEqual(released, []bool{true}) {
			t.Errorf("deregistered %d times, with the lease released %v; want once, after the hand-off", len(released), released)
		}
		if got := startOffsets(t0, steps.Calls()); len(got) != 1 || got[0] < 23*time.Second {
			t.Errorf("the user's step started at %v, want once, after the 20 s drain that followed the hand-off", got)
		}
	})
}
