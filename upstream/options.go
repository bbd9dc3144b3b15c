package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/netip"
	"time"

	"github.com/pingora-go/pingora/pool"
)

// Reference defaults that a zero field of Options stands for.
const (
	// DefaultMaxH2Streams is the number of concurrent streams per HTTP/2
	// connection to a peer. The reference uses 1, which makes HTTP/2 to an
	// upstream cost a connection per request; 100 is the common server limit.
	DefaultMaxH2Streams = 100
	// DefaultH2WindowSize is the initial HTTP/2 stream and connection
	// receive window, 8 MiB.
	DefaultH2WindowSize = 8 << 20
	// MaxH2WindowSize is the largest HTTP/2 window, 2^31-1.
	MaxH2WindowSize = 1<<31 - 1
	// DefaultQueueTimeout is how long a request over a peer's MaxInflight waits for a slot
	// when QueueTimeout is zero.
	DefaultQueueTimeout = time.Second
)

// DoNotReuse is the IdleTimeout that closes a connection after its request
// instead of keeping it for reuse (the reference's idle_timeout of 0 s).
const DoNotReuse = pool.DoNotKeep

// Options is how a connection to a peer is made and kept (the reference's
// PeerOptions). The zero value is the reference default and is secure: the
// certificate and host name are verified unless SkipVerifyCert or
// SkipVerifyHostname is set, and a zero field means the default written on
// it. DefaultOptions spells the defaults out.
//
// Durations: zero means the connector's default (connector.DefaultConnectTimeout,
// DefaultReadTimeout, DefaultWriteTimeout: a proxy never waits without a bound), where the
// reference's None waits forever; TotalConnectTimeout zero adds no bound beyond the
// per-step ones, and IdleTimeout zero keeps a pooled connection until it is evicted or closed.
// Negative values are invalid except for IdleTimeout.
type Options struct {
	// BindTo chooses the local address; nil lets the connector choose.
	BindTo *BindTo

	// ConnectTimeout bounds the TCP connect, and separately the TLS
	// handshake and the CONNECT proxy setup.
	ConnectTimeout time.Duration
	// TotalConnectTimeout bounds connection establishment as a whole.
	TotalConnectTimeout time.Duration
	// ReadTimeout bounds each read from the peer.
	ReadTimeout time.Duration
	// WriteTimeout bounds each write to the peer.
	WriteTimeout time.Duration
	// IdleTimeout is how long a released connection is kept for reuse:
	// zero keeps it until the peer closes it or the pool evicts it; a
	// negative value (DoNotReuse) closes it after the request. The values
	// mean the same as the idle timeout of pool.Pool.Put.
	IdleTimeout time.Duration

	// SkipVerifyCert turns off verification of the peer's certificate
	// chain (the reference's verify_cert = false).
	SkipVerifyCert bool
	// SkipVerifyHostname turns off the check that the certificate names
	// the SNI or AlternativeCN (the reference's verify_hostname = false).
	SkipVerifyHostname bool
	// AlternativeCN is one more name accepted in the peer's certificate.
	AlternativeCN string
	// ALPN is the HTTP version preference; the zero value is H1.
	ALPN ALPN
	// CA holds the roots trusted for this peer; nil uses the connector's.
	// Its identity (not its contents) is part of the reuse hash.
	CA *x509.CertPool
	// ClientCert is presented for mutual TLS; nil presents none. Its leaf
	// certificate is part of the reuse hash.
	ClientCert *tls.Certificate
	// Curves are the TLS key exchange groups to offer, in preference
	// order; nil uses crypto/tls's default.
	Curves []tls.CurveID

	// TCPKeepalive turns on TCP keepalive probes; nil leaves them off.
	TCPKeepalive *TCPKeepalive
	// TCPRecvBuf sets SO_RCVBUF in bytes; zero keeps the system default.
	TCPRecvBuf int
	// DSCP sets the differentiated services code point (IP_TOS or
	// IPV6_TCLASS); zero keeps the system default.
	DSCP uint8
	// TCPFastOpen uses TCP_FASTOPEN_CONNECT where the system has it.
	TCPFastOpen bool

	// MaxH2Streams caps concurrent streams per HTTP/2 connection; zero
	// means DefaultMaxH2Streams.
	MaxH2Streams int
	// H2StreamWindowSize is the initial HTTP/2 stream receive window;
	// zero means DefaultH2WindowSize.
	H2StreamWindowSize uint32
	// H2ConnWindowSize is the initial HTTP/2 connection receive window;
	// zero means DefaultH2WindowSize.
	H2ConnWindowSize uint32
	// H2PingInterval sends an HTTP/2 PING this often; zero sends none.
	H2PingInterval time.Duration

	// MaxInflight caps the requests a proxy has in flight to the peer at once (counted per
	// reuse hash, from connecting until the response ended); zero sets no cap. A request over
	// the cap waits in a queue of MaxQueued for up to QueueTimeout, and is otherwise shed:
	// the attempt fails as a connection failure would (FailToConnect may send it elsewhere),
	// answered 503 with Retry-After by default.
	MaxInflight int
	// MaxQueued is how many requests over MaxInflight may wait for a slot; zero sheds them at
	// once.
	MaxQueued int
	// QueueTimeout bounds a queued request's wait; zero means DefaultQueueTimeout.
	QueueTimeout time.Duration

	// AllowH1ResponseInvalidContentLength reads an HTTP/1 response whose
	// Content-Length is invalid until the connection closes, instead of
	// failing it.
	AllowH1ResponseInvalidContentLength bool

	// Tracer is told when a connection to the peer opens and closes; nil
	// means no tracing.
	Tracer Tracer
}

// DefaultOptions returns the reference defaults with every defaulted field
// written out. It is equivalent to the zero Options.
func DefaultOptions() Options {
	return Options{
		ALPN:               H1,
		MaxH2Streams:       DefaultMaxH2Streams,
		H2StreamWindowSize: DefaultH2WindowSize,
		H2ConnWindowSize:   DefaultH2WindowSize,
	}
}

// WithDefaults returns a copy of o in which every zero field that stands for
// a default holds that default, and the HTTP/2 windows are capped at
// MaxH2WindowSize.
func (o Options) WithDefaults() Options {
	o.MaxH2Streams = o.maxH2Streams()
	o.H2StreamWindowSize = h2Window(o.H2StreamWindowSize)
	o.H2ConnWindowSize = h2Window(o.H2ConnWindowSize)
	return o
}

func (o *Options) maxH2Streams() int {
	if o.MaxH2Streams < 1 {
		return DefaultMaxH2Streams
	}
	return o.MaxH2Streams
}

func h2Window(n uint32) uint32 {
	switch {
	case n == 0:
		return DefaultH2WindowSize
	case n > MaxH2WindowSize:
		return MaxH2WindowSize
	default:
		return n
	}
}

// BindTo is the local end of connections to a peer.
type BindTo struct {
	// Addr is the local address; the zero value lets the system choose.
	Addr netip.Addr
	// PortMin and PortMax limit the local port to a range (Linux
	// IP_LOCAL_PORT_RANGE); both zero leave the port to the system.
	PortMin, PortMax uint16
	// Fallback lets the connector bind any port when the range is
	// exhausted instead of failing.
	Fallback bool
}

// TCPKeepalive configures TCP keepalive probes. A zero field keeps the
// system default for it.
type TCPKeepalive struct {
	// Idle is the idle time before the first probe.
	Idle time.Duration
	// Interval is the time between probes.
	Interval time.Duration
	// Count is the number of unanswered probes before the connection is
	// dropped.
	Count int
	// UserTimeout sets TCP_USER_TIMEOUT (Linux): how long sent data may
	// stay unacknowledged.
	UserTimeout time.Duration
}

// KeepAliveConfig returns k in the form net.Dialer and net.TCPConn take,
// with its zero fields mapped to -1 (leave the system default) rather than
// to Go's own defaults. UserTimeout has no counterpart there.
func (k *TCPKeepalive) KeepAliveConfig() net.KeepAliveConfig {
	return net.KeepAliveConfig{
		Enable:   true,
		Idle:     orUnset(k.Idle),
		Interval: orUnset(k.Interval),
		Count:    int(orUnset(time.Duration(k.Count))),
	}
}

// orUnset maps zero to -1, which net.KeepAliveConfig reads as "unchanged".
func orUnset(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// Tracer is told about the life of connections to a peer.
type Tracer interface {
	// OnConnected is called when a new connection is established.
	OnConnected()
	// OnDisconnected is called when a connection is closed.
	OnDisconnected()
}
