package demo

import (
	"context"
	"fmt"
	"time"
)

// webRate is the steady load's requests a second.
const webRate = 50

// loadCounts returns the load's requests served and failed so far.
func (d *demo) loadCounts() (served, failed int64) {
	s, f := d.load.Counts()
	return int64(s), int64(f)
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
		s, f := d.loadCounts()
		d.printf("TRAFFIC %s", fmt.Sprintf("%.0f requests/s served, %.0f/s failed (last %s: %d served, %d failed)",
			float64(s-served)/reportEvery.Seconds(), float64(f-failed)/reportEvery.Seconds(), reportEvery, s-served, f-failed))
		served, failed = s, f
	}
}
