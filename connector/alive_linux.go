package connector

import (
	"syscall"
	"unsafe"
)

// peekFunc returns the function given to syscall.RawConn.Read to look at one byte of a pooled
// connection without consuming it or blocking. It is made once per connection, so that checking
// a connection before reuse allocates nothing.
func (pc *pooledConn) peekFunc() func(fd uintptr) bool {
	return func(fd uintptr) bool {
		for {
			n, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&pc.peekBuf[0])), 1,
				syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
			switch {
			case errno == syscall.EINTR:
				continue
			case errno == syscall.EAGAIN:
				pc.alive = true // nothing to read: the peer has neither closed nor spoken
			default:
				// End of stream, unsolicited data or an error: not reusable.
				pc.alive = false
			}
			_ = n
			return true
		}
	}
}
