package rawio

import "syscall"

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
			return false
		case 0:
			c.vn += n
		default:
			c.werr = e
			return true
		}
	}
	return true
}
