package systest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Short timings, so that fail-overs take seconds: a 3 s lease renewed
// every 500 ms (margin 1 s), followers reading every 500 ms, leader-only
// work given 300 ms between SIGTERM and SIGKILL. The defaults (10 s, 2 s,
// 1 s) behave the same, four times slower.
const (
	testLease = 3 * time.Second
	testPoll  = 500 * time.Millisecond
)

// leaderSections is the agent configuration of the leader scenarios: lease
// mode in table leases, the seed's marker path under the instance's root
// (the sandbox's instances share the host's /var), a job every second
// that logs its start and end (also when stopped), and a terminate step
// that records what `lifeguard leader status` says when it runs.
func leaderSections(bin string) string {
	job := `trap 'echo end \$(date +%s%N) \$LIFEGUARD_SCHEDULED_TIME \$LIFEGUARD_FENCING_TOKEN >> $PWD/job.log; exit 143' TERM; ` +
		`echo start \$(date +%s%N) \$LIFEGUARD_SCHEDULED_TIME \$LIFEGUARD_FENCING_TOKEN >> $PWD/job.log; sleep 0.2; ` +
		`echo end \$(date +%s%N) \$LIFEGUARD_SCHEDULED_TIME \$LIFEGUARD_FENCING_TOKEN >> $PWD/job.log`
	step := `date +%s%N > $PWD/step-started; ` + bin + ` leader status --config $PWD/agent.yaml > $PWD/step-status.txt; ` +
		`echo exit=\$? >> $PWD/step-status.txt; test -e $PWD/root/var/app/leader/leader-manager-is-leader && echo marker >> $PWD/step-status.txt; true`
	return `leader:
  mode: lease
  table: leases
  lease_duration: 3s
  renew_interval: 500ms
  poll_interval: 500ms
  stop_grace: 300ms
  marker_file: $PWD/root/var/app/leader/leader-manager-is-leader
  jobs:
    - name: tick
      schedule: "@every 1s"
      command: ["sh", "-c", "` + job + `"]
terminate:
  steps:
    - name: after-hand-off
      command: ["sh", "-c", "` + step + `"]
      timeout: 30s
`
}

// leaseItem is the group's lease record as the table holds it.
type leaseItem struct {
	at       time.Time
	holder   string
	token    uint64
	released bool
	version  string
}

// leaseWatch reads the lease record every 20 ms and keeps every version
// seen, with when it was first seen.
type leaseWatch struct {
	mu    sync.Mutex
	seen  []leaseItem
	stop  context.CancelFunc
	done  chan struct{}
	db    *dynamodb.Client
	group string
}

func watchLease(t *testing.T, cfg aws.Config, group string) *leaseWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &leaseWatch{stop: cancel, done: make(chan struct{}), db: dynamodb.NewFromConfig(cfg), group: group}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			if it, ok := w.read(ctx); ok {
				w.mu.Lock()
				if n := len(w.seen); n == 0 || w.seen[n-1].version != it.version {
					w.seen = append(w.seen, it)
				}
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond): // sampling the table, not waiting for an event
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

func (w *leaseWatch) read(ctx context.Context) (leaseItem, bool) {
	out, err := w.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String("leases"), ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: w.group}, "sk": &ddbtypes.AttributeValueMemberS{Value: "lease"}},
	})
	if err != nil || len(out.Item) == 0 {
		return leaseItem{}, false
	}
	it := leaseItem{at: time.Now()}
	if v, ok := out.Item["holder"].(*ddbtypes.AttributeValueMemberS); ok {
		it.holder = v.Value
	}
	if v, ok := out.Item["token"].(*ddbtypes.AttributeValueMemberN); ok {
		it.token, _ = strconv.ParseUint(v.Value, 10, 64)
	}
	if v, ok := out.Item["released"].(*ddbtypes.AttributeValueMemberBOOL); ok {
		it.released = v.Value
	}
	if v, ok := out.Item["version"].(*ddbtypes.AttributeValueMemberS); ok {
		it.version = v.Value
	}
	return it, true
}

// waitHeld waits until the record is held (not released) with a token
// above after, and returns the first version that showed it.
func (w *leaseWatch) waitHeld(t *testing.T, after uint64) leaseItem {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		for _, it := range w.seen {
			if it.token > after && !it.released {
				w.mu.Unlock()
				return it
			}
		}
		w.mu.Unlock()
		time.Sleep(20 * time.Millisecond) // polling the watch's samples
	}
	t.Fatalf("no holder with a token above %d within 60 s", after)
	return leaseItem{}
}

// firstReleased returns when the record was first seen released with token.
func (w *leaseWatch) firstReleased(token uint64) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, it := range w.seen {
		if it.token == token && it.released {
			return it.at, true
		}
	}
	return time.Time{}, false
}

// agentLeader asks an instance's agent GET /leader.
func agentLeader(t *testing.T, dir string) (leading bool, holder string, token uint64, known bool) {
	t.Helper()
	addr, err := os.ReadFile(filepath.Join(dir, "journal", "status-address"))
	if err != nil {
		return false, "", 0, false
	}
	resp, err := http.Get("http://" + strings.TrimSpace(string(addr)) + "/leader")
	if err != nil {
		return false, "", 0, false
	}
	defer resp.Body.Close()
	var d struct {
		Leading bool   `json:"leading"`
		Holder  string `json:"holder"`
		Token   uint64 `json:"token"`
		Known   bool   `json:"known"`
	}
	if json.NewDecoder(resp.Body).Decode(&d) != nil {
		return false, "", 0, false
	}
	return d.Leading, d.Holder, d.Token, d.Known
}

// runIn runs the built binary in dir and returns its stdout, stderr and exit code.
func runIn(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(lifeguardBinary(t), args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("lifeguard %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// jobRun is one run of the tick job as its log shows it.
type jobRun struct {
	instance   string
	slot       string
	token      uint64
	start, end time.Time // end is zero when the run never ended (its instance died)
}

func jobRuns(t *testing.T, dirs map[string]string) []jobRun {
	t.Helper()
	var runs []jobRun
	for id, dir := range dirs {
		b, _ := os.ReadFile(filepath.Join(dir, "job.log"))
		open := map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Fields(line)
			if len(f) != 4 {
				continue
			}
			ns, _ := strconv.ParseInt(f[1], 10, 64)
			tok, _ := strconv.ParseUint(f[3], 10, 64)
			switch f[0] {
			case "start":
				open[f[2]] = len(runs)
				runs = append(runs, jobRun{instance: id, slot: f[2], token: tok, start: time.Unix(0, ns)})
			case "end":
				if i, ok := open[f[2]]; ok {
					runs[i].end = time.Unix(0, ns)
				}
			}
		}
	}
	slices.SortFunc(runs, func(a, b jobRun) int { return a.start.Compare(b.start) })
	return runs
}

// TestLeaderElection runs four instances whose agents elect a leader by
// lease in the sandbox's DynamoDB, and takes the group through a crash of
// the leader's agent, a scale-in of the next leader and a network cut of
// the third, checking at each step that exactly one instance acts.
func TestLeaderElection(t *testing.T) {
	sb := startSandbox(t, "--relax-limits")
	dumpConsolesOnFailure(t, sb.stateDir)
	ev := followEvents(t, sb.endpoint)
	cfg := sdkConfig(t, sb.endpoint)
	c := newClients(cfg)
	ctx := context.Background()
	bin := lifeguardBinary(t)

	// create-table is idempotent: twice.
	for range 2 {
		if out, errOut, code := runIn(t, t.TempDir(), "leader", "create-table", "--table", "leases"); code != 0 || !strings.Contains(out, "ACTIVE") {
			t.Fatalf("leader create-table = %d %q %q", code, out, errOut)
		}
	}
	launchConfig(t, c, "lc", agentScript(bin, leaderSections(bin), execAgent))
	if _, err := c.asg.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("web"), LaunchConfigurationName: aws.String("lc"),
		MinSize: aws.Int32(0), MaxSize: aws.Int32(5), DesiredCapacity: aws.Int32(4), AvailabilityZones: []string{"us-east-1a"},
		LifecycleHookSpecificationList: []astypes.LifecycleHookSpecification{terminateHookSpec(terminateHook, 30)},
	}); err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{} // the instances whose agents run
	for range 4 {
		id := ev.waitFor(t, "an instance in service", stateIs("", "InService")).Instance
		dirs[id] = filepath.Join(sb.stateDir, "instances", id)
	}
	allDirs := maps.Clone(dirs)
	lw := watchLease(t, cfg, "web")

	// Exactly one leader: the table, every agent and the marker agree.
	first := lw.waitHeld(t, 0)
	leader := first.holder
	agree := func(holder string, token uint64, skip ...string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var bad []string
			for id, dir := range dirs {
				if slices.Contains(skip, id) {
					continue
				}
				leading, h, tok, known := agentLeader(t, dir)
				if !known || h != holder || tok != token || leading != (id == holder) {
					bad = append(bad, fmt.Sprintf("%s: leading=%t holder=%s token=%d known=%t", id, leading, h, tok, known))
				}
			}
			if len(bad) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("agents do not agree on holder %s token %d: %v", holder, token, bad)
			}
			time.Sleep(50 * time.Millisecond) // polling the agents' status servers
		}
	}
	agree(leader, first.token)
	t.Logf("first leader %s, token %d", leader, first.token)

	// The seed's cron line (its path under the instance's root) and the
	// status command, on every instance.
	for id, dir := range dirs {
		marker := filepath.Join(dir, "root", "var", "app", "leader", "leader-manager-is-leader")
		out, _ := exec.Command("sh", "-c", "test -e "+marker+" && echo leader").Output()
		if got, want := strings.TrimSpace(string(out)), map[bool]string{true: "leader", false: ""}[id == leader]; got != want {
			t.Errorf("cron line on %s printed %q, want %q", id, got, want)
		}
		_, _, code := runIn(t, dir, "leader", "status", "--config", filepath.Join(dir, "agent.yaml"))
		if want := map[bool]int{true: 0, false: 1}[id == leader]; code != want {
			t.Errorf("leader status on %s exited %d, want %d", id, code, want)
		}
	}
	out, _, _ := runIn(t, dirs[leader], "leader", "status", "--all", "-o", "json", "--config", filepath.Join(dirs[leader], "agent.yaml"))
	var all struct {
		Leading bool
		Members []struct{ Instance string }
	}
	if err := json.Unmarshal([]byte(out), &all); err != nil || !all.Leading || len(all.Members) != 4 {
		t.Errorf("leader status --all -o json = %s (%v); want leading with 4 live members", out, err)
	}

	// run --leader-only runs on the leader only, with its token.
	for id, dir := range dirs {
		_, errOut, code := runIn(t, dir, "run", "--leader-only", "--config", filepath.Join(dir, "agent.yaml"), "--",
			"sh", "-c", `echo "$LIFEGUARD_FENCING_TOKEN $LIFEGUARD_LEASE_DEADLINE" > ran.txt; exit 3`)
		b, err := os.ReadFile(filepath.Join(dir, "ran.txt"))
		switch {
		case id == leader && (code != 3 || err != nil || !strings.HasPrefix(string(b), strconv.FormatUint(first.token, 10)+" ")):
			t.Errorf("run --leader-only on the leader: exit %d (want the command's 3), ran.txt %q %v; stderr %s", code, b, err, errOut)
		case id != leader && (code != 0 || err == nil || !strings.Contains(errOut, "does not lead")):
			t.Errorf("run --leader-only on follower %s: exit %d, ran: %v; want exit 0 without running (stderr %q)", id, code, err == nil, errOut)
		}
	}

	// A long leader-only command on the leader, to be stopped when its
	// agent dies.
	long := exec.Command(bin, "run", "--leader-only", "--config", filepath.Join(dirs[leader], "agent.yaml"), "--", "sleep", "300")
	long.Dir = dirs[leader]
	if err := long.Start(); err != nil {
		t.Fatal(err)
	}
	longDone := make(chan error, 1)
	go func() { longDone <- long.Wait() }()
	time.Sleep(3 * time.Second) // let the job run a few slots under the first leader

	// kill -9 of the leader's agent, not restarted: one new leader within
	// lease + one poll.
	pid := pidOfProcessIn(t, dirs[leader])
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	second := lw.waitHeld(t, first.token)
	gap := second.at.Sub(killed)
	t.Logf("crash fail-over: %s took over from %s (token %d → %d) %v after the kill -9 (lease %v, poll %v)", second.holder, leader, first.token, second.token, gap.Round(time.Millisecond), testLease, testPoll)
	if second.holder == leader || gap > testLease+testPoll+time.Second {
		t.Errorf("new holder %s after %v; want another instance within lease + poll (%v, +1 s for the sampling and the write)", second.holder, gap, testLease+testPoll)
	}
	select {
	case err := <-longDone:
		t.Logf("run --leader-only on the crashed leader ended: %v", err)
		if code := long.ProcessState.ExitCode(); code == 0 {
			t.Errorf("run --leader-only on the crashed leader exited 0; want the stopped command's status")
		}
	case <-time.After(10 * time.Second):
		_ = long.Process.Kill()
		<-longDone
		t.Errorf("run --leader-only went on for 10 s after its agent was killed")
	}
	crashed := leader
	agree(second.holder, second.token, crashed)
	time.Sleep(3 * time.Second) // a few slots under the second leader

	// Scale-in of the leader: the hand-off comes before its own step.
	leader = second.holder
	if _, err := c.asg.TerminateInstanceInAutoScalingGroup(ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{
		InstanceId: aws.String(leader), ShouldDecrementDesiredCapacity: aws.Bool(true),
	}); err != nil {
		t.Fatal(err)
	}
	third := lw.waitHeld(t, second.token)
	ev.waitFor(t, leader+" terminated", stateIs(leader, "Terminated"))
	status := string(waitFile(t, filepath.Join(dirs[leader], "step-status.txt")))
	if !strings.Contains(status, "exit=1") || strings.Contains(status, "marker") || strings.Contains(status, "this:      leading") {
		t.Errorf("at its first terminate step the old leader said:\n%s\nwant not leading (exit 1) and no marker", status)
	}
	released, ok := lw.firstReleased(second.token)
	startedNS, _ := strconv.ParseInt(strings.TrimSpace(string(waitFile(t, filepath.Join(dirs[leader], "step-started")))), 10, 64)
	if !ok || third.holder == leader {
		t.Errorf("lease after the scale-in: released seen %t, new holder %s; want a release, then another holder", ok, third.holder)
	} else {
		t.Logf("hand-off: released (token %d) seen %v before %s held it (token %d); the user's step started %v after the release was seen",
			second.token, third.at.Sub(released).Round(time.Millisecond), third.holder, third.token, time.Unix(0, startedNS).Sub(released).Round(time.Millisecond))
		if gap := third.at.Sub(released); gap > 2*testPoll+500*time.Millisecond {
			t.Errorf("hand-off gap %v; want about one poll (%v)", gap, testPoll)
		}
	}
	delete(dirs, leader)
	agree(third.holder, third.token, crashed)
	time.Sleep(3 * time.Second)

	// A network cut of the leader: its job stops before the next leader's
	// starts.
	leader = third.holder
	admin(t, sb.endpoint, "/_sandbox/faults", map[string]any{"instance": leader, "cut": true})
	fourth := lw.waitHeld(t, third.token)
	t.Logf("network cut: %s took over from %s (token %d) %v after its last renewal was seen", fourth.holder, leader, fourth.token, fourth.at.Sub(lastSeen(lw, third.token)).Round(time.Millisecond))
	time.Sleep(3 * time.Second)
	clearFaults(t, sb.endpoint, leader)

	// Every slot ran once, with the token of its leader; no two runs
	// overlapped, and each leader's runs ended before the next one's began.
	runs := jobRuns(t, allDirs)
	slots := map[string]string{}
	tokens := map[uint64]bool{}
	for i, r := range runs {
		if prev, dup := slots[r.slot]; dup {
			t.Errorf("slot %s ran twice: on %s and %s", r.slot, prev, r.instance)
		}
		slots[r.slot] = r.instance
		tokens[r.token] = true
		if i > 0 && runs[i-1].token > r.token {
			t.Errorf("run of slot %s with token %d started after one with token %d", r.slot, r.token, runs[i-1].token)
		}
		if i > 0 && runs[i-1].token != r.token && runs[i-1].instance != crashed && (runs[i-1].end.IsZero() || runs[i-1].end.After(r.start)) {
			t.Errorf("leader change: run of slot %s (token %d) ended at %v, after the next leader's run (token %d) started at %v",
				runs[i-1].slot, runs[i-1].token, runs[i-1].end, r.token, r.start)
		}
	}
	for _, tok := range []uint64{first.token, second.token, third.token, fourth.token} {
		if !tokens[tok] {
			t.Errorf("no run of the job with token %d; want runs under every leader", tok)
		}
	}
	t.Logf("%d runs of the job, %d slots, tokens %v", len(runs), len(slots), slices.Sorted(maps.Keys(tokens)))

	// The ledger has the same story: lifeguard leader history.
	out, errOut, code := runIn(t, dirs[fourth.holder], "leader", "history", "--config", filepath.Join(dirs[fourth.holder], "agent.yaml"), "-n", "200", "-o", "json")
	var hist []struct {
		Slot     time.Time
		Instance string
		Token    uint64
		Outcome  string
	}
	if err := json.Unmarshal([]byte(out), &hist); err != nil || code != 0 {
		t.Fatalf("leader history = %d %s %s (%v)", code, out, errOut, err)
	}
	for _, r := range runs {
		found := false
		for _, h := range hist {
			if h.Slot.UTC().Format(time.RFC3339Nano) == r.slot {
				found = h.Instance == r.instance && h.Token == r.token
			}
		}
		if !found {
			t.Errorf("run of slot %s on %s (token %d) is not in the ledger as such", r.slot, r.instance, r.token)
		}
	}
}

// lastSeen returns when the last version held with token was first seen.
func lastSeen(w *leaseWatch, token uint64) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var at time.Time
	for _, it := range w.seen {
		if it.token == token && !it.released {
			at = it.at
		}
	}
	return at
}
