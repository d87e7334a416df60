package awscloud

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
	"github.com/aws/smithy-go"

	"github.com/lifeguardhq/lifeguard/internal/lb"
)

// ELB registers instances with classic load balancers
// (RegisterInstancesWithLoadBalancer, DeregisterInstancesFromLoadBalancer,
// DescribeInstanceHealth). Its zero value is not usable; call NewELB.
type ELB struct {
	c *elasticloadbalancing.Client
}

var _ lb.Registrar = (*ELB)(nil)

// NewELB returns the classic load balancer adapter using the SDK
// configuration cfg.
func NewELB(cfg aws.Config) *ELB { return &ELB{c: elasticloadbalancing.NewFromConfig(cfg)} }

// ELB returns the classic load balancer adapter.
func (s Session) ELB() *ELB { return NewELB(s.cfg) }

// Register registers instance with the load balancer t.Name.
func (e *ELB) Register(ctx context.Context, instance string, t lb.Target) error {
	_, err := e.c.RegisterInstancesWithLoadBalancer(ctx, &elasticloadbalancing.RegisterInstancesWithLoadBalancerInput{
		LoadBalancerName: aws.String(t.Name), Instances: []elbtypes.Instance{{InstanceId: aws.String(instance)}},
	})
	if err != nil {
		return fmt.Errorf("register instances with load balancer: %w", elbError(err))
	}
	return nil
}

// Deregister deregisters instance from the load balancer; with connection
// draining on, in-flight requests finish within its timeout.
func (e *ELB) Deregister(ctx context.Context, instance string, t lb.Target) error {
	_, err := e.c.DeregisterInstancesFromLoadBalancer(ctx, &elasticloadbalancing.DeregisterInstancesFromLoadBalancerInput{
		LoadBalancerName: aws.String(t.Name), Instances: []elbtypes.Instance{{InstanceId: aws.String(instance)}},
	})
	if err != nil {
		return fmt.Errorf("deregister instances from load balancer: %w", elbError(err))
	}
	return nil
}

// deregistering is how DescribeInstanceHealth describes an instance whose
// connections are draining.
const deregistering = "deregistration currently in progress"

// Health reads the health of every instance the load balancer lists
// (DescribeInstanceHealth without a filter: an instance it does not list
// is not registered, lb.StateUnused) and maps the instance's: InService is
// lb.StateHealthy, OutOfService lb.StateUnhealthy, Unknown
// lb.StateUnavailable, and any of them described as a deregistration in
// progress lb.StateDraining.
func (e *ELB) Health(ctx context.Context, instance string, t lb.Target) (lb.Health, error) {
	out, err := e.c.DescribeInstanceHealth(ctx, &elasticloadbalancing.DescribeInstanceHealthInput{LoadBalancerName: aws.String(t.Name)})
	if err != nil {
		return lb.Health{}, fmt.Errorf("describe instance health: %w", elbError(err))
	}
	for _, s := range out.InstanceStates {
		if aws.ToString(s.InstanceId) != instance {
			continue
		}
		h := lb.Health{Reason: aws.ToString(s.ReasonCode), Description: aws.ToString(s.Description)}
		switch aws.ToString(s.State) {
		case "InService":
			h.State = lb.StateHealthy
		case "OutOfService":
			h.State = lb.StateUnhealthy
		default:
			h.State = lb.StateUnavailable
		}
		if strings.Contains(strings.ToLower(h.Description), deregistering) {
			h.State = lb.StateDraining
		}
		return h, nil
	}
	return lb.Health{State: lb.StateUnused, Description: "Instance is not registered with the load balancer"}, nil
}

// elbError maps the classic load balancer's errors to lb's, keeping
// AWS's message.
func elbError(err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.ErrorCode() {
	case "LoadBalancerNotFound", "AccessPointNotFound":
		return fmt.Errorf("%w: %s: %w", lb.ErrNotFound, ae.ErrorCode(), err)
	case "InvalidInstance", "InvalidEndPoint":
		return fmt.Errorf("%w: %s: %w", lb.ErrInvalidTarget, ae.ErrorCode(), err)
	}
	return err
}
