package lifecycle_test

import (
	"strings"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

func TestGlobalTimeout(t *testing.T) {
	for _, c := range []struct {
		name             string
		heartbeatTimeout time.Duration
		want             time.Duration
	}{
		{"minimum timeout gives 3000 s", 30 * time.Second, 3000 * time.Second},
		{"documented example 300 s gives 30000 s", 300 * time.Second, 30000 * time.Second},
		{"exactly 1728 s reaches 48 h", 1728 * time.Second, 48 * time.Hour},
		{"default 3600 s is capped at 48 h", time.Hour, 48 * time.Hour},
		{"maximum 7200 s is capped at 48 h", 2 * time.Hour, 48 * time.Hour},
		{"unknown timeout gives 0", 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := (lifecycle.Hook{HeartbeatTimeout: c.heartbeatTimeout}).GlobalTimeout(); got != c.want {
				t.Errorf("GlobalTimeout() = %v, want %v", got, c.want)
			}
		})
	}
}

func TestHeartbeatInterval(t *testing.T) {
	for _, c := range []struct {
		name             string
		heartbeatTimeout time.Duration
		configured       time.Duration
		want             time.Duration
	}{
		{"default is half the heartbeat timeout", time.Hour, 0, 30 * time.Minute},
		{"configured interval wins", time.Hour, 10 * time.Minute, 10 * time.Minute},
		{"configured interval as long as the timeout is ignored", time.Hour, time.Hour, 30 * time.Minute},
		{"negative configured interval is ignored", 30 * time.Second, -time.Second, 15 * time.Second},
		{"unknown timeout uses half AWS's minimum", 0, 0, 15 * time.Second},
		{"unknown timeout keeps a configured interval", 0, time.Minute, time.Minute},
		{"tiny timeout stays positive", time.Nanosecond, 0, time.Nanosecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := lifecycle.HeartbeatInterval(lifecycle.Hook{HeartbeatTimeout: c.heartbeatTimeout}, c.configured)
			if got != c.want {
				t.Errorf("HeartbeatInterval = %v, want %v", got, c.want)
			}
		})
	}
}

func TestDeadline(t *testing.T) {
	seen := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	a := lifecycle.Action{Seen: seen, Hook: lifecycle.Hook{HeartbeatTimeout: 30 * time.Second}}
	if got, want := lifecycle.Deadline(a), seen.Add(3000*time.Second); !got.Equal(want) {
		t.Errorf("Deadline = %v, want %v", got, want)
	}
}

// safeName reports whether s uses only the POSIX portable file name
// characters.
func safeName(s string) bool {
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return s != "" && s != "." && s != ".."
}

func TestKeyString(t *testing.T) {
	t.Run("known transitions read well", func(t *testing.T) {
		k := lifecycle.Key{Instance: instanceID, Transition: lifecycle.TransitionTerminating, Hook: "drain/web_1"}
		if got, want := k.String(), "i-0123456789abcdef0.terminating.drain_2fweb_5f1"; got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
		k.Transition = lifecycle.TransitionLaunching
		if got, want := k.String(), "i-0123456789abcdef0.launching.drain_2fweb_5f1"; got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	})

	keys := []lifecycle.Key{
		{Instance: instanceID, Transition: lifecycle.TransitionTerminating, Hook: "drain"},
		{Instance: instanceID, Transition: lifecycle.TransitionLaunching, Hook: "drain"},
		{Instance: instanceID, Transition: "terminating", Hook: "drain"},
		{Instance: instanceID, Transition: "launching", Hook: "drain"},
		{Instance: "a.b", Transition: "c", Hook: "d"},
		{Instance: "a", Transition: "b.c", Hook: "d"},
		{Instance: "a_2e", Transition: "x", Hook: "y"},
		{Instance: "a.", Transition: "x", Hook: "y"},
		{Instance: "..", Transition: "..", Hook: ".."},
		{Instance: "../../etc", Transition: lifecycle.TransitionTerminating, Hook: "passwd"},
		{Instance: "i-1", Transition: lifecycle.TransitionTerminating, Hook: "with space/and:colon\\back"},
		{Instance: "i-1", Transition: lifecycle.TransitionTerminating, Hook: "ünïcödé\x00nul"},
		{Instance: "i-1", Transition: lifecycle.TransitionTerminating, Hook: strings.Repeat("h", 255)},
		{Instance: "i-1", Transition: lifecycle.TransitionTerminating, Hook: strings.Repeat("h", 254) + "i"},
		{Instance: "i-1", Transition: lifecycle.TransitionTerminating, Hook: strings.Repeat("/", 255)},
		{},
	}
	t.Run("names are safe, bounded and distinct", func(t *testing.T) {
		seen := map[string]lifecycle.Key{}
		for _, k := range keys {
			s := k.String()
			if !safeName(s) || len(s) > 160 {
				t.Errorf("Key%+v.String() = %q: not a safe file name of at most 160 bytes", k, s)
			}
			if other, dup := seen[s]; dup {
				t.Errorf("keys %+v and %+v share the name %q", other, k, s)
			}
			seen[s] = k
		}
	})
	t.Run("step ids are safe and distinct", func(t *testing.T) {
		ids := []lifecycle.StepID{
			{Key: keys[0], Action: "A", Step: "b.c"},
			{Key: keys[0], Action: "A.b", Step: "c"},
			{Key: keys[0], Action: "B", Step: "b.c"},
			{Key: keys[12], Action: "A", Step: strings.Repeat("s", 300)},
		}
		seen := map[string]bool{}
		for _, id := range ids {
			s := id.String()
			if !safeName(s) || len(s) > 160 {
				t.Errorf("%+v.String() = %q: not a safe file name of at most 160 bytes", id, s)
			}
			if seen[s] {
				t.Errorf("step id name %q used twice", s)
			}
			seen[s] = true
		}
	})
}

func TestActionValidate(t *testing.T) {
	valid := newAction(time.Hour)
	for _, c := range []struct {
		name   string
		change func(a *lifecycle.Action)
		want   string // substring of the error; "" for none
	}{
		{"valid action", func(*lifecycle.Action) {}, ""},
		{"action without instance", func(a *lifecycle.Action) { a.InstanceID = "" }, "no instance id"},
		{"action without hook", func(a *lifecycle.Action) { a.Hook.Name = "" }, "no hook name"},
		{"unknown transition", func(a *lifecycle.Action) { a.Hook.Transition = "autoscaling:EC2_INSTANCE_REBOOTING" }, "transition"},
		{"unknown heartbeat timeout", func(a *lifecycle.Action) { a.Hook.HeartbeatTimeout = 0 }, "DescribeLifecycleHooks"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := valid
			c.change(&a)
			err := a.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("Validate() = %v, want an error mentioning %q", err, c.want)
			}
		})
	}
}
