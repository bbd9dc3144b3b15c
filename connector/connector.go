// Package connector makes upstream connections: it takes an idle pooled connection to the peer
// when one is alive, dials a new one otherwise (TCP or unix socket, then TLS when the peer asks
// for it, each step under the peer's timeouts), and takes connections back for reuse after a
// clean exchange.
package connector

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/pool"
	"github.com/pingora-go/pingora/protocols/h1"
	"github.com/pingora-go/pingora/upstream"
)

// Options configures a Connector. The zero value uses the defaults.
type Options struct {
	// PoolSize is the most idle upstream connections kept, across all peers (the reference's
	// upstream_keepalive_pool_size; default 128).
	PoolSize int
	// MaxIdlePerPeer caps the idle connections kept for one peer (one reuse hash); 0 means
	// only PoolSize limits them.
	MaxIdlePerPeer int
	// BindToV4 and BindToV6 are source addresses for upstream connections; one is picked at
	// random per connection, matching the destination's family (client_bind_to_ipv4/ipv6).
	// A peer's own BindTo wins.
	BindToV4, BindToV6 []netip.Addr
	// RootCAs verifies upstream certificates when a peer has no CA of its own; nil uses the
	// system roots (the reference's ca_file).
	RootCAs *x509.CertPool
	// ClientCert is presented to every TLS peer that has no ClientCert of its own (the
	// reference's cert_key_file); nil presents none.
	ClientCert *tls.Certificate
	// KeyLogWriter, when set, receives the TLS secrets of upstream connections in NSS key log
	// format, for debugging with a packet analyzer (debug_ssl_keylog). It weakens security.
	KeyLogWriter io.Writer
}

// DefaultPoolSize is the reference's upstream_keepalive_pool_size.
const DefaultPoolSize = 128

// Timeouts used for a peer whose Options leave them zero. The reference waits forever there;
// a proxy must not, so these follow nginx's proxy_connect_timeout, proxy_read_timeout and
// proxy_send_timeout.
const (
	DefaultConnectTimeout = 60 * time.Second
	DefaultReadTimeout    = 60 * time.Second
	DefaultWriteTimeout   = 60 * time.Second
)

func orDefault(v, d time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return d
}

// Connector hands out HTTP/1 client sessions to upstream peers. It is safe for concurrent use.
type Connector struct {
	opts Options
	pool *pool.Pool[*pooledConn]
	tls  tlsConfigs
	h2   h2Pool

	dials      atomic.Uint64
	reuses     atomic.Uint64
	handshakes atomic.Uint64
	resumed    atomic.Uint64
}

// New returns a Connector with opts.
func New(opts Options) *Connector {
	if opts.PoolSize <= 0 {
		opts.PoolSize = DefaultPoolSize
	}
	return &Connector{
		opts: opts,
		pool: pool.New(pool.Options[*pooledConn]{
			Capacity:  opts.PoolSize,
			MaxPerKey: opts.MaxIdlePerPeer,
			Alive:     (*pooledConn).check,
		}),
	}
}

// Stats are a Connector's counters.
type Stats struct {
	// Dials counts new connections made; Reuses counts pooled connections handed out.
	Dials, Reuses uint64
	// TLSHandshakes counts successful upstream TLS handshakes; TLSResumed counts those that
	// resumed an earlier session instead of a full handshake.
	TLSHandshakes, TLSResumed uint64
	// Pool holds the pool's own counters.
	Pool pool.Stats
}

// Stats returns the counters.
func (c *Connector) Stats() Stats {
	return Stats{Dials: c.dials.Load(), Reuses: c.reuses.Load(), TLSHandshakes: c.handshakes.Load(),
		TLSResumed: c.resumed.Load(), Pool: c.pool.Stats()}
}

// Close closes every idle pooled connection and every HTTP/2 connection.
func (c *Connector) Close() error {
	c.h2.closeAll()
	return c.pool.Close()
}

// Get returns an HTTP/1.1 session to peer: a pooled one (reused is true) when one is alive,
// else a new connection, over which TLS offers only http/1.1 (the reference's "prefer h1"),
// whatever the peer's ALPN preference. Connection failures are *perr.Error values with source
// Upstream and the reference's types (ConnectRefused, ConnectTimedout, ConnectNoRoute,
// TLSHandshakeFailure, InvalidCert, ...). A TLS peer that accepts HTTP/2 only fails with
// ErrH2Only.
func (c *Connector) Get(ctx context.Context, peer *upstream.Peer) (s *h1.ClientSession, reused bool, err error) {
	return c.GetWith(ctx, peer, GetOptions{})
}

// GetOptions tunes GetWith and GetHTTP.
type GetOptions struct {
	// H1Only makes GetHTTP return HTTP/1.1 whatever the peer's ALPN preference (for an
	// Upgrade request).
	H1Only bool
	// CheckOnSend hands out a pooled connection over a plain socket without checking it
	// first; the session checks it just before its request goes out (h1.ClientSession's
	// CheckOnSend), which for a request without a body costs no system call of its own. The
	// caller must then expect an error matching h1.ErrStale from WriteRequestHeader or
	// ReadResponseHeader of a reused session (the request was not sent) and send the request
	// again on another session. The proxy does.
	CheckOnSend bool
}

// GetWith is Get with options.
func (c *Connector) GetWith(ctx context.Context, peer *upstream.Peer, opts GetOptions) (s *h1.ClientSession, reused bool, err error) {
	o := &peer.Options
	if peer.TLS && o.ALPN == upstream.H2 {
		return nil, false, perr.Because(perr.InternalError, "connecting to "+peer.String(), ErrH2Only).AsIn()
	}
	key := peer.ReuseHash()
	if o.IdleTimeout >= 0 {
		// A session broken while it sat in the pool (aborted from another goroutine just
		// as it was released) is not handed out, even unchecked.
		deferred := opts.CheckOnSend && !peer.TLS
		for {
			pc, ok := c.pool.GetChecked(key, !deferred)
			if !ok {
				break
			}
			if pc.s.Broken() {
				pc.Close()
				continue
			}
			if deferred && !pc.s.CheckOnSend() && !pc.check() {
				// The session cannot check itself here (no raw socket access): check now.
				c.pool.NoteDead()
				pc.Close()
				continue
			}
			c.reuses.Add(1)
			pc.s.SetTimeouts(orDefault(o.ReadTimeout, DefaultReadTimeout), orDefault(o.WriteTimeout, DefaultWriteTimeout))
			return pc.s, true, nil
		}
	}
	conn, err := c.dial(ctx, peer, true)
	if err != nil {
		return nil, false, err
	}
	s = h1.NewClientSession(conn, &h1.ClientOptions{
		ReadTimeout:               orDefault(o.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:              orDefault(o.WriteTimeout, DefaultWriteTimeout),
		AllowInvalidContentLength: o.AllowH1ResponseInvalidContentLength,
	})
	s.Ext = newPooledConn(s, key)
	return s, false, nil
}

// Release takes back a session that Get returned for peer, after its exchange: a reusable one
// goes to the pool, under the peer's reuse hash as Get computed it, with the peer's idle
// timeout; any other is closed.
func (c *Connector) Release(peer *upstream.Peer, s *h1.ClientSession) {
	if s.Stale() {
		// Found dead by its own check on send (GetOptions.CheckOnSend), as Get's would have.
		c.pool.NoteDead()
	}
	if !s.Reusable() || peer.Options.IdleTimeout < 0 {
		s.Close()
		return
	}
	pc := s.Ext.(*pooledConn)
	park(s)
	c.pool.Put(pc.key, pc, peer.Options.IdleTimeout)
}

// Dial opens a new connection to peer, with TLS when the peer asks for it; the TLS connection
// offers the peer's ALPN preference (its ConnectionState tells the protocol chosen). The TCP
// connect and the TLS handshake are each bounded by ConnectTimeout, and both together by
// TotalConnectTimeout.
func (c *Connector) Dial(ctx context.Context, peer *upstream.Peer) (net.Conn, error) {
	return c.dial(ctx, peer, false)
}

// dial is Dial, offering http/1.1 only over TLS when h1Only is set.
func (c *Connector) dial(ctx context.Context, peer *upstream.Peer, h1Only bool) (net.Conn, error) {
	conn, err := c.connect(ctx, peer, h1Only)
	if err == nil {
		c.dials.Add(1)
	}
	return conn, err
}

func (c *Connector) connect(ctx context.Context, peer *upstream.Peer, h1Only bool) (net.Conn, error) {
	o := &peer.Options
	if o.TotalConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.TotalConnectTimeout)
		defer cancel()
	}
	d := net.Dialer{Timeout: orDefault(o.ConnectTimeout, DefaultConnectTimeout), KeepAlive: -1}
	if ka := o.TCPKeepalive; ka != nil {
		d.KeepAlive = 0
		d.KeepAliveConfig = net.KeepAliveConfig{Enable: true, Idle: ka.Idle, Interval: ka.Interval, Count: ka.Count}
	}
	network := "tcp"
	if peer.Network == upstream.NetworkUnix {
		network = "unix"
	} else if local := c.localAddr(peer); local.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
	}
	conn, err := d.DialContext(ctx, network, peer.Addr)
	if err != nil {
		e := perr.FromDialError(err)
		e.Context = "connecting to " + peer.String()
		return nil, e
	}
	if o.TCPRecvBuf > 0 {
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetReadBuffer(o.TCPRecvBuf)
		}
	}
	if !peer.TLS {
		return conn, nil
	}
	return c.handshake(ctx, conn, peer, h1Only)
}

// localAddr picks the source address for a TCP peer.
func (c *Connector) localAddr(peer *upstream.Peer) netip.Addr {
	if b := peer.Options.BindTo; b != nil && b.Addr.IsValid() {
		return b.Addr
	}
	ap, ok := peer.AddrPort()
	if !ok {
		return netip.Addr{}
	}
	list := c.opts.BindToV4
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		list = c.opts.BindToV6
	}
	if len(list) == 0 {
		return netip.Addr{}
	}
	return list[rand.IntN(len(list))]
}
