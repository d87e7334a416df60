package lease

import (
	"cmp"
	"slices"
	"time"
)

// liveAnnouncements is how many announcement intervals a member stays live
// after its last announcement.
const liveAnnouncements = 3

// Live returns the members of ms whose last announcement is younger than
// three presenceEvery intervals at now, sorted by instance. Renewed comes
// from each member's wall clock, so liveness tolerates clock offsets up to
// two intervals; it only ever informs (listings, naming a successor),
// never who leads.
func Live(ms []Member, now time.Time, presenceEvery time.Duration) []Member {
	var out []Member
	for _, m := range ms {
		if now.Round(0).Sub(m.Renewed) < liveAnnouncements*presenceEvery {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.Instance, b.Instance) })
	return out
}

// Successor returns the member a leader named self should hand its lease
// to: among the live members other than self that are InService and
// ready, the one heard from most recently (ties: the lowest instance id);
// empty when there is none.
func Successor(live []Member, self string) string {
	var best *Member
	for i := range live {
		m := &live[i]
		if m.Instance == self || !(Eligibility{State: m.State, Ready: m.Ready}).Eligible() {
			continue
		}
		if best == nil || m.Renewed.After(best.Renewed) || (m.Renewed.Equal(best.Renewed) && m.Instance < best.Instance) {
			best = m
		}
	}
	if best == nil {
		return ""
	}
	return best.Instance
}
