package h1

import (
	"errors"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/internal/rawio"
	"github.com/pingora-go/pingora/perr"
)

// ServerOptions configures a ServerSession. The zero value uses the defaults.
type ServerOptions struct {
	// Limits bounds the request heads, chunk lines and trailers the session accepts.
	Limits Limits
	// IdleTimeout bounds the wait for the first byte of a request on a kept-alive connection
	// (default 60 s, as the reference).
	IdleTimeout time.Duration
	// HeadTimeout bounds reading a whole request head once its first byte arrived
	// (default 30 s). It defends against clients that send a head a byte at a time.
	HeadTimeout time.Duration
	// ReadTimeout bounds each read of the request body (default 60 s).
	ReadTimeout time.Duration
	// WriteTimeout bounds each write to the client (default 60 s).
	WriteTimeout time.Duration
	// MaxRequests is the most requests served on one connection; 0 means no limit (the
	// reference's keepalive_request_limit).
	MaxRequests int
	// DrainLimit is the most unread request body bytes read and dropped after a response so
	// that the connection can be reused (default 64 KiB); a larger rest closes the connection.
	DrainLimit int64
	// DrainTimeout bounds that draining (default 5 s).
	DrainTimeout time.Duration
	// MinBodyRate, in bytes per second, is the slowest average rate at which a request body
	// may arrive once BodyRateGrace has passed since its reading began; a slower body fails
	// with ReadTimedout (answered 408 when no response started). 0 checks no rate: only
	// ReadTimeout bounds each read. It stops clients that keep a request alive by sending a
	// byte just before each read timeout.
	MinBodyRate int64
	// BodyRateGrace is how long a body may take before MinBodyRate applies (default 10 s).
	BodyRateGrace time.Duration
}

// Defaults of ServerOptions.
const (
	DefaultIdleTimeout  = 60 * time.Second
	DefaultHeadTimeout  = 30 * time.Second
	DefaultReadTimeout  = 60 * time.Second
	DefaultWriteTimeout = 60 * time.Second
	DefaultDrainLimit   = 64 << 10
	DefaultDrainTimeout = 5 * time.Second
	// DefaultBodyRateGrace is the default of ServerOptions.BodyRateGrace.
	DefaultBodyRateGrace = 10 * time.Second
)

func durOr(v, d time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return d
}

// ErrHeadAlreadySent is returned when a second final response head is written for one request.
var ErrHeadAlreadySent = errors.New("h1: final response head already sent")

// ServerSession speaks HTTP/1.x to one downstream client: it reads requests and writes their
// responses, one at a time, over a keep-alive connection. It is not safe for concurrent use,
// except that one goroutine may read the request body (ReadBody) while another writes the
// response (WriteResponseHeader, WriteBody), as a proxy streaming both ways does.
type ServerSession struct {
	conn net.Conn
	// raw does rd.sock's and wr.sock's system calls when conn is a plain socket. It lives in
	// the session, kept across Reset, so that a request touches one object where it would
	// touch two.
	raw  rawio.Conn
	opts *ServerOptions
	rd   reader
	wr   writer

	// Req is the current request head; its bytes are valid until the next ReadRequest.
	Req header.RequestHeader

	reqFraming Framing
	reqBody    bodyReader
	respBody   bodyWriter

	served         int
	keepAlive      bool      // the client allows reuse and nothing has ruled it out
	closeAfter     bool      // the server decided to close after this response
	headSent       bool      // final response head written
	bodyStarted    bool      // request body reading started
	bodyStart      time.Time // when, if MinBodyRate is set
	expectContinue bool
	interimSent    bool
	respStatus     int
	headRequest    bool
	upgraded       bool
	broken         bool        // an error left the connection unusable
	bodyFailed     atomic.Bool // reading the request body failed (set by the body reader)
	bodyDone       atomic.Bool // the request body was read to its end
	idleUntil      time.Time   // deadline for the next request's first byte, set by SetIdleDeadline
	headUntil      time.Time   // the deadline of a head that came in part inside Hold
}

// NewServerSession returns a session over conn. opts may be nil; it is not copied and must
// not change while the session is in use.
func NewServerSession(conn net.Conn, opts *ServerOptions) *ServerSession {
	if opts == nil {
		opts = &ServerOptions{}
	}
	s := &ServerSession{conn: conn, opts: opts}
	s.rd.conn, s.rd.source = conn, perr.Downstream
	s.wr.conn, s.wr.source = conn, perr.Downstream
	if s.raw.Reset(conn) {
		s.rd.sock, s.wr.sock = &s.raw, &s.raw
	}
	s.wr.timeout = durOr(opts.WriteTimeout, DefaultWriteTimeout)
	return s
}

// Conn returns the underlying connection.
func (s *ServerSession) Conn() net.Conn { return s.conn }

// Reset makes s a session over conn that has already served served requests, keeping its
// storage, so that a server can take sessions from a pool for each burst of requests on a
// connection instead of keeping one per idle connection. opts may be nil. A zero ServerSession
// after Reset is as one from NewServerSession, so that an owner can hold the session in a
// struct of its own.
func (s *ServerSession) Reset(conn net.Conn, opts *ServerOptions, served int) {
	if opts == nil {
		opts = &ServerOptions{}
	}
	s.conn, s.opts, s.served = conn, opts, served
	s.rd.conn, s.rd.source, s.rd.eof = conn, perr.Downstream, false
	s.rd.timeout, s.rd.deadline = 0, time.Time{}
	s.wr.conn, s.wr.source, s.wr.err = conn, perr.Downstream, nil
	if s.raw.Reset(conn) {
		s.rd.sock, s.wr.sock = &s.raw, &s.raw
	} else {
		s.rd.sock, s.wr.sock = nil, nil
	}
	s.wr.timeout = durOr(opts.WriteTimeout, DefaultWriteTimeout)
	// The deadlines armed were the previous connection's: conn has none of them yet.
	s.rd.armed, s.rd.armedAt, s.wr.armed = time.Time{}, time.Time{}, time.Time{}
	s.idleUntil, s.headUntil, s.rd.drained = time.Time{}, time.Time{}, false
	s.rd.stopped.Store(false)
	s.wr.stopped.Store(false)
	s.Req.Reset()
	s.resetMessage()
	s.keepAlive, s.upgraded, s.broken = false, false, false
	s.bodyFailed.Store(false)
	s.bodyDone.Store(true)
}

// InterruptRead makes a read of the request on another goroutine (typically of its body)
// fail at once with a ReadTimedout, and every later read of this session too, until Reset.
// Unlike a deadline set on Conn, it cannot be undone by the session arming its own read
// deadline at the same moment. The connection then serves no further request (KeepAlive
// reports false), even when the body had been read whole just before: its next request
// could not be read.
func (s *ServerSession) InterruptRead() { s.rd.interrupt() }

// Buffered returns how many bytes of further requests (pipelined by the client) are already
// read into the session's buffer.
func (s *ServerSession) Buffered() int { return s.rd.buffered() }

// RequestsServed returns how many requests were read on this connection.
func (s *ServerSession) RequestsServed() int { return s.served }

// ErrIdle is returned by ReadRequest when the deadline given to SetIdleDeadline passed before
// the first byte of a request arrived: the connection is idle and intact, and the server may
// wait on for it some other way (the proxy parks it; see internal/park).
var ErrIdle = errors.New("h1: no request before the idle deadline")

// ErrWouldBlock is ReadRequest's error inside Hold when the request has not (wholly) arrived:
// return false from Hold's function to wait for more, then call ReadRequest again.
var ErrWouldBlock = rawio.ErrWouldBlock

// CanHold reports whether Hold works on this session's connection (a plain TCP or unix socket
// on Linux).
func (s *ServerSession) CanHold() bool { return s.rd.sock != nil }

// Hold runs f inside the connection's wait for readability (see rawio.Conn.Hold): f runs at
// once and again each time the connection turns readable, until it returns true, or until the
// wait fails, which Hold returns: ErrIdle when the deadline of SetIdleDeadline or
// ArmIdleDeadline passed, another error when the connection was closed or interrupted.
// Inside f, ReadRequest does not wait: it returns ErrWouldBlock until a whole head is there.
//
// A server can so serve a request within f and, when the read of its head drained the
// socket (Drained), return false to wait for the next one without trying a read first; the
// wait, begun before that read, sees the next request's arrival even if it came while f was
// serving. That saves the read that finds nothing, one system call per request of a busy
// connection. While f runs, nothing but f may read the connection (a request body read by
// another goroutine must wait until Hold returned), and f must not close it: closing it from
// another goroutine waits until f returns.
//
// When the head of a request that came in part is not whole by HeadTimeout, Hold returns the
// error ReadRequest would (a ReadTimedout *perr.Error): the server answers 408 as it would
// outside Hold.
func (s *ServerSession) Hold(f func() bool) error {
	err := s.rd.sock.Hold(f)
	switch {
	case err == nil || !isTimeout(err) || s.rd.stopped.Load():
	case !s.headUntil.IsZero():
		s.headUntil = time.Time{}
		s.broken = true
		return s.rd.wrapErr(err)
	case !s.idleUntil.IsZero():
		s.idleUntil = time.Time{}
		return ErrIdle
	}
	return err
}

// Drained reports whether the last read of the connection took all it had: then nothing is
// left to read but what arrives later.
func (s *ServerSession) Drained() bool { return s.rd.drained }

// ArmIdleDeadline sets the deadline of the wait for the next request (as SetIdleDeadline) on
// the connection now, for a wait that starts without ReadRequest: inside Hold, before f
// returns false after serving a request.
func (s *ServerSession) ArmIdleDeadline(t time.Time) error {
	s.idleUntil = t
	s.rd.deadline = t
	err := s.rd.armRead()
	s.rd.deadline = time.Time{}
	return err
}

// SetIdleDeadline makes the next ReadRequest wait for the first byte of a request until t
// instead of for IdleTimeout, and return ErrIdle if t passes first.
func (s *ServerSession) SetIdleDeadline(t time.Time) { s.idleUntil = t }

// ReadRequest waits for the next request and reads its head into Req. A client that closes the
// connection cleanly (or lets the idle timeout pass) before sending a byte yields io.EOF. A
// malformed head yields a *perr.Error with source Downstream: InvalidHTTPHeader (answer 400),
// or an HTTPStatus type for 414, 431, 501 and 505; see perr.StatusFor. After such an error the
// connection must be closed once the error response is written.
func (s *ServerSession) ReadRequest() error {
	s.resetMessage()
	rd := &s.rd
	rd.startMessage()
	lim := &s.opts.Limits
	rd.timeout = 0
	rd.deadline = time.Time{}
	if rd.buffered() == 0 {
		custom := !s.idleUntil.IsZero()
		rd.deadline = s.idleUntil
		if !custom {
			rd.deadline = time.Now().Add(durOr(s.opts.IdleTimeout, DefaultIdleTimeout))
		}
		err := rd.fill()
		if err == ErrWouldBlock {
			// Inside Hold: the caller waits and calls again, with the same deadline. The
			// buffer, empty, goes back to the pool for the wait: a connection waiting for
			// its next request holds none (the next call takes one).
			rd.deadline = time.Time{}
			rd.release()
			return err
		}
		s.idleUntil = time.Time{}
		if err != nil {
			rd.deadline = time.Time{}
			if custom && isTimeout(err) {
				return ErrIdle
			}
			if err == io.EOF || isTimeout(err) {
				return io.EOF
			}
			if pe, ok := perr.As(err); ok && pe.Type == perr.ConnectionClosed {
				return io.EOF
			}
			return err
		}
	}
	// The head's deadline is set before the first read it needs (most heads come whole with
	// their first bytes and need none): HeadTimeout from then. A head that came in part
	// inside Hold keeps the deadline set before its first wait: a client sending a byte now
	// and then must not push it back.
	rd.deadline, s.headUntil = s.headUntil, time.Time{}
	// Most heads come whole with their first bytes: parsed at once, each line is scanned
	// once. A head that has not wholly arrived is looked for with findHeadEnd, which goes on
	// from where it stopped within this call, and parsed once it has; so is the rest of a head
	// that came in part inside Hold (rd.deadline set), which the attempt already failed on.
	parsed := false
	if rd.deadline.IsZero() {
		n, err := ParseRequest(rd.buf[rd.r:rd.w], &s.Req, lim)
		switch {
		case err == nil:
			rd.r += n
			rd.pin = rd.r
			parsed = true
		case err != errIncomplete:
			s.broken = true
			return err
		}
	}
	for scan := 0; !parsed; {
		start := rd.r + skipEmptyLines(rd.buf[rd.r:rd.w])
		end, next := findHeadEnd(rd.buf[start:rd.w], scan)
		if end >= 0 {
			n, err := ParseRequest(rd.buf[rd.r:start+end], &s.Req, lim)
			if err != nil {
				s.broken = true
				return err
			}
			rd.r += n
			rd.pin = rd.r
			break
		}
		scan = next
		if requestLineTooLong(rd.buf[start:rd.w], lim.requestLine()) {
			s.broken = true
			return statusError(414, "request line too long")
		}
		if rd.w-start > lim.headSize() {
			s.broken = true
			return statusError(431, "request head too large")
		}
		if !rd.makeRoom(lim.headSize() + 4) {
			s.broken = true
			return statusError(431, "request head too large")
		}
		// makeRoom may have moved the unread bytes; the scan offset is relative to them.
		if rd.deadline.IsZero() {
			rd.deadline = time.Now().Add(durOr(s.opts.HeadTimeout, DefaultHeadTimeout))
		}
		if err := rd.fill(); err != nil {
			if err == ErrWouldBlock {
				// Inside Hold, the rest of the head is yet to come: the next call goes on
				// from the bytes kept, under the same deadline, which stays armed on the
				// connection for Hold's wait.
				s.headUntil, rd.deadline = rd.deadline, time.Time{}
				return err
			}
			s.broken = true
			if err == io.EOF {
				return perr.Explain(perr.ConnectionClosed, "client closed the connection mid-head").AsDown()
			}
			return err
		}
	}
	rd.deadline = time.Time{}
	rd.timeout = durOr(s.opts.ReadTimeout, DefaultReadTimeout)
	s.served++

	h := scanHead(&s.Req.Fields)
	f, err := requestFraming(&s.Req, &h)
	if err != nil {
		s.broken = true
		return err
	}
	s.reqFraming = f
	s.reqBody.reset(f)
	s.bodyFailed.Store(false)
	s.bodyDone.Store(f.Kind == BodyNone)
	s.headRequest = s.Req.IsMethod("HEAD")
	s.keepAlive = !h.close && (s.Req.Version != header.HTTP10 || h.keepAlive)
	if max := s.opts.MaxRequests; max > 0 && s.served >= max {
		s.keepAlive = false
	}
	if s.Req.Version == header.HTTP11 && f.Kind != BodyNone {
		if v, ok := s.Req.Get("Expect"); ok && header.EqualFold(v, "100-continue") {
			s.expectContinue = true
		}
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	if pe, ok := perr.As(err); ok && pe.Type == perr.ReadTimedout {
		return true
	}
	return false
}

func (s *ServerSession) resetMessage() {
	s.reqFraming = Framing{}
	s.headSent, s.bodyStarted, s.expectContinue, s.interimSent = false, false, false, false
	s.respStatus, s.headRequest, s.closeAfter = 0, false, false
}

// RequestFraming returns how the current request's body is delimited.
func (s *ServerSession) RequestFraming() Framing { return s.reqFraming }

// IsUpgradeRequest reports whether the request asks to switch protocols (an Upgrade field on
// HTTP/1.1, e.g. WebSocket).
func (s *ServerSession) IsUpgradeRequest() bool {
	return s.Req.Version == header.HTTP11 && s.Req.Has("Upgrade")
}

// ExpectsContinue reports whether the client sent "Expect: 100-continue" and waits for it.
func (s *ServerSession) ExpectsContinue() bool { return s.expectContinue && !s.interimSent }

// ReadBody returns the next piece of the request body, valid until the next call, and io.EOF
// after the last piece. The first call answers "Expect: 100-continue" with a 100 response
// unless a response was already written. After a 101 response it returns the raw bytes the
// client sends.
func (s *ServerSession) ReadBody() ([]byte, error) {
	if !s.bodyStarted {
		s.bodyStarted = true
		if s.opts.MinBodyRate > 0 {
			s.bodyStart = time.Now()
		}
		if s.expectContinue && !s.interimSent && !s.headSent {
			s.interimSent = true
			if err := s.wr.write(continueResponse); err != nil {
				return nil, err
			}
			if err := s.wr.flush(); err != nil {
				return nil, err
			}
		}
	}
	p, err := s.reqBody.next(&s.rd, &s.opts.Limits)
	if err == nil && s.opts.MinBodyRate > 0 && !s.reqBody.done {
		err = s.checkBodyRate()
	}
	if err != nil && err != io.EOF {
		s.bodyFailed.Store(true)
	}
	if s.reqBody.done {
		s.bodyDone.Store(true)
	}
	return p, err
}

// checkBodyRate fails a body arriving slower than MinBodyRate on average, past the grace.
func (s *ServerSession) checkBodyRate() error {
	el := time.Since(s.bodyStart)
	if el <= durOr(s.opts.BodyRateGrace, DefaultBodyRateGrace) {
		return nil
	}
	if float64(s.reqBody.read) >= float64(s.opts.MinBodyRate)*el.Seconds() {
		return nil
	}
	return perr.Explain(perr.ReadTimedout, "request body arriving slower than "+
		strconv.FormatInt(s.opts.MinBodyRate, 10)+" bytes/s").AsDown()
}

// WriteContinue answers "Expect: 100-continue" now, so that a body read from another goroutine
// does not have to. It does nothing when no 100 is expected or one was already sent.
func (s *ServerSession) WriteContinue() error {
	if !s.expectContinue || s.interimSent || s.headSent {
		return nil
	}
	s.interimSent = true
	if err := s.wr.write(continueResponse); err != nil {
		return err
	}
	return s.wr.flush()
}

var continueResponse = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// BodyDone reports whether the whole request body has been read. It is safe to call while
// another goroutine reads the body.
func (s *ServerSession) BodyDone() bool { return s.bodyDone.Load() }

// BodyBytesRead returns how many request body bytes were read.
func (s *ServerSession) BodyBytesRead() int64 { return s.reqBody.read }

// Trailers returns the trailer fields of a chunked request body, once it was read to the end.
func (s *ServerSession) Trailers() *header.Fields { return &s.reqBody.trailers }

// SetKeepAlive allows or forbids reusing the connection after the current response. Allowing
// only takes effect if the client and the protocol allow it too. Graceful shutdown calls it
// with false.
func (s *ServerSession) SetKeepAlive(on bool) {
	if !on {
		s.closeAfter = true
	} else {
		s.closeAfter = false
	}
}

// KeepAlive reports whether the connection will be kept for another request after this one
// if the exchange completes cleanly.
func (s *ServerSession) KeepAlive() bool {
	return s.keepAlive && !s.closeAfter && !s.broken && !s.bodyFailed.Load() && !s.rd.stopped.Load()
}

// HeadSent reports whether the final response head was written.
func (s *ServerSession) HeadSent() bool { return s.headSent }

// ResponseStatus returns the status of the final response written, or 0.
func (s *ServerSession) ResponseStatus() int { return s.respStatus }

// WriteResponseHeader writes a response head. Interim (1xx other than 101) responses may be
// written any number of times before the final one, and are dropped for HTTP/1.0 clients. The
// final head decides the body framing: Content-Length when present; else chunked (HTTP/1.1) or
// until close (HTTP/1.0); none for HEAD, 204 and 304. It sets Connection: close when the
// connection will close, and Date when absent. The head is flushed with the first body bytes,
// at Finish, or at once when it has no Content-Length.
func (s *ServerSession) WriteResponseHeader(resp *header.ResponseHeader) error {
	if resp.Status >= 100 && resp.Status < 200 && resp.Status != 101 {
		if s.Req.Version == header.HTTP10 {
			return nil
		}
		s.interimSent = true
		s.wr.ensureBuf()
		s.wr.buf = resp.AppendH1(s.wr.buf)
		return s.wr.flush()
	}
	if s.headSent {
		return ErrHeadAlreadySent
	}
	s.headSent = true
	s.respStatus = resp.Status
	resp.Version = header.HTTP11

	h := scanHead(&resp.Fields)
	f, err := s.responseFraming(resp, &h)
	if err != nil {
		return err
	}
	if s.expectContinue && !s.interimSent {
		// The client may still be waiting to send its body: do not read it as the next request.
		s.keepAlive = false
	}
	if !s.bodyDone.Load() && (s.reqFraming.Kind == BodyChunked ||
		s.reqFraming.Length > durOrInt(s.opts.DrainLimit, DefaultDrainLimit)) {
		// Too much request body left to drain before another request could be read.
		s.keepAlive = false
	}
	if !s.upgraded {
		if h.conn {
			resp.Remove("Connection")
		}
		if !s.KeepAlive() {
			resp.Append("Connection", "close")
		} else if s.Req.Version == header.HTTP10 {
			resp.Append("Connection", "keep-alive")
			resp.Version = header.HTTP10
		}
	}
	s.respBody.reset(f)
	s.wr.ensureBuf()
	s.wr.buf = resp.AppendH1(s.wr.buf)
	if !h.date {
		// Insert Date before the final CRLF of the head just written.
		s.wr.buf = s.wr.buf[:len(s.wr.buf)-2]
		s.wr.buf = append(s.wr.buf, "Date: "...)
		s.wr.buf = appendDate(s.wr.buf)
		s.wr.buf = append(s.wr.buf, "\r\n\r\n"...)
	}
	if f.Kind != BodyLength && f.Kind != BodyNone {
		return s.wr.flush()
	}
	return nil
}

// responseFraming decides how the body of the final response resp is delimited, and adjusts
// resp's framing fields to it. It is a function of its own, not inlined, so that its stack
// space is not in WriteResponseHeader's frame, which lies on every response's path.
//
//go:noinline
func (s *ServerSession) responseFraming(resp *header.ResponseHeader, h *headScan) (Framing, error) {
	var f Framing
	switch {
	case resp.Status == 101:
		f = Framing{Kind: BodyRaw}
		s.upgraded = true
		s.keepAlive = false
	case s.Req.IsMethod("CONNECT") && resp.Status >= 200 && resp.Status < 300:
		f = Framing{Kind: BodyRaw}
		s.upgraded = true
		s.keepAlive = false
	case s.headRequest || resp.Status == 204 || resp.Status == 304 || resp.Status < 200:
		f = Framing{Kind: BodyNone}
	default:
		n, ok, bad := h.contentLengthOf(&resp.Fields)
		switch {
		case bad != "":
			return f, perr.Explain(perr.InternalError, "response has "+bad)
		case ok && !h.te:
			f = Framing{Kind: BodyLength, Length: n}
		case s.Req.Version == header.HTTP11:
			if h.clSeen {
				resp.Remove("Content-Length")
			}
			if !h.teLast {
				// Other codings (e.g. gzip from an upstream) stay, with chunked as the last.
				resp.Append("Transfer-Encoding", "chunked")
			}
			f = Framing{Kind: BodyChunked}
		default:
			resp.Remove("Transfer-Encoding")
			resp.Remove("Content-Length")
			f = Framing{Kind: BodyUntilClose}
			s.keepAlive = false
		}
	}
	return f, nil
}

func durOrInt(v, d int64) int64 {
	if v > 0 {
		return v
	}
	return d
}

// WriteBody writes a piece of the response body, framed as the head decided. For a HEAD
// request the bytes are dropped.
func (s *ServerSession) WriteBody(p []byte) error {
	if !s.headSent {
		return perr.Explain(perr.InternalError, "response body before its head")
	}
	if err := s.respBody.write(&s.wr, p); err != nil {
		s.broken = true
		return err
	}
	return nil
}

// Flush sends buffered response bytes to the client now.
func (s *ServerSession) Flush() error { return s.wr.flush() }

// FinishResponse ends the response body (the last chunk and trailers for chunked bodies) and
// flushes it. trailers may be nil.
func (s *ServerSession) FinishResponse(trailers *header.Fields) error {
	if err := s.respBody.finish(&s.wr, trailers); err != nil {
		s.broken = true
		return err
	}
	if err := s.wr.flush(); err != nil {
		s.broken = true
		return err
	}
	// The write buffer goes back to the pool at once: the next response, of whichever
	// connection, takes the one last given back, whose memory is still in the CPU's caches,
	// where this connection's own would have gone cold while it waited.
	s.wr.release()
	return nil
}

// Finish completes the exchange after the response was written: it drains what is left of the
// request body (within DrainLimit and DrainTimeout) and reports whether the connection can
// serve another request. When it cannot, the caller closes the connection. The read buffer
// goes back to the pool unless it holds bytes of a next request (FinishResponse gave the write
// buffer back); the next ReadRequest takes one.
func (s *ServerSession) Finish() bool {
	if !s.headSent || !s.respBody.finished || s.upgraded {
		s.broken = true
	}
	if !s.KeepAlive() {
		return false
	}
	if !s.bodyDone.Load() {
		if !s.drain() {
			s.broken = true
			return false
		}
	}
	// The read buffer goes back to the pool too when nothing of a next request is in it, for
	// the reason FinishResponse gives the write buffer back.
	s.rd.release()
	return true
}

// drain reads and drops the rest of the request body.
func (s *ServerSession) drain() bool {
	limit := durOrInt(s.opts.DrainLimit, DefaultDrainLimit)
	s.rd.deadline = time.Now().Add(durOr(s.opts.DrainTimeout, DefaultDrainTimeout))
	defer func() { s.rd.deadline = time.Time{} }()
	var n int64
	for {
		p, err := s.reqBody.next(&s.rd, &s.opts.Limits)
		n += int64(len(p))
		if err == io.EOF {
			return true
		}
		if err != nil || n > limit {
			return false
		}
	}
}

// RespondError writes a complete error response with a short text body and marks the
// connection to close when the error came from a broken request.
func (s *ServerSession) RespondError(status int) error {
	if s.headSent {
		return ErrHeadAlreadySent
	}
	if s.broken {
		s.closeAfter = true
	}
	resp := header.ResponseHeader{Status: status, Version: header.HTTP11}
	body := errorBody(status)
	resp.Append("Content-Type", "text/plain; charset=utf-8")
	resp.Append("Content-Length", itoa(len(body)))
	resp.Append("Cache-Control", "private, no-store")
	if err := s.WriteResponseHeader(&resp); err != nil {
		return err
	}
	if err := s.WriteBody(body); err != nil {
		return err
	}
	return s.FinishResponse(nil)
}

func errorBody(status int) []byte {
	return []byte(itoa(status) + " " + header.StatusText(status) + "\n")
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// Close releases the session's buffers and closes the connection.
//
// When the client may still be sending (a request body was left unread, or the request was
// malformed), Close lingers as nginx does: it half-closes the connection and reads and drops
// what the client sends for up to LingerTimeout, so that a close with unread data does not
// reset the connection and destroy the response still on its way to the client.
func (s *ServerSession) Close() error {
	if s.served > 0 && (s.broken || !s.bodyDone.Load() || s.rd.buffered() > 0) {
		s.linger()
	}
	s.rd.discardBuf()
	if s.wr.buf != nil {
		putBuf(s.wr.buf)
		s.wr.buf = nil
	}
	return s.conn.Close()
}

// LingerTimeout bounds how long Close drains a client that is still sending.
const LingerTimeout = 2 * time.Second

func (s *ServerSession) linger() {
	cw, ok := s.conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	s.rd.armed, s.rd.armedAt = time.Time{}, time.Time{}
	if s.conn.SetReadDeadline(time.Now().Add(LingerTimeout)) != nil {
		return
	}
	var scratch [4096]byte
	buf := scratch[:]
	if s.rd.buf != nil {
		buf = s.rd.buf
	}
	for {
		if _, err := s.conn.Read(buf); err != nil {
			return
		}
	}
}

// Release returns the session's buffers to the pool while the connection is idle between
// requests; ReadRequest takes new ones. Buffers holding pipelined bytes are kept.
func (s *ServerSession) Release() {
	s.rd.release()
	s.wr.release()
}

// Hijack hands over the connection and any bytes read past the current request head, for
// protocols that take over after a 101 response or a CONNECT. The session must not be used
// afterwards.
func (s *ServerSession) Hijack() (net.Conn, []byte) {
	rest := append([]byte(nil), s.rd.buf[s.rd.r:s.rd.w]...)
	s.rd.r = s.rd.w
	return s.conn, rest
}
