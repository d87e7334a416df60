package controller_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/controller"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// m builds a member known to EC2 and running.
func m(id, state string, age int, tag ...string) controller.Member {
	mb := controller.Member{ID: id, LifecycleState: state, Health: "Healthy", Known: true, Running: true, Launched: t0.Add(-time.Duration(age) * time.Minute)}
	if len(tag) > 0 {
		mb.Tag, mb.HasTag = tag[0], true
	}
	return mb
}

func unhealthy(mb controller.Member) controller.Member { mb.Health = "Unhealthy"; return mb }
func unknown(mb controller.Member) controller.Member   { mb.Known, mb.Running = false, false; return mb }

func set(id string) controller.Write              { return controller.Write{Instance: id, Value: "true"} }
func del(id string) controller.Write              { return controller.Write{Instance: id, Delete: true} }
func val(id, v string) controller.Write           { return controller.Write{Instance: id, Value: v} }
func ws(w ...controller.Write) []controller.Write { return w }

func TestDecide(t *testing.T) {
	def := controller.Settings{}
	follower := controller.Settings{Key: "leader", Value: "true", FollowerValue: "false"}
	tests := []struct {
		name        string
		s           controller.Settings
		ms          []controller.Member
		leader      string
		kept        bool
		first, then []controller.Write
	}{
		{name: "empty group has no leader", s: def},
		{name: "settled group writes nothing", s: def, ms: []controller.Member{m("i-1", "InService", 9, "true"), m("i-2", "InService", 5)}, leader: "i-1", kept: true},
		{name: "the oldest InService member is elected, first", s: def,
			ms:     []controller.Member{m("i-2", "InService", 5), m("i-1", "InService", 9), m("i-3", "Pending:Wait", 20)},
			leader: "i-1", first: ws(set("i-1"))},
		{name: "equal launch times choose the lowest id", s: def,
			ms: []controller.Member{m("i-b", "InService", 5), m("i-a", "InService", 5)}, leader: "i-a", first: ws(set("i-a"))},
		{name: "a launching member leads when none is InService", s: def,
			ms: []controller.Member{m("i-1", "Pending:Wait", 1), m("i-2", "Pending", 2)}, leader: "i-2", first: ws(set("i-2"))},
		{name: "a launching holder gives way to an InService member: the new tag first", s: def,
			ms:     []controller.Member{m("i-1", "Pending:Proceed", 1, "true"), m("i-2", "InService", 2)},
			leader: "i-2", first: ws(set("i-2")), then: ws(del("i-1"))},
		{name: "a younger InService holder is kept", s: def,
			ms: []controller.Member{m("i-old", "InService", 50), m("i-new", "InService", 1, "true")}, leader: "i-new", kept: true},
		{name: "terminating leader: the successor is tagged first, the old tag removed then", s: def,
			ms:     []controller.Member{m("i-1", "Terminating:Wait", 9, "true"), m("i-2", "InService", 5)},
			leader: "i-2", first: ws(set("i-2")), then: ws(del("i-1"))},
		{name: "unhealthy leader: the successor is tagged first, then the old tag removed", s: def,
			ms:     []controller.Member{unhealthy(m("i-1", "InService", 9, "true")), m("i-2", "InService", 5)},
			leader: "i-2", first: ws(set("i-2")), then: ws(del("i-1"))},
		{name: "standby leader: the successor is tagged first, then the old tag removed", s: def,
			ms:     []controller.Member{m("i-1", "Standby", 9, "true"), m("i-2", "InService", 5)},
			leader: "i-2", first: ws(set("i-2")), then: ws(del("i-1"))},
		{name: "two holders: the oldest is kept, the other removed", s: def,
			ms:     []controller.Member{m("i-1", "InService", 1, "true"), m("i-2", "InService", 5, "true"), m("i-3", "InService", 9)},
			leader: "i-2", kept: true, first: ws(del("i-1"))},
		{name: "a value other than the leader's does not lead (and is left alone)", s: def,
			ms: []controller.Member{m("i-1", "InService", 9, "false"), m("i-2", "InService", 5)}, leader: "i-1", first: ws(set("i-1"))},
		{name: "an instance EC2 does not know yet is never tagged", s: def,
			ms: []controller.Member{unknown(m("i-1", "Pending", 1))}},
		{name: "no candidate: the last holder's tag is removed", s: def,
			ms: []controller.Member{m("i-1", "Terminating", 9, "true"), unhealthy(m("i-2", "InService", 5))}, first: ws(del("i-1"))},
		{name: "follower values: written on every other live member", s: follower,
			ms:     []controller.Member{m("i-1", "InService", 9, "true"), m("i-2", "InService", 5), m("i-3", "InService", 4, "false"), m("i-4", "Terminating:Wait", 3)},
			leader: "i-1", kept: true, first: ws(val("i-2", "false"))},
		{name: "follower values: the old leader gets false after the new one is tagged", s: follower,
			ms:     []controller.Member{m("i-1", "Terminating:Wait", 9, "true"), m("i-2", "InService", 5, "false")},
			leader: "i-2", first: ws(val("i-2", "true")), then: ws(val("i-1", "false"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := controller.Decide(tt.s, tt.ms)
			if p.Leader != tt.leader || p.Kept != tt.kept {
				t.Errorf("leader = %q kept %v, want %q kept %v (%s)", p.Leader, p.Kept, tt.leader, tt.kept, p.Reason)
			}
			if !reflect.DeepEqual(p.First, tt.first) || !reflect.DeepEqual(p.Then, tt.then) {
				t.Errorf("writes = %+v then %+v, want %+v then %+v", p.First, p.Then, tt.first, tt.then)
			}
		})
	}
}

// TestDecideConverges applies each plan to the members and checks that a
// second Decide writes nothing and exactly one candidate holds the tag.
func TestDecideConverges(t *testing.T) {
	groups := [][]controller.Member{
		{m("i-1", "InService", 1, "true"), m("i-2", "InService", 2, "true"), m("i-3", "InService", 3, "true")},
		{unhealthy(m("i-1", "InService", 9, "true")), m("i-2", "Pending:Wait", 1), m("i-3", "Terminating", 3, "true")},
		{m("i-1", "Standby", 9, "true"), m("i-2", "InService", 1, "true")},
	}
	for i, ms := range groups {
		p := controller.Decide(controller.Settings{}, ms)
		for _, w := range p.Writes() {
			for j := range ms {
				if ms[j].ID == w.Instance {
					ms[j].Tag, ms[j].HasTag = w.Value, !w.Delete
				}
			}
		}
		if again := controller.Decide(controller.Settings{}, ms); !again.Empty() || again.Leader != p.Leader {
			t.Errorf("group %d: second plan %+v after %+v", i, again, p)
		}
		n := 0
		for _, mb := range ms {
			if mb.HasTag && mb.Tag == "true" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("group %d: %d holders after the plan, want 1", i, n)
		}
	}
}

func TestSettingsValidate(t *testing.T) {
	for _, tt := range []struct {
		s    controller.Settings
		want string
	}{
		{controller.Settings{Key: "aws:x", Value: "1"}, "starts with aws:"},
		{controller.Settings{Key: "leader", Value: "true", FollowerValue: "true"}, "also the leader's value"},
	} {
		if err := tt.s.Validate(); err == nil || !contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.s, err, tt.want)
		}
	}
	if err := (controller.Settings{}).WithDefaults().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
