package h1

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/internal/rawio"
	"github.com/pingora-go/pingora/perr"
)

// ClientOptions configures a ClientSession. The zero value uses the defaults.
type ClientOptions struct {
	// Limits bounds the response heads, chunk lines and trailers the session accepts.
	Limits Limits
	// ReadTimeout bounds each read from the upstream; 0 means none (the reference's
	// read_timeout, reset after each read).
	ReadTimeout time.Duration
	// WriteTimeout bounds each write to the upstream; 0 means none.
	WriteTimeout time.Duration
	// AllowInvalidContentLength reads a response whose Content-Length is invalid until the
	// connection closes, instead of failing.
	AllowInvalidContentLength bool
}

// ClientSession speaks HTTP/1.1 to an upstream server over one connection: it writes a request
// and reads its response, then may be reused for the next request. One goroutine may write the
// request body while another reads the response.
type ClientSession struct {
	conn net.Conn
	opts *ClientOptions
	rd   reader
	wr   writer

	// Resp is the response head last read; its bytes are valid until the next exchange.
	Resp header.ResponseHeader
	// Ext holds data of whoever owns the session; the connector keeps its pooling state
	// there.
	Ext any

	reqBody  bodyWriter
	respBody bodyReader

	headRequest    bool
	connectRequest bool
	reqKeepAlive   bool
	respKeepAlive  bool
	framingReuse   bool
	finalRead      bool
	broken         atomic.Bool // set by the reader or the writer goroutine
	exchanges      int
	// headPending: the head of a request without a body waits in pendingHead, to go out in
	// ReadResponseHeader's wait for the response (rawio.Conn.WriteRead). pendingHead lies in
	// the read buffer's free space, where the response will be read once the head went out:
	// a request without a body takes no write buffer.
	headPending bool
	pendingHead []byte
	// checkOnSend: the connection came out of a pool unchecked (CheckOnSend).
	checkOnSend bool
	stale       bool // the last request failed with ErrStale
}

// NewClientSession returns a session over conn. opts may be nil; it is not copied.
func NewClientSession(conn net.Conn, opts *ClientOptions) *ClientSession {
	if opts == nil {
		opts = &ClientOptions{}
	}
	c := &ClientSession{conn: conn, opts: opts}
	c.rd.conn, c.rd.source, c.rd.timeout = conn, perr.Upstream, opts.ReadTimeout
	c.rd.responses = true
	c.wr.conn, c.wr.source, c.wr.timeout = conn, perr.Upstream, opts.WriteTimeout
	raw := rawio.New(conn)
	c.rd.sock, c.wr.sock = raw, raw
	return c
}

// Conn returns the underlying connection.
func (c *ClientSession) Conn() net.Conn { return c.conn }

// SetTimeouts changes the per-read and per-write timeouts (0 = none).
func (c *ClientSession) SetTimeouts(read, write time.Duration) {
	if read != c.rd.timeout {
		c.rd.armed = time.Time{}
	}
	if write != c.wr.timeout {
		c.wr.armed = time.Time{}
	}
	c.rd.timeout, c.wr.timeout = read, write
}

// ClearDeadlines removes the connection's read and write deadlines, such as one that passed
// while the connection waited idle in a pool. The session sets its own again on its next read
// and write. (The session keeps a deadline armed across reads and writes; a deadline set on
// Conn directly must be followed by ClearDeadlines or the end of the session.)
func (c *ClientSession) ClearDeadlines() error {
	c.rd.armed, c.rd.armedAt, c.wr.armed = time.Time{}, time.Time{}, time.Time{}
	return c.conn.SetDeadline(time.Time{})
}

// InterruptWrite makes a write of the request on another goroutine (typically of its body)
// fail at once with a WriteTimedout, and every later write of this session too: the
// connection is done for, and Reusable reports false even when the request had been written
// whole just before. Unlike a deadline set on Conn, it cannot be undone by the session arming
// its own write deadline at the same moment.
func (c *ClientSession) InterruptWrite() {
	c.broken.Store(true)
	c.wr.interrupt()
}

// Exchanges returns how many requests were written on this connection.
func (c *ClientSession) Exchanges() int { return c.exchanges }

// CheckOnSend marks a session taken out of a pool without the check that its peer has not
// closed it or sent something unasked: the session makes that check itself just before the
// next request goes out. For a request without a body the check, the write and the wait for
// the response are one (see ReadResponseHeader); otherwise WriteRequestHeader checks. A
// reused session that fails the check fails with an error that matches ErrStale, before any
// byte of the request was sent. It reports false, and marks nothing, when the session cannot
// check by itself (it is not over a plain socket on Linux): the caller checks then.
func (c *ClientSession) CheckOnSend() bool {
	if c.rd.sock == nil {
		return false
	}
	c.checkOnSend = true
	return true
}

// Stale reports whether the last request failed with ErrStale: it was not sent, because the
// reused connection turned out closed or not quiet just before.
func (c *ClientSession) Stale() bool { return c.stale }

// ErrStale is the cause of the error of a reused session found closed by its peer, or with
// unasked bytes waiting, just before a request was to be sent on it (see CheckOnSend): the
// request was not sent, and can go out on another connection.
var ErrStale = errors.New("pooled connection closed by the upstream, or not quiet, before the request was sent")

// WriteRequestHeader writes a request head and prepares the body framing it declares:
// Content-Length, chunked, or none. The head is buffered: it goes out with the first body bytes,
// at FinishRequest, or at Flush; the head of a request without a body goes out when
// ReadResponseHeader starts to wait for the response, or at Flush. req is written as it is, so
// the caller removes hop-by-hop fields first.
func (c *ClientSession) WriteRequestHeader(req *header.RequestHeader) error {
	if c.broken.Load() {
		return perr.Explain(perr.InternalError, "client session is broken").AsUp()
	}
	c.rd.startMessage()
	c.exchanges++
	c.stale = false
	c.headRequest = req.IsMethod("HEAD")
	c.connectRequest = req.IsMethod("CONNECT")
	h := scanHead(&req.Fields)
	c.reqKeepAlive = !h.close
	c.finalRead = false
	c.Resp.Reset()

	var f Framing
	switch {
	case h.te && h.teLast:
		f = Framing{Kind: BodyChunked}
	case h.te:
		return perr.Explain(perr.InternalError, "request transfer coding is not chunked").AsIn()
	default:
		n, ok, bad := h.contentLengthOf(&req.Fields)
		if bad != "" {
			return perr.Explain(perr.InternalError, "request has "+bad).AsIn()
		}
		if ok && n > 0 {
			f = Framing{Kind: BodyLength, Length: n}
		}
	}
	if c.connectRequest {
		f = Framing{Kind: BodyNone}
	}
	c.reqBody.reset(f)
	check := c.checkOnSend
	c.checkOnSend = false
	if f.Kind == BodyNone && c.rd.sock != nil {
		// A head larger than the free space moves to a buffer of its own (AppendH1 grows
		// it), which is garbage once sent.
		c.pendingHead = req.AppendH1(c.rd.buf[c.rd.w:c.rd.w])
		c.reqBody.finished = true
		c.headPending = true
		return nil
	}
	c.wr.ensureBuf()
	c.wr.buf = req.AppendH1(c.wr.buf)
	if check && c.rd.sock != nil {
		if err := c.rd.armRead(); err != nil {
			c.broken.Store(true)
			return err
		}
		if !c.rd.sock.Quiet() {
			c.broken.Store(true)
			return c.staleError()
		}
	}
	if f.Kind == BodyNone {
		c.reqBody.finished = true
		return c.flush()
	}
	return nil
}

// staleError is the error of a session found closed or not quiet before a request was sent.
func (c *ClientSession) staleError() error {
	if c.exchanges > 1 {
		c.stale = true
		return perr.Because(perr.ConnectionClosed, "", ErrStale).AsUp()
	}
	e := perr.Explain(perr.ConnectionClosed, "upstream closed the new connection before the request was sent").AsUp()
	e.Retry = perr.ReusedOnly
	return e
}

func (c *ClientSession) flush() error {
	if c.headPending {
		// Only a request without a body has one: no reader runs alongside (a body writer's
		// flush must not touch the field ReadResponseHeader reads).
		c.headPending = false
		c.wr.ensureBuf()
		c.wr.buf = append(c.wr.buf, c.pendingHead...)
		c.pendingHead = nil
	}
	if err := c.wr.flush(); err != nil {
		c.broken.Store(true)
		return err
	}
	return nil
}

// RequestFraming returns the framing of the request body being written.
func (c *ClientSession) RequestFraming() BodyKind { return c.reqBody.kind }

// WriteBody writes a piece of the request body.
func (c *ClientSession) WriteBody(p []byte) error {
	if err := c.reqBody.write(&c.wr, p); err != nil {
		c.broken.Store(true)
		return err
	}
	return nil
}

// Flush sends buffered request bytes now.
func (c *ClientSession) Flush() error { return c.flush() }

// FinishRequest ends the request body (the last chunk and trailers when chunked) and flushes.
func (c *ClientSession) FinishRequest(trailers *header.Fields) error {
	if err := c.reqBody.finish(&c.wr, trailers); err != nil {
		c.broken.Store(true)
		return err
	}
	return c.flush()
}

// ReadResponseHeader reads the next response head into Resp. An interim (1xx) response is
// returned as it is; call again for the final one. Failing before any byte of the head
// arrived yields ConnectionClosed or ReadError with retry ReusedOnly, since a pooled
// connection the server closed in the meantime is safe to retry on a fresh one.
func (c *ClientSession) ReadResponseHeader() error {
	rd := &c.rd
	if rd.buf == nil {
		rd.startMessage()
	}
	rd.pin = rd.r
	scan := 0
	first := true
	for {
		if rd.buffered() > 0 {
			if first {
				// Most heads come whole with their first bytes: parsed at once, each line
				// is scanned once. The rest of a head that did not is looked for with
				// findHeadEnd, which goes on from where it stopped, and parsed once found.
				n, err := ParseResponse(rd.buf[rd.r:rd.w], &c.Resp, &c.opts.Limits)
				if err == nil {
					rd.r += n
					rd.pin = rd.r
					break
				}
				if err != errIncomplete {
					c.broken.Store(true)
					return err
				}
			}
			end, next := findHeadEnd(rd.buf[rd.r:rd.w], scan)
			if end >= 0 {
				n, err := ParseResponse(rd.buf[rd.r:rd.r+end], &c.Resp, &c.opts.Limits)
				if err != nil {
					c.broken.Store(true)
					return err
				}
				rd.r += n
				rd.pin = rd.r
				break
			}
			scan = next
			first = false
		}
		if !rd.makeRoom(c.opts.Limits.headSize() + 4) {
			c.broken.Store(true)
			return badResponse("response head too large")
		}
		var err error
		if c.headPending {
			err = c.sendAndFill()
		} else {
			err = rd.fill()
		}
		if err != nil {
			c.broken.Store(true)
			e, ok := perr.As(err)
			if !ok || err == io.EOF {
				e = perr.Because(perr.ConnectionClosed, "upstream closed before the response head", err).AsUp()
			}
			if first && (e.Type == perr.ConnectionClosed || e.Type == perr.ReadError) {
				e.Retry = perr.ReusedOnly
			}
			return e
		}
	}
	if c.Resp.Status >= 100 && c.Resp.Status < 200 && c.Resp.Status != 101 {
		return nil
	}
	h := scanHead(&c.Resp.Fields)
	f, reuse, err := responseFraming(&c.Resp, &h, c.headRequest, c.connectRequest, c.opts.AllowInvalidContentLength)
	if err != nil {
		c.broken.Store(true)
		return err
	}
	c.finalRead = true
	c.framingReuse = reuse
	c.respKeepAlive = !h.close && (c.Resp.Version == header.HTTP11 || h.keepAlive)
	c.respBody.reset(f)
	return nil
}

// sendAndFill writes the pending request head and reads the first bytes of the response in
// one wait (rawio.Conn.WriteRead), after checking that the peer has neither closed the
// connection nor sent anything.
func (c *ClientSession) sendAndFill() error {
	c.headPending = false
	rd, wr := &c.rd, &c.wr
	if err := wr.armWrite(); err != nil {
		return err
	}
	if err := rd.armRead(); err != nil {
		return err
	}
	// The head lies in the space the response is read into: WriteRead writes all of it
	// before it reads.
	n, werr, rerr := rd.sock.WriteRead(true, c.pendingHead, rd.buf[rd.w:])
	c.pendingHead = nil
	switch {
	case errors.Is(werr, rawio.ErrNotQuiet):
		return c.staleError()
	case werr != nil:
		wr.err = ioError(werr, wr.source, true)
		if e, ok := perr.As(wr.err); ok {
			// Nothing of the response arrived: a pooled connection the server closed
			// while the request went out.
			e.Retry = perr.ReusedOnly
		}
		return wr.err
	}
	return rd.afterRead(n, rerr)
}

// ResponseFraming returns how the final response body is delimited.
func (c *ClientSession) ResponseFraming() BodyKind { return c.respBody.kind }

// ReadBody returns the next piece of the response body, valid until the next call, and io.EOF
// after the last piece.
func (c *ClientSession) ReadBody() ([]byte, error) {
	p, err := c.respBody.next(&c.rd, &c.opts.Limits)
	if err != nil && err != io.EOF {
		c.broken.Store(true)
	}
	return p, err
}

// BodyDone reports whether the response body was read to its end.
func (c *ClientSession) BodyDone() bool { return c.respBody.done }

// BodyBytesRead returns how many response body bytes were read.
func (c *ClientSession) BodyBytesRead() int64 { return c.respBody.read }

// Trailers returns the trailers of a chunked response once its body was read to the end.
func (c *ClientSession) Trailers() *header.Fields { return &c.respBody.trailers }

// Reusable reports whether the connection may carry another request: the request and the final
// response were both complete, neither side asked to close, the response was not delimited by
// closing, and no error happened.
func (c *ClientSession) Reusable() bool {
	return !c.broken.Load() && c.finalRead && c.respBody.done && c.reqBody.finished &&
		c.reqKeepAlive && c.respKeepAlive && c.framingReuse && c.rd.buffered() == 0
}

// MarkBroken records that the connection must not be reused.
func (c *ClientSession) MarkBroken() { c.broken.Store(true) }

// Broken reports whether MarkBroken was called: the connection must not be reused.
func (c *ClientSession) Broken() bool { return c.broken.Load() }

// Release returns the buffers to the pool while the connection sits idle in a pool.
func (c *ClientSession) Release() {
	c.pendingHead = nil
	c.rd.release()
	c.wr.release()
}

// Close releases the buffers and closes the connection.
func (c *ClientSession) Close() error {
	c.pendingHead = nil
	c.rd.discardBuf()
	if c.wr.buf != nil {
		putBuf(c.wr.buf)
		c.wr.buf = nil
	}
	return c.conn.Close()
}

// Hijack hands over the connection and bytes already read past the response head (after a 101
// or a successful CONNECT).
func (c *ClientSession) Hijack() (net.Conn, []byte) {
	rest := append([]byte(nil), c.rd.buf[c.rd.r:c.rd.w]...)
	c.rd.r = c.rd.w
	return c.conn, rest
}
