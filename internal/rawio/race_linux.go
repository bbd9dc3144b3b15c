//go:build race

package rawio

import (
	"errors"
	"syscall"
)

// Under the race detector, reads and writes go through package syscall: its Read and Write
// tell the detector that a write to a socket happens before the read of what was written, as
// net.Conn's do. Raw system calls would leave that edge out, and a test that hands data over
// a socket, then touches memory the other side touched, would be reported as a race.

func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), p)
	return max(n, 0), errnoOf(err)
}

func sysWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), p)
	return max(n, 0), errnoOf(err)
}

func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if err != nil && !errors.As(err, &e) {
		return syscall.EIO
	}
	return e
}
