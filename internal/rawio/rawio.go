// Package rawio reads and writes a plain TCP or unix socket with raw system calls, still
// waiting for readiness and honouring deadlines through the runtime's network poller. It works
// on Linux; elsewhere New returns nil and callers use the net.Conn.
//
// A read or write through net.Conn tells the scheduler that the thread enters a system call
// that may block. On a non-blocking socket it never blocks, but the bookkeeping costs time on
// every call, and a call that runs long (a loopback write runs the receiver's network stack
// inline) lets the system monitor hand the processor to another thread, which costs thread
// wake-ups and context switches. nginx's event loop pays for neither. A raw call keeps the
// processor for its few microseconds instead. Calls are bounded in size (MaxChunk), so that
// one never holds the processor for long.
package rawio

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// MaxChunk bounds the bytes of one read or write system call, which bounds how long a raw
// call can hold the processor.
const MaxChunk = 256 << 10

// Conn does the reads and writes of one socket. Make it once (it holds the functions handed to
// syscall.RawConn, made once so that a call allocates nothing) and point it at each new
// connection with Reset. One read and one write may run at the same time.
type Conn struct {
	rc syscall.RawConn

	rp    []byte
	rn    int
	rerr  syscall.Errno
	readF func(fd uintptr) bool

	// WriteRead's message, checked for and written by the first call of writeReadF; then it
	// reads as readF does.
	wrw        []byte
	wrCheck    bool
	wrDone     bool // the first call ran
	wrErr      error
	peekBuf    [1]byte
	writeReadF func(fd uintptr) bool

	quiet  bool
	quietF func(fd uintptr) bool

	// Hold's function and state: while held, Read reads heldFd without waiting.
	holdFn func() bool
	heldFd uintptr
	held   bool
	holdF  func(fd uintptr) bool

	// Writev's pair: va then vb, of which vn bytes are written.
	va, vb  []byte
	vn      int
	werr    syscall.Errno
	writevF func(fd uintptr) bool

	// The write timeout (SetWriteTimeout): nc is the connection whose write deadline a write
	// that has to wait arms (wArmed) and clears once done; wfail is the error that ended the
	// write instead (an interrupt seen once the deadline was armed).
	nc       net.Conn
	wtimeout time.Duration
	wstop    *atomic.Bool
	wArmed   bool
	wfail    error
}

// New returns a Conn for conn, or nil when conn is not a plain TCP or unix socket (TLS and
// other wrappers do their own reads and writes).
func New(conn net.Conn) *Conn {
	c := &Conn{}
	if !c.Reset(conn) {
		return nil
	}
	return c
}

// Reset points c at conn and reports whether conn is a plain TCP or unix socket. When it is
// not, c must not be used until a Reset that reports true.
func (c *Conn) Reset(conn net.Conn) bool {
	c.rc, c.nc = nil, nil
	var sc syscall.Conn
	switch t := conn.(type) {
	case *net.TCPConn:
		sc = t
	case *net.UnixConn:
		sc = t
	default:
		return false
	}
	if !supported {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	c.rc, c.nc = rc, conn
	c.wtimeout, c.wstop = 0, nil
	if c.readF == nil {
		c.readF, c.writevF, c.writeReadF, c.quietF = c.readFd, c.writevFd, c.writeReadFd, c.quietFd
		c.holdF = c.holdFd
	}
	return true
}

// Read reads into p as net.Conn.Read does: it waits for data until the connection's read
// deadline, and returns io.EOF at the end of the stream.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rp, c.rn, c.rerr = p, 0, 0
	var err error
	if c.held {
		// Inside Hold: one read, no wait.
		if !c.readFd(c.heldFd) {
			c.rp = nil
			return 0, ErrWouldBlock
		}
	} else {
		err = c.rc.Read(c.readF)
	}
	c.rp = nil
	switch {
	case err != nil:
		return 0, err
	case c.rerr != 0:
		return 0, os.NewSyscallError("read", c.rerr)
	case c.rn == 0:
		return 0, io.EOF
	}
	return c.rn, nil
}

// Write writes all of p as net.Conn.Write does, waiting for room until the connection's write
// deadline; it returns how much was written.
func (c *Conn) Write(p []byte) (int, error) { return c.Writev(nil, p) }

// SetWriteTimeout bounds how long each later write may wait for room in the socket buffer:
// a write that finds the buffer full arms the connection's write deadline timeout ahead as it
// begins to wait, and clears it once done, so that the deadline is never left behind. A write
// the socket takes at once, nearly every one, reads no clock and sets no timer, where arming
// a deadline before each write costs both. Zero, the default, leaves the write deadline to the
// caller. With stop set, a write that has to wait fails with os.ErrDeadlineExceeded when stop
// reads true once its deadline is armed: together with setting stop and then a write deadline
// in the past, from any goroutine, this interrupts a write whether or not it has begun to
// wait.
func (c *Conn) SetWriteTimeout(timeout time.Duration, stop *atomic.Bool) {
	c.wtimeout, c.wstop = timeout, stop
}

// armWait arms the write timeout for a write that has to wait (see SetWriteTimeout). It
// reports false, with c.wfail set, when the write is to fail instead.
func (c *Conn) armWait() bool {
	if c.wtimeout <= 0 || c.wArmed {
		return true
	}
	c.wArmed = true
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.wtimeout)); err != nil {
		c.wfail = err
		return false
	}
	if c.wstop != nil && c.wstop.Load() {
		c.wfail = os.ErrDeadlineExceeded
		return false
	}
	return true
}

// disarm clears the write deadline that a write which had to wait armed.
func (c *Conn) disarm() {
	if c.wArmed {
		c.wArmed = false
		c.nc.SetWriteDeadline(time.Time{})
	}
}

// Writev writes all of a and then all of b, as Write(a) then Write(b) would, but with one
// writev(2) while both fit the socket: a buffered head and a large body go out in one system
// call, and the body is not copied behind the head first. Write is Writev with a empty: one of
// them at a time. Inside Hold, f's writes go straight to the held socket (see Hold).
func (c *Conn) Writev(a, b []byte) (int, error) {
	if len(a)+len(b) == 0 {
		return 0, nil
	}
	c.va, c.vb, c.vn, c.werr, c.wfail = a, b, 0, 0, nil
	var err error
	if !c.held || !c.writevFd(c.heldFd) {
		err = c.rc.Write(c.writevF)
	}
	c.disarm()
	n := c.vn
	c.va, c.vb = nil, nil
	switch {
	case c.wfail != nil:
		return n, c.wfail
	case err != nil:
		return n, err
	case c.werr != 0:
		return n, os.NewSyscallError("writev", c.werr)
	}
	return n, nil
}

// ErrWouldBlock is what Read returns inside Hold when nothing waits to be read.
var ErrWouldBlock = errors.New("rawio: nothing to read yet")

// Hold runs f inside the socket's wait for readability, on the calling goroutine: f runs at
// once, and again each time the socket turns readable, until it returns true or the wait
// fails (the read deadline passes, the connection is closed) with Hold's error. While f runs,
// Read on c does not wait: it returns ErrWouldBlock when nothing is there, after which f
// returns false to wait for more.
//
// This saves the read that finds nothing. A loop of Read calls tries a read each time before
// it waits, because each call's wait starts afresh and a readiness that arrived before it is
// forgotten. Within Hold the wait is one: readiness that arrives after f's last read wakes it,
// even when it arrives while f is still running. So f can serve a request (the answer, other
// sockets' waits) and return false without a read when its last read drained the socket.
//
// While Hold runs, only f may read c, and only f may write it: a write from f goes out at once
// on the socket Hold holds, without the runtime's write lock and readiness reset that a write
// outside costs, and waits for room as usual when the socket buffer is full. Closing the
// connection from another goroutine waits until f returns. f must not close it.
func (c *Conn) Hold(f func() bool) error {
	c.holdFn = f
	err := c.rc.Read(c.holdF)
	c.holdFn = nil
	return err
}

// Quiet reports whether the socket has nothing to read and no pending error: the peer has
// neither closed the connection nor sent anything. It does not wait, and reports false when
// the read deadline has passed.
func (c *Conn) Quiet() bool {
	c.quiet = false
	err := c.rc.Read(c.quietF)
	return err == nil && c.quiet
}

// ErrNotQuiet is WriteRead's error when the check before the write finds the peer has closed
// the connection, reset it or sent something unasked: nothing was written.
var ErrNotQuiet = errors.New("connection closed by the peer or not quiet before the write")

// WriteRead writes all of w, then reads into r as Read does: the request and the wait for its
// answer. Where Write then Read would try a read at once, which on a socket whose peer has yet
// to answer fails (EAGAIN) and costs a system call, WriteRead waits for the socket to turn
// readable right after the write, and reads once it has. This is safe because the wait starts
// before the write: data that arrives after it, the answer among it, wakes the wait.
//
// With check, the socket is first checked, in the same wait, to have nothing to read: a peek
// that finds data, the end of the stream or an error writes nothing and fails with
// ErrNotQuiet. This is the check of a pooled connection before its reuse; made here rather
// than before WriteRead, it leaves no moment between the check and the start of the wait in
// which a peer's half-close could arrive unseen.
//
// w may overlap r: all of w is written before anything is read.
//
// werr is the error of the check or of the write, when one failed; rerr that of the read.
// With r empty, WriteRead only writes w, unchecked.
func (c *Conn) WriteRead(check bool, w, r []byte) (n int, werr, rerr error) {
	if len(r) == 0 {
		_, err := c.Write(w)
		return 0, err, nil
	}
	c.rp, c.rn, c.rerr = r, 0, 0
	c.wrw, c.wrCheck, c.wrDone, c.wrErr = w, check, false, nil
	err := c.rc.Read(c.writeReadF)
	c.rp, c.wrw = nil, nil
	switch {
	case c.wrErr != nil:
		return 0, c.wrErr, nil
	case !c.wrDone:
		// The read could not start (a passed deadline, a closed connection): nothing written.
		return 0, err, nil
	case err != nil:
		return 0, nil, err
	case c.rerr != 0:
		return 0, nil, os.NewSyscallError("read", c.rerr)
	case c.rn == 0:
		return 0, nil, io.EOF
	}
	return c.rn, nil, nil
}
