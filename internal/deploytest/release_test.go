package deploytest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const repoRoot = "../.."

// nfpmModule reads the nfpm module and version scripts/release runs, so the
// test fetches exactly what the script will.
func nfpmModule(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "scripts/release"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^NFPM=github\.com/goreleaser/nfpm/v2/cmd/nfpm@(v\d+\.\d+\.\d+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("scripts/release: no NFPM=github.com/goreleaser/nfpm/v2/cmd/nfpm@vX.Y.Z line")
	}
	return "github.com/goreleaser/nfpm/v2@" + string(m[1])
}

func git(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("git %s: %v (not a git checkout?)", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

func TestReleaseSnapshot(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("go is not on PATH: %v", err)
	}
	// The packages are built by nfpm from the Go module proxy. Without the
	// proxy (and nfpm not yet in the module cache) there is nothing to test.
	dl := exec.Command("go", "mod", "download", nfpmModule(t))
	dl.Dir = t.TempDir()
	if out, err := dl.CombinedOutput(); err != nil {
		msg := "SKIP: cannot fetch nfpm from the Go module proxy: " + err.Error() + "\n" + string(out)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	// The tree is shared: a commit may land while the script runs, so the
	// binary must report HEAD as it was either before or after.
	heads := map[string]bool{git(t, "rev-parse", "HEAD"): true}

	out := t.TempDir()
	start := time.Now()
	cmd := exec.Command(filepath.Join(repoRoot, "scripts/release"), "--snapshot", "--out", out)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Run(); err != nil {
		t.Fatalf("scripts/release --snapshot: %v\n%s", err, log.String())
	}
	t.Logf("scripts/release --snapshot took %s", time.Since(start).Round(100*time.Millisecond))
	heads[git(t, "rev-parse", "HEAD")] = true
	m := regexp.MustCompile(`(?m)^== lifeguard (0\.0\.0-snapshot\+([0-9a-f]+)) \(commit ([0-9a-f]{40})\)$`).FindStringSubmatch(log.String())
	if m == nil {
		t.Fatalf("scripts/release did not print \"== lifeguard 0.0.0-snapshot+<short> (commit <full>)\":\n%s", log.String())
	}
	version, short, commit := m[1], m[2], m[3]
	if !heads[commit] || !strings.HasPrefix(commit, short) {
		t.Fatalf("scripts/release built version %s of commit %s; HEAD was %v", version, commit, heads)
	}

	// Binaries: both built; the amd64 one (this machine's, when it is
	// amd64) says what it is.
	for _, arch := range []string{"amd64", "arm64"} {
		if _, err := os.Stat(filepath.Join(out, "lifeguard_"+version+"_linux_"+arch)); err != nil {
			t.Errorf("binary for linux/%s: %v\n%s", arch, err, log.String())
		}
	}
	bin := filepath.Join(out, "lifeguard_"+version+"_linux_amd64")
	if v, err := exec.Command(bin, "version", "-o", "json").Output(); err != nil {
		t.Errorf("%s version -o json: %v", bin, err)
	} else {
		var got struct {
			Version   string `json:"version"`
			Commit    string `json:"commit"`
			BuildDate string `json:"build_date"`
			Platform  string `json:"platform"`
		}
		if err := json.Unmarshal(v, &got); err != nil {
			t.Fatalf("version -o json: %v\n%s", err, v)
		}
		if got.Version != version || got.Commit != commit || got.Platform != "linux/amd64" {
			t.Errorf("version -o json = %+v, want version %q, commit %q, platform linux/amd64", got, version, commit)
		}
		if _, err := time.Parse(time.RFC3339, got.BuildDate); err != nil {
			t.Errorf("build_date %q is not RFC 3339: %v", got.BuildDate, err)
		}
	}

	// SHA256SUMS lists every artifact and verifies.
	sums, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		if e.Name() != "SHA256SUMS" && !strings.Contains(string(sums), "  "+e.Name()+"\n") {
			t.Errorf("SHA256SUMS does not list %s:\n%s", e.Name(), sums)
		}
	}
	check := exec.Command("sha256sum", "-c", "SHA256SUMS")
	check.Dir = out
	if b, err := check.CombinedOutput(); err != nil {
		t.Errorf("sha256sum -c SHA256SUMS: %v\n%s", err, b)
	}

	// Packages: one .deb and one .rpm per architecture.
	for _, pattern := range []string{"*_amd64.deb", "*_arm64.deb", "*.x86_64.rpm", "*.aarch64.rpm"} {
		if m, _ := filepath.Glob(filepath.Join(out, pattern)); len(m) != 1 {
			t.Errorf("want one %s in %s, found %v", pattern, out, m)
		}
	}
	wantFiles := []string{"/usr/bin/lifeguard", "/usr/lib/systemd/system/lifeguard-agent.service", "/etc/lifeguard/agent.yaml"}

	debs, _ := filepath.Glob(filepath.Join(out, "*_amd64.deb"))
	if len(debs) == 1 {
		deb := debs[0]
		if _, err := exec.LookPath("dpkg-deb"); err != nil {
			t.Logf("SKIP: dpkg-deb is not installed; the .deb's contents are not checked")
		} else {
			list, err := exec.Command("dpkg-deb", "-c", deb).Output()
			if err != nil {
				t.Fatalf("dpkg-deb -c %s: %v", deb, err)
			}
			for _, f := range wantFiles {
				if !strings.Contains(string(list), " ."+f+"\n") {
					t.Errorf("%s does not contain %s:\n%s", filepath.Base(deb), f, list)
				}
			}
			conf := debFile(t, deb, "conffiles", "--info")
			if strings.TrimSpace(conf) != "/etc/lifeguard/agent.yaml" {
				t.Errorf("deb conffiles = %q, want /etc/lifeguard/agent.yaml", conf)
			}
			unit := debFile(t, deb, "./usr/lib/systemd/system/lifeguard-agent.service", "--fsys-tarfile")
			if !strings.Contains(unit, "\nExecStart=/usr/bin/lifeguard agent ") {
				t.Errorf("packaged unit does not start /usr/bin/lifeguard:\n%s", unit)
			}
			cfg := debFile(t, deb, "./etc/lifeguard/agent.yaml", "--fsys-tarfile")
			want, _ := os.ReadFile(filepath.Join(repoRoot, "deploy/release/agent.yaml"))
			if cfg != string(want) {
				t.Errorf("packaged agent.yaml differs from deploy/release/agent.yaml")
			}
		}
	}

	// The example configuration is valid.
	if b, err := exec.Command(bin, "agent", "--config", filepath.Join(repoRoot, "deploy/release/agent.yaml"), "--check-config").CombinedOutput(); err != nil {
		t.Errorf("deploy/release/agent.yaml --check-config: %v\n%s", err, b)
	}

	rpms, _ := filepath.Glob(filepath.Join(out, "*.x86_64.rpm"))
	if len(rpms) == 1 {
		rpm := rpms[0]
		if _, err := exec.LookPath("rpm"); err == nil {
			list, err := exec.Command("rpm", "-qlp", rpm).Output()
			if err != nil {
				t.Fatalf("rpm -qlp %s: %v", rpm, err)
			}
			for _, f := range wantFiles {
				if !strings.Contains("\n"+string(list), "\n"+f+"\n") {
					t.Errorf("%s does not list %s:\n%s", filepath.Base(rpm), f, list)
				}
			}
		} else {
			// Without rpm: check the lead's magic and that the header (stored
			// uncompressed, before the payload) names each file.
			t.Logf("rpm is not installed: checking %s's lead and header names instead of rpm -qlp", filepath.Base(rpm))
			b, err := os.ReadFile(rpm)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, []byte{0xed, 0xab, 0xee, 0xdb}) {
				t.Errorf("%s does not start with the rpm lead magic", filepath.Base(rpm))
			}
			for _, f := range wantFiles {
				dir, base := filepath.Dir(f)+"/", filepath.Base(f)
				if !bytes.Contains(b, []byte(dir+"\x00")) || !bytes.Contains(b, []byte("\x00"+base+"\x00")) {
					t.Errorf("%s's header does not name %s", filepath.Base(rpm), f)
				}
			}
		}
	}
}

// debFile extracts one file from a .deb: a control file (mode "--info") or
// a file of its data archive (mode "--fsys-tarfile").
func debFile(t *testing.T, deb, name, mode string) string {
	t.Helper()
	var cmd *exec.Cmd
	if mode == "--info" {
		cmd = exec.Command("dpkg-deb", "--info", deb, name)
	} else {
		cmd = exec.Command("sh", "-c", `dpkg-deb --fsys-tarfile "$1" | tar -xOf - "$2"`, "sh", deb, name)
	}
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s from %s: %v", name, filepath.Base(deb), err)
	}
	return string(b)
}
