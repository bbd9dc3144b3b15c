package h2

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
)

// ClientOptions configures a ClientConn. The zero value uses the defaults.
type ClientOptions struct {
	// MaxConcurrentStreams caps the streams this side opens at once (default 100); the
	// server's SETTINGS_MAX_CONCURRENT_STREAMS caps them too, whichever is lower.
	MaxConcurrentStreams int
	// MaxHeaderListSize bounds a response's header block (default 64 KiB).
	MaxHeaderListSize uint32
	// MaxReadFrameSize is the largest frame payload accepted (default 16 KiB).
	MaxReadFrameSize uint32
	// StreamWindow is the flow-control window of each response body (default 1 MiB): the
	// most body bytes buffered for a caller that does not read.
	StreamWindow int32
	// ConnWindow is the connection's window for all response bodies (default 4 MiB).
	ConnWindow int32
	// PingInterval sends a PING when nothing was read for this long (0: never); PingTimeout
	// bounds the wait for its answer (default 15 s) before the connection is closed.
	PingInterval, PingTimeout time.Duration
	// WriteTimeout closes the connection when a write makes no progress for this long
	// (default 60 s).
	WriteTimeout time.Duration
	// Scheme is the :scheme of requests: "https" or "http". By default it is "https" over
	// a *tls.Conn and "http" otherwise.
	Scheme string
}

// DefaultClientConnWindow is the default of ClientOptions.ConnWindow.
const DefaultClientConnWindow = 4 << 20

// ClientConn carries requests to an upstream over one HTTP/2 connection (after ALPN chose
// "h2", or cleartext with prior knowledge), many at once. It is safe for concurrent use. The
// frames are read and written by golang.org/x/net/http2's client connection.
type ClientConn struct {
	conn   net.Conn
	cc     *http2.ClientConn
	scheme string
	max    int

	mu       sync.Mutex // guards following fields
	active   int        // streams opened by NewStream and not closed yet
	goAway   goAwayState
	shutdown bool // Shutdown or Close was called
}

// NewClientConn starts HTTP/2 on conn: it sends the preface and the settings and starts the
// goroutine that reads the connection. opts may be nil; it is not kept.
func NewClientConn(conn net.Conn, opts *ClientOptions) (*ClientConn, error) {
	if opts == nil {
		opts = &ClientOptions{}
	}
	c := &ClientConn{conn: conn, scheme: opts.Scheme, max: opts.MaxConcurrentStreams}
	if c.max <= 0 {
		c.max = DefaultMaxConcurrentStreams
	}
	if c.scheme == "" {
		c.scheme = "http"
		if _, ok := conn.(*tls.Conn); ok {
			c.scheme = "https"
		}
	}
	t1 := &http.Transport{HTTP2: &http.HTTP2Config{
		MaxReceiveBufferPerStream:     int(orDefault(opts.StreamWindow, DefaultWindow)),
		MaxReceiveBufferPerConnection: int(orDefault(opts.ConnWindow, DefaultClientConnWindow)),
	}}
	t2, err := http2.ConfigureTransports(t1)
	if err != nil {
		return nil, perr.Because(perr.InternalError, "configuring HTTP/2", err).AsIn()
	}
	t2.AllowHTTP = true
	t2.DisableCompression = true
	t2.MaxHeaderListSize = orDefault(opts.MaxHeaderListSize, DefaultMaxHeaderListSize)
	t2.MaxReadFrameSize = orDefault(opts.MaxReadFrameSize, DefaultMaxReadFrameSize)
	t2.ReadIdleTimeout = opts.PingInterval
	t2.PingTimeout = opts.PingTimeout
	t2.WriteByteTimeout = orDefault(opts.WriteTimeout, DefaultWriteTimeout)
	t2.CountError = c.countError
	cc, err := t2.NewClientConn(conn)
	if err != nil {
		return nil, clientError(err, goAwayState{}, false, "starting HTTP/2")
	}
	c.cc = cc
	return c, nil
}

// countError learns the code of a GOAWAY from x/net's error counter, which is the only place
// the client reports it; a GOAWAY with NO_ERROR is not counted and leaves the code 0.
func (c *ClientConn) countError(name string) {
	code, ok := strings.CutPrefix(name, "recv_goaway_")
	if !ok {
		return
	}
	for i := range http2.ErrCode(16) {
		if i.String() == code {
			c.mu.Lock()
			c.goAway = goAwayState{seen: true, code: i}
			c.mu.Unlock()
			return
		}
	}
}

// goAwayNow returns the GOAWAY state; a connection that is closing though this side did not
// shut it down got a GOAWAY with NO_ERROR.
func (c *ClientConn) goAwayNow() goAwayState {
	st := c.cc.State()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.goAway.seen && st.Closing && !c.shutdown {
		return goAwayState{seen: true}
	}
	return c.goAway
}

// Conn returns the underlying connection.
func (c *ClientConn) Conn() net.Conn { return c.conn }

// Scheme returns the :scheme sent with requests.
func (c *ClientConn) Scheme() string { return c.scheme }

// CanTakeStream reports whether NewStream would succeed now: the connection is open, got no
// GOAWAY, and both this side's and the server's stream limits leave room.
func (c *ClientConn) CanTakeStream() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.shutdown && c.active < c.max && c.cc.CanTakeNewRequest()
}

// ActiveStreams returns the number of streams opened and not closed.
func (c *ClientConn) ActiveStreams() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active
}

// Idle reports whether the connection is usable and carries no stream, so that a pool may
// keep or close it.
func (c *ClientConn) Idle() bool {
	st := c.cc.State()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active == 0 && !c.shutdown && !st.Closed && !st.Closing
}

// Closing reports whether the connection takes no new streams any more: it got a GOAWAY, was
// shut down or closed, or failed.
func (c *ClientConn) Closing() bool {
	st := c.cc.State()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.shutdown || st.Closed || st.Closing
}

// Ping sends a PING and waits for its answer or for ctx; an error means the connection is
// not healthy.
func (c *ClientConn) Ping(ctx context.Context) error {
	if err := c.cc.Ping(ctx); err != nil {
		return clientError(err, c.goAwayNow(), false, "ping")
	}
	return nil
}

// Shutdown sends a GOAWAY and waits until the open streams are done or ctx ends, then closes
// the connection.
func (c *ClientConn) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	c.shutdown = true
	c.mu.Unlock()
	err := c.cc.Shutdown(ctx)
	if err != nil {
		c.cc.Close()
	}
	return err
}

// Close closes the connection at once; open streams fail.
func (c *ClientConn) Close() error {
	c.mu.Lock()
	c.shutdown = true
	c.mu.Unlock()
	return c.cc.Close()
}

// errNoStream is the reason NewStream fails on a full or closing connection.
func errNoStream() *perr.Error {
	return perr.Explain(perr.H2Error, "HTTP/2 connection takes no new stream").AsUp().SetRetry(true)
}

// NewStream takes a stream for one request, or fails with a retryable H2Error when the
// connection is closing or its stream limit is reached (the caller takes another connection).
// When several goroutines race for the server's last free streams, the request of a loser
// waits in WriteRequestHeader's round trip until a stream frees up or ctx ends.
// ctx bounds the whole exchange: when it ends, the stream is reset with CANCEL. Close the
// stream when done with it.
func (c *ClientConn) NewStream(ctx context.Context) (*ClientStream, error) {
	c.mu.Lock()
	if c.shutdown || c.active >= c.max || !c.cc.CanTakeNewRequest() {
		c.mu.Unlock()
		return nil, errNoStream()
	}
	c.active++
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	return &ClientStream{c: c, ctx: ctx, cancel: cancel, resCh: make(chan roundTrip, 1)}, nil
}

type roundTrip struct {
	res *http.Response
	err error
}

// ClientStream is one request to the upstream and its response, with the methods of an
// HTTP/1 client session. One goroutine may write the request body while another reads the
// response; otherwise it is not safe for concurrent use.
type ClientStream struct {
	// Resp is the final response head, with lowercase field names, once ReadResponseHeader
	// returned. Its Version is header.HTTP2.
	Resp header.ResponseHeader

	c      *ClientConn
	ctx    context.Context
	cancel context.CancelFunc
	req    *http.Request
	pw     *io.PipeWriter // the request body's writing end; nil without a body
	resCh  chan roundTrip
	res    *http.Response
	rtErr  error // the round trip's error, once ReadResponseHeader got it
	buf    *[bodyBufSize]byte

	protocol string     // :protocol of an extended CONNECT
	pwMu     sync.Mutex // guards pw and aborted against Abort on another goroutine
	aborted  bool
	reqDone  bool
	bodyDone bool
	read     int64
	trailers header.Fields
	closed   bool

	// Timeouts of SetTimeouts: a timer per direction cancels the stream when a wait for the
	// response (or a write of the request body) lasts longer; timedOut records why.
	readTimeout, writeTimeout time.Duration
	rtimer, wtimer            *time.Timer
	timedOut                  atomic.Bool
}

// SetProtocol makes a CONNECT request an extended CONNECT (RFC 8441) for protocol, such as
// "websocket": :protocol, :scheme and :path (the request's target) are sent, and the request
// waits for the server's SETTINGS_ENABLE_CONNECT_PROTOCOL (it fails when the server does not
// allow it). Call it before WriteRequestHeader.
func (s *ClientStream) SetProtocol(protocol string) { s.protocol = protocol }

// Conn returns the connection the stream belongs to.
func (s *ClientStream) Conn() *ClientConn { return s.c }

// SetTimeouts bounds each wait for the response head or a piece of its body (read) and each
// write of a piece of the request body (write), flow-control waits included; zero waits
// without bound. A wait that lasts longer resets the stream and fails with ReadTimedout or
// WriteTimedout. Call it before WriteRequestHeader.
func (s *ClientStream) SetTimeouts(read, write time.Duration) {
	s.readTimeout, s.writeTimeout = read, write
}

// arm starts *t to fire after d (creating it on first use); it returns false when d is 0.
func (s *ClientStream) arm(t **time.Timer, d time.Duration) bool {
	if d <= 0 {
		return false
	}
	if *t == nil {
		*t = time.AfterFunc(d, s.expire)
	} else {
		(*t).Reset(d)
	}
	return true
}

// expire cancels the stream because a wait lasted too long.
func (s *ClientStream) expire() {
	s.timedOut.Store(true)
	s.Abort()
}

// timeoutError replaces err by a timeout error when a timer canceled the stream.
func (s *ClientStream) timeoutError(err *perr.Error, t perr.ErrorType, what string) *perr.Error {
	if !s.timedOut.Load() {
		return err
	}
	return perr.Explain(t, what+": no progress for the configured timeout").AsUp()
}

// Abort resets the stream with CANCEL and makes the request body's writer and the response's
// reader, blocked on other goroutines or not, fail. It is safe for concurrent use; Close must
// still be called.
func (s *ClientStream) Abort() {
	s.pwMu.Lock()
	pw := s.pw
	s.aborted = true
	s.pwMu.Unlock()
	if pw != nil {
		pw.CloseWithError(errAborted)
	}
	s.cancel()
}

// errAborted is the error of the request body's writes after Abort.
var errAborted = errors.New("h2: stream aborted")

// WriteRequestHeader sends the request head. The Host field becomes :authority (see
// NormalizeAuthority; absent, the authority of an absolute-form target is used), the
// connection's scheme becomes :scheme, and connection-specific fields are left out. endStream
// says the request has no body: END_STREAM goes with the head and WriteBody is not called.
// Otherwise the body follows with WriteBody and ends with FinishRequest. Fields the request
// names in a Trailer field are announced, so that servers that keep only announced trailers
// (x/net's among them) keep them.
func (s *ClientStream) WriteRequestHeader(req *header.RequestHeader, endStream bool) error {
	if s.req != nil {
		return perr.Explain(perr.InternalError, "request head already written").AsIn()
	}
	target := string(req.Target())
	u := &url.URL{Scheme: s.c.scheme, Opaque: target}
	authority := NormalizeAuthority(string(req.Host()))
	if abs, err := url.Parse(target); err == nil && abs.IsAbs() && abs.Host != "" {
		if authority == "" {
			authority = abs.Host
		}
		u.Opaque = abs.RequestURI()
	}
	if req.IsMethod("CONNECT") && s.protocol == "" {
		u = &url.URL{Host: target}
		authority = target
	}
	u.Host = authority
	r := &http.Request{
		Method:     string(req.Method()),
		URL:        u,
		Host:       authority,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     make(http.Header, req.Len()+1),
	}
	fieldsToHTTP(&req.Fields, r.Header, "", true)
	if s.protocol != "" {
		r.Header[":protocol"] = []string{s.protocol}
	}
	if _, ok := r.Header["User-Agent"]; !ok {
		// An empty entry keeps x/net's client from adding its own User-Agent.
		r.Header["User-Agent"] = nil
	}
	if names, ok := r.Header["Trailer"]; ok {
		r.Trailer = make(http.Header, len(names))
		for _, v := range names {
			for name := range strings.SplitSeq(v, ",") {
				if name = strings.TrimSpace(name); name != "" {
					r.Trailer[http.CanonicalHeaderKey(name)] = nil
				}
			}
		}
		delete(r.Header, "Trailer")
	}
	if endStream {
		s.reqDone = true
	} else {
		r.ContentLength = -1
		if v, ok := req.Get("Content-Length"); ok {
			if n, err := strconv.ParseInt(string(v), 10, 64); err == nil && n >= 0 {
				r.ContentLength = n
			}
		}
		delete(r.Header, "Content-Length")
		pr, pw := io.Pipe()
		s.pwMu.Lock()
		r.Body, s.pw = pr, pw
		if s.aborted {
			pw.CloseWithError(errAborted)
		}
		s.pwMu.Unlock()
	}
	s.req = r.WithContext(s.ctx)
	go func(r *http.Request) {
		res, err := s.c.cc.RoundTrip(r)
		s.resCh <- roundTrip{res, err}
	}(s.req)
	return nil
}

// WriteBody sends a piece of the request body. It blocks while the server's flow-control
// window is closed.
func (s *ClientStream) WriteBody(p []byte) error {
	if s.pw == nil || s.reqDone {
		return perr.Explain(perr.InternalError, "request body not expected").AsIn()
	}
	armed := s.arm(&s.wtimer, s.writeTimeout)
	_, err := s.pw.Write(p)
	if armed {
		s.wtimer.Stop()
	}
	if err != nil {
		return s.timeoutError(clientError(err, s.c.goAwayNow(), false, "writing the request body"),
			perr.WriteTimedout, "writing the request body")
	}
	return nil
}

// Flush does nothing: every piece of the body is sent when WriteBody returns. It exists so
// that a ClientStream has the methods of an HTTP/1 client session.
func (s *ClientStream) Flush() error { return nil }

// FinishRequest ends the request body, sending trailers (nil or empty for none).
func (s *ClientStream) FinishRequest(trailers *header.Fields) error {
	if s.reqDone {
		return nil
	}
	s.reqDone = true
	if trailers != nil && trailers.Len() > 0 {
		// x/net's client reads the request's Trailer map while it encodes the head. An empty
		// write returns once the client reads the body, which it does only after the head.
		if _, err := s.pw.Write(nil); err != nil {
			return clientError(err, s.c.goAwayNow(), false, "writing the request trailers")
		}
		if s.req.Trailer == nil {
			s.req.Trailer = make(http.Header, trailers.Len())
		}
		fieldsToHTTP(trailers, s.req.Trailer, "", true)
	}
	return s.pw.Close()
}

// ReadResponseHeader waits for the final response head and reads it into Resp; interim
// (1xx) responses are skipped, as the reference does on HTTP/2. Errors are *perr.Error with
// source Upstream; see the package's retry rules in clientError's documentation.
func (s *ClientStream) ReadResponseHeader() error {
	if s.req == nil {
		return perr.Explain(perr.InternalError, "response read before the request head").AsIn()
	}
	if s.res != nil || s.rtErr != nil {
		return s.rtErr
	}
	armed := s.arm(&s.rtimer, s.readTimeout)
	rt := <-s.resCh
	if armed {
		s.rtimer.Stop()
	}
	if rt.err != nil {
		s.rtErr = s.timeoutError(clientError(rt.err, s.c.goAwayNow(), true, "reading the response head"),
			perr.ReadTimedout, "reading the response head")
		return s.rtErr
	}
	s.res = rt.res
	s.Resp.Reset()
	s.Resp.Version = header.HTTP2
	s.Resp.SetStatus(rt.res.StatusCode)
	appendLower(&s.Resp.Fields, rt.res.Header)
	return nil
}

// ReadBody returns the next piece of the response body, valid until the next call, and io.EOF
// after the last piece. Reading opens the flow-control window: a caller that does not read
// holds the server to ClientOptions.StreamWindow bytes.
func (s *ClientStream) ReadBody() ([]byte, error) {
	if s.res == nil {
		return nil, perr.Explain(perr.InternalError, "response body read before its head").AsIn()
	}
	if s.bodyDone {
		return nil, io.EOF
	}
	if s.buf == nil {
		s.buf = bodyBufs.Get().(*[bodyBufSize]byte)
	}
	armed := s.arm(&s.rtimer, s.readTimeout)
	n, err := s.res.Body.Read(s.buf[:])
	if armed {
		s.rtimer.Stop()
	}
	s.read += int64(n)
	switch {
	case err == io.EOF:
		s.bodyDone = true
		appendLower(&s.trailers, s.res.Trailer)
		if n == 0 {
			return nil, io.EOF
		}
	case err != nil:
		return nil, s.timeoutError(clientError(err, s.c.goAwayNow(), false, "reading the response body"),
			perr.ReadTimedout, "reading the response body")
	}
	return s.buf[:n], nil
}

// BodyDone reports whether the response body was read to its end.
func (s *ClientStream) BodyDone() bool { return s.bodyDone }

// BodyBytesRead returns how many response body bytes were read.
func (s *ClientStream) BodyBytesRead() int64 { return s.read }

// Trailers returns the response's trailers, with lowercase names, once its body was read to
// the end.
func (s *ClientStream) Trailers() *header.Fields { return &s.trailers }

// Close ends the stream and frees its place on the connection. A stream not complete in both
// directions is reset with CANCEL.
func (s *ClientStream) Close() {
	if s.closed {
		return
	}
	s.closed = true
	if s.pw != nil && !s.reqDone {
		s.pw.CloseWithError(context.Canceled)
	}
	if s.res != nil {
		s.res.Body.Close()
	} else if s.req != nil && s.rtErr == nil {
		s.cancel()
		if rt := <-s.resCh; rt.res != nil {
			rt.res.Body.Close()
		}
	}
	s.cancel()
	if s.rtimer != nil {
		s.rtimer.Stop()
	}
	if s.wtimer != nil {
		s.wtimer.Stop()
	}
	if s.buf != nil {
		bodyBufs.Put(s.buf)
		s.buf = nil
	}
	s.c.mu.Lock()
	s.c.active--
	s.c.mu.Unlock()
}
