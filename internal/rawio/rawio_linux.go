package rawio

import (
	"os"
	"syscall"

	"github.com/pingora-go/pingora/internal/sock"
)

const supported = true

// readFd reads once into c.rp: the function handed to syscall.RawConn.Read, which waits for
// the socket to become readable when it returns false. It and writevFd make their system
// calls through sysRead and sysWritev: raw ones (raw_linux.go), or package syscall's in race
// builds (race_linux.go).
func (c *Conn) readFd(fd uintptr) bool {
	for {
		n, e := sysRead(fd, c.rp[:min(len(c.rp), MaxChunk)])
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		case 0:
			c.rn = int(n)
		default:
			c.rerr = e
		}
		return true
	}
}

// writevFd writes c.va and c.vb from c.vn on: the function handed to syscall.RawConn.Write,
// which waits for room when it returns false. Each writev(2) writes at most MaxChunk bytes;
// between them the goroutine can be preempted as any other.
func (c *Conn) writevFd(fd uintptr) bool {
	total := len(c.va) + len(c.vb)
	for c.vn < total {
		a, b := c.va, c.vb
		if c.vn < len(a) {
			a = a[c.vn:]
		} else {
			a, b = nil, b[c.vn-len(a):]
		}
		a = a[:min(len(a), MaxChunk)]
		b = b[:min(len(b), MaxChunk-len(a))]
		n, e := sysWritev(fd, a, b)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			// The runtime waits for room, under the write timeout if one is set.
			return !c.armWait()
		case 0:
			c.vn += n
		default:
			c.werr = e
			return true
		}
	}
	return true
}

// quietFd is Quiet's function for syscall.RawConn.Read: one peek, never a wait.
func (c *Conn) quietFd(fd uintptr) bool {
	_, e := sock.Peek(fd, &c.peekBuf[0])
	c.quiet = e == syscall.EAGAIN
	return true
}

// writeReadFd is WriteRead's function for syscall.RawConn.Read. Its first call checks the
// socket (with wrCheck) and writes c.wrw, waiting for room on the write side when the socket
// buffer is full, then returns false: the runtime waits for the socket to turn readable. Later
// calls read as readFd.
func (c *Conn) writeReadFd(fd uintptr) bool {
	if c.wrDone {
		return c.readFd(fd)
	}
	c.wrDone = true
	if c.wrCheck {
		// Data (1), the end of the stream (0 without an error) or a socket error: the peer
		// is gone or out of step, and the message must not go out on this connection.
		if _, e := sock.Peek(fd, &c.peekBuf[0]); e != syscall.EAGAIN {
			c.wrErr = ErrNotQuiet
			return true
		}
	}
	// The message goes out through writevFd's loop; when the socket buffer fills, the rest
	// waits for room as Writev does, on the write side.
	c.va, c.vb, c.vn, c.werr, c.wfail = nil, c.wrw, 0, 0, nil
	done := c.writevFd(fd)
	rest, werr := c.wrw[c.vn:], c.werr
	c.vb = nil
	switch {
	case c.wfail != nil:
		c.disarm()
		c.wrErr = c.wfail
		return true
	case werr != 0:
		c.wrErr = os.NewSyscallError("writev", werr)
		return true
	case !done:
		if _, err := c.Writev(nil, rest); err != nil {
			c.wrErr = err
			return true
		}
	}
	return false
}

// holdFd is Hold's function for syscall.RawConn.Read: it runs Hold's f with c held.
func (c *Conn) holdFd(fd uintptr) bool {
	c.heldFd, c.held = fd, true
	defer func() { c.held = false }()
	return c.holdFn()
}
