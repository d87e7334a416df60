package systest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
)

// TestLeaderQuickRestart kills the leader's agent with SIGKILL and lets
// the instance's user data start it again at once, well within the lease:
// the restarted agent starts as a follower (leadership is never inherited
// from the record, only acquired in the process), so it never acts beside
// the new holder, and it leaves the expired lease to its peers for two
// polls, so one of them is the new holder. It checks the marker, GET
// /leader, the lease record (no renewal of the old token after the
// restart) and the job's runs.
func TestLeaderQuickRestart(t *testing.T) {
	sb := startSandbox(t, "--relax-limits")
	dumpConsolesOnFailure(t, sb.stateDir)
	ev := followEvents(t, sb.endpoint)
	cfg := sdkConfig(t, sb.endpoint)
	c := newClients(cfg)
	ctx := context.Background()
	bin := lifeguardBinary(t)

	if out, errOut, code := runIn(t, t.TempDir(), "leader", "create-table", "--table", "leases"); code != 0 {
		t.Fatalf("leader create-table = %d %q %q", code, out, errOut)
	}
	// The agent runs twice in a row: a SIGKILL of the first starts the
	// second at once, on the same instance, journal and marker path.
	run := "BIN agent --config agent.yaml; echo restarted; exec BIN agent --config agent.yaml"
	launchConfig(t, c, "lc", agentScript(bin, leaderSections(bin), run))
	if _, err := c.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("web"), LaunchConfigurationName: aws.String("lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(3), DesiredCapacity: aws.Int32(3), AvailabilityZones: []string{"us-east-1a"},
	}); err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{}
	for range 3 {
		id := ev.waitFor(t, "an instance in service", stateIs("", "InService")).Instance
		dirs[id] = filepath.Join(sb.stateDir, "instances", id)
	}
	lw := watchLease(t, cfg, "web")
	first := lw.waitHeld(t, 0)
	old := first.holder
	dir := dirs[old]
	marker := filepath.Join(dir, "root", "var", "app", "leader", "leader-manager-is-leader")
	waitFile(t, marker)
	time.Sleep(2 * time.Second) // a few slots of the job under the first leader

	pid := pidOfProcessIn(t, dir)
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The second agent starts at once; find it.
	var restarted time.Time
	for deadline := time.Now().Add(10 * time.Second); ; {
		if p := pidOfProcessIn(t, dir); p != 0 && p != pid {
			restarted = time.Now()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent was not restarted within 10 s of the kill")
		}
		time.Sleep(10 * time.Millisecond) // polling /proc for the new agent
	}
	t.Logf("agent on %s (leader, token %d) killed; restarted %v later", old, first.token, restarted.Sub(killed).Round(time.Millisecond))

	// From the restart until a new holder is seen, and for two leases
	// after, the restarted agent never says it leads, and once it has
	// observed the lease its marker is gone.
	var markerGone time.Time
	var next leaseItem
	var sawNext bool
	var end time.Time
	for end.IsZero() || time.Now().Before(end) {
		leading, holder, token, known := agentLeader(t, dir)
		if leading {
			t.Fatalf("restarted agent on %s says it leads (holder %s, token %d) %v after the restart", old, holder, token, time.Since(restarted).Round(time.Millisecond))
		}
		_, err := os.Stat(marker)
		switch {
		case err == nil && !markerGone.IsZero():
			t.Fatalf("marker reappeared on %s %v after the restart", old, time.Since(restarted).Round(time.Millisecond))
		case err != nil && markerGone.IsZero():
			markerGone = time.Now()
		}
		if !sawNext {
			if it, ok := firstHeldAbove(lw, first.token); ok {
				next, sawNext = it, true
				end = time.Now().Add(2 * testLease)
			}
		}
		if sawNext && known && holder == next.holder && err == nil {
			t.Fatalf("restarted agent on %s knows %s holds token %d, but its marker is still there", old, holder, token)
		}
		if time.Since(killed) > 60*time.Second {
			t.Fatal("no new holder within 60 s of the kill")
		}
		time.Sleep(20 * time.Millisecond) // sampling the agent and the marker
	}
	if markerGone.IsZero() || !markerGone.Before(next.at) {
		t.Errorf("stale marker on %s removed at %v, new holder seen at %v; want it removed before another holds", old, markerGone, next.at)
	}
	t.Logf("stale marker removed %v after the restart; %s took over (token %d → %d) %v after the kill",
		markerGone.Sub(restarted).Round(time.Millisecond), next.holder, first.token, next.token, next.at.Sub(killed).Round(time.Millisecond))
	if leading, holder, token, known := agentLeader(t, dir); leading || !known || holder != next.holder || token != next.token {
		t.Errorf("restarted agent on %s: leading=%t holder=%s token=%d known=%t; want a follower of %s (token %d)", old, leading, holder, token, known, next.holder, next.token)
	}
	if _, _, code := runIn(t, dir, "leader", "status", "--config", filepath.Join(dir, "agent.yaml")); code != 1 {
		t.Errorf("leader status on the restarted %s exited %d, want 1 (not leading)", old, code)
	}
	_, errOut, code := runIn(t, dir, "run", "--leader-only", "--config", filepath.Join(dir, "agent.yaml"), "--", "sh", "-c", "touch ran-after-restart")
	if _, err := os.Stat(filepath.Join(dir, "ran-after-restart")); code != 0 || err == nil {
		t.Errorf("run --leader-only on the restarted %s: exit %d, ran %t (stderr %q); want exit 0 without running", old, code, err == nil, errOut)
	}

	// The restarted agent never renewed the old token: every version of
	// the record with it was first seen before the restart (plus one
	// sample, for a renewal in flight at the kill).
	lw.mu.Lock()
	for _, it := range lw.seen {
		if it.token == first.token && !it.released && it.at.After(restarted.Add(100*time.Millisecond)) {
			t.Errorf("lease record written with the old token %d (holder %s) at %v, %v after the restart", it.token, it.holder, it.at, it.at.Sub(restarted))
		}
	}
	lw.mu.Unlock()

	// The job: no run on the restarted instance with the old token after
	// the kill, and no two runs overlap (the run cut by the kill ends at
	// the kill: its process group died with the agent).
	runs := jobRuns(t, dirs)
	for i, r := range runs {
		if r.instance == old && r.token == first.token && r.start.After(killed) {
			t.Errorf("run of slot %s on %s with the old token %d started %v after the kill", r.slot, old, r.token, r.start.Sub(killed))
		}
		end := r.end
		if end.IsZero() && r.instance == old && r.start.Before(killed) {
			end = killed
		}
		if i+1 < len(runs) && (end.IsZero() || end.After(runs[i+1].start)) {
			n := runs[i+1]
			t.Errorf("run of slot %s on %s (token %d, %v–%v) overlaps the run of slot %s on %s (token %d) started %v",
				r.slot, r.instance, r.token, r.start, r.end, n.slot, n.instance, n.token, n.start)
		}
	}
	var after int
	for _, r := range runs {
		if r.start.After(killed) {
			after++
			if r.token != next.token {
				t.Errorf("run of slot %s on %s after the kill has token %d; want the new holder's %d", r.slot, r.instance, r.token, next.token)
			}
		}
	}
	if after == 0 {
		t.Errorf("no run of the job after the fail-over")
	}
	t.Logf("%d runs of the job, %d after the kill", len(runs), after)
	if !strings.Contains(string(mustRead(t, filepath.Join(dir, "console.log"))), "restarted") {
		t.Errorf("the console of %s does not show the restart", old)
	}
}

// firstHeldAbove returns the first version seen held with a token above
// after, if any yet.
func firstHeldAbove(w *leaseWatch, after uint64) (leaseItem, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, it := range w.seen {
		if it.token > after && !it.released {
			return it, true
		}
	}
	return leaseItem{}, false
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
