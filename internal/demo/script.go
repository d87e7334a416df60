package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/loadgen"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/tables"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// stepTimeout bounds each wait of the script: the story is broken, not
// slow, when a step takes longer.
const stepTimeout = 90 * time.Second

// step is one event of the script.
type step struct {
	name string
	run  func(ctx context.Context, d *demo) error
}

// row is a line of the summary table.
type row struct {
	name           string
	took           time.Duration
	served, failed int64
	leader         string
}

var (
	scaleOut = step{"scale out 3 → 4", func(ctx context.Context, d *demo) error {
		before := d.members(webGroup)
		d.printf("SCRIPT  scale out: desired capacity of %s 3 → 4", webGroup)
		if err := d.srv.World().SetDesiredCapacity(webGroup, webSize+1, false); err != nil {
			return err
		}
		return d.waitGroup(ctx, webGroup, "a fourth instance in service", func(v world.GroupView) bool {
			return inService(v) == webSize+1 && len(v.Members) == webSize+1 && !sameIDs(ids(v), before)
		})
	}}
	scaleIn = step{"scale in 4 → 3", func(ctx context.Context, d *demo) error {
		d.printf("SCRIPT  scale in: desired capacity of %s 4 → 3; Auto Scaling picks the instance, its agent drains it", webGroup)
		if err := d.srv.World().SetDesiredCapacity(webGroup, webSize, false); err != nil {
			return err
		}
		return d.waitGroup(ctx, webGroup, "three instances", func(v world.GroupView) bool {
			return len(v.Members) == webSize && inService(v) == webSize
		})
	}}
	scaleInLeader = step{"scale in of the leader", func(ctx context.Context, d *demo) error {
		ld, err := d.waitLeader(ctx, 0)
		if err != nil {
			return err
		}
		d.printf("SCRIPT  scale in of the leader: terminate %s (fencing token %d), decrementing desired capacity", ld.holder, ld.token)
		dec := true
		want := len(d.members(webGroup)) - 1
		if _, err := d.srv.World().TerminateInGroup(ld.holder, &dec); err != nil {
			return err
		}
		if _, err := d.waitLeader(ctx, ld.token); err != nil {
			return err
		}
		return d.waitGroup(ctx, webGroup, "the leader gone", func(v world.GroupView) bool {
			return len(v.Members) == want && inService(v) == want
		})
	}}
	killLeaderAgent = step{"kill -9 of the leader's agent", func(ctx context.Context, d *demo) error {
		ld, err := d.waitLeader(ctx, 0)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(filepath.Join(d.instanceDir(ld.holder), "agent.pid"))
		if err != nil {
			return fmt.Errorf("the agent of %s: %w", ld.holder, err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return fmt.Errorf("the agent of %s: agent.pid: %w", ld.holder, err)
		}
		d.printf("SCRIPT  kill -9 of the leader's agent: SIGKILL to pid %d on %s (token %d); its lease must expire before another takes over", pid, ld.holder, ld.token)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return fmt.Errorf("kill the agent of %s: %w", ld.holder, err)
		}
		next, err := d.waitLeader(ctx, ld.token)
		if err != nil {
			return err
		}
		// The killed agent is started again and comes back as a follower.
		return d.waitFor(ctx, "the killed agent back as a follower", func() bool {
			leading, known := agentLeading(d.instanceDir(ld.holder))
			return known && (!leading || next.holder == ld.holder)
		})
	}}
	spotInterruption = step{"spot interruption", func(ctx context.Context, d *demo) error {
		victim := d.follower(ctx)
		before := d.members(webGroup)
		d.printf("SCRIPT  spot interruption: an 8s notice for %s; its agent deregisters it at once, the group replaces it", victim)
		if err := d.srv.InjectSpot(victim, 8*time.Second); err != nil {
			return err
		}
		return d.waitGroup(ctx, webGroup, "the replacement in service", func(v world.GroupView) bool {
			return !slices.Contains(ids(v), victim) && inService(v) == len(before) && len(v.Members) == len(before)
		})
	}}
	rollingRestart = step{"rolling restart", func(ctx context.Context, d *demo) error {
		old := d.members(webGroup)
		d.printf("SCRIPT  rolling restart: replace the %d instances one at a time (terminate one, wait for its replacement in service and healthy, then the next)", len(old))
		for _, id := range old {
			keep := false
			before := d.members(webGroup)
			d.printf("SCRIPT  rolling restart: terminate %s", id)
			if _, err := d.srv.World().TerminateInGroup(id, &keep); err != nil {
				return err
			}
			if err := d.waitGroup(ctx, webGroup, "a replacement of "+id, func(v world.GroupView) bool {
				return !slices.Contains(ids(v), id) && inService(v) == len(before) && len(v.Members) == len(before)
			}); err != nil {
				return err
			}
		}
		_, err := d.waitLeader(ctx, 0)
		return err
	}}
	terminateTagged = step{"termination of the tagged instance", func(ctx context.Context, d *demo) error {
		old, err := d.waitTagged(ctx, "")
		if err != nil {
			return err
		}
		keep := false
		d.printf("SCRIPT  termination of %s, tagged %s=true in group %s: the controller moves the tag before it goes", old, leaderTagKey, tagGroup)
		if _, err := d.srv.World().TerminateInGroup(old, &keep); err != nil {
			return err
		}
		if err := d.waitGroup(ctx, tagGroup, "the replacement in service", func(v world.GroupView) bool {
			return !slices.Contains(ids(v), old) && inService(v) == tagSize && len(v.Members) == tagSize
		}); err != nil {
			return err
		}
		_, err = d.waitTagged(ctx, old)
		return err
	}}
)

// story builds the groups, waits for them to settle, starts the load and
// runs the steps, each a row of the summary.
func (d *demo) story(ctx, watchCtx context.Context, wg *sync.WaitGroup, p plan) error {
	begin := time.Now()
	if p.tag {
		if err := d.createTag(); err != nil {
			return err
		}
		wg.Go(func() { d.watchTags(watchCtx) })
	}
	if p.web {
		addr, err := d.createWeb()
		if err != nil {
			return err
		}
		d.lbAddr = addr
		wg.Go(func() { d.watchLease(watchCtx) })
		if err := d.waitGroup(ctx, webGroup, "three instances in service", func(v world.GroupView) bool { return inService(v) == webSize }); err != nil {
			return err
		}
		if _, err := d.waitLeader(ctx, 0); err != nil {
			return err
		}
		d.load = loadgen.Start("http://"+addr+"/", webRate)
		wg.Go(func() { d.reportLoad(watchCtx) })
		d.printf("TRAFFIC a client starts sending %d requests/s through the load balancer %s", webRate, addr)
	}
	if p.tag {
		if err := d.waitGroup(ctx, tagGroup, "the seed group in service", func(v world.GroupView) bool { return inService(v) == tagSize }); err != nil {
			return err
		}
		if _, err := d.waitTagged(ctx, ""); err != nil {
			return err
		}
	}
	d.addRow("start: groups in service", time.Since(begin), 0, 0)
	for _, s := range p.steps {
		start := time.Now()
		var served0, failed0 int64
		if d.load != nil {
			served0, failed0 = d.loadCounts()
		}
		if err := s.run(ctx, d); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		var served, failed int64
		if d.load != nil {
			s, f := d.loadCounts()
			served, failed = s-served0, f-failed0
		}
		d.addRow(s.name, time.Since(start), served, failed)
		d.printf("SCRIPT  %s: done in %.1fs", s.name, time.Since(start).Seconds())
	}
	return nil
}

func (d *demo) addRow(name string, took time.Duration, served, failed int64) {
	r := row{name: name, took: took, served: served, failed: failed, leader: "-"}
	if s, ok := d.readLease(); ok && !s.released {
		r.leader = fmt.Sprintf("%s (token %d)", s.holder, s.token)
	}
	if tagged := d.taggedNow(); len(tagged) > 0 {
		if r.leader == "-" {
			r.leader = ""
		} else {
			r.leader += "; "
		}
		r.leader += "tag on " + strings.Join(tagged, ",")
	}
	d.mu.Lock()
	d.rows = append(d.rows, r)
	d.mu.Unlock()
}

// waitGroup waits, on the sandbox's events, until the group satisfies ok.
func (d *demo) waitGroup(ctx context.Context, group, what string, ok func(world.GroupView) bool) error {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	w := d.srv.World()
	var seq int64
	for {
		views, err := w.Groups([]string{group}, nil)
		if err != nil {
			return err
		}
		if len(views) == 1 && ok(views[0]) {
			return nil
		}
		evs, err := w.EventsAfter(ctx, seq)
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		seq = evs[len(evs)-1].Seq
	}
}

// waitFor polls cond (state another process writes: files, an agent's
// status) every 100 ms until it holds.
func (d *demo) waitFor(ctx context.Context, what string, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

func inService(v world.GroupView) int {
	n := 0
	for _, m := range v.Members {
		if m.State == world.StateInService {
			n++
		}
	}
	return n
}

func ids(v world.GroupView) []string {
	var out []string
	for _, m := range v.Members {
		out = append(out, m.ID)
	}
	slices.Sort(out)
	return out
}

func sameIDs(a, b []string) bool { return slices.Equal(a, b) }

// members returns the group's instance ids, sorted.
func (d *demo) members(group string) []string {
	views, err := d.srv.World().Groups([]string{group}, nil)
	if err != nil || len(views) != 1 {
		return nil
	}
	return ids(views[0])
}

func (d *demo) instanceDir(id string) string {
	for _, in := range d.srv.Instances() {
		if in.ID == id {
			return in.Dir
		}
	}
	return ""
}

// follower returns an instance of the web group that is not the leader.
func (d *demo) follower(ctx context.Context) string {
	ld, _ := d.waitLeader(ctx, 0)
	for _, id := range d.members(webGroup) {
		if id != ld.holder {
			return id
		}
	}
	return ld.holder
}

// agentLeading asks the agent of the instance in dir GET /leader.
func agentLeading(dir string) (leading, known bool) {
	addr, err := os.ReadFile(filepath.Join(dir, "journal", "status-address"))
	if err != nil {
		return false, false
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + strings.TrimSpace(string(addr)) + "/leader")
	if err != nil {
		return false, false
	}
	defer resp.Body.Close()
	var s struct {
		Leading bool `json:"leading"`
		Known   bool `json:"known"`
	}
	if json.NewDecoder(resp.Body).Decode(&s) != nil {
		return false, false
	}
	return s.Leading, s.Known
}

// leaseState is the web group's lease record.
type leaseState struct {
	holder   string
	token    uint64
	released bool
}

func (d *demo) readLease() (leaseState, bool) {
	it, _, err := d.srv.Tables().GetItem(tables.GetItemInput{
		Table: leaseTable, ConsistentRead: true,
		Key: tables.Item{"pk": tables.S(webGroup), "sk": tables.S("lease")},
	})
	if err != nil || it == nil {
		return leaseState{}, false
	}
	var s leaseState
	s.holder = it["holder"].Str
	s.token, _ = strconv.ParseUint(it["token"].Str, 10, 64)
	s.released = it["released"].Bool
	return s, true
}

// watchLease prints every change of the lease's holder, token or release,
// reading the table every 100 ms.
func (d *demo) watchLease(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last leaseState
	for {
		if s, ok := d.readLease(); ok && s != last {
			switch {
			case s.released:
				d.printf("LEASE   released by %s (token %d): the next reader may take it at once", s.holder, s.token)
			default:
				d.printf("LEASE   held by %s, fencing token %d", s.holder, s.token)
			}
			last = s
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// waitLeader waits until the lease is held, with a token above after.
func (d *demo) waitLeader(ctx context.Context, after uint64) (leaseState, error) {
	var s leaseState
	err := d.waitFor(ctx, fmt.Sprintf("a leader with a token above %d", after), func() bool {
		var ok bool
		s, ok = d.readLease()
		return ok && !s.released && s.token > after && slices.Contains(d.members(webGroup), s.holder)
	})
	return s, err
}

// taggedNow lists the seed group's running instances tagged
// app:isLeader=true.
func (d *demo) taggedNow() []string {
	insts, err := d.srv.World().EC2().Instances(nil, []world.InstanceFilter{
		{Name: "tag:aws:autoscaling:groupName", Values: []string{tagGroup}},
		{Name: "tag:" + leaderTagKey, Values: []string{"true"}},
		{Name: "instance-state-name", Values: []string{"pending", "running"}},
	})
	if err != nil {
		return nil
	}
	var out []string
	for _, in := range insts {
		out = append(out, in.ID)
	}
	slices.Sort(out)
	return out
}

// watchTags prints every change of the seed group's tagged instances,
// reading them every 100 ms.
func (d *demo) watchTags(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last []string
	marked := map[string]bool{}
	for {
		for _, id := range d.members(tagGroup) {
			fi, err := os.Stat(filepath.Join(d.instanceDir(id), "is-leader"))
			if on := err == nil; on != marked[id] {
				marked[id] = on
				if on {
					d.add(fi.ModTime(), "%s  agent: reads %s=true from instance metadata: marker file is-leader written", id, leaderTagKey)
				} else {
					d.printf("%s  agent: marker file is-leader removed", id)
				}
			}
		}
		if now := d.taggedNow(); !slices.Equal(now, last) {
			if len(now) == 0 {
				d.printf("TAG     no instance of %s tagged %s=true", tagGroup, leaderTagKey)
			} else {
				d.printf("TAG     %s=true on %s (group %s), written by the controller's Lambda function", leaderTagKey, strings.Join(now, ", "), tagGroup)
			}
			last = now
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// waitTagged waits until exactly one in-service instance of the seed
// group other than not is tagged, and its agent says it leads.
func (d *demo) waitTagged(ctx context.Context, not string) (string, error) {
	var id string
	err := d.waitFor(ctx, "exactly one tagged instance in "+tagGroup, func() bool {
		now := d.taggedNow()
		if len(now) != 1 || now[0] == not {
			return false
		}
		views, err := d.srv.World().Groups([]string{tagGroup}, nil)
		if err != nil || len(views) != 1 {
			return false
		}
		for _, m := range views[0].Members {
			if m.ID == now[0] && m.State == world.StateInService {
				leading, known := agentLeading(d.instanceDir(m.ID))
				id = m.ID
				return known && leading
			}
		}
		return false
	})
	return id, err
}

// finalState is what the story ends with.
type finalState struct {
	leader        leaseState
	agentsLeading []string // web agents that say they lead
	webAgents     int
	tagged        []string
}

// finalState waits for the groups to settle and reads who leads: the
// lease, every web agent's own view, the seed group's tag.
func (d *demo) finalState(ctx context.Context, p plan) (finalState, error) {
	var f finalState
	if p.web {
		err := d.waitFor(ctx, "exactly one web agent leading", func() bool {
			s, ok := d.readLease()
			if !ok || s.released {
				return false
			}
			f.leader, f.agentsLeading, f.webAgents = s, nil, 0
			for _, id := range d.members(webGroup) {
				leading, known := agentLeading(d.instanceDir(id))
				if !known {
					return false
				}
				f.webAgents++
				if leading {
					f.agentsLeading = append(f.agentsLeading, id)
				}
			}
			return len(f.agentsLeading) == 1 && f.agentsLeading[0] == s.holder
		})
		if err != nil {
			return f, err
		}
	}
	if p.tag {
		if _, err := d.waitTagged(ctx, ""); err != nil {
			return f, err
		}
		f.tagged = d.taggedNow()
	}
	return f, nil
}

// summary prints the table of steps and what the run counted.
func (d *demo) summary(f finalState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, "\nsummary (%.1fs)\n", time.Since(d.start).Seconds())
	fmt.Fprintf(d.out, "  %-36s %7s %8s %7s  %s\n", "step", "took", "served", "failed", "leader after")
	var served, failed int64
	for _, r := range d.rows {
		fmt.Fprintf(d.out, "  %-36s %6.1fs %8d %7d  %s\n", r.name, r.took.Seconds(), r.served, r.failed, r.leader)
		served += r.served
		failed += r.failed
	}
	if d.load != nil {
		fmt.Fprintf(d.out, "  %-36s %7s %8d %7d\n", "total through the load balancer", "", served, failed)
	}
	fmt.Fprintf(d.out, "  instances launched %d, terminated %d; launches held until healthy %s; terminations held for drain and steps %s; %d heartbeat(s)\n",
		d.launched, d.terminated, spread(d.held), spread(d.drained), d.heartbeats)
	if f.webAgents > 0 {
		fmt.Fprintf(d.out, "  leader at the end: %s, fencing token %d; %d of %d web agents leading\n", f.leader.holder, f.leader.token, len(f.agentsLeading), f.webAgents)
	}
	if f.tagged != nil {
		fmt.Fprintf(d.out, "  %s tagged %s=true at the end: %d (%s); the controller's Lambda function ran %d time(s)\n", tagGroup, leaderTagKey, len(f.tagged), strings.Join(f.tagged, ", "), d.invocations)
	}
}

// spread is "min–max s" of durations, or "-".
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f–%.1fs", slices.Min(ds).Seconds(), slices.Max(ds).Seconds())
}

// keepHelp says how to reach the sandbox left running.
func (d *demo) keepHelp(p plan) {
	e := d.endpoint
	fmt.Fprintf(d.out, "\nThe sandbox keeps running (Ctrl-C to stop). In another terminal:\n  %s\n", d.exports())
	fmt.Fprintf(d.out, "  aws autoscaling describe-auto-scaling-groups --endpoint-url %s\n", e)
	fmt.Fprintf(d.out, "  aws autoscaling describe-scaling-activities --auto-scaling-group-name %s --endpoint-url %s\n", map[bool]string{true: webGroup, false: tagGroup}[p.web], e)
	if p.web {
		fmt.Fprintf(d.out, "  aws dynamodb get-item --table-name %s --key '{\"pk\":{\"S\":\"%s\"},\"sk\":{\"S\":\"lease\"}}' --endpoint-url %s\n", leaseTable, webGroup, e)
		fmt.Fprintf(d.out, "  aws elbv2 describe-target-health --target-group-arn %s --endpoint-url %s\n", d.tgARN, e)
		fmt.Fprintf(d.out, "  aws autoscaling set-desired-capacity --auto-scaling-group-name %s --desired-capacity 4 --endpoint-url %s\n", webGroup, e)
		fmt.Fprintf(d.out, "  while :; do curl -s http://%s/; sleep 0.5; done   # requests through the load balancer\n", d.lbAddr)
	}
	if p.tag {
		fmt.Fprintf(d.out, "  aws ec2 describe-tags --filters Name=key,Values=%s --endpoint-url %s\n", leaderTagKey, e)
		fmt.Fprintf(d.out, "  lifeguard sandbox logs %s --endpoint %s   # what the controller's Lambda function printed\n", controllerFn, e)
	}
	fmt.Fprintf(d.out, "  lifeguard sandbox events --endpoint %s\n", e)
}
