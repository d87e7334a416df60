package controller_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/controller"
)

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestReap(t *testing.T) {
	now := t0
	grace := 2 * time.Minute
	r := controller.ReapSettings{Grace: grace}
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	tests := []struct {
		name string
		ws   []controller.Waiting
		want []controller.Reaping
	}{
		{name: "a launch whose agent never announced itself is abandoned after the grace",
			ws:   []controller.Waiting{{Instance: "i-1", State: "Pending:Wait", Since: ago(grace)}},
			want: []controller.Reaping{{Instance: "i-1", State: "Pending:Wait", Result: "ABANDON"}}},
		{name: "a termination whose agent went silent is continued",
			ws:   []controller.Waiting{{Instance: "i-1", State: "Terminating:Wait", Since: ago(time.Hour), Renewed: ago(grace + time.Second)}},
			want: []controller.Reaping{{Instance: "i-1", State: "Terminating:Wait", Result: "CONTINUE"}}},
		{name: "a live agent is never reaped",
			ws: []controller.Waiting{{Instance: "i-1", State: "Terminating:Wait", Since: ago(time.Hour), Renewed: ago(grace - time.Second)}}},
		{name: "an action seen for less than the grace waits (its agent may be booting)",
			ws: []controller.Waiting{{Instance: "i-1", State: "Pending:Wait", Since: ago(grace - time.Second)}}},
		{name: "an agent silent for the grace is dead however recently the action was seen",
			ws:   []controller.Waiting{{Instance: "i-1", State: "Terminating:Wait", Since: ago(time.Second), Renewed: ago(grace)}},
			want: []controller.Reaping{{Instance: "i-1", State: "Terminating:Wait", Result: "CONTINUE"}}},
		{name: "other states are not actions",
			ws: []controller.Waiting{{Instance: "i-1", State: "InService", Since: ago(time.Hour)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := controller.Reap(r, now, tt.ws); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Reap = %+v, want %+v", got, tt.want)
			}
		})
	}
	t.Run("configured results", func(t *testing.T) {
		got := controller.Reap(controller.ReapSettings{Grace: grace, Launch: "CONTINUE", Terminate: "ABANDON"}, now,
			[]controller.Waiting{{Instance: "i-1", State: "Pending:Wait", Since: ago(grace)}, {Instance: "i-2", State: "Terminating:Wait", Since: ago(grace)}})
		want := []controller.Reaping{{Instance: "i-1", State: "Pending:Wait", Result: "CONTINUE"}, {Instance: "i-2", State: "Terminating:Wait", Result: "ABANDON"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Reap = %+v, want %+v", got, want)
		}
	})
}
