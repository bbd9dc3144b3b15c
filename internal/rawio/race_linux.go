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

// sysWritev writes a, then b once a went whole: two write(2) calls, which the detector sees.
func sysWritev(fd uintptr, a, b []byte) (int, syscall.Errno) {
	n := 0
	if len(a) > 0 {
		w, e := sysWrite(fd, a)
		if e != 0 || w < len(a) {
			return w, e
		}
		n = w
	}
	if len(b) == 0 {
		return n, 0
	}
	w, e := sysWrite(fd, b)
	if e != 0 {
		if n > 0 {
			return n, 0 // a went out: report it; the next call meets the error again
		}
		return 0, e
	}
	return n + w, 0
}

func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if err != nil && !errors.As(err, &e) {
		return syscall.EIO
	}
	return e
}
