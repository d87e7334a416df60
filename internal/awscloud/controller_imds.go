package awscloud

import (
	"context"
	"fmt"

	"github.com/lifeguardhq/lifeguard/internal/agent"
)

var _ agent.LeaderTagReader = (*Metadata)(nil)

// InstanceTag reads this instance's tag key from IMDS
// (tags/instance/<key>); found is false when the instance has no such
// tag. It returns an error wrapping agent.ErrNoMetadataTags when IMDS has
// no tags category at all (InstanceMetadataTags is not enabled).
func (m *Metadata) InstanceTag(ctx context.Context, key string) (value string, found bool, err error) {
	v, ok, err := m.get(ctx, "tags/instance/"+key)
	if err != nil || ok {
		return v, ok, err
	}
	if _, ok, err := m.get(ctx, "tags/instance"); err != nil {
		return "", false, err
	} else if !ok {
		return "", false, fmt.Errorf("read tags/instance/%s: %w", key, agent.ErrNoMetadataTags)
	}
	return "", false, nil
}
