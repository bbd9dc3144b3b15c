package lb

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/pingora-go/pingora/connector"
	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/protocols/h1"
	"github.com/pingora-go/pingora/upstream"
)

// DefaultCheckTimeout bounds one health check when its Timeout is zero: the
// reference's one-second connect and read timeouts.
const DefaultCheckTimeout = time.Second

// DefaultMaxCheckBody is how much of a response body an HTTPCheck reads when
// its MaxBody is zero.
const DefaultMaxCheckBody = 64 << 10

// Errors an HTTPCheck reports for a response it does not accept. They are
// wrapped with the details; test them with errors.Is.
var (
	// ErrCheckStatus reports a response status other than the expected one.
	ErrCheckStatus = errors.New("lb: health check: unexpected status")
	// ErrCheckBody reports a response body without the expected text.
	ErrCheckBody = errors.New("lb: health check: body does not match")
)

// Checker tests whether one backend can serve. Check returns nil for a
// healthy answer; it must return when ctx ends. A Service calls Check for
// many backends at once.
type Checker interface {
	Check(ctx context.Context, b *Backend) error
}

// CheckerFunc adapts a function to a Checker.
type CheckerFunc func(ctx context.Context, b *Backend) error

// Check calls f.
func (f CheckerFunc) Check(ctx context.Context, b *Backend) error { return f(ctx, b) }

// defaultConnector dials for checks that have no Connector of their own; a
// check only dials, so the connector's pool stays empty.
var defaultConnector = sync.OnceValue(func() *connector.Connector {
	return connector.New(connector.Options{})
})

// dialBackend opens a connection to b as template describes (TLS, SNI,
// certificate options), within timeout.
func dialBackend(ctx context.Context, c *connector.Connector, template *upstream.Peer, b *Backend, timeout time.Duration) (net.Conn, error) {
	peer := upstream.Peer{Network: upstream.NetworkTCP}
	if template != nil {
		peer = *template
	}
	if path, ok := strings.CutPrefix(b.Addr, "unix:"); ok {
		peer.Network, peer.Addr = upstream.NetworkUnix, path
	} else {
		peer.Network, peer.Addr = upstream.NetworkTCP, b.Addr
	}
	if peer.Options.ConnectTimeout == 0 || peer.Options.ConnectTimeout > timeout {
		peer.Options.ConnectTimeout = timeout
	}
	if c == nil {
		c = defaultConnector()
	}
	return c.Dial(ctx, &peer)
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// TCPCheck finds a backend healthy when a connection to it opens and, for a
// TLS peer template, the TLS handshake completes (the reference's
// TcpHealthCheck).
type TCPCheck struct {
	// Peer is a template of the connection: its address is replaced by the
	// backend's; TLS, SNI and Options apply. Nil means plain TCP.
	Peer *upstream.Peer
	// Timeout bounds the whole check; zero means DefaultCheckTimeout.
	Timeout time.Duration
	// Connector dials; nil uses a shared one without client certificates
	// or source-address binding.
	Connector *connector.Connector
}

// NewTCPCheck returns a check that connects over TCP.
func NewTCPCheck() *TCPCheck { return &TCPCheck{} }

// NewTLSCheck returns a check that connects and completes a TLS handshake
// with server name sni, verifying the certificate unless sni is empty.
func NewTLSCheck(sni string) *TCPCheck {
	return &TCPCheck{Peer: &upstream.Peer{TLS: true, SNI: sni}}
}

// Check connects to b and closes the connection.
func (c *TCPCheck) Check(ctx context.Context, b *Backend) error {
	timeout := orDefault(c.Timeout, DefaultCheckTimeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := dialBackend(ctx, c.Connector, c.Peer, b, timeout)
	if err != nil {
		return err
	}
	return conn.Close()
}

// HTTPCheck finds a backend healthy when it answers a request with the
// expected status and, optionally, a body holding the expected text (the
// reference's HttpHealthCheck). Each check uses a new connection, so that it
// also tests that the backend accepts connections.
type HTTPCheck struct {
	// Peer is a template of the connection, as in TCPCheck.
	Peer *upstream.Peer
	// Connector dials; nil uses a shared one.
	Connector *connector.Connector
	// Timeout bounds the whole exchange, connect to last body byte; zero
	// means DefaultCheckTimeout.
	Timeout time.Duration
	// Method is the request method; empty means GET.
	Method string
	// Path is the request target; empty means "/".
	Path string
	// Host is the Host header; empty means the backend's address, or
	// "localhost" for a Unix socket.
	Host string
	// Status is the status the backend must answer; zero means 200.
	Status int
	// Body, when not empty, must occur in the first MaxBody bytes of the
	// response body.
	Body []byte
	// MaxBody caps the body bytes read; zero means DefaultMaxCheckBody.
	// A longer body is not read to its end, which is no failure.
	MaxBody int
}

// NewHTTPCheck returns a check that sends "GET /" with Host host, over TLS
// with server name host when tls is true, and expects status 200.
func NewHTTPCheck(host string, tls bool) *HTTPCheck {
	c := &HTTPCheck{Host: host}
	if tls {
		c.Peer = &upstream.Peer{TLS: true, SNI: host}
	}
	return c
}

// Check sends the request to b and validates the response.
func (c *HTTPCheck) Check(ctx context.Context, b *Backend) error {
	timeout := orDefault(c.Timeout, DefaultCheckTimeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := dialBackend(ctx, c.Connector, c.Peer, b, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	// The session reads from conn; ending ctx unblocks it.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	s := h1.NewClientSession(conn, nil)
	defer s.Close()
	req := header.NewRequest(cmp.Or(c.Method, "GET"), cmp.Or(c.Path, "/"))
	host := c.Host
	if host == "" {
		host = b.Addr
		if strings.HasPrefix(host, "unix:") {
			host = "localhost"
		}
	}
	req.Append("Host", host)
	req.Append("User-Agent", "pingora-go-health-check")
	req.Append("Connection", "close")
	if err := s.WriteRequestHeader(req); err != nil {
		return err
	}
	for {
		if err := s.ReadResponseHeader(); err != nil {
			return err
		}
		if st := s.Resp.Status; st >= 200 || st == 101 {
			break
		}
	}
	if want := intOr(c.Status, 200); s.Resp.Status != want {
		return fmt.Errorf("%w: %d, want %d", ErrCheckStatus, s.Resp.Status, want)
	}
	if len(c.Body) == 0 {
		return nil
	}
	body, err := readBody(s, intOr(c.MaxBody, DefaultMaxCheckBody))
	if err != nil {
		return err
	}
	if !bytes.Contains(body, c.Body) {
		return fmt.Errorf("%w: no %q in the first %d bytes", ErrCheckBody, c.Body, len(body))
	}
	return nil
}

// readBody reads up to limit bytes of the response body.
func readBody(s *h1.ClientSession, limit int) ([]byte, error) {
	var body []byte
	for len(body) < limit {
		p, err := s.ReadBody()
		body = append(body, p[:min(len(p), limit-len(body))]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return body, nil
}

// intOr returns n, or def when n is not positive.
func intOr(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// BackendStatus is the state of one backend, as Backends.Status reports it.
type BackendStatus struct {
	// Backend is the backend.
	Backend Backend
	// Healthy is what health checks say; Enabled is the administrative
	// flag; Ejected is whether passive health keeps the backend out.
	Healthy, Enabled, Ejected bool
	// InFlight counts the Leases not released yet.
	InFlight int64
}

// Status returns the state of every backend, sorted by address.
func (b *Backends) Status() []BackendStatus {
	set := b.load()
	out := make([]BackendStatus, len(set.list))
	for i, be := range set.list {
		st := set.status[i]
		out[i] = BackendStatus{
			Backend:  be,
			Healthy:  !st.down.Load(),
			Enabled:  !st.disabled.Load(),
			Ejected:  st.ejected.Load(),
			InFlight: st.inflight.Load(),
		}
	}
	return out
}
