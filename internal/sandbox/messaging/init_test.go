package messaging_test

import (
	"testing"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/messaging"
)

// TestPatternsCompile compiles every pattern the package defers to its
// first use: one that does not compile would otherwise panic only when a
// request first needs it.
func TestPatternsCompile(t *testing.T) {
	for i, p := range messaging.Patterns {
		if re := p(); re == nil || re != p() {
			t.Errorf("pattern %d: compiled %v, and not once", i, re)
		}
	}
}
