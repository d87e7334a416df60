package config_test

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/config"
	"github.com/lifeguardhq/lifeguard/internal/jobs"
)

func TestLeaderValidate(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"off by default, nothing else checked", "leader: {table: x, stop_grace: 1h}", nil},
		{"lease with a table passes", "leader: {mode: lease, table: leases}", nil},
		{"lease needs a table", "leader: {mode: lease}",
			[]string{"leader.table: missing (mode lease keeps its lease in a DynamoDB table); give the lease table's name, such as lifeguard-leases (create it with lifeguard leader create-table)"}},
		{"tag mode needs no table", "leader: {mode: tag, marker_file: /run/leader}", nil},
		{"tag mode with a table for presence", "leader: {mode: tag, table: leases, tag: {key: leader, value: 'true'}}", nil},
		{"tag mode: a key IMDS cannot show", "leader: {mode: tag, tag: {key: 'is leader'}}",
			[]string{`leader.tag.key: "is leader" cannot be read from instance metadata (IMDS shows keys of letters, digits and + - = . , _ : @ only); use such a key, such as app:isLeader`}},
		{"tag mode: no jobs", "leader: {mode: tag, jobs: [{name: r, schedule: '@hourly', command: [/bin/r]}]}",
			[]string{"leader.jobs: need mode lease (scheduled jobs use the lease's fencing token and the run ledger; a tag has neither); use mode lease, or run the jobs from cron with lifeguard run --leader-only"}},
		{"tag mode: empty value", "leader: {mode: tag, tag: {value: ''}}",
			[]string{"leader.tag.value: missing (the value that marks the leader); give it, such as true"}},
		{"unknown mode", "leader: {mode: raft}",
			[]string{`leader.mode: "raft" is not one of off, lease, tag`}},
		{"bad table name", "leader: {mode: lease, table: 'my table'}",
			[]string{`leader.table: "my table" is not a DynamoDB table name; use 3 to 255 letters, digits, '_', '-' and '.'`}},
		{"renewal leaves no room before the margin", "leader: {mode: lease, table: leases, lease_duration: 3s, renew_interval: 1s, stop_grace: 1s}",
			[]string{"leader.renew_interval: 1s must be shorter than lease minus margin (3s - 2s = 1s), or the leader gives up before it renews; lower renew_interval or margin, or raise lease"}},
		{"margin longer than the lease", "leader: {mode: lease, table: leases, lease_duration: 3s, renew_interval: 2s}",
			[]string{"leader.renew_interval: the margin (2 × renew_interval) 4s must be shorter than lease (3s): the leader gives up at lease minus margin after its last renewal"}},
		{"followers poll too seldom", "leader: {mode: lease, table: leases, poll_interval: 6s}",
			[]string{"leader.poll_interval: 6s must be at most half the lease (10s), so that followers notice an expired or released lease in time"}},
		{"zero timing", "leader: {mode: lease, table: leases, poll_interval: 0s}",
			[]string{"leader.poll_interval: must be more than 0s; leave it out for the default"}},
		{"short timings for tests pass", "leader: {mode: lease, table: leases, lease_duration: 3s, renew_interval: 500ms, poll_interval: 500ms, stop_grace: 500ms}", nil},
		{"stop grace outside the margin", "leader: {mode: lease, table: leases, stop_grace: 4s}",
			[]string{"leader.stop_grace: 4s does not fit inside the margin (2 × renew_interval = 4s): leader-only work must be gone before a follower could take over; lower stop_grace, or raise renew_interval (and lease_duration)"}},
		{"empty on_elected program", "leader: {mode: lease, table: leases, on_elected: ['']}",
			[]string{"leader.on_elected[0]: empty; give the program to run"}},
		{"tag key reserved by AWS", "leader: {mode: lease, table: leases, tag: {enabled: true, key: 'aws:leader'}}",
			[]string{`leader.tag.key: "aws:leader" starts with aws:, which AWS reserves; use another prefix, such as app:`}},
		{"tag follower value equal to the leader's", "leader: {mode: lease, table: leases, tag: {enabled: true, key: leader, follower_value: 'true'}}",
			[]string{`leader.tag.follower_value: "true" is also the leader's value; give followers another value, or "" to delete the tag from them`}},
		{"job problems name the job's field", `leader:
  mode: lease
  table: leases
  jobs:
    - {name: report, schedule: "61 * * * *", command: [/bin/report]}
    - {name: report, schedule: "@every 1s", command: [/bin/x], missed_window: 1m, env: {LIFEGUARD_JOB: x}}
    - {name: "bad name", schedule: "@hourly", time_zone: Mars/Olympus, command: [/bin/x], overlap: queue}
`, []string{
			`leader.jobs[0].schedule: "61 * * * *": end of range (61) above maximum (59): 61; use five fields (minute hour day-of-month month day-of-week), six with seconds first, or a descriptor such as @hourly or @every 30s`,
			`leader.jobs[1].name: "report" is also the name of leader.jobs[0]; give each job its own name`,
			"leader.jobs[1].env.LIFEGUARD_JOB: LIFEGUARD_* names are reserved for the variables lifeguard sets; rename the variable",
			`leader.jobs[1].missed_window: 1m0s is set but missed is "skip"; set missed: run_once, or remove missed_window`,
			`leader.jobs[2].name: "bad name" is not a job name; use letters, digits, '_', '.' and '-' (at most 100, starting with a letter or digit)`,
			`leader.jobs[2].time_zone: unknown time zone "Mars/Olympus"; use an IANA name such as Europe/Paris or UTC`,
			`leader.jobs[2].overlap: "queue" is not a policy; use "skip" (leave the previous run alone) or "stop" (stop it first)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.ParseAgent([]byte(tt.yaml))
			got := messages(t, err)
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n got  %q\n want %q", got, tt.want)
			}
		})
	}
}

func TestLeaderDefaultsAndConversion(t *testing.T) {
	a, err := config.ParseAgent([]byte(`leader:
  mode: lease
  table: leases
  jobs:
    - name: report
      schedule: "30 2 * * *"
      time_zone: Europe/Paris
      command: [/usr/local/bin/report]
      env: {B: "2", A: "1"}
      timeout: 20m
      missed: run_once
      missed_window: 1h
`))
	if err != nil {
		t.Fatal(err)
	}
	l := a.Leader
	if l.LeaseDuration != config.Duration(10*time.Second) || l.RenewInterval != config.Duration(2*time.Second) ||
		l.PollInterval != config.Duration(time.Second) || l.StopGrace != config.Duration(2*time.Second) || l.MarkerFile != "" {
		t.Errorf("defaults = %+v; want lease 10s, renew 2s, poll 1s, stop_grace 2s, no marker", l)
	}
	if l.Tag != (config.LeaderTag{Key: "app:isLeader", Value: "true"}) {
		t.Errorf("tag = %+v; want off, app:isLeader=true, followers untagged", l.Tag)
	}
	if lc := l.LeaseConfig(); lc.Lease != 10*time.Second || lc.RenewEvery != 2*time.Second || lc.PollEvery != time.Second || lc.Margin != 4*time.Second {
		t.Errorf("LeaseConfig = %+v", lc)
	}
	want := []jobs.ScheduledJob{{
		Name: "report", Schedule: "30 2 * * *", TimeZone: "Europe/Paris", Command: []string{"/usr/local/bin/report"},
		Env: []string{"A=1", "B=2"}, Timeout: 20 * time.Minute, Overlap: jobs.OverlapSkip, Missed: jobs.MissedRunOnce, MissedWindow: time.Hour,
	}}
	if got := l.ScheduledJobs(); !reflect.DeepEqual(got, want) {
		t.Errorf("ScheduledJobs = %+v\nwant %+v", got, want)
	}
}
