// Package sock holds small socket operations the standard library does not offer.
package sock

import (
	"syscall"
	"unsafe"
)

// Supported reports whether Peek works on this system.
const Supported = true

// Peek looks at one byte of the socket fd without consuming it and without blocking:
// recv(MSG_PEEK|MSG_DONTWAIT), retried on EINTR. n is 1 when data waits, 0 at end of stream;
// errno is EAGAIN when nothing has arrived yet. buf must point to one byte that outlives the
// call (a field of a heap object, so that calling Peek allocates nothing).
func Peek(fd uintptr, buf *byte) (n int, errno syscall.Errno) {
	for {
		r, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(buf)), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		return int(r), e
	}
}
