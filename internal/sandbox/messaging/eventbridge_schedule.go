package messaging

import (
	"strconv"
	"strings"
	"time"
)

// This file runs EventBridge's schedule rules on the broker's clock: a
// rule with a ScheduleExpression puts a "Scheduled Event" (source
// aws.events, its ARN as the resource, detail {}) to its targets each time
// the expression falls due, while it is enabled. rate(N unit) fires every
// N units counted from when the rule was put; cron(...) takes AWS's six
// fields (minutes hours day-of-month month day-of-week year, UTC) with
// lists, ranges, steps, * and ?, month and day names; the L, W and #
// forms are accepted but never fire.

// ebArmLocked schedules a rule's next firing after now, when it has a
// schedule that can fire.
func (bs *Buses) ebArmLocked(b *ebBus, r *ebRule, now time.Time) {
	if r.ScheduleExpression == "" {
		return
	}
	next, ok := ebNextFire(r.ScheduleExpression, now, r.created)
	if !ok {
		return
	}
	r.timer = bs.after(next.Sub(bs.clock.Now()), func() {
		if b.rules[r.Name] != r {
			return // deleted or replaced
		}
		if r.State != RuleDisabled {
			ev := bs.ebNewEventLocked("aws.events", "Scheduled Event", []string{r.ARN}, next, []byte("{}"))
			for _, id := range ebSortedKeys(r.targets, "") {
				bs.ebDeliverTargetLocked(r, r.targets[id], ev, 0)
			}
		}
		bs.ebArmLocked(b, r, next)
	})
}

// ebStopLocked stops a rule's schedule.
func ebStopLocked(r *ebRule) {
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
}

// ebNextFire returns when a schedule expression next falls due strictly
// after t. rate() counts its periods from origin.
func ebNextFire(expr string, t, origin time.Time) (time.Time, bool) {
	if m := ebRateExpression().FindStringSubmatch(expr); m != nil {
		n, _ := strconv.Atoi(m[1])
		unit := time.Minute
		switch strings.TrimSuffix(m[2], "s") {
		case "hour":
			unit = time.Hour
		case "day":
			unit = 24 * time.Hour
		}
		period := time.Duration(n) * unit
		k := t.Sub(origin)/period + 1
		return origin.Add(k * period), true
	}
	c, ok := parseCron(expr)
	if !ok {
		return time.Time{}, false
	}
	return c.next(t)
}

// cron is a parsed six-field cron expression: the allowed values of each
// field (nil: any).
type cron struct {
	minute, hour, dom, month, dow, year map[int]bool
}

var (
	monthNames = map[string]int{"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}
	dayNames   = map[string]int{"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
)

func parseCron(expr string) (cron, bool) {
	f := strings.Fields(strings.TrimSuffix(strings.TrimPrefix(expr, "cron("), ")"))
	if len(f) != 6 {
		return cron{}, false
	}
	var c cron
	var ok bool
	specs := []struct {
		dst      *map[int]bool
		lo, hi   int
		names    map[string]int
		question bool
	}{
		{&c.minute, 0, 59, nil, false}, {&c.hour, 0, 23, nil, false}, {&c.dom, 1, 31, nil, true},
		{&c.month, 1, 12, monthNames, false}, {&c.dow, 1, 7, dayNames, true}, {&c.year, 1970, 2199, nil, false},
	}
	for i, s := range specs {
		if f[i] == "?" {
			if !s.question {
				return cron{}, false
			}
			continue
		}
		if *s.dst, ok = parseField(f[i], s.lo, s.hi, s.names); !ok {
			return cron{}, false
		}
	}
	// AWS wants ? in one of the two day fields.
	if (f[2] == "?") == (f[4] == "?") {
		return cron{}, false
	}
	return c, true
}

// parseField reads one cron field; nil means every value.
func parseField(s string, lo, hi int, names map[string]int) (map[int]bool, bool) {
	if s == "*" {
		return nil, true
	}
	out := map[int]bool{}
	for part := range strings.SplitSeq(s, ",") {
		rng, step := part, 1
		if a, b, found := strings.Cut(part, "/"); found {
			n, err := strconv.Atoi(b)
			if err != nil || n < 1 {
				return nil, false
			}
			rng, step = a, n
		}
		from, to := lo, hi
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var ok1, ok2 bool
			from, ok1 = cronValue(a, names)
			to, ok2 = cronValue(b, names)
			if !ok1 || !ok2 {
				return nil, false
			}
		default:
			v, ok := cronValue(rng, names)
			if !ok {
				return nil, false
			}
			from = v
			if !strings.Contains(part, "/") {
				to = v
			}
		}
		if from < lo || to > hi || from > to {
			return nil, false
		}
		for v := from; v <= to; v += step {
			out[v] = true
		}
	}
	return out, true
}

func cronValue(s string, names map[string]int) (int, bool) {
	if v, ok := names[strings.ToUpper(s)]; ok {
		return v, true
	}
	v, err := strconv.Atoi(s)
	return v, err == nil
}

func has(set map[int]bool, v int) bool { return set == nil || set[v] }

// next returns the first minute strictly after t that the expression
// matches, in UTC.
func (c cron) next(t time.Time) (time.Time, bool) {
	t = t.UTC().Truncate(time.Minute).Add(time.Minute)
	for t.Year() <= 2199 {
		switch {
		case !has(c.year, t.Year()):
			t = time.Date(t.Year()+1, 1, 1, 0, 0, 0, 0, time.UTC)
		case !has(c.month, int(t.Month())):
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		case !has(c.dom, t.Day()) || !has(c.dow, int(t.Weekday())+1):
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
		case !has(c.hour, t.Hour()):
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, time.UTC)
		case !has(c.minute, t.Minute()):
			t = t.Add(time.Minute)
		default:
			return t, true
		}
	}
	return time.Time{}, false
}
