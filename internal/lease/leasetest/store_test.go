package leasetest_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/lifeguardhq/lifeguard/internal/lease"
	"github.com/lifeguardhq/lifeguard/internal/lease/leasetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStoreConformance(t *testing.T) {
	leasetest.RunStoreTests(t, func(*testing.T) lease.Store { return &leasetest.Store{} })
}

func TestRosterConformance(t *testing.T) {
	leasetest.RunRosterTests(t, func(*testing.T) lease.Roster { return &leasetest.Store{} })
}
