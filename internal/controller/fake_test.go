package controller_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/controller"
	"github.com/lifeguardhq/lifeguard/internal/lease"
)

// cloud is a fake of Auto Scaling, EC2 and the lease table's presence
// items, enough for the controller. It fails the test on anything it
// does not model.
type cloud struct {
	t  *testing.T
	mu sync.Mutex

	groups    map[string]*fgroup
	insts     map[string]*finst
	presence  map[string][]lease.Member
	completed []string // "group/instance/state/result"
	writes    []string // "set i-1=true", "del i-1"

	// failDelete and failSet make DeleteTag and SetTag fail for that
	// instance.
	failDelete, failSet map[string]bool
	// inFlight counts reconciles reading a group at once (max kept).
	inFlight, maxInFlight map[string]int
	// live is the leader key's live holders after each write, for
	// checking windows: the most seen and whether zero was seen after
	// one had been.
	maxLive  int
	zeroSeen bool
	hadOne   bool
}

type fgroup struct {
	tags    map[string]string
	members []string
}

type finst struct {
	group, state, health string
	running              bool
	launched             time.Time
	tags                 map[string]string
	// notFound is how many more tag writes fail with
	// InvalidInstanceID.NotFound (and DescribeInstances leaves it out while
	// hidden).
	notFound int
	hidden   bool
}

func newCloud(t *testing.T) *cloud {
	return &cloud{t: t, groups: map[string]*fgroup{}, insts: map[string]*finst{}, presence: map[string][]lease.Member{},
		failDelete: map[string]bool{}, failSet: map[string]bool{}, inFlight: map[string]int{}, maxInFlight: map[string]int{}}
}

func (c *cloud) addGroup(name string, optIn bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tags := map[string]string{}
	if optIn {
		tags[controller.DefaultOptInKey] = controller.DefaultOptInValue
	}
	c.groups[name] = &fgroup{tags: tags}
}

func (c *cloud) launch(group, id, state string, age time.Duration) *finst {
	c.mu.Lock()
	defer c.mu.Unlock()
	in := &finst{group: group, state: state, health: "Healthy", running: true, launched: time.Now().Add(-age), tags: map[string]string{"aws:autoscaling:groupName": group}}
	c.insts[id] = in
	g := c.groups[group]
	g.members = append(g.members, id)
	return in
}

func (c *cloud) setState(id, state string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.insts[id].state = state
}

func (c *cloud) setHealth(id, h string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.insts[id].health = h
}

func (c *cloud) Groups(ctx context.Context, names []string, key, value string) ([]controller.Group, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []controller.Group
	for _, n := range slices.Sorted(maps.Keys(c.groups)) {
		g := c.groups[n]
		if len(names) > 0 && !slices.Contains(names, n) || len(names) == 0 && g.tags[key] != value {
			continue
		}
		if len(names) > 0 {
			c.inFlight[n]++
			c.maxInFlight[n] = max(c.maxInFlight[n], c.inFlight[n])
		}
		cg := controller.Group{Name: n, Tags: maps.Clone(g.tags)}
		for _, id := range g.members {
			in := c.insts[id]
			if in.state == "Terminated" {
				continue
			}
			cg.Members = append(cg.Members, controller.GroupMember{ID: id, LifecycleState: in.state, Health: in.health})
		}
		out = append(out, cg)
	}
	if len(names) > 0 {
		// Let another reconcile of the group run now, if it could.
		c.mu.Unlock()
		time.Sleep(time.Millisecond)
		c.mu.Lock()
		for _, g := range out {
			c.inFlight[g.Name]--
		}
	}
	return out, nil
}

func (c *cloud) Instances(ctx context.Context, group string) ([]controller.Instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []controller.Instance
	for _, id := range slices.Sorted(maps.Keys(c.insts)) {
		in := c.insts[id]
		if in.group != group || in.hidden {
			continue
		}
		out = append(out, controller.Instance{ID: id, Running: in.running && in.state != "Terminated", Launched: in.launched, Tags: maps.Clone(in.tags)})
	}
	return out, nil
}

func (c *cloud) SetTag(ctx context.Context, id, key, value string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	in, ok := c.insts[id]
	if !ok {
		c.t.Errorf("SetTag on %s, which never existed", id)
		return fmt.Errorf("no such instance %s", id)
	}
	if in.notFound > 0 {
		in.notFound--
		return fmt.Errorf("create tags on %s: InvalidInstanceID.NotFound: %w", id, controller.ErrInstanceNotFound)
	}
	if c.failSet[id] {
		return fmt.Errorf("create tags on %s: RequestLimitExceeded", id)
	}
	in.tags[key] = value
	c.writes = append(c.writes, "set "+id+"="+value)
	c.checkLocked(key)
	return nil
}

func (c *cloud) DeleteTag(ctx context.Context, id, key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failDelete[id] {
		return fmt.Errorf("delete tags on %s: RequestLimitExceeded", id)
	}
	delete(c.insts[id].tags, key)
	c.writes = append(c.writes, "del "+id)
	c.checkLocked(key)
	return nil
}

// checkLocked counts the live holders of the leader tag (value "true"):
// instances whose agent acts on it.
func (c *cloud) checkLocked(key string) {
	n := 0
	for _, in := range c.insts {
		if in.tags[key] == "true" && in.running && (in.state == "InService" || in.state == "Standby" || in.state == "Pending:Wait" || in.state == "Pending:Proceed" || in.state == "Pending") {
			n++
		}
	}
	c.maxLive = max(c.maxLive, n)
	if n > 0 {
		c.hadOne = true
	} else if c.hadOne {
		c.zeroSeen = true
	}
}

func (c *cloud) CompleteWaiting(ctx context.Context, group, id, state, result string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.completed = append(c.completed, group+"/"+id+"/"+state+"/"+result)
	in := c.insts[id]
	switch {
	case state == "Pending:Wait" && result == "CONTINUE":
		in.state = "InService"
	case state == "Pending:Wait":
		in.state = "Terminating"
	default:
		in.state = "Terminated"
		in.running = false
	}
	return nil
}

func (c *cloud) Members(ctx context.Context, group string) ([]lease.Member, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.presence[group]), nil
}

func (c *cloud) announce(group, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ms := slices.DeleteFunc(c.presence[group], func(m lease.Member) bool { return m.Instance == id })
	c.presence[group] = append(ms, lease.Member{Instance: id, Renewed: time.Now()})
}

// holders returns the instances of group holding key=true.
func (c *cloud) holders(group string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, id := range slices.Sorted(maps.Keys(c.insts)) {
		in := c.insts[id]
		if in.group == group && in.tags[controller.DefaultLeaderKey] == "true" {
			out = append(out, id)
		}
	}
	return out
}

func (c *cloud) takeWrites() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.writes
	c.writes = nil
	return w
}
