//go:build !linux

// Package park keeps idle connections without a goroutine each; off Linux it parks nothing.
package park

import (
	"errors"
	"net"
	"time"
)

// Supported reports whether parking works on this system.
const Supported = false

// Parker parks nothing off Linux.
type Parker struct{}

// New reports that parking is not supported.
func New() (*Parker, error) { return nil, errors.New("park: not supported on this system") }

// Park never parks.
func (p *Parker) Park(net.Conn, time.Time, func(bool)) bool { return false }

// Len is always 0.
func (p *Parker) Len() int { return 0 }

// Close does nothing.
func (p *Parker) Close() {}
