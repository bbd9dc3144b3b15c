package proxy

import (
	"context"
	"crypto/tls"
	"net"
	"time"

	"github.com/pingora-go/pingora/protocols/h2"
	"github.com/pingora-go/pingora/upstream"
)

// DefaultPrefaceTimeout bounds the wait for a cleartext client's first bytes when H2C is on.
const DefaultPrefaceTimeout = 60 * time.Second

// serveH2 serves the streams of an HTTP/2 connection, each through the phases like an
// HTTP/1 request, until the client leaves or a graceful shutdown (shutdown ends) has sent a
// GOAWAY and let the open streams finish.
func (p *Proxy[C]) serveH2(shutdown context.Context, c net.Conn) {
	sc := h2.NewServerConn(c, &p.opts.H2)
	stop := context.AfterFunc(shutdown, func() {
		// Streams in flight finish; the server's grace period bounds them by closing the
		// connection.
		sc.Shutdown(context.Background())
	})
	defer stop()
	sc.Serve(func(ss *h2.ServerStream) { p.serveStream(shutdown, ss) })
}

// serveStream runs the phases for one HTTP/2 request.
func (p *Proxy[C]) serveStream(shutdown context.Context, ss *h2.ServerStream) {
	st, _ := p.streams.Get().(*conn[C])
	if st == nil {
		st = &conn[C]{pumpErr: make(chan error, 1)}
	}
	st.h2s, st.wsKey = ss, ""
	p.serveRequest(st, shutdown.Err() != nil, time.Now())
	st.h2s = nil
	st.sess = Session{sessionState: sessionState{retryBuf: st.sess.retryBuf[:0], modules: st.sess.modules[:0]}}
	p.streams.Put(st)
}

// watchReset arranges for up to be aborted when the client resets the HTTP/2 stream, and
// returns the function that ends the watch. It allocates nothing: the hook is a method value
// made once per pooled state.
func (st *conn[C]) watchReset(up upstreamSession) (stop func()) {
	st.upMu.Lock()
	st.curUp = up
	st.upMu.Unlock()
	if st.abortUp == nil {
		st.abortUp, st.unwatch = st.abortCurrent, st.stopWatch
	}
	if !st.h2s.SetResetHook(&st.abortUp) {
		up.abort()
	}
	return st.unwatch
}

// abortCurrent aborts the upstream exchange being watched, if any; the reset hook.
func (st *conn[C]) abortCurrent() {
	st.upMu.Lock()
	up := st.curUp
	st.upMu.Unlock()
	if up != nil {
		up.abort()
	}
}

// stopWatch ends watchReset's watch.
func (st *conn[C]) stopWatch() {
	st.h2s.SetResetHook(nil)
	st.upMu.Lock()
	st.curUp = nil
	st.upMu.Unlock()
}

// isUpgrade reports whether the request asks to switch protocols upstream: an HTTP/1.1
// Upgrade, or an HTTP/2 extended CONNECT turned into one.
func (st *conn[C]) isUpgrade() bool {
	if st.ds != nil {
		return st.ds.IsUpgradeRequest()
	}
	return st.wsKey != ""
}

// needsH1 reports whether the request must go over HTTP/1.1 to peer: an HTTP/1.1 Upgrade, or
// a WebSocket over HTTP/2 to a peer not set to HTTP/2 only (an HTTP/2-only peer gets the
// extended CONNECT as it came).
func (st *conn[C]) needsH1(peer *upstream.Peer) bool {
	if st.ds != nil {
		return st.ds.IsUpgradeRequest()
	}
	return st.wsKey != "" && peer.Options.ALPN != upstream.H2
}

// isH2 tells whether c speaks HTTP/2: a TLS connection whose handshake chose "h2" by ALPN,
// or, with H2C on, a cleartext one that starts with the HTTP/2 preface. It returns the
// connection to serve: a cleartext one gives back the bytes read to decide. ok is false when
// the client left or sent nothing in time.
func (p *Proxy[C]) isH2(c net.Conn) (isH2 bool, serve net.Conn, ok bool) {
	if tc, isTLS := c.(*tls.Conn); isTLS {
		return tc.ConnectionState().NegotiatedProtocol == "h2", c, true
	}
	if !p.opts.H2C && !p.opts.H2COnly {
		return false, c, true
	}
	wait := p.opts.Server.IdleTimeout
	if wait <= 0 {
		wait = DefaultPrefaceTimeout
	}
	if p.opts.H2COnly {
		// The HTTP/2 server reads the preface itself, and closes gracefully (after reading
		// what the client sent) a connection that does not start with it.
		return true, c, true
	}
	isH2, peeked, err := h2.DetectPreface(c, time.Now().Add(wait))
	if err != nil && len(peeked) == 0 {
		return false, c, false
	}
	return isH2, h2.PrefixConn(c, peeked), true
}
