package ws

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Options configures Pipe and Relay. The zero value uses the defaults.
type Options struct {
	// Config holds the codec's limits and, for Relay, the negotiated permessage-deflate
	// parameters (the same on both sides when the handshake passed through unchanged).
	Config
	// IdleTimeout ends the session when neither side sent a byte for this long (default
	// DefaultIdleTimeout).
	IdleTimeout time.Duration
	// TotalTimeout ends the session this long after it started (default
	// DefaultTotalTimeout).
	TotalTimeout time.Duration
	// WriteTimeout ends the session when a write to one side blocks this long: that side
	// stopped reading (default DefaultWriteTimeout).
	WriteTimeout time.Duration
	// HalfCloseTimeout is how long the other direction may still run once one side has
	// finished: closed its half of the connection, or sent a close frame (default
	// DefaultHalfCloseTimeout).
	HalfCloseTimeout time.Duration
	// Stats receives the session's counts; nil counts in DefaultStats.
	Stats *Stats
}

// Defaults of Options.
const (
	DefaultIdleTimeout      = 5 * time.Minute
	DefaultTotalTimeout     = 24 * time.Hour
	DefaultWriteTimeout     = time.Minute
	DefaultHalfCloseTimeout = 30 * time.Second
)

// Errors that end a session on a timeout; a write timeout comes as the Err of an
// *EndpointError that names the side which stopped reading.
var (
	ErrIdleTimeout  = errors.New("websocket: idle timeout")
	ErrTotalTimeout = errors.New("websocket: total timeout")
	ErrWriteTimeout = errors.New("websocket: write timeout: the peer stopped reading")
)

// Endpoint is one side of an upgraded connection: the connection (an HTTP/1 connection after
// its 101 response, or an HTTP/2 stream after an extended CONNECT) and the bytes already read
// from it past the handshake, which are relayed first. Deadlines the connection carries are
// the caller's to clear; the relay enforces its own timeouts by closing the connections.
type Endpoint struct {
	Conn     io.ReadWriteCloser
	Buffered []byte
}

// EndpointError is a failure of one side of a session: an I/O error, or the peer's
// violation of the protocol (Err is then an *Error).
type EndpointError struct {
	// Side is the endpoint that failed: ClientSide for the client's connection.
	Side Role
	// Op is "read" or "write".
	Op  string
	Err error
}

// Error names the side, the operation and the cause.
func (e *EndpointError) Error() string {
	side := "server"
	if e.Side == ClientSide {
		side = "client"
	}
	return "websocket " + side + " " + e.Op + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *EndpointError) Unwrap() error { return e.Err }

// FilterError is an error a relay's filter returned, or its panic.
type FilterError struct{ Err error }

// Error returns the filter's error text.
func (e *FilterError) Error() string { return "websocket filter: " + e.Err.Error() }

// Unwrap returns the filter's error.
func (e *FilterError) Unwrap() error { return e.Err }

// Filter sees each data message of a Relay, in either direction (m.Direction), and decides
// what happens to it. It may replace m.Payload (and switch m.Opcode between OpText and
// OpBinary); a text payload it sets must be valid UTF-8. Calls are never concurrent.
type Filter func(m *Message) (Action, error)

// session is the state both relay modes share: the two connections, the counters and the
// watchdog that enforces the timeouts.
type session struct {
	conns                    [2]io.ReadWriteCloser // by Role of the endpoint
	stats                    *Stats
	idle, total, write, half time.Duration

	epoch      time.Time
	lastRead   atomic.Int64    // when a byte last arrived, in ns since epoch
	writeSince [2]atomic.Int64 // per destination: ns since epoch + 1 when a pending write began
	shut       [2]atomic.Bool  // the relay closed (or half-closed) this endpoint itself

	mu      sync.Mutex // guards following fields
	timer   *time.Timer
	ended   bool
	aborted bool
	cause   error // the timeout that ended the session
}

// result is how one direction of a session ended; hard ends the session at once.
type result struct {
	err  error
	hard bool
}

func newSession(client, server Endpoint, o *Options) *session {
	s := &session{stats: o.Stats, epoch: time.Now(),
		idle: durOr(o.IdleTimeout, DefaultIdleTimeout), total: durOr(o.TotalTimeout, DefaultTotalTimeout),
		write: durOr(o.WriteTimeout, DefaultWriteTimeout), half: durOr(o.HalfCloseTimeout, DefaultHalfCloseTimeout)}
	if s.stats == nil {
		s.stats = DefaultStats
	}
	s.conns[ClientSide], s.conns[ServerSide] = client.Conn, server.Conn
	s.stats.active.Add(1)
	s.stats.sessions.Add(1)
	s.mu.Lock()
	s.timer = time.AfterFunc(min(s.idle, s.total, s.write), s.check)
	s.mu.Unlock()
	return s
}

func durOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (s *session) now() int64 { return int64(time.Since(s.epoch)) }

// check is the watchdog: it ends the session on a timeout, else sets itself to run again
// when the next one could fall.
func (s *session) check() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.aborted {
		return
	}
	now := s.now()
	next := int64(s.total) - now
	if next <= 0 {
		s.abortLocked(ErrTotalTimeout)
		return
	}
	idleLeft := s.lastRead.Load() + int64(s.idle) - now
	if idleLeft <= 0 {
		s.abortLocked(ErrIdleTimeout)
		return
	}
	next = min(next, idleLeft, int64(s.write))
	for i := range s.writeSince {
		if since := s.writeSince[i].Load(); since != 0 {
			left := since - 1 + int64(s.write) - now
			if left <= 0 {
				s.abortLocked(&EndpointError{Side: Role(i), Op: "write", Err: ErrWriteTimeout})
				return
			}
			next = min(next, left)
		}
	}
	s.timer.Reset(time.Duration(next))
}

// abort closes both connections, which ends both directions; cause is the timeout that
// decided it, or nil.
func (s *session) abort(cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.abortLocked(cause)
}

func (s *session) abortLocked(cause error) {
	if s.aborted {
		return
	}
	s.aborted, s.cause = true, cause
	for i, c := range s.conns {
		s.shut[i].Store(true)
		c.Close()
	}
}

// finish stops the watchdog and closes both connections.
func (s *session) finish() {
	s.mu.Lock()
	s.ended = true
	s.timer.Stop()
	s.mu.Unlock()
	s.abort(nil)
	s.stats.active.Add(-1)
}

// closeWrite half-closes the endpoint's connection when it can (TCP, TLS), else closes it.
func (s *session) closeWrite(side Role) {
	s.shut[side].Store(true)
	if cw, ok := s.conns[side].(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	s.conns[side].Close()
}

// wait collects the results of both directions: an error that is hard ends the session at
// once; otherwise the other direction gets HalfCloseTimeout to finish. It returns the
// timeout that ended the session, or the first error.
func (s *session) wait(results <-chan result) error {
	first := <-results
	if first.hard {
		s.abort(nil)
		<-results
	} else {
		t := time.NewTimer(s.half)
		select {
		case second := <-results:
			if first.err == nil {
				first.err = second.err
			}
		case <-t.C:
			s.abort(nil)
			<-results
		}
		t.Stop()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cause != nil {
		return s.cause
	}
	return first.err
}

// failed turns an I/O error on side into a result: nothing when the relay had closed that
// side itself (the error is the consequence), else a hard EndpointError.
func (s *session) failed(side Role, op string, err error) result {
	if s.shut[side].Load() {
		return result{}
	}
	return result{err: &EndpointError{Side: side, Op: op, Err: err}, hard: true}
}

// sideReader reads what one endpoint sends, starting with the bytes buffered at the
// handshake, and records the activity.
type sideReader struct {
	s    *session
	dir  Direction
	r    io.Reader
	rest []byte
}

func (r *sideReader) Read(p []byte) (int, error) {
	if len(r.rest) > 0 {
		n := copy(p, r.rest)
		r.rest = r.rest[n:]
		r.s.stats.bytes[r.dir].Add(uint64(n))
		return n, nil
	}
	n, err := r.r.Read(p)
	if n > 0 {
		r.s.lastRead.Store(r.s.now())
		r.s.stats.bytes[r.dir].Add(uint64(n))
	}
	return n, err
}

// sideWriter writes to one endpoint and lets the watchdog see a write that blocks.
type sideWriter struct {
	s    *session
	side Role
	w    io.Writer
}

func (w *sideWriter) Write(p []byte) (int, error) {
	w.s.writeSince[w.side].Store(w.s.now() + 1)
	n, err := w.w.Write(p)
	w.s.writeSince[w.side].Store(0)
	return n, err
}

// ends returns the endpoint a direction reads from and the one it writes to.
func ends(d Direction) (src, dst Role) {
	if d == FromClient {
		return ClientSide, ServerSide
	}
	return ServerSide, ClientSide
}

// pipeBufs pools the copy buffers of Pipe.
var pipeBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// Pipe relays raw bytes between client and server, both ways, without parsing them: the
// mode of an upgraded connection that no filter looks into. The bytes buffered at the
// handshake go first. When one side closes its half, the other side's half is closed too and
// the other direction may finish (within HalfCloseTimeout). Pipe returns when both
// directions ended, with both connections closed: nil for a normal end, a timeout error, or
// an *EndpointError.
func Pipe(client, server Endpoint, o *Options) error {
	if o == nil {
		o = &Options{}
	}
	s := newSession(client, server, o)
	defer s.finish()
	results := make(chan result, 2)
	go s.pipe(FromClient, client.Buffered, results)
	go s.pipe(FromServer, server.Buffered, results)
	return s.wait(results)
}

func (s *session) pipe(d Direction, rest []byte, results chan<- result) {
	srcSide, dstSide := ends(d)
	src := &sideReader{s: s, dir: d, r: s.conns[srcSide], rest: rest}
	dst := &sideWriter{s: s, side: dstSide, w: s.conns[dstSide]}
	bp := pipeBufs.Get().(*[]byte)
	defer pipeBufs.Put(bp)
	buf := *bp
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				results <- s.failed(dstSide, "write", werr)
				return
			}
		}
		if err == io.EOF {
			s.closeWrite(dstSide)
			results <- result{}
			return
		}
		if err != nil {
			results <- s.failed(srcSide, "read", err)
			return
		}
	}
}

// outbound is the writer of frames to one endpoint, shared by both directions: one forwards
// to it, the other may have to fail it.
type outbound struct {
	mu        sync.Mutex // guards following fields
	w         *Writer
	closeSent bool
}

// message sends a data message, unless a close frame was sent already.
func (o *outbound) message(op Opcode, p []byte, compress bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closeSent {
		return nil
	}
	return o.w.WriteMessage(op, p, compress)
}

// control sends a ping or pong, unless a close frame was sent already.
func (o *outbound) control(op Opcode, p []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closeSent {
		return nil
	}
	return o.w.WriteControl(op, p)
}

// close sends a close frame: the raw payload of one received (forward), or code and reason.
func (o *outbound) close(payload []byte, code CloseCode, reason string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closeSent {
		return nil
	}
	o.closeSent = true
	if payload != nil {
		return o.w.WriteControl(OpClose, payload)
	}
	return o.w.WriteClose(code, reason)
}

// relay is a session relayed message by message.
type relay struct {
	*session
	cfg      Config
	filter   Filter
	filterMu sync.Mutex
	out      [2]*outbound // by Role of the endpoint written to
}

// Relay relays a WebSocket session between client and server message by message: it reads
// frames both ways with every rule of RFC 6455 checked, reassembles and inflates messages,
// hands each data message to filter (nil passes everything), and sends what the filter lets
// through as new frames: masked toward the server, compressed again when the message came
// compressed (with the parameters each side negotiated, o.Deflate). Ping, pong and close
// frames pass through. A peer that breaks the protocol or a limit receives a close frame with
// the matching code (1002, 1007, 1009) and the other side 1001. Timeouts and the return value
// are those of Pipe; a filter's error or panic ends the session with 1011 and is returned as
// a *FilterError.
func Relay(client, server Endpoint, o *Options, filter Filter) error {
	if o == nil {
		o = &Options{}
	}
	s := newSession(client, server, o)
	defer s.finish()
	s.stats.filtered.Add(1)
	r := &relay{session: s, cfg: o.Config, filter: filter}
	// Toward the client the relay plays the server; toward the server, the client.
	r.out[ClientSide] = &outbound{w: NewWriter(&sideWriter{s: s, side: ClientSide, w: client.Conn}, ServerSide, &r.cfg)}
	r.out[ServerSide] = &outbound{w: NewWriter(&sideWriter{s: s, side: ServerSide, w: server.Conn}, ClientSide, &r.cfg)}
	defer r.out[ClientSide].w.Release()
	defer r.out[ServerSide].w.Release()
	results := make(chan result, 2)
	go r.run(FromClient, client.Buffered, results)
	go r.run(FromServer, server.Buffered, results)
	return s.wait(results)
}

func (r *relay) run(d Direction, rest []byte, results chan<- result) {
	srcSide, dstSide := ends(d)
	readAs := ServerSide // reading the client's frames, the relay is its server
	if srcSide == ServerSide {
		readAs = ClientSide
	}
	rd := NewReader(&sideReader{s: r.session, dir: d, r: r.conns[srcSide], rest: rest}, readAs, &r.cfg)
	src, dst := r.out[srcSide], r.out[dstSide]
	for {
		m, err := rd.ReadMessage()
		if err != nil {
			results <- r.readFailed(srcSide, err)
			return
		}
		switch m.Opcode {
		case OpPing, OpPong:
			err = dst.control(m.Opcode, m.Payload)
		case OpClose:
			// The source sends nothing after its close frame: this direction is done.
			if err = dst.close(m.Payload, 0, ""); err != nil {
				results <- r.failed(dstSide, "write", err)
				return
			}
			results <- result{}
			return
		default:
			r.stats.messages[d].Add(1)
			m.Direction = d
			act, ferr := r.callFilter(m)
			if ferr != nil {
				src.close(nil, CloseInternalError, "proxy filter failed")
				dst.close(nil, CloseInternalError, "proxy filter failed")
				results <- result{err: ferr}
				return
			}
			if code, reason, ok := act.IsClose(); ok {
				src.close(nil, code, reason)
				dst.close(nil, code, reason)
				continue
			}
			if act.IsDrop() {
				r.stats.dropped[d].Add(1)
				continue
			}
			err = dst.message(m.Opcode, m.Payload, m.Compressed)
		}
		if err != nil {
			results <- r.failed(dstSide, "write", err)
			return
		}
	}
}

// readFailed handles a read error on side: a protocol violation is answered with a close frame
// to the offender and 1001 to the other side; the end of the connection is passed on as a
// half-close.
func (r *relay) readFailed(side Role, err error) result {
	other := ClientSide
	if side == ClientSide {
		other = ServerSide
	}
	var pe *Error
	if errors.As(err, &pe) {
		r.out[side].close(nil, pe.Code, pe.Reason)
		r.out[other].close(nil, CloseGoingAway, "the peer broke the protocol")
		return result{err: &EndpointError{Side: side, Op: "read", Err: err}}
	}
	if err == io.EOF || r.shut[side].Load() {
		r.out[other].mu.Lock()
		r.closeWrite(other)
		r.out[other].mu.Unlock()
		return result{}
	}
	return r.failed(side, "read", err)
}

// callFilter runs the filter on m, one call at a time, and checks what it made of the message.
func (r *relay) callFilter(m *Message) (a Action, err error) {
	if r.filter == nil {
		return Pass, nil
	}
	r.filterMu.Lock()
	defer r.filterMu.Unlock()
	defer func() {
		if v := recover(); v != nil {
			err = &FilterError{Err: fmt.Errorf("panic: %v\n%s", v, debug.Stack())}
		}
	}()
	before, beforeOp := m.Payload, m.Opcode
	if a, err = r.filter(m); err != nil {
		return a, &FilterError{Err: err}
	}
	if a.IsPass() {
		switch {
		case m.Opcode != OpText && m.Opcode != OpBinary:
			return a, &FilterError{Err: errors.New("the filter set a control opcode on a data message")}
		case m.Opcode == OpText && (beforeOp != OpText || !sameSlice(before, m.Payload)) && !utf8.Valid(m.Payload):
			return a, &FilterError{Err: errors.New("the filter made a text message invalid UTF-8")}
		}
	}
	return a, nil
}

func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
