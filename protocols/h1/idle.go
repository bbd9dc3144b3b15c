package h1

import (
	"net"
	"syscall"
	"time"

	"github.com/pingora-go/pingora/internal/sock"
)

// IdleWaiter waits until a kept-alive connection has something to read (the next request, or
// the client closing it) without reading and without holding a buffer. A server that waits
// this way between requests can give its session and buffers back to a pool while the
// connection sits idle, which keeps the memory of an idle connection small.
type IdleWaiter struct {
	conn   net.Conn
	rc     syscall.RawConn
	wait   func(fd uintptr) bool
	peeked bool // this Wait's peek found nothing: a later call of wait follows a wake-up
	errno  syscall.Errno
	buf    [1]byte
}

// NewIdleWaiter returns a waiter for conn. Connections without a file descriptor of their own
// (TLS, net.Pipe) cannot be waited on this way: Wait returns at once for them, and the caller's
// read then does the waiting.
func NewIdleWaiter(conn net.Conn) *IdleWaiter {
	w := &IdleWaiter{conn: conn}
	if sc, ok := conn.(syscall.Conn); ok && sock.Supported {
		if rc, err := sc.SyscallConn(); err == nil {
			w.rc = rc
			w.wait = func(fd uintptr) bool {
				if w.peeked {
					// The poller woke the wait: the socket turned readable or was
					// closed. The read that follows tells which, without a second peek.
					return true
				}
				_, w.errno = sock.Peek(fd, &w.buf[0])
				w.peeked = w.errno == syscall.EAGAIN
				return !w.peeked
			}
		}
	}
	return w
}

// Wait blocks until the connection is readable, closed by the peer, or deadline passes (an
// error wrapping os.ErrDeadlineExceeded). Setting a read deadline in the past from another
// goroutine wakes it too. Readable and closed both return nil: the next read tells which.
func (w *IdleWaiter) Wait(deadline time.Time) error {
	if w.rc == nil {
		return nil
	}
	if err := w.conn.SetReadDeadline(deadline); err != nil {
		return err
	}
	w.peeked = false
	return w.rc.Read(w.wait)
}
