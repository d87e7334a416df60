package lease_test

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/lease"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// noWork is leader-only work that does nothing until leadership ends.
func noWork(ctx context.Context, _ lease.Leadership) { <-ctx.Done() }
