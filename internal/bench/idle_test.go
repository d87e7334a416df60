package bench

import (
	"testing"
	"time"
)

// TestRSSSeriesSteady reads the steady figures from the readings taken
// after the collection only: the start-up readings before it, however
// low, do not count, and the peak is the steady part's largest.
func TestRSSSeriesSteady(t *testing.T) {
	s := rssSeries{
		{at: 0, rss: 12, anon: 6},
		{at: 60 * time.Second, rss: 13, anon: 6},
		{at: 130 * time.Second, rss: 18, anon: 6.5}, // a collection mapped the tables
		{at: 135 * time.Second, rss: 15, anon: 6.25},
		{at: 140 * time.Second, rss: 15.5, anon: 6.5},
		{at: 145 * time.Second, rss: 19, anon: 6.75},
		{at: 150 * time.Second, rss: 15, anon: 6.25},
	}
	rss, anon, peak := s.steady(135 * time.Second)
	if rss != 15.25 || anon != 6.375 || peak != 19 {
		t.Errorf("steady(135s) = %v, %v, %v; want the median 15.25 MiB, anonymous 6.375 MiB and peak 19 MiB of the last four readings", rss, anon, peak)
	}
	if got := s.at(time.Minute - idleSettle); got.rss != 13 {
		t.Errorf("at(57s) = %+v; want the first reading at or after it (13 MiB at 1m0s)", got)
	}
	// A quick run's window ends before the steady part: its last reading.
	short := s[:2]
	if rss, anon, peak := short.steady(135 * time.Second); rss != 13 || anon != 6 || peak != 13 {
		t.Errorf("steady of a short window = %v, %v, %v; want its last reading, 13 MiB, 6 MiB, 13 MiB", rss, anon, peak)
	}
	if got := short.at(time.Hour); got.rss != 13 {
		t.Errorf("at past the window = %+v; want the last reading", got)
	}
}
