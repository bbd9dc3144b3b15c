//go:build !linux

package faults

import (
	"net"
	"time"
)

// waitAcked gives the peer a moment to receive what was written: systems other than Linux
// have no portable way to ask how much of it is still queued.
func waitAcked(_ *net.TCPConn, bound time.Duration) { time.Sleep(min(bound, 20*time.Millisecond)) }
