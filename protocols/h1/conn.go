package h1

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pingora-go/pingora/internal/rawio"
	"github.com/pingora-go/pingora/perr"
)

// BufferSize is the size of the pooled read and write buffers of a session. A head larger than
// this moves to a larger, unpooled buffer for the one message.
const BufferSize = 16 << 10

// bufPool holds *[BufferSize]byte: array pointers go in and out of the pool without the
// allocation a slice header would cost.
var bufPool = sync.Pool{New: func() any { return new([BufferSize]byte) }}

func getBuf() []byte { return bufPool.Get().(*[BufferSize]byte)[:] }

// ResponseBufferSize is the size of the pooled buffer a client session reads responses into.
// It is twice BufferSize so that a response of up to about 32 KiB, head and body, comes in
// with one read and goes on to the client with one write: a body of 16 KiB with its head is a
// few hundred bytes more than BufferSize, and a buffer of that size would take two reads and
// two writes for it. nginx reads up to its proxy_buffers (8 × 4 KiB by default) per read.
// The buffer is held only while an exchange is in flight.
const ResponseBufferSize = 2 * BufferSize

var respBufPool = sync.Pool{New: func() any { return new([ResponseBufferSize]byte) }}

func getRespBuf() []byte { return respBufPool.Get().(*[ResponseBufferSize]byte)[:] }

// putBuf gives a buffer of either pooled size back to its pool; any other is left to the
// garbage collector.
func putBuf(b []byte) {
	switch cap(b) {
	case BufferSize:
		bufPool.Put((*[BufferSize]byte)(b[:BufferSize]))
	case ResponseBufferSize:
		respBufPool.Put((*[ResponseBufferSize]byte)(b[:ResponseBufferSize]))
	}
}

// reader is a buffered reader over a connection that hands out slices of its buffer.
// buf[r:w] is unread data; buf[:pin] holds the head of the current message, which must stay
// intact while the message is being processed.
type reader struct {
	conn   net.Conn
	sock   *rawio.Conn // conn's socket, read with raw system calls; nil when conn is not one
	buf    []byte
	r, w   int
	pin    int
	source perr.Source
	// timeout bounds each read; 0 means none. deadline, when set, overrides it with an
	// absolute time (used to bound a whole head).
	timeout  time.Duration
	deadline time.Time
	// armed is the read deadline this reader last set for timeout; zero when the
	// connection's deadline is anything else (see coarseDeadline).
	armed time.Time
	// armedAt is the deadline this reader last set from deadline, while it is the
	// connection's: a read with the same deadline does not set it again.
	armedAt time.Time
	// eof records that the peer closed its side.
	eof bool
	// drained records that the last read took less than the room it had: the socket had
	// nothing more at that moment.
	drained bool
	// stopped is set by interrupt, from another goroutine.
	stopped atomic.Bool
	// responses: the reader takes ResponseBufferSize buffers (a client session's).
	responses bool
}

// aLongTimeAgo is a deadline in the past: set on a connection, it fails pending and future
// operations at once.
var aLongTimeAgo = time.Unix(1, 0)

// interrupt makes the reader's pending read and every later one fail with a timeout, from any
// goroutine. Setting the connection's deadline alone could be undone by the reader arming its
// own just after; the flag, stored first and checked once the reader has armed its deadline,
// closes that window: a reader that armed before the flag was set waits on the deadline set
// after it.
func (rd *reader) interrupt() {
	rd.stopped.Store(true)
	rd.conn.SetReadDeadline(aLongTimeAgo)
}

// coarseDeadline returns the deadline to arm for an operation bounded by timeout, or the zero
// time when the one armed (a deadline this session set itself) still gives the operation at
// least timeout. An armed deadline lies timeout×5/4 ahead, so that it is set again only after a
// quarter of the timeout has passed: each read or write gets between timeout and timeout×5/4,
// and a busy connection changes its deadline (a timer update in the runtime) rarely instead of
// on every read and write.
//
// armed comes from time.Now, so it carries a monotonic reading, and time.Until reads only the
// monotonic clock: a check that keeps the armed deadline costs one clock read, where
// time.Now costs two (the wall clock and the monotonic one).
func coarseDeadline(armed time.Time, timeout time.Duration) time.Time {
	if !armed.IsZero() && time.Until(armed) >= timeout {
		return time.Time{}
	}
	return time.Now().Add(timeout + timeout/4)
}

func (rd *reader) buffered() int { return rd.w - rd.r }

// ensureBuf makes sure a buffer is attached.
func (rd *reader) ensureBuf() {
	if rd.buf == nil {
		if rd.responses {
			rd.buf = getRespBuf()
		} else {
			rd.buf = getBuf()
		}
		rd.r, rd.w, rd.pin = 0, 0, 0
	}
}

// release returns the buffer to the pool when nothing unread is in it.
func (rd *reader) release() {
	if rd.buf != nil && rd.r == rd.w {
		putBuf(rd.buf)
		rd.buf = nil
		rd.r, rd.w, rd.pin = 0, 0, 0
	}
}

// discardBuf drops the buffer whatever it holds, for a connection that is closing.
func (rd *reader) discardBuf() {
	if rd.buf != nil {
		putBuf(rd.buf)
		rd.buf = nil
	}
	rd.r, rd.w, rd.pin = 0, 0, 0
}

// startMessage unpins the previous message and moves unread bytes to the front.
func (rd *reader) startMessage() {
	rd.ensureBuf()
	rd.pin = 0
	if rd.r == rd.w {
		rd.r, rd.w = 0, 0
		return
	}
	if rd.r > 0 {
		n := copy(rd.buf, rd.buf[rd.r:rd.w])
		rd.r, rd.w = 0, n
	}
}

// makeRoom ensures there is free space after w, moving unread bytes down to pin when the
// buffer is full and growing it if moving is not enough, up to max bytes of unread data.
func (rd *reader) makeRoom(max int) bool {
	if rd.w < len(rd.buf) {
		return true
	}
	if rd.r > rd.pin {
		n := copy(rd.buf[rd.pin:], rd.buf[rd.r:rd.w])
		rd.r, rd.w = rd.pin, rd.pin+n
		return true
	}
	if len(rd.buf)-rd.pin >= max {
		return false
	}
	size := 2 * len(rd.buf)
	if size-rd.pin > max+1 {
		size = rd.pin + max + 1
	}
	nb := make([]byte, size)
	copy(nb, rd.buf[:rd.w])
	if rd.pin == 0 {
		// Nothing refers into the old buffer yet: it can go back to the pool.
		putBuf(rd.buf)
	}
	rd.buf = nb
	return true
}

// fill reads once from the connection into the free space.
func (rd *reader) fill() error {
	if err := rd.armRead(); err != nil {
		return err
	}
	var n int
	var err error
	space := len(rd.buf) - rd.w
	if rd.sock != nil {
		n, err = rd.sock.Read(rd.buf[rd.w:])
		if err == rawio.ErrWouldBlock {
			return err
		}
	} else {
		n, err = rd.conn.Read(rd.buf[rd.w:])
	}
	rd.drained = n < space
	return rd.afterRead(n, err)
}

// armRead prepares a read: it fails at the end of the stream or after an interrupt, and arms
// the read deadline (the message's, or a coarse one for the per-read timeout).
func (rd *reader) armRead() error {
	if rd.eof {
		return io.EOF
	}
	if !rd.deadline.IsZero() {
		if !rd.deadline.Equal(rd.armedAt) {
			rd.armed, rd.armedAt = time.Time{}, time.Time{}
			if err := rd.conn.SetReadDeadline(rd.deadline); err != nil {
				return rd.wrapErr(err)
			}
			rd.armedAt = rd.deadline
		}
	} else if rd.timeout > 0 {
		if d := coarseDeadline(rd.armed, rd.timeout); !d.IsZero() {
			rd.armedAt = time.Time{}
			if err := rd.conn.SetReadDeadline(d); err != nil {
				return rd.wrapErr(err)
			}
			rd.armed = d
		}
	}
	if rd.stopped.Load() {
		return rd.wrapErr(os.ErrDeadlineExceeded)
	}
	return nil
}

// afterRead accounts for a read of n bytes that ended with err.
func (rd *reader) afterRead(n int, err error) error {
	rd.w += n
	if err != nil {
		if n > 0 && err == io.EOF {
			rd.eof = true
			return nil
		}
		if err == io.EOF {
			rd.eof = true
			return io.EOF
		}
		return rd.wrapErr(err)
	}
	return nil
}

// wrapErr turns a connection read error into a perr error of the reader's source.
func (rd *reader) wrapErr(err error) error {
	return ioError(err, rd.source, false)
}

// ioError classifies a connection error: timeouts become ReadTimedout / WriteTimedout, a reset
// or closed connection ConnectionClosed, others ReadError / WriteError.
func ioError(err error, src perr.Source, write bool) error {
	if _, ok := perr.As(err); ok {
		return err
	}
	t := perr.ReadError
	if write {
		t = perr.WriteError
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		t = perr.ReadTimedout
		if write {
			t = perr.WriteTimedout
		}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, io.ErrClosedPipe), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNABORTED):
		t = perr.ConnectionClosed
	}
	e := perr.Because(t, "", err)
	e.Source = src
	return e
}

// writer buffers small writes and passes large ones straight to the connection.
type writer struct {
	conn    net.Conn
	sock    *rawio.Conn // as reader.sock
	buf     []byte
	source  perr.Source
	timeout time.Duration
	armed   time.Time // as reader.armed, for the write deadline
	err     error
	stopped atomic.Bool // set by interrupt, from another goroutine
}

// interrupt is reader.interrupt for writes.
func (wr *writer) interrupt() {
	wr.stopped.Store(true)
	wr.conn.SetWriteDeadline(aLongTimeAgo)
}

func (wr *writer) ensureBuf() {
	if wr.buf == nil {
		wr.buf = getBuf()[:0]
	}
}

func (wr *writer) release() {
	if wr.buf != nil && len(wr.buf) == 0 {
		putBuf(wr.buf)
		wr.buf = nil
	}
}

// write queues p, flushing first when it does not fit; a large p is written directly (with what
// is buffered, in one writev, on a plain socket).
func (wr *writer) write(p []byte) error {
	if wr.err != nil {
		return wr.err
	}
	wr.ensureBuf()
	if wr.sock != nil && len(p) >= copyLimit {
		// The buffered bytes and p go out together, and p is not copied first.
		return wr.rawv(p)
	}
	if len(wr.buf)+len(p) <= cap(wr.buf) {
		wr.buf = append(wr.buf, p...)
		return nil
	}
	if err := wr.flush(); err != nil {
		return err
	}
	if len(p) < cap(wr.buf)/2 {
		wr.buf = append(wr.buf, p...)
		return nil
	}
	return wr.raw(p)
}

// armWrite prepares the next write. On a plain socket the write arms its deadline itself,
// and only if it has to wait for room (rawio.Conn.SetWriteTimeout): nearly every write goes
// out at once and needs none. Otherwise it arms the write deadline (armCoarse).
func (wr *writer) armWrite() error {
	if wr.sock == nil {
		return wr.armCoarse()
	}
	if wr.err != nil {
		return wr.err
	}
	wr.sock.SetWriteTimeout(wr.timeout, &wr.stopped)
	return wr.checkStopped()
}

// armCoarse arms the write deadline for the next write (see coarseDeadline).
func (wr *writer) armCoarse() error {
	if wr.err != nil {
		return wr.err
	}
	if wr.timeout > 0 {
		if d := coarseDeadline(wr.armed, wr.timeout); !d.IsZero() {
			if err := wr.conn.SetWriteDeadline(d); err != nil {
				wr.err = ioError(err, wr.source, true)
				return wr.err
			}
			wr.armed = d
		}
	}
	return wr.checkStopped()
}

// disarmCoarse clears a write deadline armCoarse armed on a plain socket, whose writes expect
// none but the one they arm themselves while they wait.
func (wr *writer) disarmCoarse() {
	if wr.sock != nil && !wr.armed.IsZero() {
		wr.armed = time.Time{}
		wr.conn.SetWriteDeadline(time.Time{})
	}
}

// checkStopped fails the write after an interrupt.
func (wr *writer) checkStopped() error {
	if wr.stopped.Load() {
		wr.err = ioError(os.ErrDeadlineExceeded, wr.source, true)
		return wr.err
	}
	return nil
}

func (wr *writer) raw(p []byte) error {
	if err := wr.armWrite(); err != nil {
		return err
	}
	var err error
	if wr.sock != nil {
		_, err = wr.sock.Write(p)
	} else {
		_, err = wr.conn.Write(p)
	}
	if err != nil {
		wr.err = ioError(err, wr.source, true)
		return wr.err
	}
	return nil
}

// copyLimit is the size from which a piece written to a plain socket is not copied behind the
// buffered bytes but sent with them in one writev (rawv): a large body piece after a buffered
// head then costs one system call and no copy.
const copyLimit = 4 << 10

// rawv writes out what is buffered and then p, with one writev where both fit the socket.
func (wr *writer) rawv(p []byte) error {
	if err := wr.armWrite(); err != nil {
		return err
	}
	_, err := wr.sock.Writev(wr.buf, p)
	wr.buf = wr.buf[:0]
	if err != nil {
		wr.err = ioError(err, wr.source, true)
		return wr.err
	}
	return nil
}

// flush writes out what is buffered.
func (wr *writer) flush() error {
	if wr.err != nil {
		return wr.err
	}
	if len(wr.buf) == 0 {
		return nil
	}
	err := wr.raw(wr.buf)
	wr.buf = wr.buf[:0]
	return err
}

var dateCache struct {
	sync.Mutex
	sec int64
	val []byte
}

// appendDate appends the current time in IMF-fixdate form, formatted at most once a second.
func appendDate(dst []byte) []byte {
	now := time.Now()
	dateCache.Lock()
	if s := now.Unix(); s != dateCache.sec || dateCache.val == nil {
		dateCache.val = now.UTC().AppendFormat(dateCache.val[:0], "Mon, 02 Jan 2006 15:04:05 GMT")
		dateCache.sec = s
	}
	dst = append(dst, dateCache.val...)
	dateCache.Unlock()
	return dst
}
