package sandbox_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
	"github.com/lifeguardhq/lifeguard/internal/sandbox/world"
)

// TestInstanceCallsCountEachInstanceOwnCalls: an SDK call through one
// instance's API port and a GET on its IMDS count once each, for that
// instance only; calls on the main endpoint count for none. The admin API
// shows the same counts.
func TestInstanceCallsCountEachInstanceOwnCalls(t *testing.T) {
	srv, endpoint := start(t, sandbox.Config{})
	infos := launch(t, srv, asgClient(endpoint, 1), 2)
	caller, other := infos[0], infos[1]
	for id, c := range srv.InstanceCalls() {
		if c != (sandbox.CallCount{}) {
			t.Fatalf("before any call, %s has %+v", id, c)
		}
	}

	if _, err := asgClient(caller.API, 1).DescribeAutoScalingGroups(context.Background(), &autoscaling.DescribeAutoScalingGroupsInput{}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(caller.IMDS + "/latest/meta-data/instance-id")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // 401 without a token: a call all the same
	if _, err := asgClient(endpoint, 1).DescribeAutoScalingGroups(context.Background(), &autoscaling.DescribeAutoScalingGroupsInput{}); err != nil {
		t.Fatal(err)
	}

	want := map[string]sandbox.CallCount{caller.ID: {API: 1, IMDS: 1}, other.ID: {}}
	got := srv.InstanceCalls()
	if len(got) != len(want) || got[caller.ID] != want[caller.ID] || got[other.ID] != want[other.ID] {
		t.Errorf("InstanceCalls() = %+v, want %+v", got, want)
	}

	resp, err = http.Get(endpoint + "/_sandbox/calls")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var admin map[string]map[string]int64
	if err := json.NewDecoder(resp.Body).Decode(&admin); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || admin[caller.ID]["api"] != 1 || admin[caller.ID]["imds"] != 1 ||
		admin[other.ID]["api"] != 0 || admin[other.ID]["imds"] != 0 || len(admin) != 2 {
		t.Errorf("GET /_sandbox/calls: %d %v, want %s 1 api and 1 imds call, %s none", resp.StatusCode, admin, caller.ID, other.ID)
	}
}

// TestTerminatedInstanceIsForgottenWithItsCalls: a terminated instance's
// call counts stay listed while EC2 shows the instance, and go with it.
func TestTerminatedInstanceIsForgottenWithItsCalls(t *testing.T) {
	srv, endpoint := start(t, sandbox.Config{})
	infos := launch(t, srv, asgClient(endpoint, 1), 2)
	if _, err := asgClient(infos[0].API, 1).DescribeAutoScalingGroups(context.Background(), &autoscaling.DescribeAutoScalingGroupsInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.World().TerminateInGroup(infos[0].ID, new(false)); err != nil {
		t.Fatal(err)
	}
	for seq := int64(0); ; {
		if ins, _ := srv.World().EC2().Instances([]string{infos[0].ID}, nil); len(ins) == 1 && ins[0].EC2State == world.EC2Terminated {
			break
		}
		evs, err := srv.World().EventsAfter(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		seq = evs[len(evs)-1].Seq
	}
	if c := srv.InstanceCalls()[infos[0].ID]; c.API != 1 {
		t.Errorf("terminated %s, still shown: %+v, want its 1 API call", infos[0].ID, c)
	}
	if err := srv.AdvanceClock(2 * time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.World().EC2().Instances(nil, nil); err != nil { // EC2 forgets what it no longer shows
		t.Fatal(err)
	}
	calls := srv.InstanceCalls()
	if _, ok := calls[infos[0].ID]; ok {
		t.Errorf("2 hours after its termination: %v, want %s forgotten", calls, infos[0].ID)
	}
	if _, ok := calls[infos[1].ID]; !ok {
		t.Errorf("%v: %s, still running, is missing", calls, infos[1].ID)
	}
}
