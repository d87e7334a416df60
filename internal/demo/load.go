package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// load is a steady client load through the load balancer: one request
// every interval, each on a fresh connection, counting the ones answered
// 200 (served) and the others (failed).
type load struct {
	served, failed atomic.Int64
	stop           context.CancelFunc
	wg             sync.WaitGroup
	once           sync.Once
}

func startLoad(addr string, interval time.Duration) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{stop: cancel}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	l.wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		var reqs sync.WaitGroup
		defer reqs.Wait()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			reqs.Go(func() {
				resp, err := client.Get("http://" + addr + "/")
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						l.served.Add(1)
						return
					}
				}
				l.failed.Add(1)
			})
		}
	})
	return l
}

// end stops the load and waits for the requests in flight.
func (l *load) end() {
	l.once.Do(func() {
		l.stop()
		l.wg.Wait()
	})
}

// reportEvery is how often the timeline shows the load's counts.
const reportEvery = 5 * time.Second

// reportLoad prints the requests served and failed every reportEvery.
func (d *demo) reportLoad(ctx context.Context) {
	tick := time.NewTicker(reportEvery)
	defer tick.Stop()
	var served, failed int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s, f := d.load.served.Load(), d.load.failed.Load()
		d.printf("TRAFFIC %s", fmt.Sprintf("%.0f requests/s served, %.0f/s failed (last %s: %d served, %d failed)",
			float64(s-served)/reportEvery.Seconds(), float64(f-failed)/reportEvery.Seconds(), reportEvery, s-served, f-failed))
		served, failed = s, f
	}
}
