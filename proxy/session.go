package proxy

import (
	"crypto/tls"
	"net"
	"strconv"
	"time"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/protocols/h1"
	"github.com/pingora-go/pingora/protocols/h2"
	"github.com/pingora-go/pingora/upstream"
)

// Timings records when the steps of a request happened; zero times did not happen.
type Timings struct {
	// Start is when the request head had been read.
	Start time.Time
	// Connected is when the last upstream connection was ready.
	Connected time.Time
	// UpstreamHead is when the final upstream response head arrived.
	UpstreamHead time.Time
	// End is when the response was finished (before Logging).
	End time.Time
}

// nowSince returns the current time as t plus the time elapsed since t, for t from time.Now
// (zero gives time.Now): reading the monotonic clock alone, it costs one clock read where
// time.Now costs two, and it is exact, unless the wall clock was set in between.
func nowSince(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t.Add(time.Since(t))
}

// Session is one request as the phases see it: the downstream request, the means to answer it,
// the upstream response head, timings and the error that ended it.
type Session struct {
	sessionState

	// cache is the HTTP cache's state for this request (cache.go). It is cleared for the next
	// request only when this one turned the cache on (HTTPCache.used): most requests never
	// write it, and clearing it would write its five cache lines, cold by then, each time.
	cache HTTPCache

	// resp is a response built by the proxy (Respond, error pages, cache hits, purges): each
	// of them resets it first, so a request that uses none does not touch it.
	resp header.ResponseHeader

	// Timings of this request.
	Timings Timings
}

// sessionState is the part of a Session cleared for each request.
type sessionState struct {
	ds         *h1.ServerSession // the HTTP/1 downstream, or nil
	h2s        *h2.ServerStream  // the HTTP/2 downstream, or nil
	down       downstream        // ds or h2s
	req        *header.RequestHeader
	netConn    net.Conn
	clientAddr net.Addr
	shutdown   bool

	upstreamResp *header.ResponseHeader
	respStarted  bool
	respStatus   int
	keepAlive    bool

	builders []ModuleBuilder
	modules  []Module

	peer          *upstream.Peer
	attempts      int
	retryBuf      []byte
	retryTrunc    bool
	bodyBytesUp   int64
	bodyBytesDown int64
	err           error
}

// reset prepares the session for a request of ds (HTTP/1) or h2s (HTTP/2).
func (s *Session) reset(ds *h1.ServerSession, h2s *h2.ServerStream, shutdown bool) {
	// Clearing in place and putting back what is kept writes the struct once, where a
	// composite literal is built on the stack and then copied over (twice the cache lines).
	retryBuf, modules := s.retryBuf[:0], s.modules[:0]
	prevConn, prevAddr := s.netConn, s.clientAddr
	s.sessionState = sessionState{}
	if s.cache.used {
		s.cache = HTTPCache{}
	}
	s.Timings = Timings{}
	s.ds, s.h2s, s.shutdown = ds, h2s, shutdown
	s.retryBuf, s.modules = retryBuf, modules
	if ds != nil {
		s.down, s.req, s.netConn = ds, &ds.Req, ds.Conn()
	} else {
		s.down, s.req, s.netConn = h2s, &h2s.Req, h2s.Conn().Conn()
	}
	// The next request of the same connection keeps the address: asking the connection
	// again would touch its file descriptor's memory, which has gone cold since.
	if s.netConn == prevConn && prevAddr != nil {
		s.clientAddr = prevAddr
	} else {
		s.clientAddr = s.netConn.RemoteAddr()
	}
	s.keepAlive = true
}

// downstream is what the engine needs of a downstream request, HTTP/1 (*h1.ServerSession) or
// HTTP/2 (*h2.ServerStream).
type downstream interface {
	ReadBody() ([]byte, error)
	BodyDone() bool
	BodyBytesRead() int64
	Trailers() *header.Fields
	WriteResponseHeader(resp *header.ResponseHeader) error
	WriteBody(p []byte) error
	Flush() error
	FinishResponse(trailers *header.Fields) error
	SetKeepAlive(on bool)
}

// Req returns the downstream request head. Phases before UpstreamRequestFilter may change it;
// the upstream request is a copy made from it after ConnectedToUpstream. For an HTTP/2
// request, field names are lowercase, the Host field carries :authority and the version is
// header.HTTP2.
func (s *Session) Req() *header.RequestHeader { return s.req }

// IsHTTP2 reports whether the downstream request came over HTTP/2.
func (s *Session) IsHTTP2() bool { return s.h2s != nil }

// ClientAddr returns the downstream client's address.
func (s *Session) ClientAddr() net.Addr { return s.clientAddr }

// TLSState returns the downstream connection's TLS state (server name, negotiated protocol
// and version, client certificates) when the client connected over TLS.
func (s *Session) TLSState() (tls.ConnectionState, bool) {
	if tc, ok := s.netConn.(*tls.Conn); ok {
		return tc.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

// IsShuttingDown reports whether the server is shutting down gracefully; the connection
// closes after this request.
func (s *Session) IsShuttingDown() bool { return s.shutdown }

// RequestsServed returns how many requests the downstream HTTP/1 connection has carried, this
// one included; for HTTP/2, whose requests run side by side, it returns 1.
func (s *Session) RequestsServed() int {
	if s.ds == nil {
		return 1
	}
	return s.ds.RequestsServed()
}

// UpstreamResponse returns the upstream response head once it arrived, else nil.
func (s *Session) UpstreamResponse() *header.ResponseHeader { return s.upstreamResp }

// Peer returns the peer of the last connection attempt, or nil.
func (s *Session) Peer() *upstream.Peer { return s.peer }

// Attempts returns how many times UpstreamPeer was asked for this request.
func (s *Session) Attempts() int { return s.attempts }

// Err returns the error that ended the request, if any (set before Logging).
func (s *Session) Err() error { return s.err }

// ResponseStarted reports whether a response head was sent downstream.
func (s *Session) ResponseStarted() bool { return s.respStarted }

// ResponseStatus returns the status of the response sent downstream, or 0.
func (s *Session) ResponseStatus() int { return s.respStatus }

// BodyBytesSent returns how many response body bytes went downstream.
func (s *Session) BodyBytesSent() int64 { return s.bodyBytesDown }

// BodyBytesReceived returns how many request body bytes were read from downstream.
func (s *Session) BodyBytesReceived() int64 { return s.down.BodyBytesRead() }

// RetryBufferTruncated reports whether the request body outgrew the retry buffer, so that the
// request can no longer be replayed to another peer.
func (s *Session) RetryBufferTruncated() bool { return s.retryTrunc }

// SetKeepAlive allows (true) or forbids (false) reusing the downstream connection after this
// request. Allowing takes effect only where the client and the protocol allow it.
func (s *Session) SetKeepAlive(on bool) {
	s.keepAlive = on
	s.down.SetKeepAlive(on && !s.shutdown)
}

// WriteResponseHeader sends a response head downstream, through the modules. A final head can
// be sent once; interim (1xx) ones before it. With endOfStream the response ends with the head.
func (s *Session) WriteResponseHeader(resp *header.ResponseHeader, endOfStream bool) error {
	if err := s.modulesResponseHeader(resp, endOfStream); err != nil {
		return err
	}
	return s.writeHeader(resp, endOfStream)
}

// WriteResponseBody sends a piece of response body downstream, through the modules;
// endOfStream finishes the response. Bytes are flushed to the client before it returns.
func (s *Session) WriteResponseBody(body []byte, endOfStream bool) error {
	if err := s.modulesResponseBody(&body, endOfStream); err != nil {
		return err
	}
	return s.writeDown(body, endOfStream, nil)
}

func (s *Session) modulesResponseHeader(resp *header.ResponseHeader, endOfStream bool) error {
	for _, m := range s.modules {
		if m != nil {
			if err := m.ResponseHeaderFilter(s, resp, endOfStream); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Session) modulesResponseBody(body *[]byte, endOfStream bool) error {
	for _, m := range s.modules {
		if m != nil {
			if err := m.ResponseBodyFilter(s, body, endOfStream); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeHeader writes a head that went through the modules.
func (s *Session) writeHeader(resp *header.ResponseHeader, endOfStream bool) error {
	if resp.Status >= 200 || resp.Status == 101 {
		if s.respStarted {
			return h1.ErrHeadAlreadySent
		}
		s.respStarted = true
		s.respStatus = resp.Status
	}
	if err := s.down.WriteResponseHeader(resp); err != nil {
		return err
	}
	if endOfStream {
		return s.down.FinishResponse(nil)
	}
	return nil
}

// writeDown writes body bytes that went through the modules and flushes them; at the end of
// the stream it finishes the response with trailers (may be nil).
func (s *Session) writeDown(body []byte, endOfStream bool, trailers *header.Fields) error {
	if endOfStream && len(body) > 0 && s.h2s != nil && (trailers == nil || trailers.Len() == 0) {
		// The last piece and the end of the stream in one DATA frame and one write.
		s.bodyBytesDown += int64(len(body))
		return s.h2s.WriteLastBody(body)
	}
	if len(body) > 0 {
		s.bodyBytesDown += int64(len(body))
		if err := s.down.WriteBody(body); err != nil {
			return err
		}
	}
	if endOfStream {
		return s.down.FinishResponse(trailers)
	}
	if len(body) > 0 {
		return s.down.Flush()
	}
	return nil
}

// Respond sends a whole response: status, the fields of extra (may be nil) and body, with a
// Content-Length.
func (s *Session) Respond(status int, extra *header.Fields, body []byte) error {
	r := &s.resp
	r.Reset()
	r.Status, r.Version = status, header.HTTP11
	if extra != nil {
		for _, f := range extra.All() {
			r.AppendBytes(f.Name, f.Value)
		}
	}
	r.Set("Content-Length", strconv.Itoa(len(body)))
	if err := s.WriteResponseHeader(r, false); err != nil {
		return err
	}
	return s.WriteResponseBody(body, true)
}

// RespondError answers with status and a short plain-text body. Call SetKeepAlive(false)
// first to close the connection afterwards.
func (s *Session) RespondError(status int) error { return s.respondErrorWith(status, nil) }

// respondErrorWith is RespondError with extra fields (may be nil).
func (s *Session) respondErrorWith(status int, extra *header.Fields) error {
	body := []byte(strconv.Itoa(status) + " " + header.StatusText(status) + "\n")
	r := &s.resp
	r.Reset()
	r.Status, r.Version = status, header.HTTP11
	if extra != nil {
		for _, f := range extra.All() {
			r.AppendBytes(f.Name, f.Value)
		}
	}
	r.Append("Content-Type", "text/plain; charset=utf-8")
	r.Append("Content-Length", strconv.Itoa(len(body)))
	r.Append("Cache-Control", "private, no-store")
	if err := s.WriteResponseHeader(r, false); err != nil {
		return err
	}
	return s.WriteResponseBody(body, true)
}

// perrOf returns err as a *perr.Error, wrapping a foreign error as an internal one.
func perrOf(err error, src perr.Source) *perr.Error {
	if e, ok := perr.As(err); ok {
		return e
	}
	e := perr.Because(perr.InternalError, "", err)
	e.Source = src
	return e
}
