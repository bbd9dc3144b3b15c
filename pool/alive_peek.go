//go:build unix && !aix

package pool

import "syscall"

// peekAlive peeks at one byte of the socket behind rc without blocking.
// err reports a failure to reach the socket at all (such as an expired read
// deadline), alive the outcome of the peek.
func peekAlive(rc syscall.RawConn) (alive bool, err error) {
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		for {
			_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			if rerr == syscall.EINTR {
				continue
			}
			// Only "nothing to read yet" is alive: a byte is unsolicited
			// data, zero bytes is end of stream, anything else an error.
			alive = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK
			return true
		}
	})
	return alive, err
}
