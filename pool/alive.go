package pool

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// ConnAlive reports whether an idle network connection can be reused: the
// peer has not closed it and has sent nothing unsolicited. It peeks at one
// byte without blocking and without consuming it: no data yet means alive;
// end of stream, pending data (an HTTP/1.1 server never speaks first) or any
// error means not reusable. A *tls.Conn is checked through its NetConn, so a
// close_notify alert counts as data, and so does any record crypto/tls has
// not read yet, such as a TLS 1.3 session ticket sent after the handshake: a
// TLS connection is ready for the pool once a response has been read on it.
//
// ConnAlive inspects connections that implement syscall.Conn (*net.TCPConn,
// *net.UnixConn) on the platforms that support a non-blocking peek; it
// reports true for any other connection, which it cannot inspect. A read
// deadline left in the past on c is cleared so that it does not read as an
// error. It is meant for idle connections: a concurrent Read on c would make
// it wait for that Read to return.
func ConnAlive(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive, err := peekAlive(rc)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if c.SetReadDeadline(time.Time{}) != nil {
			return false
		}
		alive, err = peekAlive(rc)
	}
	return err == nil && alive
}
