package h2

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
)

// bodyBufSize is the size of the buffer a stream reads its body into: one default-sized frame.
const bodyBufSize = 16 << 10

var bodyBufs = sync.Pool{New: func() any { return new([bodyBufSize]byte) }}

// ErrHeadAlreadySent is returned when a second final response head is written for a stream.
var ErrHeadAlreadySent = errors.New("h2: final response head already sent")

// errStreamReset is the error of a stream that was reset with code.
func errStreamReset(code http2.ErrCode) error {
	return http2.StreamError{Code: code}
}

// ServerStream is one request of an HTTP/2 connection and its response, with the methods of
// an HTTP/1 server session. One goroutine may read the request body while another writes the
// response; otherwise it is not safe for concurrent use. It is valid until its handler returns.
type ServerStream struct {
	// Req is the request head: the method, the target from :path (the authority for
	// CONNECT), a host field from :authority, then the other fields in the order received,
	// with lowercase names (cookie fields joined into one). Its Version is header.HTTP2.
	Req header.RequestHeader

	conn *ServerConn
	st   *stream // owned by the serve loop; read here only through conn.call
	ctx  context.Context
	body bodyPipe

	hasBody  bool               // the request's HEADERS did not end the stream
	protocol string             // :protocol of an extended CONNECT
	buf      *[bodyBufSize]byte // request body buffer, from bodyBufs
	read     int64
	trailers header.Fields
	bodyDone atomic.Bool

	headSent    bool
	headPending bool // the final head waits to go out with what follows
	status      int
	noBody      bool // HEAD request, or a status without body: body bytes are dropped
	closeConn   bool // SetKeepAlive(false) was called
	resetHook   atomic.Pointer[func()]
	op          sendOp
	runFn       func()        // s.runSend, made once
	ran         chan struct{} // signals runFn ran
	panicked    bool          // the handler panicked; set before the serve loop hears of its end
	fields      []hpack.HeaderField
}

func newServerStream(c *ServerConn, st *stream, ctx context.Context) *ServerStream {
	s := &ServerStream{conn: c, st: st, ctx: ctx}
	s.body.wake = make(chan struct{}, 1)
	return s
}

// SetResetHook arranges for *hook to run when the stream is reset by the client or ends with
// its connection, as the context's cancellation does but without allocating; nil removes it.
// The hook runs on the connection's serve loop: it must return quickly and not block. It
// reports whether the stream is still live: false when it already ended, and the hook will
// not run for it.
func (s *ServerStream) SetResetHook(hook *func()) bool {
	s.resetHook.Store(hook)
	return s.ctx.Err() == nil
}

// Context returns the stream's context, canceled when the client resets the stream, the
// connection closes, or the handler returns.
func (s *ServerStream) Context() context.Context { return s.ctx }

// Conn returns the connection the stream belongs to.
func (s *ServerStream) Conn() *ServerConn { return s.conn }

// ReadBody returns the next piece of the request body, valid until the next call, and io.EOF
// after the last piece. Reading is what opens the flow-control window again: a handler that
// does not read holds the client to ServerOptions.StreamWindow bytes.
func (s *ServerStream) ReadBody() ([]byte, error) {
	if s.bodyDone.Load() {
		return nil, io.EOF
	}
	if s.buf == nil {
		s.buf = bodyBufs.Get().(*[bodyBufSize]byte)
	}
	n, trailers, err := s.body.read(s.buf[:])
	if err == io.EOF {
		// The end of the stream: with the last piece when it had already arrived, so that
		// BodyDone reports it at once, as for an HTTP/1 body of known length.
		for _, f := range trailers {
			s.trailers.Append(f.Name, f.Value)
		}
		s.bodyDone.Store(true)
	}
	if n > 0 {
		s.read += int64(n)
		st := s.st
		s.conn.post(func() { s.conn.bodyRead(st, n) })
		return s.buf[:n], nil
	}
	if err == io.EOF {
		return nil, io.EOF
	}
	return nil, perr.Because(perr.ReadError, "reading the request body", err).AsDown()
}

// BodyDone reports whether the whole request body has been read (at once for a request
// without body). It is safe to call while another goroutine reads the body.
func (s *ServerStream) BodyDone() bool { return s.bodyDone.Load() }

// Protocol returns the :protocol of an extended CONNECT request (RFC 8441), such as
// "websocket", or "" for any other request. See ServerOptions.EnableConnectProtocol.
func (s *ServerStream) Protocol() string { return s.protocol }

// HasBody reports whether the request has a body: its HEADERS frame did not end the stream.
// The body may still turn out empty.
func (s *ServerStream) HasBody() bool { return s.hasBody }

// errBodyAborted is the error of reads after AbortBody.
var errBodyAborted = errors.New("h2: request body reading aborted")

// AbortBody makes a ReadBody blocked on another goroutine, and every later one, fail, unless
// the body already arrived whole. It is safe for concurrent use.
func (s *ServerStream) AbortBody() { s.body.fail(errBodyAborted) }

// Reset abandons the stream: the client gets RST_STREAM with INTERNAL_ERROR, so that a
// response cut short is never taken for a complete one, and later writes fail. It is safe
// for concurrent use.
func (s *ServerStream) Reset() {
	st, c := s.st, s.conn
	c.call(func() {
		if !st.reset && c.streams[st.id] == st {
			c.resetStream(st.id, http2.ErrCodeInternal)
		}
	})
}

// BodyBytesRead returns how many request body bytes were read.
func (s *ServerStream) BodyBytesRead() int64 { return s.read }

// Trailers returns the request's trailer fields, with lowercase names, once the body was read
// to its end.
func (s *ServerStream) Trailers() *header.Fields { return &s.trailers }

// SetKeepAlive(false) makes the connection stop taking new streams once this response's head
// is written: the client gets a GOAWAY and the open streams finish, the HTTP/2 form of
// "Connection: close". true changes nothing, since HTTP/2 connections are kept by default.
func (s *ServerStream) SetKeepAlive(on bool) {
	if !on {
		s.closeConn = true
	}
}

// HeadSent reports whether the final response head was written.
func (s *ServerStream) HeadSent() bool { return s.headSent }

// ResponseStatus returns the status of the final response written, or 0.
func (s *ServerStream) ResponseStatus() int { return s.status }

// WriteResponseHeader writes a response head. Interim (1xx) heads go out at once and may be
// written before the final one; 101 does not exist in HTTP/2 and is an error. The final head
// goes out with the first body bytes, at Flush, or at FinishResponse (as a single HEADERS
// frame with END_STREAM when there is no body). Field names are sent in lowercase, and
// connection-specific fields are left out.
func (s *ServerStream) WriteResponseHeader(resp *header.ResponseHeader) error {
	if s.headSent {
		return ErrHeadAlreadySent
	}
	if resp.Status == 101 || resp.Status < 100 || resp.Status > 999 {
		return perr.Explain(perr.InternalError, "status "+itoa(resp.Status)+" cannot be sent over HTTP/2").AsIn()
	}
	s.fields = appendH2Fields(s.fields[:0], &resp.Fields)
	if resp.Status < 200 {
		return s.send(resp.Status, nil, false, "writing an interim response head")
	}
	s.headSent = true
	s.headPending = true
	s.status = resp.Status
	s.noBody = s.Req.IsMethod("HEAD") || resp.Status == 204 || resp.Status == 304
	return nil
}

// sendOp holds the arguments and the outcome of the serve loop's half of a send.
type sendOp struct {
	status   int
	data     []byte
	end      bool
	head     bool // status is the final head's
	trailers bool // end the stream with s.fields as trailers
	done     <-chan error
	err      error
}

// send runs one write on the serve loop: the pending final head (or the interim head of
// status), then data, then the end of the stream when end is set (with trailers when s.fields
// holds them). It waits until everything is written. The serve loop's half is runSend, made
// once per stream, so a send allocates nothing.
func (s *ServerStream) send(status int, data []byte, end bool, what string) error {
	c := s.conn
	head := s.headPending
	s.headPending = false
	if head {
		status = s.status
	}
	if s.runFn == nil {
		s.runFn, s.ran = s.runSend, make(chan struct{}, 1)
	}
	s.op = sendOp{status: status, data: data, end: end, head: head, trailers: end && !head && len(s.fields) > 0}
	err := ErrServerClosed
	if c.callWith(s.runFn, s.ran) {
		err = s.op.err
	}
	if err == nil && s.op.done != nil {
		select {
		case err = <-s.op.done:
		case <-c.done:
			// The connection ended: the outcome of a write completed just before it (the
			// client may have closed the connection on reading it) is still the outcome.
			select {
			case err = <-s.op.done:
			default:
				err = ErrServerClosed
			}
		}
	}
	s.op.data = nil
	if err != nil {
		return perr.Because(perr.WriteError, what, err).AsDown()
	}
	return nil
}

// runSend is the serve loop's half of send.
func (s *ServerStream) runSend() {
	st, c, op := s.st, s.conn, &s.op
	if st.reset || st.localDone {
		op.err = errStreamReset(http2.ErrCodeStreamClosed)
		return
	}
	if op.status != 0 {
		c.writeHead(st, op.status, s.fields, op.end && len(op.data) == 0)
		if op.head && s.closeConn {
			c.goAway(http2.ErrCodeNo)
		}
	}
	switch {
	case len(op.data) > 0:
		op.done = c.queueData(st, op.data, op.end)
	case op.trailers:
		c.writeHead(st, 0, s.fields, true)
	case op.end && op.status == 0:
		c.endStream(st)
	}
}

// WriteBody writes a piece of the response body. It returns once the piece is written, and
// blocks while the client's flow-control windows are closed, which is the backpressure of a
// slow client. For a HEAD request, and for statuses without a body, the bytes are dropped.
func (s *ServerStream) WriteBody(p []byte) error {
	if !s.headSent {
		return perr.Explain(perr.InternalError, "response body before its head").AsIn()
	}
	if s.noBody || len(p) == 0 {
		return nil
	}
	return s.send(0, p, false, "writing the response body")
}

// WriteLastBody writes the last piece of the response body and ends the stream with it: a
// DATA frame with END_STREAM, and one write to the connection where WriteBody and
// FinishResponse take two. There are no trailers.
func (s *ServerStream) WriteLastBody(p []byte) error {
	if !s.headSent {
		return perr.Explain(perr.InternalError, "response body before its head").AsIn()
	}
	if s.noBody || len(p) == 0 {
		return s.FinishResponse(nil)
	}
	return s.send(0, p, true, "writing the response body")
}

// Flush sends the final response head if it is still waiting for body bytes. Body bytes are
// sent when WriteBody returns.
func (s *ServerStream) Flush() error {
	if !s.headPending {
		return nil
	}
	return s.send(0, nil, false, "writing the response head")
}

// FinishResponse ends the response, with trailers (nil or empty for none): the stream's
// END_STREAM goes out now.
func (s *ServerStream) FinishResponse(trailers *header.Fields) error {
	if !s.headSent {
		return perr.Explain(perr.InternalError, "response finished before its head").AsIn()
	}
	if s.headPending && trailers != nil && trailers.Len() > 0 {
		if err := s.Flush(); err != nil {
			return err
		}
	}
	if !s.headPending {
		s.fields = s.fields[:0]
		if trailers != nil {
			s.fields = appendH2Fields(s.fields, trailers)
		}
	}
	return s.send(0, nil, true, "finishing the response")
}

func (s *ServerStream) release() {
	if s.buf != nil {
		bodyBufs.Put(s.buf)
		s.buf = nil
	}
}

// bodyPipe carries a request body from the serve loop to the handler. Its size is bounded by
// the stream's flow-control window, which the client must respect.
type bodyPipe struct {
	wake chan struct{} // signaled after every change

	mu       sync.Mutex // guards following fields
	chunks   []chunk
	done     bool // END_STREAM arrived
	err      error
	trailers []hpack.HeaderField
}

func (b *bodyPipe) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// chunk is a piece of body held by a bodyPipe, in a pooled buffer when it fits one.
type chunk struct {
	buf *[bodyBufSize]byte // nil when p was allocated for a larger frame
	p   []byte             // the unread bytes
}

func (c chunk) free() {
	if c.buf != nil {
		bodyBufs.Put(c.buf)
	}
}

// push adds a copy of p.
func (b *bodyPipe) push(p []byte) {
	var c chunk
	if len(p) <= bodyBufSize {
		c.buf = bodyBufs.Get().(*[bodyBufSize]byte)
		c.p = c.buf[:copy(c.buf[:], p)]
	} else {
		c.p = append([]byte(nil), p...)
	}
	b.mu.Lock()
	b.chunks = append(b.chunks, c)
	b.mu.Unlock()
	b.signal()
}

func (b *bodyPipe) finish() {
	b.mu.Lock()
	b.done = true
	b.mu.Unlock()
	b.signal()
}

func (b *bodyPipe) setTrailers(fields []hpack.HeaderField) {
	b.mu.Lock()
	b.trailers = append(b.trailers, fields...)
	b.mu.Unlock()
}

// fail makes reads fail with err, unless the body already arrived whole.
func (b *bodyPipe) fail(err error) {
	b.mu.Lock()
	if !b.done && b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
	b.signal()
}

// discard drops the unread bytes and returns how many there were.
func (b *bodyPipe) discard() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, c := range b.chunks {
		n += len(c.p)
		c.free()
	}
	b.chunks = nil
	return n
}

// read copies body bytes into dst; at the end it returns io.EOF and the trailers, together
// with the last bytes when the end of the stream had arrived by then.
func (b *bodyPipe) read(dst []byte) (int, []hpack.HeaderField, error) {
	for {
		b.mu.Lock()
		if len(b.chunks) > 0 {
			c := &b.chunks[0]
			n := copy(dst, c.p)
			c.p = c.p[n:]
			if len(c.p) == 0 {
				c.free()
				b.chunks[0] = chunk{}
				b.chunks = b.chunks[1:]
			}
			if len(b.chunks) == 0 && b.done && b.err == nil {
				t := b.trailers
				b.mu.Unlock()
				return n, t, io.EOF
			}
			b.mu.Unlock()
			return n, nil, nil
		}
		switch {
		case b.err != nil:
			err := b.err
			b.mu.Unlock()
			return 0, nil, err
		case b.done:
			t := b.trailers
			b.mu.Unlock()
			return 0, t, io.EOF
		}
		b.mu.Unlock()
		<-b.wake
	}
}

func itoa(n int) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
