package faults

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// waitAcked waits up to bound until c's send queue holds no unacknowledged bytes.
func waitAcked(c *net.TCPConn, bound time.Duration) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	for end := time.Now().Add(bound); time.Now().Before(end); time.Sleep(time.Millisecond) {
		queued := 0
		rc.Control(func(fd uintptr) { queued, _ = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) })
		if queued <= 0 {
			return
		}
	}
}
