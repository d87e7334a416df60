package awscloud

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
)

// Session is the SDK configuration lifeguard's commands share; every call
// made through it is counted (Calls).
type Session struct {
	cfg   aws.Config
	calls *CallCounter
}

// NewSession loads the SDK's default configuration (environment, shared
// files, the instance role through IMDS), instrumented to count every
// call; the region comes from IMDS when nothing else sets it, as on an
// instance.
func NewSession(ctx context.Context) (Session, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return Session{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	calls := NewCallCounter()
	calls.Instrument(&cfg)
	OwnRequestBodies(&cfg)
	if cfg.Region == "" {
		region, err := NewMetadata(cfg).Region(ctx)
		if err != nil {
			return Session{}, fmt.Errorf("no region configured and none from instance metadata (set AWS_REGION): %w", err)
		}
		cfg.Region = region
	}
	return Session{cfg: cfg, calls: calls}, nil
}

// Calls returns the count of the calls made through the session
// (lifeguard_aws_calls_total), to be registered where metrics are served.
func (s Session) Calls() *CallCounter { return s.calls }

// AutoScaling returns the Auto Scaling adapter.
func (s Session) AutoScaling() *AutoScaling { return NewAutoScaling(s.cfg) }

// Metadata returns the IMDS reader.
func (s Session) Metadata() *Metadata { return NewMetadata(s.cfg) }
