package jobs_test

import (
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/jobs"
	"github.com/lifeguardhq/lifeguard/internal/jobs/jobstest"
)

func TestLedgerFake(t *testing.T) {
	jobstest.RunLedgerTests(t, func(*testing.T) jobs.Ledger { return &jobstest.Ledger{} })
}
