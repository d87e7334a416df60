package instance_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/proc"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/instance"
)

func TestMain(m *testing.M) {
	proc.Main()
	goleak.VerifyTestMain(m)
}

// waitLimit bounds every wait in these tests; nothing should come close.
const waitLimit = 10 * time.Second

const testID = "i-0123456789abcdef0"

// start starts an instance in a fresh directory and stops it when the test
// ends.
func start(t *testing.T, userData []byte, env ...string) (*instance.Process, string) {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	sup := supervisor(t, log)
	p, err := sup.Start(instance.Spec{ID: testID, UserData: userData, Dir: dir, Env: env})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := p.Stop(ctx, time.Second); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return p, dir
}

// supervisor returns a Supervisor closed when the test ends, after the
// test's own cleanups (which stop its instances).
func supervisor(t *testing.T, log *slog.Logger) *instance.Supervisor {
	t.Helper()
	sup := instance.NewSupervisor("", log)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := sup.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return sup
}

// marked lists the processes of the host started with env entry kv.
func marked(t *testing.T, kv string) []int {
	t.Helper()
	all, err := proc.Scan()
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, st := range all {
		if st.Exited() {
			continue
		}
		env, err := proc.Environ(st.PID)
		if err != nil {
			continue
		}
		if slices.Contains(env, kv) {
			out = append(out, st.PID)
		}
	}
	return out
}

// waitUserData waits for the user data to finish.
func waitUserData(t *testing.T, p *instance.Process) {
	t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	select {
	case <-p.UserDataDone():
	case <-p.Exited():
		t.Fatalf("instance exited before its user data finished; console:\n%s", p.Console())
	case <-timer.C:
		t.Fatalf("user data did not finish within %v; console:\n%s", waitLimit, p.Console())
	}
}

// waitFile polls for a file a process writes, up to waitLimit, and returns
// its trimmed content.
func waitFile(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		b, err := os.ReadFile(path)
		if err == nil && bytes.HasSuffix(b, []byte("\n")) {
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not written within %v", path, waitLimit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// inOrder reports whether every want appears in console, each after the
// previous one.
func inOrder(console string, wants ...string) (missing string, ok bool) {
	for _, w := range wants {
		i := strings.Index(console, w)
		if i < 0 {
			return w, false
		}
		console = console[i+len(w):]
	}
	return "", true
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// mimeUserData builds multipart user data as Terraform's cloudinit_config
// and cloud-init's make-mime do; each part is its headers, a blank line
// and its body.
func mimeUserData(parts ...string) []byte {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=\"MIMEBOUNDARY\"\nMIME-Version: 1.0\n\n")
	for _, p := range parts {
		b.WriteString("--MIMEBOUNDARY\n")
		b.WriteString(p)
		b.WriteString("\n")
	}
	b.WriteString("--MIMEBOUNDARY--\n")
	return []byte(b.String())
}

func TestUserDataRunsAsCloudInitWould(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		userData []byte
		env      []string
		// console must hold these, in this order; {dir} and {root} are
		// replaced by the instance's directory and root.
		console []string
		// console must not hold these.
		notConsole []string
		// files under the instance directory and their content.
		files map[string]string
		// modes of some of those files.
		modes map[string]os.FileMode
	}{
		{
			name:     "shell script output appears on the console",
			userData: []byte("#!/bin/sh\necho hello from user data\n"),
			console: []string{
				"lifeguard-sandbox: running user data script (scripts/part-001)",
				"hello from user data",
				"lifeguard-sandbox: user data script exited with status 0 (scripts/part-001)",
				"lifeguard-sandbox: user data finished",
			},
		},
		{
			name:     "script sees the spec's environment, the sandbox root, and runs in its directory",
			userData: []byte("#!/bin/sh\necho \"greeting=$GREETING endpoint=$AWS_ENDPOINT_URL\"\necho \"root=$LIFEGUARD_SANDBOX_ROOT\"\necho \"pwd=$(pwd)\"\necho \"shim=${LIFEGUARD_PROC_ROLE:-unset}\"\nread line || echo stdin is empty\n"),
			env:      []string{"GREETING=hi", "AWS_ENDPOINT_URL=http://127.0.0.1:4566"},
			console: []string{
				"greeting=hi endpoint=http://127.0.0.1:4566",
				"root={root}\n",
				"pwd={dir}\n",
				"shim=unset",
				"stdin is empty",
			},
		},
		{
			name: "cloud-config runs bootcmd, writes files, then runs runcmd in order",
			userData: []byte(`#cloud-config
bootcmd:
  - echo bootcmd ran
write_files:
  - path: /etc/lifeguard/agent.yaml
    content: |
      region: us-east-1
    permissions: '0600'
  - path: /opt/app/blob.bin
    encoding: b64
    content: aGVsbG8gYmFzZTY0
  - path: /opt/app/run.sh
    permissions: 0755
    content: "#!/bin/sh\necho run.sh ran\n"
  - path: /etc/lifeguard/late.conf
    content: deferred
    defer: true
  - path: notes/relative.txt
    content: relative
runcmd:
  - echo "first $(cat $LIFEGUARD_SANDBOX_ROOT/etc/lifeguard/agent.yaml)"
  - [sh, -c, "echo second"]
  - [echo, "it's quoted"]
  - cd /tmp
  - echo "cwd=$(pwd)"
  - $LIFEGUARD_SANDBOX_ROOT/opt/app/run.sh
`),
			console: []string{
				"lifeguard-sandbox: running bootcmd (bootcmd)",
				"bootcmd ran",
				"lifeguard-sandbox: bootcmd exited with status 0 (bootcmd)",
				"lifeguard-sandbox: running write_files\n",
				"wrote /etc/lifeguard/agent.yaml to {root}/etc/lifeguard/agent.yaml",
				"lifeguard-sandbox: running write_files (deferred)",
				"wrote /etc/lifeguard/late.conf",
				"lifeguard-sandbox: running user data script (scripts/runcmd)",
				"first region: us-east-1",
				"second",
				"it's quoted",
				"cwd=/tmp",
				"run.sh ran",
				"lifeguard-sandbox: user data script exited with status 0 (scripts/runcmd)",
			},
			files: map[string]string{
				"root/etc/lifeguard/agent.yaml": "region: us-east-1\n",
				"root/opt/app/blob.bin":         "hello base64",
				"root/etc/lifeguard/late.conf":  "deferred",
				"notes/relative.txt":            "relative",
			},
			modes: map[string]os.FileMode{
				"root/etc/lifeguard/agent.yaml": 0o600,
				"root/opt/app/blob.bin":         0o644,
				"root/opt/app/run.sh":           0o755,
			},
		},
		{
			name:     "gzip-compressed user data is decompressed",
			userData: gz(t, []byte("#!/bin/sh\necho unzipped script ran\n")),
			console:  []string{"unzipped script ran", "user data script exited with status 0"},
		},
		{
			name: "multipart runs shell-script parts, then runcmd",
			userData: mimeUserData(
				"Content-Type: text/cloud-config; charset=\"utf-8\"\nMIME-Version: 1.0\nContent-Transfer-Encoding: 7bit\n\n#cloud-config\nruncmd:\n  - echo from runcmd\n",
				"Content-Type: text/x-shellscript; charset=\"utf-8\"\nMIME-Version: 1.0\nContent-Transfer-Encoding: base64\n\n"+
					"IyEvYmluL3NoCmVjaG8gZnJvbSB0aGUgc2hlbGwgcGFydAo=\n", // #!/bin/sh\necho from the shell part\n
			),
			console: []string{
				"running user data script (scripts/part-002)",
				"from the shell part",
				"running user data script (scripts/runcmd)",
				"from runcmd",
				"user data finished",
			},
		},
		{
			name: "shell-script parts and runcmd run in file-name order",
			userData: mimeUserData(
				"Content-Type: text/x-shellscript\nContent-Disposition: attachment; filename=\"zz-last.sh\"\n\n#!/bin/sh\necho zz-last\n",
				"Content-Type: text/cloud-config\n\n#cloud-config\nruncmd:\n  - echo from runcmd\n",
				"Content-Type: text/x-shellscript\nContent-Disposition: attachment; filename=\"00-first.sh\"\n\n#!/bin/sh\necho 00-first\n",
			),
			console: []string{"00-first", "from runcmd", "zz-last"},
		},
		{
			name: "boothooks run first, with the instance id",
			userData: mimeUserData(
				"Content-Type: text/x-shellscript\n\n#!/bin/sh\necho script\n",
				"Content-Type: text/cloud-boothook\n\n#cloud-boothook\n#!/bin/sh\necho \"boothook for $INSTANCE_ID\"\n",
			),
			console: []string{"running boothook (boothooks/part-002)", "boothook for " + testID, "running user data script (scripts/part-001)", "script"},
		},
		{
			name: "a later cloud-config part replaces an earlier one's keys by default",
			userData: mimeUserData(
				"Content-Type: text/cloud-config\n\n#cloud-config\nruncmd:\n  - echo from part one\n",
				"Content-Type: text/cloud-config\n\n#cloud-config\nruncmd:\n  - echo from part two\n",
			),
			console:    []string{"from part two"},
			notConsole: []string{"from part one"},
		},
		{
			name: "a merge type that appends lists keeps both parts' runcmd",
			userData: mimeUserData(
				"Content-Type: text/cloud-config\n\n#cloud-config\nruncmd:\n  - echo from part one\n",
				"Content-Type: text/cloud-config\nX-Merge-Type: list(append)+dict(recurse_array)+str()\n\n#cloud-config\nruncmd:\n  - echo from part two\n",
			),
			console: []string{"from part one", "from part two"},
		},
		{
			name:     "a failing script is reported and the next stage still runs",
			userData: []byte("#cloud-config\nbootcmd:\n  - echo failing bootcmd\n  - exit 4\nruncmd:\n  - echo runcmd still ran\n  - exit 3\n"),
			console: []string{
				"failing bootcmd",
				"lifeguard-sandbox: bootcmd exited with status 4 (bootcmd)",
				"runcmd still ran",
				"lifeguard-sandbox: user data script exited with status 3 (scripts/runcmd)",
				"lifeguard-sandbox: user data finished",
			},
		},
		{
			name:       "empty user data runs nothing",
			userData:   nil,
			console:    []string{"lifeguard-sandbox: no user data", "lifeguard-sandbox: user data finished"},
			notConsole: []string{"running"},
		},
		{
			name:     "unsupported cloud-config keys are reported and ignored",
			userData: []byte("#cloud-config\npackages: [nginx]\nruncmd:\n  - echo still ran\n"),
			console: []string{
				`lifeguard-sandbox: cloud-config key "packages" is not supported in the sandbox; ignored`,
				"still ran",
			},
		},
		{
			name:       "text that is not a script or cloud-config does not run",
			userData:   []byte("hello, world\necho nope\n"),
			console:    []string{"lifeguard-sandbox: user data is not executable", "user data finished"},
			notConsole: []string{"running", "nope\n"},
		},
		{
			name:     "a script without #! fails as exec does on EC2",
			userData: mimeUserData("Content-Type: text/x-shellscript\n\necho no shebang\n"),
			console:  []string{"user data script could not run: exec format error (scripts/part-001)", "user data finished"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, dir := start(t, tt.userData, tt.env...)
			waitUserData(t, p)
			console := string(p.Console())
			expand := strings.NewReplacer("{dir}", dir, "{root}", p.RootDir())
			want := make([]string, len(tt.console))
			for i, w := range tt.console {
				want[i] = expand.Replace(w)
			}
			if missing, ok := inOrder(console, want...); !ok {
				t.Errorf("console lacks %q (in order); console:\n%s", missing, console)
			}
			for _, no := range tt.notConsole {
				if strings.Contains(console, no) {
					t.Errorf("console holds %q; console:\n%s", no, console)
				}
			}
			for name, want := range tt.files {
				got, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Errorf("read %s: %v", name, err)
					continue
				}
				if string(got) != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			for name, want := range tt.modes {
				fi, err := os.Stat(filepath.Join(dir, name))
				if err != nil {
					t.Errorf("stat %s: %v", name, err)
					continue
				}
				if got := fi.Mode().Perm(); got != want {
					t.Errorf("mode of %s = %v, want %v", name, got, want)
				}
			}
		})
	}
}

func TestInstanceKeepsRunningAfterItsUserData(t *testing.T) {
	t.Parallel()
	p, _ := start(t, []byte("#!/bin/sh\nexit 3\n"))
	waitUserData(t, p)
	select {
	case <-p.Exited():
		t.Fatalf("instance exited after its user data; console:\n%s", p.Console())
	default:
	}
	if got, want := string(p.Console()), "user data script exited with status 3"; !strings.Contains(got, want) {
		t.Errorf("console lacks %q; console:\n%s", want, got)
	}
}

func TestConsoleIsTheLast64KiB(t *testing.T) {
	t.Parallel()
	p, _ := start(t, []byte("#!/bin/sh\nhead -c 100000 /dev/zero | tr '\\0' x\necho\necho tail-marker\n"))
	waitUserData(t, p)
	console := p.Console()
	if len(console) != 64<<10 {
		t.Errorf("len(Console()) = %d, want %d", len(console), 64<<10)
	}
	if !bytes.Contains(console, []byte("tail-marker")) || !bytes.HasSuffix(console, []byte("user data finished\n")) {
		t.Errorf("console does not end with the latest output: ...%q", console[max(len(console)-200, 0):])
	}
}

func TestConsoleIsEmptyNotNilWhenUnreadable(t *testing.T) {
	t.Parallel()
	p, dir := start(t, []byte("#!/bin/sh\necho hi\n"))
	waitUserData(t, p)
	if err := os.Remove(filepath.Join(dir, "console.log")); err != nil {
		t.Fatal(err)
	}
	if got := p.Console(); got == nil || len(got) != 0 {
		t.Errorf("Console() = %#v, want an empty non-nil slice", got)
	}
}

func TestStartRejectsBadSpecs(t *testing.T) {
	t.Parallel()
	blocked := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocked, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		spec instance.Spec
	}{
		{"empty id", instance.Spec{Dir: t.TempDir()}},
		{"empty directory", instance.Spec{ID: testID}},
		{"environment entry without =", instance.Spec{ID: testID, Dir: t.TempDir(), Env: []string{"NOEQUALS"}}},
		{"directory that cannot be created", instance.Spec{ID: testID, Dir: filepath.Join(blocked, "sub")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := supervisor(t, nil).Start(tt.spec)
			if err == nil {
				_ = p.Stop(context.Background(), 0)
				t.Fatal("Start succeeded, want an error")
			}
		})
	}
}

// daemons is user data that leaves behind a foreground sleep, a setsid
// daemon and a double-forked one, each writing its PID to a file in the
// instance directory.
const daemons = `#!/bin/sh
setsid sh -c 'echo $$ > setsid.pid; exec sleep 1000' &
(sh -c 'echo $$ > forked.pid; exec sleep 1000' &)
echo $$ > script.pid
exec sleep 1000
`

var daemonPIDFiles = []string{"script.pid", "setsid.pid", "forked.pid"}

// gone reports whether a PID names no process (or only a zombie, which
// whoever inherited it has yet to reap).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && bytes.HasPrefix(b[i+1:], []byte(" Z"))
}

func readPIDs(t *testing.T, dir string, names []string) map[string]int {
	t.Helper()
	pids := map[string]int{}
	for _, name := range names {
		pid, err := strconv.Atoi(waitFile(t, filepath.Join(dir, name)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		pids[name] = pid
	}
	return pids
}

func TestStopLeavesNoProcessBehind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		userData string
		pidFiles []string
		grace    time.Duration
	}{
		{
			name:     "foreground sleep, setsid daemon and double-forked daemon",
			userData: daemons,
			pidFiles: daemonPIDFiles,
			grace:    time.Second,
		},
		{
			name: "processes that ignore SIGTERM are killed after grace",
			userData: `#!/bin/sh
trap '' TERM
setsid sh -c 'echo $$ > stubborn.pid; while :; do sleep 1; done' &
echo $$ > script.pid
while :; do sleep 1; done
`,
			pidFiles: []string{"script.pid", "stubborn.pid"},
			grace:    200 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, dir := start(t, []byte(tt.userData))
			pids := readPIDs(t, dir, tt.pidFiles)

			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			if err := p.Stop(ctx, tt.grace); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			select {
			case <-p.Exited():
			default:
				t.Error("Exited not closed after Stop returned")
			}
			for name, pid := range pids {
				if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
					t.Errorf("process %d (%s) still exists after Stop: kill 0 = %v", pid, name, err)
				}
			}
			if left := marked(t, "LIFEGUARD_SANDBOX_ROOT="+p.RootDir()); len(left) > 0 {
				t.Errorf("processes %v of the instance still exist after Stop", left)
			}
			if err := p.Stop(ctx, tt.grace); err != nil {
				t.Errorf("second Stop: %v", err)
			}
			if got := string(p.Console()); !strings.Contains(got, "instance "+testID+" stopping") {
				t.Errorf("console lacks the stopping line; console:\n%s", got)
			}
		})
	}
}

func TestStopReturnsWhenContextEnds(t *testing.T) {
	t.Parallel()
	// The script ignores SIGTERM, so the supervisor needs the whole grace.
	p, dir := start(t, []byte("#!/bin/sh\ntrap '' TERM\necho $$ > script.pid\nwhile :; do sleep 1; done\n"))
	waitFile(t, filepath.Join(dir, "script.pid"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := p.Stop(ctx, 200*time.Millisecond)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Stop with an ended context = %v, want context.Canceled", err)
	}
	// The supervisor carries on: the cleanup's Stop waits for it.
}

func TestExitedClosesWhenTheSupervisorDies(t *testing.T) {
	t.Parallel()
	sup := supervisor(t, nil)
	dirs := []string{t.TempDir(), t.TempDir()}
	var procs []*instance.Process
	pids := map[string]int{}
	for i, dir := range dirs {
		p, err := sup.Start(instance.Spec{ID: fmt.Sprintf("i-%017d", i), UserData: []byte(daemons), Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
		for name, pid := range readPIDs(t, dir, daemonPIDFiles) {
			pids[fmt.Sprint(i, name)] = pid
		}
	}
	if err := syscall.Kill(sup.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for _, p := range procs {
		select {
		case <-p.Exited():
		case <-timer.C:
			t.Fatal("Exited not closed after the supervisor was killed")
		}
		if err := p.Stop(context.Background(), time.Second); err != nil {
			t.Errorf("Stop after the supervisor died: %v", err)
		}
	}
	// Its stages went with its process group; the daemons that left it
	// were found by their mark.
	deadline := time.Now().Add(waitLimit)
	for name, pid := range pids {
		for !gone(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d (%s) still exists after the supervisor was killed", pid, name)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The next instance gets a new supervisor.
	p, err := sup.Start(instance.Spec{ID: "i-00000000000000009", UserData: []byte("#!/bin/sh\necho again\n"), Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("Start after the supervisor died: %v", err)
	}
	waitUserData(t, p)
	if err := p.Stop(context.Background(), time.Second); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

// TestKillZeroStaysInItsInstance: a script's "kill 0" signals its own
// process group, which is its stage's, not the supervisor's nor another
// instance's.
func TestKillZeroStaysInItsInstance(t *testing.T) {
	t.Parallel()
	sup := supervisor(t, nil)
	stopAtEnd := func(p *instance.Process) {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			defer cancel()
			if err := p.Stop(ctx, time.Second); err != nil {
				t.Errorf("Stop: %v", err)
			}
		})
	}
	bystanderDir := t.TempDir()
	bystander, err := sup.Start(instance.Spec{ID: "i-00000000000000001", UserData: []byte("#!/bin/sh\necho $$ > main.pid\nexec sleep 1000\n"), Dir: bystanderDir})
	if err != nil {
		t.Fatal(err)
	}
	stopAtEnd(bystander)
	pid := readPIDs(t, bystanderDir, []string{"main.pid"})["main.pid"]

	killer, err := sup.Start(instance.Spec{ID: "i-00000000000000002", UserData: []byte("#!/bin/sh\nkill 0\necho not reached\n"), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	stopAtEnd(killer)
	waitUserData(t, killer)
	if got := string(killer.Console()); !strings.Contains(got, "was killed by signal 15") || strings.Contains(got, "not reached") {
		t.Errorf("the script did not die of its own kill 0; console:\n%s", got)
	}
	// A third instance is started by the same supervisor: it is alive,
	// and so is the bystander.
	third, err := sup.Start(instance.Spec{ID: "i-00000000000000003", UserData: []byte("#!/bin/sh\necho ok\n"), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	stopAtEnd(third)
	waitUserData(t, third)
	if gone(pid) {
		t.Errorf("the other instance's process %d is gone", pid)
	}
	select {
	case <-bystander.Exited():
		t.Error("the other instance exited")
	default:
	}
}

// helperDirEnv makes TestHelperSandboxParent act as a sandbox.
const helperDirEnv = "LIFEGUARD_TEST_SANDBOX_PARENT_DIR"

// TestHelperSandboxParent is not a test: TestSandboxDeathStopsInstance runs
// the test binary as a sandbox that starts an instance, then SIGKILLs it.
func TestHelperSandboxParent(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		t.Skip("helper process for TestSandboxDeathStopsInstance")
	}
	sup := instance.NewSupervisor(dir, nil)
	p, err := sup.Start(instance.Spec{ID: testID, UserData: []byte(daemons), Dir: filepath.Join(dir, "instance")})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "shim.pid"), []byte(strconv.Itoa(sup.Pid())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Wait to be killed; should the test that runs us be gone, give up.
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case <-p.Exited():
	case <-timer.C:
	}
	_ = p.Stop(context.Background(), 0)
	_ = sup.Close(context.Background())
}

func TestSandboxDeathStopsInstance(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperSandboxParent$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pids := readPIDs(t, dir, []string{"shim.pid"})
	for name, pid := range readPIDs(t, filepath.Join(dir, "instance"), daemonPIDFiles) {
		pids[name] = pid
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // killed: the error says so

	deadline := time.Now().Add(waitLimit)
	for name, pid := range pids {
		for !gone(pid) {
			if time.Now().After(deadline) {
				console, _ := os.ReadFile(filepath.Join(dir, "instance", "console.log"))
				t.Fatalf("process %d (%s) still exists %v after the sandbox was killed; helper output:\n%s\nconsole:\n%s", pid, name, waitLimit, out.Bytes(), console)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
