package jobs

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// Overlap policies: what a scheduled job's slot does when the job's
// previous run is still going on.
const (
	// OverlapSkip: the slot is recorded as skipped and nothing starts
	// (the default).
	OverlapSkip = "skip"
	// OverlapStop: the previous run's group is stopped (SIGTERM, SIGKILL
	// after the grace) and the slot's run starts once it has ended.
	OverlapStop = "stop"
)

// Missed-run policies: what a new leader does about the job's slots that
// passed while nobody ran them.
const (
	// MissedSkip: nothing; the job next runs at its next slot (the
	// default).
	MissedSkip = "skip"
	// MissedRunOnce: on taking over, the most recent slot no older than
	// MissedWindow runs once if no leader claimed it; older slots are
	// skipped.
	MissedRunOnce = "run_once"
)

// jobName is what a job's name may be: it is part of keys in the ledger.
var jobName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`) })

// cronParser accepts five fields, or six with seconds first, and the
// descriptors (@hourly, @every 1m30s).
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ScheduledJob is a command run on a schedule, only by the leader. Its
// field names are the agent configuration's keys.
type ScheduledJob struct {
	// Name identifies the job in the ledger, the logs and the history:
	// letters, digits, '_', '.', '-' (up to 100), starting with a letter
	// or digit.
	Name string `yaml:"name"`
	// Schedule is a cron expression: five fields (minute hour
	// day-of-month month day-of-week), or six with seconds first, or a
	// descriptor: @yearly, @monthly, @weekly, @daily, @hourly, or
	// "@every <duration>" (whole seconds, at least 1 s), whose slots are
	// the multiples of the duration since the Unix epoch, so that every
	// instance computes the same slots. It may start with CRON_TZ=<zone>.
	Schedule string `yaml:"schedule"`
	// TimeZone is the IANA time zone of the schedule ("Europe/Paris");
	// empty means UTC, or the schedule's own CRON_TZ= prefix. Never the
	// host's local zone, which could differ between instances.
	TimeZone string `yaml:"time_zone"`
	// Command is exec'd directly, without a shell.
	Command []string `yaml:"command"`
	// Env adds "K=V" entries to the command's environment.
	Env []string `yaml:"env"`
	// Timeout, when positive, is how long a run may last before it is
	// stopped.
	Timeout time.Duration `yaml:"timeout"`
	// Overlap is OverlapSkip (default) or OverlapStop.
	Overlap string `yaml:"overlap"`
	// Missed is MissedSkip (default) or MissedRunOnce.
	Missed string `yaml:"missed"`
	// MissedWindow is how old a missed slot may be and still run on
	// takeover; required with MissedRunOnce, not allowed otherwise.
	MissedWindow time.Duration `yaml:"missed_window"`
}

// Validate checks j field by field, naming the field and the fix.
func (j ScheduledJob) Validate() error {
	_, err := j.compile()
	return err
}

// job is a validated ScheduledJob with its schedule parsed.
type job struct {
	ScheduledJob
	sched cron.Schedule
	every time.Duration // for "@every": slots are its multiples since the epoch
}

// compile validates j and parses its schedule.
func (j ScheduledJob) compile() (*job, error) {
	var errs []error
	if !jobName().MatchString(j.Name) {
		errs = append(errs, fmt.Errorf("name: %q is not a job name; use letters, digits, '_', '.' and '-' (at most 100, starting with a letter or digit)", j.Name))
	}
	c := &job{ScheduledJob: j}
	if err := c.parse(); err != nil {
		errs = append(errs, err)
	}
	if len(j.Command) == 0 || j.Command[0] == "" {
		errs = append(errs, errors.New(`command: empty; give the program and its arguments as a list, such as ["/usr/local/bin/report", "--daily"]`))
	}
	for _, kv := range j.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			errs = append(errs, fmt.Errorf("env: entry %q is not K=V", kv))
		}
	}
	if j.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout: %s is negative; use 0 for none", j.Timeout))
	}
	switch j.Overlap {
	case "", OverlapSkip, OverlapStop:
	default:
		errs = append(errs, fmt.Errorf("overlap: %q is not a policy; use %q (leave the previous run alone) or %q (stop it first)", j.Overlap, OverlapSkip, OverlapStop))
	}
	switch j.Missed {
	case "", MissedSkip:
		if j.MissedWindow != 0 {
			errs = append(errs, fmt.Errorf("missed_window: %s is set but missed is %q; set missed: %s, or remove missed_window", j.MissedWindow, cmp.Or(j.Missed, MissedSkip), MissedRunOnce))
		}
	case MissedRunOnce:
		if j.MissedWindow <= 0 {
			errs = append(errs, fmt.Errorf("missed_window: %s; missed: %s needs a positive window, such as 10m (how old a missed slot may be and still run)", j.MissedWindow, MissedRunOnce))
		}
	default:
		errs = append(errs, fmt.Errorf("missed: %q is not a policy; use %q or %q", j.Missed, MissedSkip, MissedRunOnce))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("job %q: %w", j.Name, err)
	}
	if c.Overlap == "" {
		c.Overlap = OverlapSkip
	}
	if c.Missed == "" {
		c.Missed = MissedSkip
	}
	return c, nil
}

// parse parses the schedule in its time zone.
func (c *job) parse() error {
	spec := strings.TrimSpace(c.Schedule)
	if spec == "" {
		return errors.New(`schedule: empty; give a cron expression such as "*/5 * * * *", "0 30 2 * * *" (with seconds) or "@every 1m"`)
	}
	hasTZ := strings.HasPrefix(spec, "CRON_TZ=") || strings.HasPrefix(spec, "TZ=")
	switch {
	case hasTZ && c.TimeZone != "":
		return fmt.Errorf("time_zone: %q is set and schedule %q has its own CRON_TZ=; keep one of them", c.TimeZone, c.Schedule)
	case hasTZ:
		eq, sp := strings.Index(spec, "="), strings.IndexAny(spec, " \t")
		if sp < 0 {
			return fmt.Errorf("schedule: %q has a time zone and no schedule after it", c.Schedule)
		}
		if _, err := time.LoadLocation(spec[eq+1 : sp]); err != nil || spec[eq+1:sp] == "" || spec[eq+1:sp] == "Local" {
			return fmt.Errorf("schedule: unknown time zone %q in %q; use an IANA name such as Europe/Paris or UTC", spec[eq+1:sp], c.Schedule)
		}
	default:
		tz := cmp.Or(c.TimeZone, "UTC")
		if _, err := time.LoadLocation(tz); err != nil || tz == "Local" {
			return fmt.Errorf("time_zone: unknown time zone %q; use an IANA name such as Europe/Paris or UTC", c.TimeZone)
		}
		spec = "CRON_TZ=" + tz + " " + spec
	}
	sched, err := cronParser.Parse(spec)
	if err != nil {
		return fmt.Errorf("schedule: %q: %v; use five fields (minute hour day-of-month month day-of-week), six with seconds first, or a descriptor such as @hourly or @every 30s", c.Schedule, err)
	}
	if every, ok := sched.(cron.ConstantDelaySchedule); ok {
		d := strings.TrimSpace(spec[strings.Index(spec, "@every")+len("@every"):])
		if want, err := time.ParseDuration(d); err == nil && want != every.Delay {
			return fmt.Errorf("schedule: %q: @every takes whole seconds, at least 1s (it would run every %s)", c.Schedule, every.Delay)
		}
		c.every = every.Delay
	}
	c.sched = sched
	if c.next(time.Now()).IsZero() {
		return fmt.Errorf("schedule: %q never fires (no such date in the next five years)", c.Schedule)
	}
	return nil
}

// next returns the job's first slot strictly after t (zero when there is
// none within five years).
func (c *job) next(t time.Time) time.Time {
	if c.every > 0 {
		return floorEvery(t, c.every).Add(c.every)
	}
	return c.sched.Next(t).UTC()
}

// latest returns the job's most recent slot at or before now and no older
// than window, if there is one.
func (c *job) latest(now time.Time, window time.Duration) (time.Time, bool) {
	if c.every > 0 {
		s := floorEvery(now, c.every)
		return s, now.Sub(s) <= window
	}
	var found time.Time
	// Next is strictly after its argument: start just before the window.
	for s := c.sched.Next(now.Add(-window - time.Nanosecond)); !s.IsZero() && !s.After(now); s = c.sched.Next(s) {
		found = s.UTC()
	}
	return found, !found.IsZero()
}

// floorEvery returns the last multiple of d (whole seconds) since the
// Unix epoch at or before t.
func floorEvery(t time.Time, d time.Duration) time.Time {
	secs, step := t.Unix(), int64(d/time.Second)
	m := secs % step
	if m < 0 {
		m += step
	}
	return time.Unix(secs-m, 0).UTC()
}
