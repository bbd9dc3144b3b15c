package connector

import (
	"context"
	"crypto/tls"
	"sync"
	"time"

	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/protocols/h1"
	"github.com/pingora-go/pingora/protocols/h2"
	"github.com/pingora-go/pingora/upstream"
)

// HTTPSession is the session of one exchange with a peer: H1 or H2 is set.
type HTTPSession struct {
	// H1 is an HTTP/1.1 client session, returned to the connector by ReleaseHTTP.
	H1 *h1.ClientSession
	// H2 is a stream of a shared HTTP/2 connection, closed by ReleaseHTTP.
	H2 *h2.ClientStream
}

// Timing of the HTTP/2 connections and of the per-peer memory of HTTP/1.1 fallbacks.
const (
	// DefaultH2IdleTimeout closes an HTTP/2 connection that carried no stream for this long
	// when the peer's IdleTimeout is zero.
	DefaultH2IdleTimeout = 90 * time.Second
	// H1FallbackMemory is how long the connector remembers that a peer preferring HTTP/2
	// (upstream.H2H1) chose HTTP/1.1 in its TLS handshake: meanwhile its connections offer
	// http/1.1 only and are pooled as HTTP/1.1 ones.
	H1FallbackMemory = 10 * time.Minute
	// maxH1Fallbacks bounds that memory.
	maxH1Fallbacks = 4096
)

// h2Pool holds the HTTP/2 connections to every peer, grouped by reuse hash. A connection
// stays in its group while it is alive, serving many requests at once; one without streams
// closes after its idle timeout.
type h2Pool struct {
	mu        sync.Mutex
	groups    map[uint64]*h2Group
	fallbacks map[uint64]time.Time // peers that answered http/1.1 to an h2 offer, and when
	closed    bool
}

type h2Group struct {
	conns   []*h2Conn
	dialing chan struct{} // closed when the connection being dialed is ready or failed
}

type h2Conn struct {
	cc    *h2.ClientConn
	key   uint64
	idle  *time.Timer // closes the connection after an idle period; nil while streams run
	gen   uint64      // counts idle periods, so that a stale timer does nothing
	reuse bool        // false for a peer with IdleTimeout DoNotReuse: close once idle
}

// wantsH2 reports whether a request to peer goes over HTTP/2: a cleartext peer whose ALPN is
// upstream.H2 (prior knowledge, h2c), or a TLS peer preferring HTTP/2 that has not recently
// chosen HTTP/1.1.
func (c *Connector) wantsH2(peer *upstream.Peer) bool {
	switch peer.Options.ALPN {
	case upstream.H2:
		return true
	case upstream.H2H1:
		if !peer.TLS {
			return false // ALPN needs TLS; cleartext upgrades to h2c are not supported
		}
		p := &c.h2
		p.mu.Lock()
		until, ok := p.fallbacks[peer.ReuseHash()]
		p.mu.Unlock()
		return !ok || time.Now().After(until)
	}
	return false
}

// GetHTTP returns a session for one request to peer in the HTTP version the peer's ALPN
// preference (upstream.Options.ALPN) leads to: HTTP/1.1 as Get does for upstream.H1; for
// upstream.H2 a stream of an HTTP/2 connection (over TLS with ALPN h2, or cleartext with
// prior knowledge); for upstream.H2H1 over TLS, HTTP/2 when the peer's TLS handshake chooses
// h2, else HTTP/1.1, and that choice is remembered for H1FallbackMemory. o.H1Only forces
// HTTP/1.1 (for an Upgrade request), failing for an upstream.H2 peer; o.CheckOnSend is as in
// GetOptions.
//
// HTTP/2 connections are shared: a new stream goes to a live connection with room under the
// peer's MaxH2Streams (and the server's own limit), so reused is true; a new connection is
// dialed only when none has room, and concurrent requests wait for a dial already under way
// instead of dialing their own. Release the session with ReleaseHTTP.
func (c *Connector) GetHTTP(ctx context.Context, peer *upstream.Peer, o GetOptions) (s HTTPSession, reused bool, err error) {
	if !c.wantsH2(peer) {
		s.H1, reused, err = c.GetWith(ctx, peer, o)
		return s, reused, err
	}
	if o.H1Only {
		return s, false, perr.Explain(perr.InternalError, "an HTTP/1.1 upgrade cannot go to "+peer.String()+
			", which speaks HTTP/2 only").AsIn()
	}
	key := peer.ReuseHash()
	p := &c.h2
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return s, false, perr.Explain(perr.InternalError, "connector closed").AsIn()
		}
		g := p.group(key)
		if st := p.stream(ctx, g); st != nil {
			p.mu.Unlock()
			c.reuses.Add(1)
			st.SetTimeouts(orDefault(peer.Options.ReadTimeout, DefaultReadTimeout),
				orDefault(peer.Options.WriteTimeout, DefaultWriteTimeout))
			return HTTPSession{H2: st}, true, nil
		}
		if wait := g.dialing; wait != nil {
			p.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return s, false, perr.Because(perr.ConnectTimedout, "waiting for an HTTP/2 connection to "+peer.String(), ctx.Err()).AsUp()
			}
		}
		g.dialing = make(chan struct{})
		p.mu.Unlock()
		return c.dialH2(ctx, peer, key, g)
	}
}

// group returns the group of key, making it. p.mu is held.
func (p *h2Pool) group(key uint64) *h2Group {
	if p.groups == nil {
		p.groups = make(map[uint64]*h2Group)
	}
	g := p.groups[key]
	if g == nil {
		g = &h2Group{}
		p.groups[key] = g
	}
	return g
}

// stream opens a stream on a connection of g with room, dropping the connections that are
// closing. p.mu is held.
func (p *h2Pool) stream(ctx context.Context, g *h2Group) *h2.ClientStream {
	for i := 0; i < len(g.conns); i++ {
		hc := g.conns[i]
		if hc.cc.Closing() {
			g.conns = append(g.conns[:i], g.conns[i+1:]...)
			i--
			if hc.idle != nil {
				hc.idle.Stop()
			}
			hc.cc.Close()
			continue
		}
		if !hc.cc.CanTakeStream() {
			continue
		}
		st, err := hc.cc.NewStream(ctx)
		if err != nil {
			continue
		}
		if hc.idle != nil {
			hc.idle.Stop()
			hc.idle = nil
		}
		return st
	}
	return nil
}

// dialH2 dials a connection for g (whose dialing channel this call owns) and opens the
// request's stream on it, or falls back to HTTP/1.1 when the peer's TLS handshake chose it.
func (c *Connector) dialH2(ctx context.Context, peer *upstream.Peer, key uint64, g *h2Group) (HTTPSession, bool, error) {
	p := &c.h2
	conn, err := c.dial(ctx, peer, false)
	done := func() {
		p.mu.Lock()
		close(g.dialing)
		g.dialing = nil
		p.mu.Unlock()
	}
	if err != nil {
		done()
		return HTTPSession{}, false, err
	}
	o := &peer.Options
	if tc, ok := conn.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol != "h2" {
		if o.ALPN == upstream.H2 {
			done()
			conn.Close()
			return HTTPSession{}, false, perr.Explain(perr.H2Downgrade, "TLS handshake with "+peer.String()+
				" did not choose h2, and the peer is set to HTTP/2 only").AsUp()
		}
		p.mu.Lock()
		if len(p.fallbacks) >= maxH1Fallbacks {
			clear(p.fallbacks)
		}
		if p.fallbacks == nil {
			p.fallbacks = make(map[uint64]time.Time)
		}
		p.fallbacks[key] = time.Now().Add(H1FallbackMemory)
		close(g.dialing)
		g.dialing = nil
		p.mu.Unlock()
		s := h1.NewClientSession(conn, &h1.ClientOptions{
			ReadTimeout:               orDefault(o.ReadTimeout, DefaultReadTimeout),
			WriteTimeout:              orDefault(o.WriteTimeout, DefaultWriteTimeout),
			AllowInvalidContentLength: o.AllowH1ResponseInvalidContentLength,
		})
		s.Ext = newPooledConn(s, key)
		return HTTPSession{H1: s}, false, nil
	}
	ow := o.WithDefaults()
	cc, err := h2.NewClientConn(conn, &h2.ClientOptions{
		MaxConcurrentStreams: ow.MaxH2Streams,
		StreamWindow:         int32(min(ow.H2StreamWindowSize, upstream.MaxH2WindowSize)),
		ConnWindow:           int32(min(ow.H2ConnWindowSize, upstream.MaxH2WindowSize)),
		PingInterval:         o.H2PingInterval,
		WriteTimeout:         orDefault(o.WriteTimeout, DefaultWriteTimeout),
	})
	if err != nil {
		done()
		conn.Close()
		return HTTPSession{}, false, err
	}
	hc := &h2Conn{cc: cc, key: key, reuse: o.IdleTimeout >= 0}
	st, err := cc.NewStream(ctx)
	p.mu.Lock()
	close(g.dialing)
	g.dialing = nil
	if p.closed {
		p.mu.Unlock()
		cc.Close()
		return HTTPSession{}, false, perr.Explain(perr.InternalError, "connector closed").AsIn()
	}
	g.conns = append(g.conns, hc)
	p.mu.Unlock()
	if err != nil {
		return HTTPSession{}, false, err
	}
	st.SetTimeouts(orDefault(o.ReadTimeout, DefaultReadTimeout), orDefault(o.WriteTimeout, DefaultWriteTimeout))
	return HTTPSession{H2: st}, false, nil
}

// ReleaseHTTP ends the exchange of a session from GetHTTP: an HTTP/1.1 session goes back as
// with Release; an HTTP/2 stream is closed (reset when it was not complete), and a connection
// left without streams closes after the peer's idle timeout (DefaultH2IdleTimeout when zero,
// at once with DoNotReuse).
func (c *Connector) ReleaseHTTP(peer *upstream.Peer, s HTTPSession) {
	if s.H1 != nil {
		c.Release(peer, s.H1)
		return
	}
	if s.H2 == nil {
		return
	}
	cc := s.H2.Conn()
	s.H2.Close()
	if !cc.Idle() {
		return
	}
	p := &c.h2
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.groups[peer.ReuseHash()]
	if g == nil {
		return
	}
	for _, hc := range g.conns {
		if hc.cc != cc {
			continue
		}
		if !hc.reuse || cc.Closing() {
			p.drop(g, hc)
			return
		}
		if hc.idle == nil && cc.Idle() {
			d := peer.Options.IdleTimeout
			if d == 0 {
				d = DefaultH2IdleTimeout
			}
			hc.gen++
			gen := hc.gen
			hc.idle = time.AfterFunc(d, func() { p.expire(hc, gen) })
		}
		return
	}
}

// expire closes hc if it is still in the idle period gen.
func (p *h2Pool) expire(hc *h2Conn, gen uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := p.groups[hc.key]
	if g == nil || hc.idle == nil || hc.gen != gen || !hc.cc.Idle() {
		return
	}
	p.drop(g, hc)
}

// drop removes hc from g and closes it gracefully. p.mu is held.
func (p *h2Pool) drop(g *h2Group, hc *h2Conn) {
	for i, x := range g.conns {
		if x == hc {
			g.conns = append(g.conns[:i], g.conns[i+1:]...)
			break
		}
	}
	if hc.idle != nil {
		hc.idle.Stop()
		hc.idle = nil
	}
	if len(g.conns) == 0 && g.dialing == nil {
		delete(p.groups, hc.key)
	}
	go hc.cc.Shutdown(context.Background())
}

// closeAll closes every HTTP/2 connection and refuses new ones.
func (p *h2Pool) closeAll() {
	p.mu.Lock()
	p.closed = true
	groups := p.groups
	p.groups = nil
	p.mu.Unlock()
	for _, g := range groups {
		for _, hc := range g.conns {
			if hc.idle != nil {
				hc.idle.Stop()
			}
			hc.cc.Close()
		}
	}
}

// H2Conns returns how many HTTP/2 upstream connections are open, and how many streams they
// carry.
func (c *Connector) H2Conns() (conns, streams int) {
	p := &c.h2
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range p.groups {
		for _, hc := range g.conns {
			conns++
			streams += hc.cc.ActiveStreams()
		}
	}
	return conns, streams
}
