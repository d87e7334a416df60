package awscloud

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"

	"github.com/lifeguardhq/lifeguard/internal/lb"
)

// ELBv2 registers instances with ELBv2 target groups (RegisterTargets,
// DeregisterTargets, DescribeTargetHealth). Its zero value is not usable;
// call NewELBv2.
type ELBv2 struct {
	c *elasticloadbalancingv2.Client
}

var _ lb.Registrar = (*ELBv2)(nil)

// NewELBv2 returns the target group adapter using the SDK configuration cfg.
func NewELBv2(cfg aws.Config) *ELBv2 { return &ELBv2{c: elasticloadbalancingv2.NewFromConfig(cfg)} }

// ELBv2 returns the target group adapter.
func (s Session) ELBv2() *ELBv2 { return NewELBv2(s.cfg) }

func targetDescription(instance string, t lb.Target) []elbv2types.TargetDescription {
	d := elbv2types.TargetDescription{Id: aws.String(instance)}
	if t.Port != 0 {
		d.Port = aws.Int32(int32(t.Port))
	}
	return []elbv2types.TargetDescription{d}
}

// Register registers instance with the target group t.Name on t.Port (the
// target group's port when 0).
func (e *ELBv2) Register(ctx context.Context, instance string, t lb.Target) error {
	_, err := e.c.RegisterTargets(ctx, &elasticloadbalancingv2.RegisterTargetsInput{
		TargetGroupArn: aws.String(t.Name), Targets: targetDescription(instance, t),
	})
	if err != nil {
		return fmt.Errorf("register targets: %w", elbv2Error(err))
	}
	return nil
}

// Deregister deregisters instance from the target group; the target then
// drains for the group's deregistration delay.
func (e *ELBv2) Deregister(ctx context.Context, instance string, t lb.Target) error {
	_, err := e.c.DeregisterTargets(ctx, &elasticloadbalancingv2.DeregisterTargetsInput{
		TargetGroupArn: aws.String(t.Name), Targets: targetDescription(instance, t),
	})
	if err != nil {
		return fmt.Errorf("deregister targets: %w", elbv2Error(err))
	}
	return nil
}

// Health returns the instance's target health in the target group, as
// DescribeTargetHealth reports it.
func (e *ELBv2) Health(ctx context.Context, instance string, t lb.Target) (lb.Health, error) {
	out, err := e.c.DescribeTargetHealth(ctx, &elasticloadbalancingv2.DescribeTargetHealthInput{
		TargetGroupArn: aws.String(t.Name), Targets: targetDescription(instance, t),
	})
	if err != nil {
		return lb.Health{}, fmt.Errorf("describe target health: %w", elbv2Error(err))
	}
	for _, d := range out.TargetHealthDescriptions {
		if d.Target == nil || aws.ToString(d.Target.Id) != instance || d.TargetHealth == nil {
			continue
		}
		if t.Port != 0 && d.Target.Port != nil && int(*d.Target.Port) != t.Port {
			continue
		}
		return lb.Health{
			State:       lb.State(d.TargetHealth.State),
			Reason:      string(d.TargetHealth.Reason),
			Description: aws.ToString(d.TargetHealth.Description),
		}, nil
	}
	return lb.Health{}, fmt.Errorf("describe target health: no description of %s in %s", instance, t)
}

// elbv2Error maps ELBv2's errors to lb's, keeping AWS's message.
func elbv2Error(err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.ErrorCode() {
	case "TargetGroupNotFound":
		return fmt.Errorf("%w: %s: %w", lb.ErrNotFound, ae.ErrorCode(), err)
	case "InvalidTarget":
		return fmt.Errorf("%w: %s: %w", lb.ErrInvalidTarget, ae.ErrorCode(), err)
	}
	return err
}
