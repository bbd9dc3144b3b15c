//go:build !linux

package connector

import "github.com/pingora-go/pingora/pool"

// peekFunc is nil off Linux: pooledConn.check falls back to pool.ConnAlive.
func (pc *pooledConn) peekFunc() func(fd uintptr) bool { return nil }

var _ = pool.ConnAlive
