package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pingora-go/pingora/cache"
	"github.com/pingora-go/pingora/connector"
	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/internal/park"
	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/protocols/h1"
	"github.com/pingora-go/pingora/protocols/h2"
	"github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

// Options configures a Proxy. The zero value uses the defaults.
type Options struct {
	// MaxRetries caps the connection attempts of one request when errors are marked
	// retryable (the reference's max_retries; default 16).
	MaxRetries int
	// Server configures the downstream HTTP/1 sessions: limits and timeouts.
	Server h1.ServerOptions
	// AllowConnect lets CONNECT requests through the phases; by default they are answered
	// 405.
	AllowConnect bool
	// Connector makes upstream connections; nil makes one with connector.Options{}.
	Connector *connector.Connector
	// Logger receives error log lines; nil uses slog.Default().
	Logger *slog.Logger
	// Observers are told about every request, for metrics and access logs.
	Observers []Observer
	// Modules run around the phases of every request, in descending Order (see Module).
	Modules []ModuleBuilder
	// H2 configures the downstream HTTP/2 connections: stream and header limits, windows,
	// timeouts. HTTP/2 is served on TLS connections whose handshake chose "h2" by ALPN (offer
	// it with listeners.TLSOptions.EnableH2), and on cleartext ones when H2C is set.
	H2 h2.ServerOptions
	// H2C serves cleartext HTTP/2 with prior knowledge on the same listeners as HTTP/1.1:
	// each new connection's first bytes tell which one the client speaks. Idle HTTP/1
	// connections of such a listener are not parked (see ParkAfter).
	H2C bool
	// H2COnly makes cleartext listeners HTTP/2-only (prior knowledge): a connection that does
	// not start with the HTTP/2 preface is closed without an answer, as RFC 9113 §3.4 asks of
	// an HTTP/2 server. It implies H2C.
	H2COnly bool
	// ParkAfter is how long an idle keep-alive connection waits for its next request on its
	// own goroutine before it is parked: handed to one shared epoll watcher, so that it holds
	// no goroutine stack while it stays idle (Linux). Default 250 ms; negative never parks.
	ParkAfter time.Duration
	// Cache is the HTTP cache that the default RequestCacheFilter enables for every request
	// (the quick mode's "cache everything cacheable"); nil leaves the cache to the phases.
	Cache *cache.Cache
}

// DefaultParkAfter is the default of Options.ParkAfter.
const DefaultParkAfter = 250 * time.Millisecond

// Observer receives the engine's events, for metrics and access logs. Its methods run on the
// request's goroutine and must not block.
type Observer interface {
	// UpstreamConnected is called after each successful connection attempt: reused says
	// whether the connection came from the pool, took how long getting it lasted.
	UpstreamConnected(s *Session, reused bool, took time.Duration)
	// RequestDone is called for every request after the Logging phase; s.Err() holds the
	// error that ended it, if any.
	RequestDone(s *Session)
}

// DefaultMaxRetries is the reference's max_retries.
const DefaultMaxRetries = 16

// RetryBufferLimit is how much request body is kept so that a retry can replay it.
const RetryBufferLimit = 64 << 10

// Proxy runs the phases of a ProxyHTTP for every request on the connections it serves. It
// implements server.App.
type Proxy[C any] struct {
	app     ProxyHTTP[C]
	opts    Options
	conn    *connector.Connector
	log     *slog.Logger
	conns   sync.Pool // of *conn[C] for HTTP/1 connections
	streams sync.Pool // of *conn[C] for HTTP/2 streams

	parkOnce sync.Once
	parked   atomic.Pointer[park.Parker]
	inflight inflight
}

var _ server.App = (*Proxy[struct{}])(nil)

// New returns a proxy running app.
func New[C any](app ProxyHTTP[C], opts Options) *Proxy[C] {
	if opts.MaxRetries <= 0 {
		opts.MaxRetries = DefaultMaxRetries
	}
	opts.Modules = sortModules(opts.Modules)
	p := &Proxy[C]{app: app, opts: opts, conn: opts.Connector, log: opts.Logger}
	if p.conn == nil {
		p.conn = connector.New(connector.Options{})
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	return p
}

// NewService returns a listening service named name that proxies with app; add addresses to
// it and add it to a server.Server.
func NewService[C any](name string, app ProxyHTTP[C], opts Options) *server.ListeningService {
	return server.NewListeningService(name, New(app, opts))
}

// Connector returns the proxy's upstream connector.
func (p *Proxy[C]) Connector() *connector.Connector { return p.conn }

// conn is the state of one downstream connection, reused across its requests.
type conn[C any] struct {
	ds *h1.ServerSession // HTTP/1: the connection's session, &dsv
	// dsv holds the HTTP/1 session in the connection's state: one object for both, which a
	// request touches together.
	dsv   h1.ServerSession
	h2s   *h2.ServerStream // HTTP/2: the stream being served
	wsKey string           // HTTP/2: the Sec-WebSocket-Key sent upstream for an extended CONNECT
	// HTTP/2: the upstream exchange a client's reset aborts (see watchReset).
	upMu             sync.Mutex
	curUp            upstreamSession
	abortUp, unwatch func()
	sess             Session
	ctx              C
	upReq            header.RequestHeader
	persist          any
	pumpErr          chan error
	// phaseMu keeps phases of one request from running at once while the request body is
	// streamed from its own goroutine.
	phaseMu sync.Mutex
	// reqPiece and respPiece hold the body piece the body filters work on.
	reqPiece, respPiece []byte
}

// phases runs f, which calls phases or modules, holding phaseMu when the request body is being
// streamed by its own goroutine (locked), so that the phases of one request never run at
// once. The lock is released even if f panics.
func (st *conn[C]) phases(locked bool, f func() error) error {
	if locked {
		st.phaseMu.Lock()
		defer st.phaseMu.Unlock()
	}
	return f()
}

// ServeConn serves HTTP/1 or HTTP/2 requests on c (see Options.H2 and H2C) until the client
// closes it, an error ends it, or a graceful shutdown (shutdown ends) lets the requests in
// flight finish.
//
// Between requests the connection holds no session and no buffer: it waits for readability
// only, and takes a pooled session for each burst of requests. An idle keep-alive connection
// therefore costs little more than its goroutine.
func (p *Proxy[C]) ServeConn(shutdown context.Context, c net.Conn) {
	isH2, c, ok := p.isH2(c)
	switch {
	case !ok:
		c.Close()
	case isH2:
		p.serveH2(shutdown, c)
	default:
		p.serveLoop(shutdown, c, 0, nil)
	}
}

// serveLoop serves c from its next request on, with served requests behind it and the value
// PersistConnectionContext kept from the last one.
func (p *Proxy[C]) serveLoop(shutdown context.Context, c net.Conn, served int, persist any) {
	// state is connIdle while the connection waits for a request; the shutdown waker moves it
	// to connWoken and interrupts the wait. A request in flight (connBusy) is left to finish.
	var state atomic.Int32
	stop := context.AfterFunc(shutdown, func() {
		if state.CompareAndSwap(connIdle, connWoken) {
			c.SetReadDeadline(time.Now())
		}
	})
	defer stop()
	idleTimeout := p.opts.Server.IdleTimeout
	if idleTimeout <= 0 {
		idleTimeout = h1.DefaultIdleTimeout
	}
	parkAfter := p.opts.ParkAfter
	if parkAfter == 0 {
		parkAfter = DefaultParkAfter
	}
	canPark := park.Supported && parkAfter > 0 && parkAfter < idleTimeout
	if canPark {
		if _, ok := c.(syscall.Conn); !ok {
			canPark = false // TLS: the wait must read through the TLS layer
		}
	}

	var waiter *h1.IdleWaiter
	if canPark {
		waiter = h1.NewIdleWaiter(c)
	}

	// st, the session and buffers, is held only while requests come back to back; a
	// connection waiting longer holds nothing but itself (see waitCold).
	var st *conn[C]
	release := func(closeConn bool) {
		if st == nil {
			if closeConn {
				c.Close()
			}
			return
		}
		served, persist = st.ds.RequestsServed(), st.persist
		if closeConn {
			st.ds.Close()
		} else {
			st.ds.Release()
		}
		st.persist = nil
		st.sess = Session{sessionState: sessionState{retryBuf: st.sess.retryBuf[:0], modules: st.sess.modules[:0]}}
		p.conns.Put(st)
		st = nil
	}
	busy := false         // the last request followed its predecessor's response at once
	var lastEnd time.Time // when the last request's response ended: the wait starts about then

	// A new connection's first request is served even when a graceful shutdown has begun
	// (with keep-alive off, as the reference does): the client connected before the
	// listeners closed and expects an answer.
	for fresh := served == 0; ; fresh = false {
		pipelined := st != nil && st.ds.Buffered() > 0
		if !fresh && !pipelined {
			state.Store(connIdle)
			if shutdown.Err() != nil {
				release(true)
				return
			}
		}
		waitStart := lastEnd
		if waitStart.IsZero() {
			waitStart = time.Now()
		}
		var err error
		read := false
		if canPark && !pipelined {
			if busy && st != nil {
				// A busy client usually sends its next request within microseconds: read it
				// straight away with the buffer at hand, for a short while.
				st.ds.SetIdleDeadline(hotUntil(waitStart))
				if st.ds.CanHold() {
					var done bool
					done, read, err = p.serveHeld(shutdown, st, &state, &waitStart, &busy)
					if done {
						release(true)
						return
					}
				} else {
					err, read = st.ds.ReadRequest(), true
					if err == h1.ErrIdle {
						read = false
					}
				}
			}
			if !read {
				release(false)
				if werr := waiter.Wait(waitStart.Add(parkAfter)); werr != nil {
					woken := !fresh && !state.CompareAndSwap(connIdle, connBusy)
					if !woken && errors.Is(werr, os.ErrDeadlineExceeded) &&
						p.park(shutdown, c, served, persist, waitStart.Add(idleTimeout)) {
						return
					}
					c.Close()
					return
				}
			}
		}
		if st == nil {
			st, _ = p.conns.Get().(*conn[C])
			if st == nil {
				st = &conn[C]{pumpErr: make(chan error, 1)}
				st.ds = &st.dsv // Reset below makes it a session over c
			}
			st.ds.Reset(c, &p.opts.Server, served)
			st.persist = persist
		}
		if !read {
			err = st.ds.ReadRequest()
		}
		if !fresh && !pipelined && !state.CompareAndSwap(connIdle, connBusy) && state.Load() == connWoken {
			// Graceful shutdown woke the connection while it waited for this request.
			release(true)
			return
		}
		if err != nil {
			if err != io.EOF && err != h1.ErrIdle {
				p.badRequest(st.ds, err)
			}
			release(true)
			return
		}
		state.Store(connBusy)
		now := nowSince(waitStart)
		busy = now.Sub(waitStart) < hotGap
		if !p.serveRequest(st, shutdown.Err() != nil, now) || shutdown.Err() != nil {
			release(true)
			return
		}
		lastEnd = st.sess.Timings.End
	}
}

// serveHeld serves the requests of a busy connection inside its wait for the next one
// (h1.ServerSession.Hold), from the read of the first on: after each, when its read drained
// the socket, the wait goes on without a read, where ReadRequest would first try a read that
// finds nothing (the next request comes only after the client got this response); the wait
// sees the request arrive all the same, even while the one before was being served. One
// system call less per request.
//
// It returns done when the connection is to be closed (an answer that ends it, a graceful
// shutdown, an error of the connection). Otherwise read reports a request read (or err, the
// failure to read one) that the caller serves itself: a request whose body (or protocol
// switch) reads the connection, which only Hold's function could do while it holds it. When
// neither, the connection went quiet for the hot wait (the caller's idle path follows).
// *waitStart and *busy follow the requests served as in serveLoop.
func (p *Proxy[C]) serveHeld(shutdown context.Context, st *conn[C], state *atomic.Int32, waitStart *time.Time, busy *bool) (done, read bool, err error) {
	ds := st.ds
	herr := ds.Hold(func() bool {
		for {
			err = ds.ReadRequest()
			if err == h1.ErrWouldBlock {
				return false
			}
			if err != nil {
				read = true
				return true
			}
			if !state.CompareAndSwap(connIdle, connBusy) && state.Load() == connWoken {
				// Graceful shutdown woke the connection while it waited for this request.
				done = true
				return true
			}
			state.Store(connBusy)
			if ds.RequestFraming().Kind != h1.BodyNone || ds.IsUpgradeRequest() || ds.Req.IsMethod("CONNECT") {
				read = true
				return true
			}
			now := nowSince(*waitStart)
			*busy = now.Sub(*waitStart) < hotGap
			if !p.serveRequest(st, shutdown.Err() != nil, now) || shutdown.Err() != nil {
				done = true
				return true
			}
			*waitStart = st.sess.Timings.End
			if ds.Buffered() > 0 {
				continue // pipelined: the next request is already read
			}
			state.Store(connIdle)
			if shutdown.Err() != nil {
				done = true
				return true
			}
			if !*busy {
				return true // the caller's idle wait follows
			}
			if ds.ArmIdleDeadline(hotUntil(*waitStart)) != nil {
				done = true
				return true
			}
			if !ds.Drained() {
				continue // the last read may have left bytes: read before waiting
			}
			return false
		}
	})
	switch {
	case herr == h1.ErrIdle:
		return false, false, nil
	case isTimedOut(herr):
		// A head that came in part and not whole in time: answered as outside the wait.
		return false, true, herr
	case herr != nil:
		return true, false, nil
	}
	return done, read, err
}

// isTimedOut reports whether err is a perr ReadTimedout.
func isTimedOut(err error) bool {
	e, ok := perr.As(err)
	return ok && e.Type == perr.ReadTimedout
}

// A connection whose request arrived within hotGap of the previous response is busy: its next
// request is read directly for hotWait to twice that (see hotUntil), holding the session, and
// on a plain socket inside the wait begun before the last request was read (serveHeld): one
// read per request, where the wait of IdleWaiter costs a peek and then the read. Any other
// connection waits without a buffer (IdleWaiter), and parks after ParkAfter. Under load a busy
// client's next request comes milliseconds after its response, once the proxy has served the
// other connections.
const (
	hotGap  = 100 * time.Millisecond
	hotWait = 100 * time.Millisecond
)

// hotUntil is when the direct wait of a busy connection that started at start ends: between
// hotWait and twice hotWait after start, on a grid of hotWait, so that a connection's requests
// within hotWait of each other share one deadline and the socket's is not set again for each
// (the session sets it only when it changes): setting it, two clock reads and an update of a
// runtime timer, happens once in hotWait per busy connection. On a grid of hotWait/4 it came
// every 7th request of each of 50 busy connections.
func hotUntil(start time.Time) time.Time {
	return start.Add(2 * hotWait).Truncate(hotWait)
}

// States of a downstream connection, for the shutdown waker.
const (
	connBusy int32 = iota
	connIdle
	connWoken
)

// park hands an idle connection to the parker, which resumes serving it on a new goroutine
// when the next request arrives. The connection stays counted by its service meanwhile.
func (p *Proxy[C]) park(shutdown context.Context, c net.Conn, served int, persist any, deadline time.Time) bool {
	pk := p.parker(shutdown)
	if pk == nil {
		return false
	}
	tr := server.TrackerFrom(shutdown)
	if tr != nil {
		tr.Track(c)
	}
	ok := pk.Park(c, deadline, func(readable bool) {
		if tr != nil {
			defer tr.Untrack(c)
		}
		if !readable || shutdown.Err() != nil {
			c.Close()
			return
		}
		p.serveLoop(shutdown, c, served, persist)
	})
	if !ok && tr != nil {
		tr.Untrack(c)
	}
	return ok
}

// parker returns the proxy's parker, starting it on first use; it closes (closing the parked
// connections) when shutdown ends.
func (p *Proxy[C]) parker(shutdown context.Context) *park.Parker {
	p.parkOnce.Do(func() {
		pk, err := park.New()
		if err != nil {
			p.log.Warn("idle connections will not be parked", "error", err)
			return
		}
		p.parked.Store(pk)
		context.AfterFunc(shutdown, pk.Close)
	})
	return p.parked.Load()
}

// Parked returns how many idle connections are parked.
func (p *Proxy[C]) Parked() int {
	if pk := p.parked.Load(); pk != nil {
		return pk.Len()
	}
	return 0
}

// badRequest answers a request whose head could not be read, then the connection closes.
func (p *Proxy[C]) badRequest(ds *h1.ServerSession, err error) {
	code := perr.StatusFor(err)
	p.log.Warn("invalid downstream request", "client", ds.Conn().RemoteAddr().String(), "error", err.Error(), "status", code)
	if code > 0 {
		ds.RespondError(code)
	}
}

// serveRequest runs the phases for the request just read (at start) and reports whether the
// connection can serve another one.
func (p *Proxy[C]) serveRequest(st *conn[C], shuttingDown bool, start time.Time) (reuse bool) {
	s := &st.sess
	s.reset(st.ds, st.h2s, shuttingDown)
	s.Timings.Start = start
	if shuttingDown {
		s.down.SetKeepAlive(false)
	}
	var zero C
	st.ctx = zero
	ctx := &st.ctx
	// stage is how far the request got in its logging: a panic in Logging or an observer must
	// not run them again.
	const (
		notLogged = iota
		inLogging
		inObservers
	)
	stage := notLogged
	defer func() {
		if r := recover(); r != nil {
			err := perr.Explain(perr.InternalError, "panic in a proxy phase").AsIn()
			p.log.Error("panic while proxying", "panic", r, "request", p.safeSummary(s, ctx), "stack", string(debug.Stack()))
			if !s.respStarted {
				s.SetKeepAlive(false)
				s.RespondError(500)
			} else if st.h2s != nil {
				st.h2s.Reset()
			}
			s.err = err
			reuse = false
			switch stage {
			case notLogged:
				p.safeLogging(s, err, ctx)
			case inLogging:
				p.safeObservers(s)
			}
		}
	}()

	*ctx = p.app.NewCtx()
	if len(p.opts.Modules) > 0 {
		s.startModules(p.opts.Modules)
		defer s.endModules()
	}
	if st.persist != nil {
		prev := st.persist
		st.persist = nil
		p.app.OnConnectionReuse(s, ctx, prev)
	}
	var err error
	if refused := p.refuseConnect(st); refused != nil {
		err = refused
	} else {
		err = p.runPhases(st, ctx)
	}
	canReuse := true
	cutShort := false // a response was under way when the request failed
	if err != nil {
		cutShort = s.respStarted
		canReuse = p.failed(s, err, ctx)
	}
	s.Timings.End = nowSince(s.Timings.Start)
	stage = inLogging
	p.app.Logging(s, err, ctx)
	stage = inObservers
	for _, o := range p.opts.Observers {
		o.RequestDone(s)
	}

	if st.h2s != nil {
		if cutShort {
			// An HTTP/2 response must not end as if it were complete.
			st.h2s.Reset()
		}
		return true
	}
	if err != nil && !canReuse {
		return false
	}
	if !st.ds.Finish() {
		return false
	}
	st.persist = p.app.PersistConnectionContext(s, ctx)
	return true
}

// refuseConnect returns the error of a CONNECT the proxy does not serve: any over HTTP/1 or
// HTTP/2 unless Options.AllowConnect, and an extended CONNECT of a protocol other than
// WebSocket. It is a function of its own, not inlined, as are failed and the log functions
// below, so that their stack space is not in serveRequest's frame, which lies under every
// request's phases.
//
//go:noinline
func (p *Proxy[C]) refuseConnect(st *conn[C]) error {
	if st.h2s != nil && st.h2s.Protocol() != "" && !st.extendedConnect() {
		return perr.Explain(perr.HTTPStatus(501), "extended CONNECT for "+st.h2s.Protocol()+" is not supported").AsDown()
	}
	if st.sess.req.IsMethod("CONNECT") && !p.opts.AllowConnect {
		return perr.Explain(perr.HTTPStatus(405), "CONNECT is not allowed").AsDown()
	}
	return nil
}

// failed runs FailToProxy for the request's error, and logs it unless SuppressErrorLog says
// not to; it reports whether the client's connection can serve another request.
//
//go:noinline
func (p *Proxy[C]) failed(s *Session, err error, ctx *C) (canReuse bool) {
	s.err = err
	ftp := p.app.FailToProxy(s, err, ctx)
	if !p.app.SuppressErrorLog(s, ctx, err) {
		p.logFailure(s, ctx, err, ftp.ErrorCode)
	}
	return ftp.CanReuseDownstream
}

// logRetry and logFailure log from functions of their own, not inlined: the arguments of a
// log call take stack space in the frame of the function that makes it, and these frames
// lie on every request's path, deepening the stack a request touches.
//
//go:noinline
func (p *Proxy[C]) logRetry(msg string, s *Session, ctx *C, e *perr.Error) {
	p.log.Warn(msg, "request", p.app.RequestSummary(s, ctx), "error", e.Error(), "attempt", s.attempts)
}

//go:noinline
func (p *Proxy[C]) logFailure(s *Session, ctx *C, err error, status int) {
	p.log.Error("request failed", "request", p.app.RequestSummary(s, ctx), "error", err.Error(),
		"status", status, "attempts", s.attempts)
}

// safeLogging runs the Logging phase and the observers after a panic, containing a panic of
// their own.
func (p *Proxy[C]) safeLogging(s *Session, err error, ctx *C) {
	func() {
		defer func() {
			if r := recover(); r != nil {
				p.log.Error("panic in Logging", "panic", r)
			}
		}()
		p.app.Logging(s, err, ctx)
	}()
	p.safeObservers(s)
}

// safeObservers tells the observers that the request is done, containing a panic of theirs.
func (p *Proxy[C]) safeObservers(s *Session) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("panic in an observer", "panic", r)
		}
	}()
	for _, o := range p.opts.Observers {
		o.RequestDone(s)
	}
}

func (p *Proxy[C]) safeSummary(s *Session, ctx *C) (summary string) {
	defer func() {
		if recover() != nil {
			summary = string(s.Req().Method()) + " " + string(s.Req().Target())
		}
	}()
	return p.app.RequestSummary(s, ctx)
}

// runPhases runs the request phases and the upstream attempts; it returns the error that ends
// the request, or nil when a response was sent completely.
func (p *Proxy[C]) runPhases(st *conn[C], ctx *C) error {
	s := &st.sess
	if err := p.app.EarlyRequestFilter(s, ctx); err != nil {
		return err
	}
	if err := s.modulesRequestHeader(); err != nil {
		return err
	}
	handled, err := p.app.RequestFilter(s, ctx)
	if err != nil {
		return err
	}
	if handled {
		return p.finishLocalResponse(s)
	}
	defer s.cache.done()
	if done, err := p.cacheRequest(st, ctx); done || err != nil {
		return err
	}
	goUp, err := p.app.ProxyUpstreamFilter(s, ctx)
	if err != nil {
		return err
	}
	if !goUp {
		return p.notProxied(s)
	}
	return p.cacheUpstreamFailed(st, ctx, p.proxyToUpstream(st, ctx))
}

// notProxied ends a request that ProxyUpstreamFilter kept from going upstream: with the
// response a filter wrote, or with a 502. It is a function of its own, not inlined, so that
// its stack space is not in runPhases' frame, which lies on every request's path.
//
//go:noinline
func (p *Proxy[C]) notProxied(s *Session) error {
	if !s.respStarted {
		r := &s.resp
		r.Reset()
		r.Status, r.Version = 502, header.HTTP11
		r.Append("Server", "pingora-go")
		r.Append("Content-Length", "0")
		r.Append("Cache-Control", "private, no-store")
		if err := s.WriteResponseHeader(r, true); err != nil {
			return err
		}
	}
	return p.finishLocalResponse(s)
}

// finishLocalResponse checks that a response written by a filter is complete.
func (p *Proxy[C]) finishLocalResponse(s *Session) error {
	if !s.respStarted {
		return perr.Explain(perr.InternalError, "request filter handled the request without a response").AsIn()
	}
	return nil
}

// attempt is the connection of one upstream attempt: the peer UpstreamPeer chose, the session
// to it, and the peer's in-flight slot (nil without a limit).
type attempt struct {
	peer   *upstream.Peer
	hs     connector.HTTPSession
	reused bool
	slot   func()
	stale  bool // the exchange found the pooled connection closed before sending (exchangeOn)
}

// connect counts an attempt, asks UpstreamPeer for its peer and connects to it within the
// peer's in-flight limit, over HTTP/1.1 when the request of st needs it (st is nil for a
// request without a client). A failure to choose a peer is final (err); a failure to connect
// comes back as e, after FailToConnect decided about it.
//
// A pooled HTTP/1 connection is handed out unchecked: it checks itself as the request goes
// out on it, in the same wait as for the response (connector.GetOptions.CheckOnSend). One
// found closed by the upstream then, or with bytes it did not ask for, fails the exchange
// before anything was sent (attempt.stale); the caller then connects again with again set to
// the attempt's peer, which is neither a new attempt nor a new UpstreamPeer, as a connection
// found dead in the pool is not, and takes connections the pool checks (which skips every
// dead one at once, as an upstream that restarted leaves them).
func (p *Proxy[C]) connect(s *Session, st *conn[C], ctx *C, again *upstream.Peer) (a attempt, e *perr.Error, err error) {
	peer := again
	if peer == nil {
		s.attempts++
		peer, err = p.app.UpstreamPeer(s, ctx)
		if err != nil {
			return a, nil, err
		}
		if peer == nil {
			return a, nil, perr.Explain(perr.InternalError, "UpstreamPeer returned no peer").AsIn()
		}
	}
	s.peer, a.peer = peer, peer
	if peer.Options.MaxInflight > 0 {
		// Checked here, not only in acquire: a call that returns at once still touches a
		// cache line of stack.
		a.slot, err = p.inflight.acquire(peer)
	}
	if err == nil {
		opts := connector.GetOptions{H1Only: st != nil && st.needsH1(peer), CheckOnSend: again == nil}
		a.hs, a.reused, err = p.conn.GetHTTP(context.Background(), peer, opts)
		if err != nil && a.slot != nil {
			a.slot()
		}
	}
	if err != nil {
		e = perrOf(err, perr.Upstream)
		e.Source = perr.Upstream
		return a, p.app.FailToConnect(s, peer, ctx, e), nil
	}
	return a, nil, nil
}

// release ends an attempt's session and gives its slot back.
func (p *Proxy[C]) release(a *attempt) {
	p.conn.ReleaseHTTP(a.peer, a.hs)
	if a.slot != nil {
		a.slot()
	}
}

// abandon ends an attempt cut short by a panic: its connection (or HTTP/2 stream), in an
// unknown state, is closed instead of pooled, and the slot is given back.
func (p *Proxy[C]) abandon(a *attempt) {
	if a.hs.H2 != nil {
		a.hs.H2.Abort()
	} else if a.hs.H1 != nil {
		a.hs.H1.MarkBroken()
	}
	p.release(a)
}

// maxStaleRestarts bounds how many times one attempt sends its request again on another
// connection to its peer after finding a pooled one closed just before sending (see connect).
const maxStaleRestarts = 4

// exchangeOn runs ConnectedToUpstream and the exchange of s on an attempt's connection (a
// background revalidation's when st is nil), then releases the attempt; when a phase panics,
// the attempt is abandoned on the way out, so that neither the connection nor the in-flight
// slot leaks. It records in a.stale whether the exchange failed on a pooled connection found
// closed before anything was sent on it (h1.ErrStale).
func (p *Proxy[C]) exchangeOn(s *Session, st *conn[C], a *attempt, ctx *C) (err error) {
	done := false
	defer func() {
		if !done {
			p.abandon(a)
		}
	}()
	hs := a.hs
	err = p.app.ConnectedToUpstream(s, a.reused, a.peer, ctx)
	if err == nil {
		switch {
		case st == nil && hs.H2 != nil:
			err = p.backgroundExchange(s, (*h2Up)(hs.H2), true, ctx)
		case st == nil:
			err = p.backgroundExchange(s, (*h1Up)(hs.H1), false, ctx)
		case hs.H2 != nil:
			err = p.proxyExchange(st, (*h2Up)(hs.H2), nil, ctx)
		default:
			err = p.proxyExchange(st, (*h1Up)(hs.H1), hs.H1, ctx)
		}
	}
	// Read before the release: a session that is pooled again belongs to others.
	a.stale = err != nil && hs.H1 != nil && hs.H1.Stale()
	done = true
	p.release(a)
	return err
}

// proxyToUpstream runs the attempt loop: choose a peer, connect, proxy; retry while errors
// are marked retryable and MaxRetries allows.
func (p *Proxy[C]) proxyToUpstream(st *conn[C], ctx *C) error {
	s := &st.sess
	var last *perr.Error
	var again *upstream.Peer
	restarts := 0
	for again != nil || s.attempts < p.opts.MaxRetries {
		// The connection's setup time is for the observers only: without them, Connected is
		// the one clock read.
		var connStart time.Time
		if len(p.opts.Observers) > 0 {
			connStart = nowSince(s.Timings.Start)
		}
		a, e, err := p.connect(s, st, ctx, again)
		again = nil
		if err != nil {
			return err
		}
		peer, reused := a.peer, a.reused
		if e != nil {
			if retry, decided := e.Retry.Decided(); decided && retry && !s.respStarted {
				p.logRetry("retrying after connect failure", s, ctx, e)
				last = e
				continue
			}
			return e
		}
		s.Timings.Connected = nowSince(s.Timings.Start)
		for _, o := range p.opts.Observers {
			o.UpstreamConnected(s, reused, s.Timings.Connected.Sub(connStart))
		}
		err = p.exchangeOn(s, st, &a, ctx)
		if err == nil {
			return nil
		}
		if a.stale && restarts < maxStaleRestarts && !s.respStarted {
			again = peer
			restarts++
			continue
		}
		e = perrOf(err, perr.Internal)
		e = p.app.ErrorWhileProxy(peer, s, e, ctx, reused)
		retry, decided := e.Retry.Decided()
		if !decided {
			e.Retry = e.Retry.DecideReuse(false)
		}
		// A body that was not read to its end cannot be replayed whole.
		if !retry || s.respStarted || s.retryTrunc || !s.down.BodyDone() {
			return e
		}
		p.logRetry("retrying after upstream error", s, ctx, e)
		last = e
	}
	if last == nil {
		last = perr.Explain(perr.InternalError, "no attempt made").AsIn()
	}
	return last.MoreContext("gave up after max retries")
}

// stripHopByHop removes connection-specific fields, including those named by Connection, but
// keeps Connection and Upgrade when keepUpgrade (a protocol switch is being forwarded). One pass
// removes the fields RFC 9110 §7.6.1 lists and notes the values of Connection fields that name
// other fields: only then does a second pass remove those. Host and Content-Length stay even
// when named: the forwarded message is routed and framed by them, and a client naming them
// would otherwise send the upstream a request without its host or the length of its body.
func stripHopByHop(f *header.Fields, keepUpgrade bool) {
	// The first pass decides in a loop of its own, without a call per field: a response
	// carries some ten fields, nearly all of lengths that no listed name has.
	var drop uint64
	slow := false                 // a listed field past the mask's 64
	named := make([][]byte, 0, 4) // values of Connection fields that name other fields
	all := f.All()
	for i := range all {
		if n := len(all[i].Name); n > 17 || !hopByHopLen[n] {
			continue
		}
		fl := &all[i]
		if len(fl.Name) == 10 && header.EqualFold(fl.Name, "Connection") &&
			header.ConnectionTokens(fl.Value)&header.TokenOther != 0 {
			named = append(named, fl.Value)
		}
		if isHopByHop(fl.Name, keepUpgrade) {
			if i >= 64 {
				slow = true
			} else {
				drop |= 1 << uint(i)
			}
		}
	}
	if slow {
		f.RemoveFunc(func(fl header.Field) bool { return isHopByHop(fl.Name, keepUpgrade) })
	} else if drop != 0 {
		f.RemoveMask(drop)
	}
	if len(named) == 0 {
		return
	}
	f.RemoveFunc(func(fl header.Field) bool {
		switch len(fl.Name) {
		case 4:
			if header.EqualFold(fl.Name, "Host") {
				return false
			}
		case 7:
			if keepUpgrade && header.EqualFold(fl.Name, "Upgrade") {
				return false
			}
		case 10:
			if header.EqualFold(fl.Name, "Connection") {
				return false
			}
		case 14:
			if header.EqualFold(fl.Name, "Content-Length") {
				return false
			}
		}
		for _, v := range named {
			if listNames(v, fl.Name) {
				return true
			}
		}
		return false
	})
}

// hopByHopLen marks the lengths of the names isHopByHop matches (up to 17).
var hopByHopLen = [18]bool{2: true, 7: true, 10: true, 16: true, 17: true}

// isHopByHop reports whether name is one of the fields RFC 9110 §7.6.1 makes
// connection-specific, which are never forwarded (the codec writes its own framing and
// connection fields): Connection, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding and
// Upgrade, not counting Connection and Upgrade when keepUpgrade. Names are told apart by
// length first, so that one pass over the fields strips them all.
func isHopByHop(name []byte, keepUpgrade bool) bool {
	switch len(name) {
	case 2:
		return header.EqualFold(name, "TE")
	case 7:
		return !keepUpgrade && header.EqualFold(name, "Upgrade")
	case 10:
		return header.EqualFold(name, "Keep-Alive") || !keepUpgrade && header.EqualFold(name, "Connection")
	case 16:
		return header.EqualFold(name, "Proxy-Connection")
	case 17:
		return header.EqualFold(name, "Transfer-Encoding")
	}
	return false
}

// listNames reports whether the Connection value v lists name.
func listNames(v, name []byte) bool {
	found := false
	forEachToken(v, func(t []byte) {
		if len(t) == len(name) && header.EqualFold(t, string(name)) {
			found = true
		}
	})
	return found
}

func forEachToken(v []byte, fn func([]byte)) {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		if t := header.TrimOWS(v[:i]); len(t) > 0 {
			fn(t)
		}
		if i == len(v) {
			return
		}
		v = v[i+1:]
	}
}
