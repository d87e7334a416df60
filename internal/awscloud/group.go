package awscloud

import (
	"context"

	"github.com/lifeguardhq/lifeguard/internal/agent"
	"github.com/lifeguardhq/lifeguard/internal/lifecycle"
)

// Group adapts AutoScaling to the agent's Group interface.
type Group struct{ a *AutoScaling }

var _ agent.Group = Group{}

// NewGroup returns the agent's view of Auto Scaling.
func NewGroup(a *AutoScaling) Group { return Group{a: a} }

// Instance returns the instance's group and lifecycle state.
func (g Group) Instance(ctx context.Context, instanceID string) (agent.Membership, error) {
	group, state, err := g.a.InstanceMembership(ctx, instanceID)
	if err != nil {
		return agent.Membership{}, err
	}
	return agent.Membership{Group: group, LifecycleState: state}, nil
}

// Hooks returns the group's lifecycle hooks.
func (g Group) Hooks(ctx context.Context, group string) ([]lifecycle.Hook, error) {
	return g.a.LifecycleHooks(ctx, group)
}
