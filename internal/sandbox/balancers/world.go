package balancers

import "github.com/lifeguardhq/lifeguard/internal/sandbox/awsproto"

// The methods of this file are what the world (Auto Scaling) needs: the
// world calls them with its own lock held, so none calls the world, and
// done callbacks run without this owner's lock.

// CheckTargetGroups returns AWS's error for the first ARN that does not
// exist (nil if all do).
func (b *Balancers) CheckTargetGroups(arns []string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range arns {
		if _, ok := b.tgs[a]; !ok {
			return awsproto.Errorf("TargetGroupNotFound", "One or more target groups not found")
		}
	}
	return nil
}

// CheckLoadBalancers returns AWS's error for the first classic load
// balancer name that does not exist.
func (b *Balancers) CheckLoadBalancers(names []string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range names {
		if _, ok := b.classics[n]; !ok {
			return classicNotFound(n)
		}
	}
	return nil
}

// Register registers the instance (at its private IP) with the target
// groups, at each group's port, and with the classic load balancers.
// Unknown names are skipped.
func (b *Balancers) Register(targetGroups, loadBalancers []string, instanceID, privateIP string) {
	b.mu.Lock()
	var calls []func()
	for _, a := range targetGroups {
		if tg, ok := b.tgs[a]; ok {
			calls = append(calls, b.registerLocked(tg, Target{ID: instanceID}, privateIP)...)
		}
	}
	for _, n := range loadBalancers {
		if c, ok := b.classics[n]; ok {
			calls = append(calls, b.registerInstanceLocked(c, instanceID, privateIP)...)
		}
	}
	// Registering a draining instance again ends its draining: its done
	// callbacks run, but not here, where the world holds its lock.
	if len(calls) > 0 && !b.closed {
		later := calls
		b.wg.Go(func() { run(later) })
		calls = nil
	}
	b.mu.Unlock()
	run(calls)
}

// Deregister starts deregistration from all of them; done is called once
// (without the owner's lock) when draining has finished everywhere.
func (b *Balancers) Deregister(targetGroups, loadBalancers []string, instanceID string, done func()) {
	b.mu.Lock()
	var members []func(func()) []func()
	for _, a := range targetGroups {
		tg, ok := b.tgs[a]
		if !ok {
			continue
		}
		for _, m := range tg.targets {
			if m.id == instanceID {
				members = append(members, func(f func()) []func() { return b.deregisterLocked(tg, m, f) })
			}
		}
	}
	for _, n := range loadBalancers {
		c, ok := b.classics[n]
		if !ok {
			continue
		}
		if m := c.find(instanceID); m != nil {
			members = append(members, func(f func()) []func() { return b.deregisterInstanceLocked(c, m, f) })
		}
	}
	if len(members) == 0 {
		b.mu.Unlock()
		if done != nil {
			done()
		}
		return
	}
	left := len(members)
	one := func() {
		b.mu.Lock()
		left--
		last := left == 0
		b.mu.Unlock()
		if last && done != nil {
			done()
		}
	}
	var calls []func()
	for _, start := range members {
		calls = append(calls, start(one)...)
	}
	b.mu.Unlock()
	run(calls)
}

// Healthy reports the instance's health in all of them: healthy only when
// it is healthy everywhere it is registered; known is false while any is
// still initial. A target group no listener uses does not count against it.
func (b *Balancers) Healthy(targetGroups, loadBalancers []string, instanceID string) (healthy, known bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	healthy, known = true, true
	for _, a := range targetGroups {
		tg, ok := b.tgs[a]
		if !ok {
			continue
		}
		found := false
		for _, m := range tg.targets {
			if m.id != instanceID {
				continue
			}
			found = true
			switch m.state {
			case StateInitial:
				known = false
			case StateHealthy, StateUnused:
			default:
				healthy = false
			}
		}
		if !found {
			healthy = false
		}
	}
	for _, n := range loadBalancers {
		c, ok := b.classics[n]
		if !ok {
			continue
		}
		m := c.find(instanceID)
		switch {
		case m == nil || m.state == StateDraining || m.state == StateUnhealthy:
			healthy = false
		case m.state == StateInitial:
			known = false
		}
	}
	return healthy, known
}
