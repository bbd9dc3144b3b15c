// Package h2 speaks HTTP/2 on both sides of the proxy: a ServerConn serves the streams of a
// downstream connection, each as a ServerStream, and a ClientConn multiplexes ClientStreams
// over one upstream connection, both in the shape of the HTTP/1 sessions of protocols/h1.
package h2

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// ServerOptions configures a ServerConn. The zero value uses the defaults.
type ServerOptions struct {
	// MaxConcurrentStreams is the SETTINGS_MAX_CONCURRENT_STREAMS the server announces
	// (default 100); streams past it are refused. It also caps the handlers running at
	// once: handlers of streams the client reset but whose handlers have not returned still
	// count, further streams wait, and a client that makes more than four times this number
	// wait loses the connection (rapid reset, CVE-2023-44487).
	MaxConcurrentStreams uint32
	// MaxHeaderListSize bounds the decoded size of a request's header block (default 64 KiB);
	// a larger block is answered 431, and a CONTINUATION flood far past it closes the
	// connection (CVE-2023-45288).
	MaxHeaderListSize uint32
	// MaxReadFrameSize is the largest frame payload the server accepts (default 16 KiB, the
	// protocol's minimum; at most 16 MiB - 1).
	MaxReadFrameSize uint32
	// StreamWindow is the flow-control window of each request body (default 1 MiB, at least
	// 64 KiB - 1): the most body bytes buffered for a handler that does not read.
	StreamWindow int32
	// ConnWindow is the connection's flow-control window (default 1 MiB, at least 64 KiB - 1):
	// the most body bytes buffered for all streams together.
	ConnWindow int32
	// IdleTimeout closes a connection without open streams after this long, and bounds the
	// TLS handshake and the client's preface (default 60 s).
	IdleTimeout time.Duration
	// WriteTimeout closes the connection when a write to the client takes longer (default
	// 60 s).
	WriteTimeout time.Duration
	// EnableConnectProtocol announces SETTINGS_ENABLE_CONNECT_PROTOCOL and accepts the
	// extended CONNECT of RFC 8441 (a CONNECT with :protocol, :scheme and :path), by which
	// clients run WebSocket over an HTTP/2 stream; ServerStream.Protocol returns :protocol.
	EnableConnectProtocol bool
}

// Defaults of ServerOptions.
const (
	DefaultMaxConcurrentStreams = 100
	DefaultMaxHeaderListSize    = 64 << 10
	DefaultMaxReadFrameSize     = 16 << 10
	DefaultWindow               = 1 << 20
	DefaultIdleTimeout          = 60 * time.Second
	DefaultWriteTimeout         = 60 * time.Second
)

const (
	initialWindow = 65535 // the protocol's initial window, before SETTINGS
	maxWindow     = 1<<31 - 1
	minFrameSize  = 16 << 10
	maxFrameSize  = 1<<24 - 1
	headerTable   = 4096 // the HPACK table size both sides start with
	queueFactor   = 4    // handlers that may wait, in units of MaxConcurrentStreams
	closedMemory  = 32   // closed stream IDs remembered to tell STREAM_CLOSED from PROTOCOL_ERROR
)

func orDefault[T ~int | ~int32 | ~uint32 | ~int64](v, d T) T {
	if v > 0 {
		return v
	}
	return d
}

// ErrServerClosed is returned by a ServerStream's writes after the connection closed.
var ErrServerClosed = errors.New("h2: connection closed")

// ServerConn serves HTTP/2 on one downstream connection: over TLS after ALPN chose "h2", or
// cleartext when the client starts with the preface (see DetectPreface). One goroutine, the
// serve loop inside Serve, owns the connection's state and writes every frame; a second reads
// frames; each stream's handler runs on its own goroutine and talks to the serve loop through
// a channel.
type ServerConn struct {
	conn  net.Conn
	opts  ServerOptions // with defaults filled in
	calls chan call     // work of handlers, run by the serve loop
	done  chan struct{} // closed when Serve returns

	shutdownOnce sync.Once
	shutdownCh   chan struct{} // closed by Shutdown

	mu      sync.Mutex // guards following fields
	started bool

	// The fields below belong to the serve loop.
	fr           *http2.Framer
	bw           *bufio.Writer
	enc          *hpack.Encoder
	encBuf       bytes.Buffer
	handler      func(*ServerStream)
	streams      map[uint32]*stream
	closed       [closedMemory]uint32 // ring of recently closed stream IDs
	closedAt     int
	maxClientID  uint32
	peerMaxFrame uint32
	peerWindow   int64 // the client's SETTINGS_INITIAL_WINDOW_SIZE
	sendWindow   int64 // connection window for DATA we send
	recvWindow   int64 // connection window the client may still use
	running      int   // handlers running
	queue        []*stream
	writers      []*stream // streams with a DATA write waiting for window
	goAwaySent   bool
	sawSettings  bool
}

// stream is the serve loop's state of one stream.
type stream struct {
	id         uint32
	ss         *ServerStream
	cancel     context.CancelFunc
	sendWindow int64
	recvWindow int64
	declLen    int64 // content-length of the request, or -1
	gotLen     int64
	remoteDone bool // END_STREAM received
	localDone  bool // END_STREAM sent
	headSent   bool
	reset      bool
	pending    *dataWrite // &write while a DATA write waits
	write      dataWrite
}

type dataWrite struct {
	p    []byte
	end  bool
	done chan error
}

// NewServerConn returns a ServerConn over conn. opts may be nil; it is copied.
func NewServerConn(conn net.Conn, opts *ServerOptions) *ServerConn {
	var o ServerOptions
	if opts != nil {
		o = *opts
	}
	o.MaxConcurrentStreams = orDefault(o.MaxConcurrentStreams, DefaultMaxConcurrentStreams)
	o.MaxHeaderListSize = orDefault(o.MaxHeaderListSize, DefaultMaxHeaderListSize)
	o.MaxReadFrameSize = min(max(orDefault(o.MaxReadFrameSize, DefaultMaxReadFrameSize), minFrameSize), maxFrameSize)
	o.StreamWindow = max(orDefault(o.StreamWindow, DefaultWindow), initialWindow)
	o.ConnWindow = max(orDefault(o.ConnWindow, DefaultWindow), initialWindow)
	o.IdleTimeout = orDefault(o.IdleTimeout, DefaultIdleTimeout)
	o.WriteTimeout = orDefault(o.WriteTimeout, DefaultWriteTimeout)
	return &ServerConn{
		conn:       conn,
		opts:       o,
		calls:      make(chan call, 16),
		done:       make(chan struct{}),
		shutdownCh: make(chan struct{}),
	}
}

// Conn returns the underlying connection.
func (c *ServerConn) Conn() net.Conn { return c.conn }

// Done returns a channel closed when Serve has returned.
func (c *ServerConn) Done() <-chan struct{} { return c.done }

// Close closes the connection at once.
func (c *ServerConn) Close() error { return c.conn.Close() }

// Shutdown starts a graceful shutdown: the client gets a GOAWAY and no new streams are
// accepted, while open streams finish. It returns nil once the connection is closed, or
// ctx's error after closing the connection at once when ctx ends first, which bounds the wait.
func (c *ServerConn) Shutdown(ctx context.Context) error {
	c.shutdownOnce.Do(func() { close(c.shutdownCh) })
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		c.conn.Close()
		return ctx.Err()
	}
}

type readResult struct {
	f   http2.Frame
	err error
}

// Serve completes the TLS handshake of a *tls.Conn that has not done it, reads the client's
// preface, and then serves the connection's streams, running handler for each on its own
// goroutine, until the connection ends: the client left, the idle timeout passed, a protocol
// error, or the end of a graceful shutdown. It closes the connection before returning.
// Handlers may still be running then; their writes fail.
func (c *ServerConn) Serve(handler func(*ServerStream)) {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		panic("h2: ServerConn.Serve called twice")
	}
	c.started = true
	c.mu.Unlock()
	defer close(c.done)
	defer c.conn.Close()
	c.handler = handler
	if err := c.readPreface(); err != nil {
		lingerClose(c.conn)
		return
	}
	c.bw = bufio.NewWriterSize(c.conn, 16<<10)
	// Reads go through a small buffer: a frame's header and payload, and frames that arrive
	// together, then cost one read call instead of one each.
	c.fr = http2.NewFramer(c.bw, bufio.NewReaderSize(c.conn, 4<<10))
	c.fr.SetMaxReadFrameSize(c.opts.MaxReadFrameSize)
	c.fr.MaxHeaderListSize = c.opts.MaxHeaderListSize
	c.fr.ReadMetaHeaders = hpack.NewDecoder(headerTable, nil)
	c.enc = hpack.NewEncoder(&c.encBuf)
	c.streams = make(map[uint32]*stream)
	c.peerMaxFrame = minFrameSize
	c.peerWindow = initialWindow
	c.sendWindow = initialWindow
	c.recvWindow = int64(c.opts.ConnWindow)
	c.serve()
}

func (c *ServerConn) readPreface() error {
	deadline := time.Now().Add(c.opts.IdleTimeout)
	if tc, ok := c.conn.(*tls.Conn); ok && !tc.ConnectionState().HandshakeComplete {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			return err
		}
	}
	c.conn.SetReadDeadline(deadline)
	var buf [len(ClientPreface)]byte
	if _, err := io.ReadFull(c.conn, buf[:]); err != nil {
		return err
	}
	if string(buf[:]) != ClientPreface {
		return errors.New("h2: bad client preface")
	}
	return c.conn.SetReadDeadline(time.Time{})
}

func (c *ServerConn) serve() {
	frames := make(chan readResult)
	readMore := make(chan struct{})
	go c.readFrames(frames, readMore)
	defer c.teardown(frames, readMore)

	c.startWrite()
	settings := []http2.Setting{
		{ID: http2.SettingMaxConcurrentStreams, Val: c.opts.MaxConcurrentStreams},
		{ID: http2.SettingInitialWindowSize, Val: uint32(c.opts.StreamWindow)},
		{ID: http2.SettingMaxFrameSize, Val: c.opts.MaxReadFrameSize},
		{ID: http2.SettingMaxHeaderListSize, Val: c.opts.MaxHeaderListSize},
		{ID: http2.SettingEnablePush, Val: 0},
	}
	if c.opts.EnableConnectProtocol {
		settings = append(settings, http2.Setting{ID: http2.SettingEnableConnectProtocol, Val: 1})
	}
	c.fr.WriteSettings(settings...)
	if d := c.opts.ConnWindow - initialWindow; d > 0 {
		c.fr.WriteWindowUpdate(0, uint32(d))
	}
	if c.flush() != nil {
		return
	}
	idle := time.NewTimer(c.opts.IdleTimeout)
	defer idle.Stop()
	shutdown := c.shutdownCh
	for {
		c.startWrite()
		select {
		case r := <-frames:
			if r.err != nil && !isStreamError(r.err) {
				c.connError(r.err)
				return
			}
			err := c.processFrame(r.f, r.err)
			readMore <- struct{}{}
			if err != nil {
				c.connError(err)
				return
			}
		case cl := <-c.calls:
			cl.fn()
			if cl.done != nil {
				cl.done <- struct{}{}
			}
		case <-shutdown:
			shutdown = nil
			c.goAway(http2.ErrCodeNo)
		case <-idle.C:
			c.goAway(http2.ErrCodeNo)
			c.flush()
			return
		}
		c.pump()
		if len(c.streams) > 0 || c.running > 0 {
			idle.Stop()
		} else if c.goAwaySent {
			c.flush()
			return
		} else {
			idle.Reset(c.opts.IdleTimeout)
		}
		if len(c.calls) == 0 {
			if c.flush() != nil {
				return
			}
		}
	}
}

func (c *ServerConn) readFrames(out chan<- readResult, more <-chan struct{}) {
	defer close(out)
	for {
		f, err := c.fr.ReadFrame()
		select {
		case out <- readResult{f, err}:
		case <-c.done:
			return
		}
		if err != nil && !isStreamError(err) {
			return
		}
		select {
		case <-more:
		case <-c.done:
			return
		}
	}
}

func isStreamError(err error) bool {
	var se http2.StreamError
	return errors.As(err, &se)
}

// startWrite sets the deadline of the writes that follow.
func (c *ServerConn) startWrite() {
	c.conn.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
}

func (c *ServerConn) flush() error {
	if c.bw.Buffered() == 0 {
		return nil
	}
	return c.bw.Flush()
}

// connError ends the connection for err: a GOAWAY with its code when it is an HTTP/2
// error.
func (c *ServerConn) connError(err error) {
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &ce):
		c.goAway(http2.ErrCode(ce))
	case errors.Is(err, http2.ErrFrameTooLarge):
		c.goAway(http2.ErrCodeFrameSize)
	default:
		return
	}
	c.flush()
}

func (c *ServerConn) goAway(code http2.ErrCode) {
	if c.goAwaySent && code == http2.ErrCodeNo {
		return
	}
	c.goAwaySent = true
	c.fr.WriteGoAway(c.maxClientID, code, nil)
}

// lingerTimeout bounds the reading of what the client still sends after the server closed
// its side of the connection.
const lingerTimeout = time.Second

type closeWriter interface{ CloseWrite() error }

// lingerClose closes the writing side first and reads what the client still sends for a
// while: closing a TCP connection with unread bytes would send a reset that can destroy the
// client's copy of our last frames.
func lingerClose(conn net.Conn) {
	if cw, ok := conn.(closeWriter); ok && cw.CloseWrite() == nil {
		conn.SetReadDeadline(time.Now().Add(lingerTimeout))
		io.Copy(io.Discard, io.LimitReader(conn, 1<<20))
	}
	conn.Close()
}

// teardown runs when the serve loop ends: it closes the connection (lingering, see
// lingerClose, with the frame reader doing the reading), fails every stream and releases
// every waiting handler.
func (c *ServerConn) teardown(frames <-chan readResult, readMore chan<- struct{}) {
	if cw, ok := c.conn.(closeWriter); ok && c.bw.Flush() == nil && cw.CloseWrite() == nil {
		c.conn.SetReadDeadline(time.Now().Add(lingerTimeout))
	} else {
		c.conn.Close()
	}
	for r := range frames {
		if r.err == nil || isStreamError(r.err) {
			readMore <- struct{}{}
		}
	}
	c.conn.Close()
	for _, st := range c.streams {
		c.failStream(st, ErrServerClosed)
	}
	for _, st := range c.queue {
		st.cancel()
	}
}

func (c *ServerConn) failStream(st *stream, err error) {
	st.reset = true
	st.cancel()
	if h := st.ss.resetHook.Load(); h != nil {
		(*h)()
	}
	st.ss.body.fail(err)
	if st.pending != nil {
		st.pending.done <- err
		st.pending = nil
	}
}

// call is a piece of work for the serve loop; done (buffered, may be nil) is signaled after it
// ran.
type call struct {
	fn   func()
	done chan struct{}
}

// call runs fn on the serve loop and waits for it; it reports false when the connection is
// gone.
func (c *ServerConn) call(fn func()) bool { return c.callWith(fn, make(chan struct{}, 1)) }

// callWith is call with a channel of the caller's (capacity 1, used by one goroutine at a
// time), so that a caller making many calls allocates nothing for them.
func (c *ServerConn) callWith(fn func(), done chan struct{}) bool {
	select {
	case <-done: // a signal left by a call whose connection died while it waited
	default:
	}
	select {
	case c.calls <- call{fn, done}:
	case <-c.done:
		return false
	}
	select {
	case <-done:
		return true
	case <-c.done:
		// fn may have run just before the connection ended.
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
}

// post hands fn to the serve loop without waiting for it.
func (c *ServerConn) post(fn func()) {
	select {
	case c.calls <- call{fn: fn}:
	case <-c.done:
	}
}

// statusText returns the decimal form of a status, without allocating for the common ones.
func statusText(status int) string {
	switch status {
	case 200:
		return "200"
	case 204:
		return "204"
	case 206:
		return "206"
	case 301:
		return "301"
	case 302:
		return "302"
	case 304:
		return "304"
	case 400:
		return "400"
	case 403:
		return "403"
	case 404:
		return "404"
	case 500:
		return "500"
	case 502:
		return "502"
	case 503:
		return "503"
	case 504:
		return "504"
	}
	return itoa(status)
}

// writeHead writes a HEADERS frame (and CONTINUATION frames) for a response head or, with
// status 0, trailers.
func (c *ServerConn) writeHead(st *stream, status int, fields []hpack.HeaderField, end bool) {
	c.encBuf.Reset()
	if status != 0 {
		c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText(status)})
	}
	for _, f := range fields {
		c.enc.WriteField(f)
	}
	block := c.encBuf.Bytes()
	first := true
	for first || len(block) > 0 {
		n := min(len(block), int(c.peerMaxFrame))
		frag := block[:n]
		block = block[n:]
		if first {
			c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: st.id, BlockFragment: frag, EndStream: end, EndHeaders: len(block) == 0})
			first = false
		} else {
			c.fr.WriteContinuation(st.id, len(block) == 0, frag)
		}
	}
	if status >= 200 || status == 0 {
		st.headSent = true
	}
	if end {
		c.localEnd(st)
	}
}

func (c *ServerConn) localEnd(st *stream) {
	st.localDone = true
	if st.remoteDone {
		c.closeStream(st)
	}
}

func (c *ServerConn) endStream(st *stream) {
	c.fr.WriteData(st.id, true, nil)
	c.localEnd(st)
}

// pump writes waiting DATA as far as the flow-control windows allow, one frame per stream in
// turn.
func (c *ServerConn) pump() {
	for len(c.writers) > 0 {
		progress := false
		kept := c.writers[:0]
		for _, st := range c.writers {
			w := st.pending
			if w == nil {
				continue
			}
			n := min(int64(len(w.p)), st.sendWindow, c.sendWindow, int64(c.peerMaxFrame))
			if n <= 0 && len(w.p) > 0 {
				kept = append(kept, st)
				continue
			}
			end := w.end && n == int64(len(w.p))
			if err := c.fr.WriteData(st.id, end, w.p[:n]); err != nil {
				kept = append(kept, st)
				continue
			}
			progress = true
			st.sendWindow -= n
			c.sendWindow -= n
			w.p = w.p[n:]
			if len(w.p) > 0 {
				kept = append(kept, st)
				continue
			}
			st.pending = nil
			if end {
				c.localEnd(st)
			}
			w.done <- nil
		}
		clear(c.writers[len(kept):])
		c.writers = kept
		if !progress {
			return
		}
	}
}

// queueData queues p on the stream for pump and returns a channel that gets the outcome once
// all of p is written.
func (c *ServerConn) queueData(st *stream, p []byte, end bool) <-chan error {
	w := &st.write
	if w.done == nil {
		w.done = make(chan error, 1)
	}
	select {
	case <-w.done: // an outcome nobody waited for
	default:
	}
	w.p, w.end = p, end
	st.pending = w
	c.writers = append(c.writers, st)
	return w.done
}
