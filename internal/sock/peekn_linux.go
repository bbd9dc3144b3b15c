package sock

import (
	"syscall"
	"unsafe"
)

// PeekN looks at up to len(buf) bytes of the socket fd without consuming them and without
// blocking, like Peek. n is the number of bytes waiting (at most len(buf)), 0 at end of
// stream; errno is EAGAIN when nothing has arrived yet. buf must not be empty.
func PeekN(fd uintptr, buf []byte) (n int, errno syscall.Errno) {
	for {
		r, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		return int(r), e
	}
}
