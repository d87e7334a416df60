package awscloud_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lifeguardhq/lifeguard/internal/awscloud"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// counts gathers c's counts as "op outcome service" → value.
func counts(t *testing.T, c *awscloud.CallCounter) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "lifeguard_aws_calls_total" {
			t.Errorf("unexpected metric %s", f.GetName())
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			out[strings.Join(labels, " ")] = m.GetCounter().GetValue()
		}
	}
	return out
}

func TestCallCounter(t *testing.T) {
	e := setup(t)
	calls := awscloud.NewCallCounter()
	cfg := e.cfg.Copy()
	calls.Instrument(&cfg)
	calls.Instrument(&cfg) // twice: each call still counted once
	a := awscloud.NewAutoScaling(cfg)
	ctx := context.Background()

	hooks, err := a.LifecycleHooks(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	act := lifecycle.Action{InstanceID: e.instance, Group: "g", Hook: hooks[0]}
	if err := a.Heartbeat(ctx, act); err != nil {
		t.Fatal(err)
	}
	if err := a.Complete(ctx, act, lifecycle.Continue); err != nil {
		t.Fatal(err)
	}
	if err := a.Complete(ctx, act, lifecycle.Continue); !errors.Is(err, lifecycle.ErrNoActiveAction) {
		t.Fatalf("complete again: %v, want ErrNoActiveAction", err)
	}
	if err := a.Complete(ctx, lifecycle.Action{InstanceID: e.instance, Group: "nope", Hook: hooks[0]}, lifecycle.Continue); err == nil {
		t.Fatal("complete in an unknown group succeeded")
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := a.InstanceMembership(canceled, e.instance); !errors.Is(err, context.Canceled) {
		t.Fatalf("describe on a cancelled context: %v", err)
	}
	var imdsURL string
	for _, in := range e.srv.Instances() {
		if in.ID == e.instance {
			imdsURL = in.IMDS
		}
	}
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imdsURL)
	mdCfg := metadataConfig(t)
	calls.Instrument(&mdCfg)
	m := awscloud.NewMetadata(mdCfg)
	for range 2 {
		if _, err := m.InstanceID(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.SpotInterruption(ctx); err != nil {
		t.Fatal(err)
	}

	want := map[string]float64{
		"DescribeLifecycleHooks ok autoscaling":                1,
		"RecordLifecycleActionHeartbeat ok autoscaling":        1,
		"CompleteLifecycleAction ok autoscaling":               1,
		"CompleteLifecycleAction no_active_action autoscaling": 1,
		"CompleteLifecycleAction error autoscaling":            1,
		"DescribeAutoScalingInstances canceled autoscaling":    1,
		"imds:api/token ok imds":                               1, // the token is reused
		"imds:instance-id ok imds":                             2,
		"imds:spot/instance-action not_found imds":             1, // 404: no notice (the adapter returns nil)
	}
	if got := counts(t, calls); !maps.Equal(got, want) {
		t.Errorf("counts:\n%v\nwant\n%v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		for k, v := range got {
			if want[k] != v {
				t.Errorf("%s = %v, want %v", k, v, want[k])
			}
		}
	}
}
