package proc

import (
	"bufio"
	"bytes"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestProgramMappings(t *testing.T) {
	maps := strings.Join([]string{
		"00400000-02661000 r-xp 00000000 fd:00 123 /opt/lifeguard/bin/lifeguard",
		"02661000-03e95000 r--p 02261000 fd:00 123 /opt/lifeguard/bin/lifeguard",
		"03e95000-03f16000 rw-p 03a95000 fd:00 123 /opt/lifeguard/bin/lifeguard",
		"03f16000-05f64000 rw-p 00000000 00:00 0 ",
		"7f0000000000-7f0000001000 r-xp 00000000 fd:00 9 /usr/lib/libc.so.6",
		"7f0000002000-7f0000003000 r--s 00000000 fd:00 123 /opt/lifeguard/bin/lifeguard",
		"7f0000004000-7f0000005000 r--p 00000000 fd:00 124 /opt/lifeguard/bin/lifeguard (deleted)",
		"7f0000006000-7f0000007000 r--p 00000000 fd:00 125 /opt/my dir/lifeguard",
		"Rss:                   4 kB",
		"Anonymous:             0 kB",
		"7f0000008000-7f0000009000 r-xp 00000000 fd:00 123 /opt/lifeguard/bin/lifeguard",
		"Rss:                   4 kB",
		"Anonymous:             4 kB",
		"VmFlags: rd ex mr mw me",
		"7f000000a000-7f000000b000 r--p 00000000 fd:00 125 /opt/my dir/lifeguard",
		"Anonymous:             4 kB",
		"garbage",
		"",
	}, "\n")
	got := programMappings([]byte(maps), "/opt/lifeguard/bin/lifeguard")
	want := []mapping{{0x400000, 0x2661000, true}, {0x2661000, 0x3e95000, false}}
	if !slices.Equal(got, want) {
		t.Errorf("programMappings = %+v, want %+v (the private read-only and executable mappings of the file, not its writable or shared ones, nor one holding a written page, nor other files')", got, want)
	}
	if got := programMappings([]byte(maps), "/opt/my dir/lifeguard"); !slices.Equal(got, []mapping{{0x7f0000006000, 0x7f0000007000, false}}) {
		t.Errorf("a path with a space: %+v", got)
	}
}

// TestProgramPagesRelease releases the test binary's own pages and goes on
// running: its code is mapped again as it runs.
func TestProgramPagesRelease(t *testing.T) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Skipf("no /proc/self/exe: %v", err)
	}
	maps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for _, r := range programMappings(maps, exe) {
		want += int64(r.end - r.start)
	}
	if want == 0 {
		t.Fatalf("no read-only mapping of %s in /proc/self/smaps:\n%s", exe, maps)
	}
	before := programRSS(t, exe, true) + programRSS(t, exe, false)
	p, err := FindProgramPages()
	if err != nil {
		t.Fatal(err)
	}
	n, err := p.Release()
	if err != nil {
		t.Fatal(err)
	}
	if after := programRSS(t, exe, true) + programRSS(t, exe, false); after >= before {
		t.Errorf("resident pages of %s: %d KiB after the release, %d KiB before; want fewer", exe, after, before)
	}
	if n != want {
		t.Errorf("released %d bytes, want %d (every read-only mapping of %s)", n, want, exe)
	}
	// Code and read-only data are read again after the release.
	if got := strings.Repeat("ab", 3); got != "ababab" {
		t.Errorf("after the release: %q", got)
	}
}

// TestReleaseDataKeepsTheCode: ReleaseData drops the mappings of the
// read-only data and leaves those of the code.
func TestReleaseDataKeepsTheCode(t *testing.T) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Skipf("no /proc/self/exe: %v", err)
	}
	p, err := FindProgramPages()
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for _, r := range p.ranges {
		if !r.exec {
			want += int64(r.end - r.start)
		}
	}
	code, data := programRSS(t, exe, true), programRSS(t, exe, false)
	n, err := p.ReleaseData()
	if err != nil {
		t.Fatal(err)
	}
	if n != want {
		t.Errorf("released %d bytes, want %d (the read-only data mappings of %s)", n, want, exe)
	}
	if got := programRSS(t, exe, false); got >= data {
		t.Errorf("resident data of %s: %d KiB after the release, %d KiB before; want fewer", exe, got, data)
	}
	if got := programRSS(t, exe, true); got < code {
		t.Errorf("resident code of %s: %d KiB after the release, %d KiB before; want none given back", exe, got, code)
	}
}

// programRSS returns the resident KiB of the read-only mappings of exe
// that are executable (code) or not (data), from /proc/self/smaps.
func programRSS(t *testing.T, exe string, code bool) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var kib int64
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"): // a mapping's first line
			in = len(f) >= 6 && strings.Join(f[5:], " ") == exe && f[1][1] != 'w' && (f[1][2] == 'x') == code
		case len(f) >= 2 && f[0] == "Rss:" && in:
			v, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("smaps: %q", sc.Text())
			}
			kib += v
		}
	}
	return kib
}
