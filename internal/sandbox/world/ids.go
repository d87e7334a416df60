package world

import (
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"regexp"
	"strings"
	"sync"
)

// hexID returns prefix + n random hex digits from the world's seeded source.
func (w *World) hexIDLocked(prefix string, n int) string {
	const hexd = "0123456789abcdef"
	var b strings.Builder
	b.WriteString(prefix)
	for range n {
		b.WriteByte(hexd[w.rng.IntN(16)])
	}
	return b.String()
}

// uuidLocked returns a UUID drawn from the seeded source.
func (w *World) uuidLocked() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(w.rng.IntN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// zones returns the region's simulated Availability Zones.
func (w *World) zones() []string {
	return []string{w.cfg.Region + "a", w.cfg.Region + "b", w.cfg.Region + "c"}
}

// SubnetZone maps a subnet id to a zone of the region by a fixed rule: the
// FNV-1a hash of the id, modulo the number of zones (a, b, c). The same
// subnet always lands in the same zone, in every sandbox.
func (w *World) SubnetZone(subnet string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(subnet))
	zones := w.zones()
	return zones[h.Sum32()%uint32(len(zones))]
}

// decodeUserData decodes base64 user data as EC2 does; a value that is not
// base64 is taken as it is (launch configurations accept raw text).
func decodeUserData(s string) []byte {
	if s == "" {
		return nil
	}
	if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s)); err == nil {
		return b
	}
	return []byte(s)
}

// validBase64 reports whether s is standard base64.
func validBase64(s string) bool {
	_, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	return err == nil
}

// ipPool hands out 127.0.0.N-style loopback addresses, one per running
// instance, skipping 127.0.0.0/24's .0, .1 and .255 of each /24.
type ipPool struct {
	next  int
	free  []int
	inUse map[string]int
}

func (p *ipPool) take() string {
	var n int
	if len(p.free) > 0 {
		n, p.free = p.free[0], p.free[1:]
	} else {
		if p.next == 0 {
			p.next = 2
		}
		n = p.next
		p.next++
		if (p.next & 0xff) == 0xff {
			p.next += 3 // skip .255, .0, .1 of the next /24
		}
	}
	ip := fmt.Sprintf("127.%d.%d.%d", (n>>16)&0xff, (n>>8)&0xff, n&0xff)
	if p.inUse == nil {
		p.inUse = map[string]int{}
	}
	p.inUse[ip] = n
	return ip
}

func (p *ipPool) release(ip string) {
	if n, ok := p.inUse[ip]; ok {
		delete(p.inUse, ip)
		p.free = append(p.free, n)
	}
}

// pattern is a regular expression compiled on first use. The sandbox's
// binary also runs every instance's supervisor, which never matches one:
// a thousand instances starting at once would each compile them all.
type pattern func() *regexp.Regexp

func lazyPattern(expr string) pattern {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

// MatchString reports whether s matches.
func (p pattern) MatchString(s string) bool { return p().MatchString(s) }
