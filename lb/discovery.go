package lb

import (
	"context"
	"slices"
	"time"
)

// Discovery finds the backends a LoadBalancer should use: a static list,
// DNS, or a registry such as Consul or Kubernetes that users plug in.
//
// Discover returns the whole current set and how long it stays valid (a
// DNS TTL); zero leaves the next refresh to Service's UpdateInterval. An
// error keeps the previous set in place. Discover must return when ctx ends.
type Discovery interface {
	Discover(ctx context.Context) (backends []Backend, ttl time.Duration, err error)
}

// DiscoveryFunc adapts a function to a Discovery.
type DiscoveryFunc func(ctx context.Context) ([]Backend, time.Duration, error)

// Discover calls f.
func (f DiscoveryFunc) Discover(ctx context.Context) ([]Backend, time.Duration, error) {
	return f(ctx)
}

// Static is a fixed list of backends (the reference's discovery::Static).
type Static []Backend

// Discover returns a copy of the list, with no expiry.
func (s Static) Discover(context.Context) ([]Backend, time.Duration, error) {
	return slices.Clone(s), 0, nil
}
