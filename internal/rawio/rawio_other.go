//go:build !linux

package rawio

import "syscall"

const supported = false

// readFd is never called: Reset refuses every connection off Linux.
func (c *Conn) readFd(uintptr) bool {
	c.rerr = syscall.ENOSYS
	return true
}

// writevFd is never called: Reset refuses every connection off Linux.
func (c *Conn) writevFd(uintptr) bool {
	c.werr = syscall.ENOSYS
	return true
}

// writeReadFd is never called: Reset refuses every connection off Linux.
func (c *Conn) writeReadFd(uintptr) bool {
	c.wrDone, c.wrErr = true, syscall.ENOSYS
	return true
}

// quietFd is never called: Reset refuses every connection off Linux.
func (c *Conn) quietFd(uintptr) bool { return true }

// holdFd is never called: Reset refuses every connection off Linux.
func (c *Conn) holdFd(uintptr) bool { return true }
