package sandbox

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/lifeguardhq/lifeguard/internal/sandbox/balancers"
)

// balancersConfig configures the load balancers' owner: instances are
// resolved through the world (without the owner's lock), and in memory the
// health checks go through the in-memory network, where no target
// answers: the data plane needs a listening sandbox.
func (s *Server) balancersConfig() balancers.Config {
	cfg := balancers.Config{
		Region: s.cfg.Region, Account: s.cfg.Account, Seed: s.cfg.Seed,
		Resolve: func(id string) (string, string, bool) {
			is, err := s.world.EC2().Instances([]string{id}, nil)
			if err != nil || len(is) == 0 {
				return "", "", false
			}
			return is[0].PrivateIP, is[0].EC2State, true
		},
	}
	if s.mem != nil {
		cfg.Transport = s.mem
		cfg.Dial = func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("an in-memory sandbox opens no socket")
		}
	}
	return cfg
}

// closeBalancers stops the data plane (requests in flight get 5 s), then
// the owner's health checks and timers.
func (s *Server) closeBalancers() {
	if s.proxy != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.proxy.Shutdown(ctx)
		cancel()
	}
	s.lbs.Close()
}
