package proc

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// ReleaseProgramPages drops this process's mappings of the pages of its own
// executable that it cannot have written (its code and read-only data),
// and returns how many bytes of mappings it asked the kernel to drop.
//
// Package initialization and start-up touch code and tables all over a
// large binary (every package's init runs, whatever the command), and
// the kernel maps what is touched, and its neighbours, for good: they count
// in the resident set long after they are last used. The pages stay in the
// page cache, shared with every other process running the binary; a page
// used again is mapped again on its next access, with a minor fault and no
// I/O. Writable mappings (the data segment, which holds written copies of
// pages) are left alone, so nothing the process wrote is lost: dropping a
// read-only private file mapping only forgets which cached pages it
// mapped (madvise MADV_DONTNEED).
func ReleaseProgramPages() (int64, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("release program pages: %w", err)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("release program pages: %w", err)
	}
	var released int64
	for _, r := range programMappings(maps, exe) {
		_, _, errno := syscall.Syscall(syscall.SYS_MADVISE, r.start, r.end-r.start, syscall.MADV_DONTNEED)
		if errno != 0 {
			return released, fmt.Errorf("release program pages %#x-%#x: %w", r.start, r.end, errno)
		}
		released += int64(r.end - r.start)
	}
	return released, nil
}

// mapping is an address range of /proc/self/maps.
type mapping struct{ start, end uintptr }

// programMappings returns the private, non-writable mappings of the file
// path in a /proc/PID/maps listing.
func programMappings(maps []byte, path string) []mapping {
	var out []mapping
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// address perms offset dev inode pathname
		f := bytes.Fields(sc.Bytes())
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
		out = append(out, mapping{uintptr(start), uintptr(end)})
	}
	return out
}
