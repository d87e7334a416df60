package config

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/jobs"
	"github.com/lifeguardhq/lifeguard/internal/lease"
)

// Leader configures leader election: one leader per Auto Scaling group,
// which runs the scheduled jobs and `lifeguard run --leader-only` commands.
// Off unless Mode says otherwise; the other keys are checked only when it
// is on.
type Leader struct {
	// Mode is LeaderOff (default), LeaderLease or LeaderByTag.
	Mode LeaderMode `yaml:"mode"`
	// Table is the DynamoDB table holding the lease, the members and the
	// run ledger (`lifeguard leader create-table` creates it). Required
	// with mode lease.
	Table string `yaml:"table"`
	// LeaseDuration is how long a lease lasts after each renewal, as
	// followers observe it on their own clocks.
	LeaseDuration Duration `yaml:"lease_duration"`
	// RenewInterval is the leader's renewal interval; the leader gives up
	// 2 × RenewInterval (the margin) before its lease could expire.
	RenewInterval Duration `yaml:"renew_interval"`
	// PollInterval is how often followers read the lease.
	PollInterval Duration `yaml:"poll_interval"`
	// MarkerFile, when set, exists exactly while this instance leads (for
	// cron lines that `test -e` it); "" means none.
	MarkerFile string `yaml:"marker_file"`
	// Tag mirrors leadership in an instance tag, for people and legacy
	// scripts; it is never read for decisions.
	Tag LeaderTag `yaml:"tag"`
	// OnElected and OnDemoted are commands (argv, no shell) run when this
	// instance starts and stops leading.
	OnElected []string `yaml:"on_elected"`
	OnDemoted []string `yaml:"on_demoted"`
	// StopGrace is the time between SIGTERM and SIGKILL when leader-only
	// work is stopped; shorter than the margin (2 × RenewInterval).
	StopGrace Duration `yaml:"stop_grace"`
	// Jobs run on the leader only, on a cron schedule.
	Jobs []LeaderJob `yaml:"jobs"`
}

// LeaderMode is how the leader is chosen.
type LeaderMode string

// The leader modes.
const (
	LeaderOff   LeaderMode = "off"   // no leader election
	LeaderLease LeaderMode = "lease" // a lease in DynamoDB with a fencing token
	LeaderByTag LeaderMode = "tag"   // the instance's own tag, written by lifeguard controller, read from IMDS
)

// LeaderTag is the instance tag that mirrors leadership (mode lease), or
// that the controller writes and the agent reads (mode tag: Key and Value
// are read; Enabled and FollowerValue are the controller's business).
type LeaderTag struct {
	// Enabled turns the tag on (mode lease).
	Enabled bool `yaml:"enabled"`
	// Key and Value are written on the leader (CreateTags).
	Key   string `yaml:"key"`
	Value string `yaml:"value"`
	// FollowerValue, when set, is written on followers (such as "false");
	// when empty the key is deleted from followers (DeleteTags).
	FollowerValue string `yaml:"follower_value"`
}

// LeaderJob is a scheduled leader-only job (see jobs.ScheduledJob, whose
// rules apply).
type LeaderJob struct {
	Name         string            `yaml:"name"`
	Schedule     string            `yaml:"schedule"`
	TimeZone     string            `yaml:"time_zone"`
	Command      []string          `yaml:"command"`
	Env          map[string]string `yaml:"env"`
	Timeout      Duration          `yaml:"timeout"`
	Overlap      string            `yaml:"overlap"`
	Missed       string            `yaml:"missed"`
	MissedWindow Duration          `yaml:"missed_window"`
}

// Defaults of the leader section.
const (
	DefaultLeaderTagKey   = "app:isLeader"
	DefaultLeaderTagValue = "true"
)

func defaultLeader() Leader {
	return Leader{
		Mode:          LeaderOff,
		LeaseDuration: Duration(lease.DefaultLease),
		RenewInterval: Duration(lease.DefaultRenewEvery),
		PollInterval:  Duration(lease.DefaultPollEvery),
		Tag:           LeaderTag{Key: DefaultLeaderTagKey, Value: DefaultLeaderTagValue},
		StopGrace:     Duration(2 * time.Second),
	}
}

// On reports whether leader election is on.
func (l Leader) On() bool { return l.Mode != LeaderOff && l.Mode != "" }

// Margin is how long before its lease could expire on a follower's clock
// the leader gives up: 2 × RenewInterval.
func (l Leader) Margin() time.Duration { return 2 * time.Duration(l.RenewInterval) }

// LeaseConfig returns the election's timings as lease.Config fields (the
// rest is for the caller to fill in).
func (l Leader) LeaseConfig() lease.Config {
	return lease.Config{
		Lease:      time.Duration(l.LeaseDuration),
		RenewEvery: time.Duration(l.RenewInterval),
		PollEvery:  time.Duration(l.PollInterval),
		Margin:     l.Margin(),
	}
}

// ScheduledJobs returns the jobs as package jobs takes them.
func (l Leader) ScheduledJobs() []jobs.ScheduledJob {
	out := make([]jobs.ScheduledJob, len(l.Jobs))
	for i, j := range l.Jobs {
		out[i] = j.scheduled()
	}
	return out
}

func (j LeaderJob) scheduled() jobs.ScheduledJob {
	var env []string
	for _, k := range slices.Sorted(maps.Keys(j.Env)) {
		env = append(env, k+"="+j.Env[k])
	}
	return jobs.ScheduledJob{
		Name: j.Name, Schedule: j.Schedule, TimeZone: j.TimeZone, Command: j.Command, Env: env,
		Timeout: time.Duration(j.Timeout), Overlap: j.Overlap, Missed: j.Missed, MissedWindow: time.Duration(j.MissedWindow),
	}
}

// leaseKeys maps lease.Config's field names, as its Validate spells them,
// to the leader section's keys.
var leaseKeys = map[string]string{
	"lease":       "leader.lease_duration",
	"renew_every": "leader.renew_interval",
	"poll_every":  "leader.poll_interval",
	"margin":      "leader.renew_interval",
}

func (l Leader) validate(v *validator) {
	oneOf(v, "leader.mode", l.Mode, LeaderOff, LeaderLease, LeaderByTag)
	switch l.Mode {
	case LeaderByTag:
		l.validateTagMode(v)
		return
	case LeaderLease:
	default:
		return
	}
	l.validateTable(v)
	timings := true
	for _, f := range []struct {
		path string
		d    Duration
	}{{"leader.lease_duration", l.LeaseDuration}, {"leader.renew_interval", l.RenewInterval}, {"leader.poll_interval", l.PollInterval}} {
		if f.d <= 0 {
			positive(v, f.path, f.d, "leave it out for the default")
			timings = false
		}
	}
	if timings {
		// The election's own rules, as lease.New applies them.
		c := l.LeaseConfig()
		c.Group, c.Identity, c.OnStartedLeading = "group", "instance", func(context.Context, lease.Leadership) {}
		for _, err := range unjoin(c.Validate()) {
			name, msg, _ := strings.Cut(err.Error(), ": ")
			path, ok := leaseKeys[name]
			if !ok {
				path = "leader"
			}
			msg = strings.NewReplacer("renew_every", "renew_interval", "poll_every", "poll_interval").Replace(msg)
			if name == "margin" {
				msg = "the margin (2 × renew_interval) " + msg
			}
			problem, fix, _ := strings.Cut(msg, "; ")
			v.add(path, problem, fix)
		}
	}
	if l.MarkerFile != "" && strings.ContainsRune(l.MarkerFile, 0) {
		v.add("leader.marker_file", "contains a NUL byte", "remove it")
	}
	if l.Tag.Enabled {
		tagText(v, "leader.tag.key", l.Tag.Key, true)
		tagText(v, "leader.tag.value", l.Tag.Value, false)
		tagText(v, "leader.tag.follower_value", l.Tag.FollowerValue, false)
		if l.Tag.FollowerValue != "" && l.Tag.FollowerValue == l.Tag.Value {
			v.add("leader.tag.follower_value", fmt.Sprintf("%q is also the leader's value", l.Tag.Value), "give followers another value, or \"\" to delete the tag from them")
		}
	}
	if len(l.OnElected) > 0 {
		argv(v, "leader.on_elected", l.OnElected, `["/usr/local/bin/became-leader"]`)
	}
	if len(l.OnDemoted) > 0 {
		argv(v, "leader.on_demoted", l.OnDemoted, `["/usr/local/bin/no-longer-leader"]`)
	}
	switch margin := l.Margin(); {
	case l.StopGrace <= 0:
		positive(v, "leader.stop_grace", l.StopGrace, "use a grace such as 2s")
	case l.RenewInterval > 0 && time.Duration(l.StopGrace) >= margin:
		v.add("leader.stop_grace", fmt.Sprintf("%s does not fit inside the margin (2 × renew_interval = %s): leader-only work must be gone before a follower could take over", l.StopGrace, Duration(margin)),
			"lower stop_grace, or raise renew_interval (and lease_duration)")
	}
	l.validateJobs(v)
}

// validateTagMode checks mode tag: the tag the agent reads from IMDS, the
// poll interval, the mirrors; the table is optional (presence items for the
// controller's reaper); jobs need a lease.
func (l Leader) validateTagMode(v *validator) {
	if l.Table != "" {
		l.validateTable(v)
	}
	tagText(v, "leader.tag.key", l.Tag.Key, true)
	if l.Tag.Key != "" && !imdsTagKey(l.Tag.Key) {
		v.add("leader.tag.key", fmt.Sprintf("%q cannot be read from instance metadata (IMDS shows keys of letters, digits and + - = . , _ : @ only)", l.Tag.Key),
			"use such a key, such as "+DefaultLeaderTagKey)
	}
	if l.Tag.Value == "" {
		v.add("leader.tag.value", "missing (the value that marks the leader)", "give it, such as "+DefaultLeaderTagValue)
	}
	tagText(v, "leader.tag.value", l.Tag.Value, false)
	if l.PollInterval <= 0 {
		positive(v, "leader.poll_interval", l.PollInterval, "leave it out for the default")
	}
	if l.MarkerFile != "" && strings.ContainsRune(l.MarkerFile, 0) {
		v.add("leader.marker_file", "contains a NUL byte", "remove it")
	}
	if len(l.OnElected) > 0 {
		argv(v, "leader.on_elected", l.OnElected, `["/usr/local/bin/became-leader"]`)
	}
	if len(l.OnDemoted) > 0 {
		argv(v, "leader.on_demoted", l.OnDemoted, `["/usr/local/bin/no-longer-leader"]`)
	}
	if l.StopGrace <= 0 {
		positive(v, "leader.stop_grace", l.StopGrace, "use a grace such as 2s")
	}
	if len(l.Jobs) > 0 {
		v.add("leader.jobs", "need mode lease (scheduled jobs use the lease's fencing token and the run ledger; a tag has neither)",
			"use mode lease, or run the jobs from cron with lifeguard run --leader-only")
	}
}

// imdsTagKey reports whether instance metadata can show a tag key.
func imdsTagKey(k string) bool {
	if k == "." || k == ".." || k == "_index" {
		return false
	}
	for _, c := range []byte(k) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("+-=.,_:@", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// validateTable checks the table name as CreateTable does.
func (l Leader) validateTable(v *validator) {
	const fix = "give the lease table's name, such as lifeguard-leases (create it with lifeguard leader create-table)"
	if l.Table == "" {
		v.add("leader.table", "missing (mode lease keeps its lease in a DynamoDB table)", fix)
		return
	}
	ok := len(l.Table) >= 3 && len(l.Table) <= 255
	for _, r := range l.Table {
		ok = ok && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
	}
	if !ok {
		v.add("leader.table", fmt.Sprintf("%q is not a DynamoDB table name", l.Table), "use 3 to 255 letters, digits, '_', '-' and '.'")
	}
}

func (l Leader) validateJobs(v *validator) {
	seen := map[string]string{}
	for i, j := range l.Jobs {
		jp := fmt.Sprintf("leader.jobs[%d]", i)
		if prev, dup := seen[j.Name]; dup && j.Name != "" {
			v.add(jp+".name", fmt.Sprintf("%q is also the name of %s", j.Name, prev), "give each job its own name")
		}
		seen[j.Name] = jp
		for _, k := range slices.Sorted(maps.Keys(j.Env)) {
			kp := keyPath(jp+".env", k)
			switch {
			case k == "" || strings.ContainsAny(k, "=\x00"):
				v.add(kp, "is not an environment variable name", "use letters, digits and _")
			case strings.HasPrefix(k, "LIFEGUARD_"):
				v.add(kp, "LIFEGUARD_* names are reserved for the variables lifeguard sets", "rename the variable")
			}
		}
		// The scheduler's own rules: each problem names its field.
		err := j.scheduled().Validate()
		if err == nil {
			continue
		}
		if inner := errors.Unwrap(err); inner != nil {
			err = inner // drop `job "name": `, the path says it
		}
		for _, e := range unjoin(err) {
			field, msg, ok := strings.Cut(e.Error(), ": ")
			path := jp + "." + field
			if !ok || strings.ContainsAny(field, " \"") {
				path, msg = jp, e.Error()
			}
			if field == "env" {
				continue // checked above, per variable
			}
			problem, fix, _ := strings.Cut(msg, "; ")
			v.add(path, problem, fix)
		}
	}
}

// tagText checks an EC2 tag key (required) or value.
func tagText(v *validator, path, s string, key bool) {
	limit := 256
	if !key {
		limit = 255
	}
	switch {
	case key && s == "":
		v.add(path, "missing", "give the tag's key, such as "+DefaultLeaderTagKey)
	case key && strings.HasPrefix(strings.ToLower(s), "aws:"):
		v.add(path, fmt.Sprintf("%q starts with aws:, which AWS reserves", s), "use another prefix, such as app:")
	case len([]rune(s)) > limit:
		v.add(path, fmt.Sprintf("is %d characters long", len([]rune(s))), fmt.Sprintf("use at most %d", limit))
	}
}

// unjoin returns the errors joined in err (err itself when it is not a
// join; nil for nil).
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
