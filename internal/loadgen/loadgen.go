// Package loadgen sends a steady HTTP load, as a client of a load balancer
// would, and keeps what became of every request: the demo shows it as
// requests served and failed per second, the traffic benchmark counts the
// requests lost in a window, the end-to-end tests assert none was.
package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// maxFailures is how many failures Failures describes.
const maxFailures = 10

// Load is a steady load: rate requests a second to one URL, each on a
// fresh connection (so that a load balancer spreads them), a request
// failing unless it is answered 200. Safe for concurrent use.
type Load struct {
	stop context.CancelFunc
	once sync.Once
	wg   sync.WaitGroup

	mu       sync.Mutex
	sent     []time.Time // when each request was sent
	answered int         // requests that ended, served or failed
	failed   []time.Time // when each failed request was sent
	failures []string    // the first maxFailures, described
}

// Start sends rate requests a second to url until Stop. A ticker drops
// the ticks a busy machine misses, so Start sends what is due by now at
// each tick: the rate holds on average.
func Start(url string, rate int) *Load {
	if rate <= 0 {
		rate = 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Load{stop: cancel}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	l.wg.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		var reqs sync.WaitGroup
		defer reqs.Wait()
		start, n := time.Now(), 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			due := int(time.Since(start) * time.Duration(rate) / time.Second)
			for ; n < due; n++ {
				l.send(&reqs, client, url)
			}
		}
	})
	return l
}

// send sends one request in a goroutine of reqs.
func (l *Load) send(reqs *sync.WaitGroup, client *http.Client, url string) {
	at := time.Now()
	l.mu.Lock()
	l.sent = append(l.sent, at)
	l.mu.Unlock()
	reqs.Go(func() {
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				l.mu.Lock()
				l.answered++
				l.mu.Unlock()
				return
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.answered++
		l.failed = append(l.failed, at)
		if len(l.failures) < maxFailures {
			l.failures = append(l.failures, at.Format("15:04:05.000")+" "+err.Error())
		}
	})
}

// Stop stops sending and waits for the requests in flight. Calling it
// again does nothing.
func (l *Load) Stop() {
	l.once.Do(func() {
		l.stop()
		l.wg.Wait()
	})
}

// Counts returns how many requests were served (answered 200) and how
// many failed so far; requests in flight are in neither.
func (l *Load) Counts() (served, failed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.answered - len(l.failed), len(l.failed)
}

// Between returns how many requests were sent in [from, to) and how many
// of those failed.
func (l *Load) Between(from, to time.Time) (sent, failed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	in := func(t time.Time) bool { return !t.Before(from) && t.Before(to) }
	for _, t := range l.sent {
		if in(t) {
			sent++
		}
	}
	for _, t := range l.failed {
		if in(t) {
			failed++
		}
	}
	return sent, failed
}

// Failures describes the first failures (when each was sent, and the
// error or the status it got).
func (l *Load) Failures() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.failures...)
}
