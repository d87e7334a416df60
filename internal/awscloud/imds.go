package awscloud

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/lifeguardhq/lifeguard/internal/agent"
)

var _ agent.Metadata = (*Metadata)(nil)

// Metadata reads this instance's metadata over IMDSv2 only: the items
// with a reader of its own (metadataPoll), the region (from the instance
// identity document) with the SDK's client.
type Metadata struct {
	c    *imds.Client
	poll *metadataPoll
}

// NewMetadata returns an IMDS reader using the SDK configuration cfg (its
// endpoint comes from AWS_EC2_METADATA_SERVICE_ENDPOINT when set, its
// reads are counted where cfg is instrumented with a CallCounter). It
// never falls back to IMDSv1.
func NewMetadata(cfg aws.Config) *Metadata {
	var o imds.Options
	c := imds.NewFromConfig(cfg, func(opts *imds.Options) {
		opts.EnableFallback = aws.FalseTernary
		o = *opts
	})
	return &Metadata{c: c, poll: newMetadataPoll(o, callCounterOf(cfg))}
}

// InstanceID returns the instance's id.
func (m *Metadata) InstanceID(ctx context.Context) (string, error) {
	s, _, err := m.get(ctx, "instance-id")
	return s, err
}

// Region returns the instance's region.
func (m *Metadata) Region(ctx context.Context) (string, error) {
	out, err := m.c.GetRegion(ctx, &imds.GetRegionInput{})
	if err != nil {
		return "", fmt.Errorf("read region from IMDS: %w", err)
	}
	return out.Region, nil
}

// TargetLifecycleState returns autoscaling/target-lifecycle-state, or ""
// while IMDS has none (404).
func (m *Metadata) TargetLifecycleState(ctx context.Context) (string, error) {
	s, found, err := m.poll.get(ctx, "autoscaling/target-lifecycle-state", lifecycleStates)
	if !found {
		return "", err
	}
	return strings.TrimSpace(s), err
}

// LifeCycle returns instance-life-cycle (on-demand, spot, …), or "" when
// IMDS has none (404).
func (m *Metadata) LifeCycle(ctx context.Context) (string, error) {
	s, found, err := m.get(ctx, "instance-life-cycle")
	if !found {
		return "", err
	}
	return strings.TrimSpace(s), err
}

// SpotInterruption returns the spot/instance-action notice, or nil while
// there is none (404).
func (m *Metadata) SpotInterruption(ctx context.Context) (*agent.SpotNotice, error) {
	s, found, err := m.poll.get(ctx, "spot/instance-action", nil)
	if err != nil || !found {
		return nil, err
	}
	var v struct {
		Action string `json:"action"`
		Time   string `json:"time"`
	}
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("decode spot/instance-action %q: %w", s, err)
	}
	t, err := time.Parse(time.RFC3339, v.Time)
	if err != nil {
		return nil, fmt.Errorf("decode spot/instance-action time %q: %w", v.Time, err)
	}
	return &agent.SpotNotice{Action: v.Action, Time: t}, nil
}

// get reads a metadata path; found is false (with a nil error) on 404.
func (m *Metadata) get(ctx context.Context, path string) (string, bool, error) {
	return m.poll.get(ctx, path, nil)
}
