package proc

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// ProgramPages are this process's mappings of the pages of its own
// executable that it cannot have written (its code and read-only data), as
// FindProgramPages found them. Release drops them.
//
// Package initialization and start-up touch code and tables all over a
// large binary (every package's init runs, whatever the command), and
// the kernel maps what is touched, and its neighbours, for good: they count
// in the resident set long after they are last used. The pages stay in the
// page cache, shared with every other process running the binary; a page
// used again is mapped again on its next access, with a minor fault and no
// I/O. Writable mappings (the data segment, which holds written copies of
// pages) are left alone, and so is a read-only one holding a written page
// (a debugger's breakpoint) when they are found, so nothing written is
// lost: dropping a private file mapping of cached pages only forgets which
// of them it mapped (madvise MADV_DONTNEED). Release and ReleaseData do
// not read /proc/self/smaps again, whose walk of every mapping costs more
// than the drop; a page written since the mappings were found would be
// dropped with them, so find them again now and then.
type ProgramPages struct{ ranges []mapping }

// FindProgramPages finds the mappings, from /proc/self/smaps.
func FindProgramPages() (*ProgramPages, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("release program pages: %w", err)
	}
	maps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return nil, fmt.Errorf("release program pages: %w", err)
	}
	return &ProgramPages{ranges: programMappings(maps, exe)}, nil
}

// ReleaseData drops the mappings of the program's read-only data only
// (its code stays mapped) and returns how many bytes of mappings it asked
// the kernel to drop. The read-only data holds the runtime's tables of
// every function (read wherever a stack is walked, grown or copied) and
// the type descriptors (read by reflection and interface conversions),
// touched a little all over; the code an idle process runs is the same few
// functions every time. Dropping the data alone gives back most of what a
// round of work maps again for a fraction of the page faults.
func (p *ProgramPages) ReleaseData() (int64, error) { return p.release(false) }

// Release drops the mappings and returns how many bytes of them it asked
// the kernel to drop.
func (p *ProgramPages) Release() (int64, error) { return p.release(true) }

func (p *ProgramPages) release(code bool) (int64, error) {
	var released int64
	for _, r := range p.ranges {
		if r.exec && !code {
			continue
		}
		_, _, errno := syscall.Syscall(syscall.SYS_MADVISE, r.start, r.end-r.start, syscall.MADV_DONTNEED)
		if errno != 0 {
			return released, fmt.Errorf("release program pages %#x-%#x: %w", r.start, r.end, errno)
		}
		released += int64(r.end - r.start)
	}
	return released, nil
}

// mapping is an address range of /proc/self/maps, and whether it is
// executable.
type mapping struct {
	start, end uintptr
	exec       bool
}

// programMappings returns the private, non-writable mappings of the file
// path that hold no written (anonymous) page, from a /proc/PID/smaps
// listing (a /proc/PID/maps listing has no Anonymous lines: none is
// taken for written).
func programMappings(smaps []byte, path string) []mapping {
	var out []mapping
	var cur mapping
	take := false
	flush := func() {
		if take {
			out = append(out, cur)
		}
		take = false
	}
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) == 0 {
			continue
		}
		if bytes.HasSuffix(f[0], []byte(":")) { // a field of the mapping above
			if take && string(f[0]) == "Anonymous:" && (len(f) < 2 || string(f[1]) != "0") {
				take = false
			}
			continue
		}
		// address perms offset dev inode pathname
		flush()
		if len(f) < 6 || string(bytes.Join(f[5:], []byte(" "))) != path {
			continue
		}
		perms := f[1]
		if len(perms) != 4 || perms[1] == 'w' || perms[3] != 'p' {
			continue
		}
		lo, hi, ok := bytes.Cut(f[0], []byte("-"))
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(string(lo), 16, 64)
		end, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		cur, take = mapping{uintptr(start), uintptr(end), perms[2] == 'x'}, true
	}
	flush()
	return out
}
