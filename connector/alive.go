package connector

import (
	"syscall"

	"github.com/pingora-go/pingora/internal/sock"
)

// peekFunc returns the function given to syscall.RawConn.Read to look at one byte of a pooled
// connection without consuming it or blocking. It is made once per connection, so that checking
// a connection before reuse allocates nothing.
func (pc *pooledConn) peekFunc() func(fd uintptr) bool {
	return func(fd uintptr) bool {
		_, errno := sock.Peek(fd, &pc.peekBuf[0])
		// Nothing to read means the peer has neither closed nor spoken; end of stream,
		// unsolicited data or an error make the connection unusable.
		pc.alive = errno == syscall.EAGAIN
		return true
	}
}
