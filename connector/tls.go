package connector

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/upstream"
)

// ErrH2Only is the cause of the error Get returns for a TLS peer whose ALPN is upstream.H2:
// Get hands out HTTP/1.1 sessions only.
var ErrH2Only = errors.New("connector: the peer accepts HTTP/2 only, and Get speaks HTTP/1.1")

// Limits of the per-peer TLS state.
const (
	// MaxTLSPeers is how many peers (reuse hashes) keep a TLS configuration and session cache;
	// past it an arbitrary one is dropped, and its next connection makes a full handshake.
	MaxTLSPeers = 4096
	// sessionsPerPeer is the capacity of each peer's session cache: one server name, plus
	// room for the ticket of a connection in flight.
	sessionsPerPeer = 2
)

// tlsKey identifies a client configuration: the peer's TLS identity (its reuse hash) and
// whether ALPN is narrowed to http/1.1.
type tlsKey struct {
	hash   uint64
	h1Only bool
}

// tlsConfigs keeps a client configuration per peer, each with its own session cache, so that
// a new connection to a peer resumes that peer's session and no other's.
type tlsConfigs struct {
	mu sync.Mutex // guards m
	m  map[tlsKey]*tls.Config
}

// tlsConfig returns the client configuration for peer, made on first use.
func (c *Connector) tlsConfig(peer *upstream.Peer, h1Only bool) *tls.Config {
	k := tlsKey{hash: peer.ReuseHash(), h1Only: h1Only}
	c.tls.mu.Lock()
	defer c.tls.mu.Unlock()
	if cfg, ok := c.tls.m[k]; ok {
		return cfg
	}
	if c.tls.m == nil {
		c.tls.m = make(map[tlsKey]*tls.Config)
	}
	if len(c.tls.m) >= MaxTLSPeers {
		for old := range c.tls.m {
			delete(c.tls.m, old)
			break
		}
	}
	cfg := c.newTLSConfig(peer, h1Only)
	c.tls.m[k] = cfg
	return cfg
}

// newTLSConfig builds the client configuration the reference's TLS connector would use for
// peer, on crypto/tls: TLS 1.2 and 1.3 with crypto/tls's modern defaults.
func (c *Connector) newTLSConfig(peer *upstream.Peer, h1Only bool) *tls.Config {
	o := &peer.Options
	cfg := &tls.Config{
		ServerName:         peer.SNI,
		RootCAs:            o.CA,
		NextProtos:         o.ALPN.NextProtos(),
		MinVersion:         tls.VersionTLS12,
		ClientSessionCache: tls.NewLRUClientSessionCache(sessionsPerPeer),
		KeyLogWriter:       c.opts.KeyLogWriter,
	}
	if h1Only {
		cfg.NextProtos = upstream.H1.NextProtos()
	}
	if cfg.RootCAs == nil {
		cfg.RootCAs = c.opts.RootCAs
	}
	if cc := o.ClientCert; cc != nil {
		cfg.Certificates = []tls.Certificate{*cc}
	} else if cc := c.opts.ClientCert; cc != nil {
		cfg.Certificates = []tls.Certificate{*cc}
	}
	if len(o.Curves) > 0 {
		cfg.CurvePreferences = o.Curves
	}
	// With no SNI nothing can be verified by name: like nginx, verification is off then.
	if o.SkipVerifyCert || peer.SNI == "" {
		cfg.InsecureSkipVerify = true
	} else if o.SkipVerifyHostname || o.AlternativeCN != "" || strings.Contains(peer.SNI, "_") {
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = verifyChain(cfg.RootCAs, acceptedNames(peer.SNI, o.AlternativeCN), o.SkipVerifyHostname)
	}
	return cfg
}

// acceptedNames returns the names a peer's certificate may carry, as the reference accepts
// them: the SNI, the SNI with its first '_' replaced by '-' (host names with underscores are
// common behind load balancers but invalid in certificates), and the alternative name.
func acceptedNames(sni, alt string) []string {
	names := []string{sni}
	if strings.Contains(sni, "_") {
		names = append(names, strings.Replace(sni, "_", "-", 1))
	}
	if alt != "" {
		names = append(names, alt)
	}
	return names
}

// handshake runs a TLS client handshake on conn as peer asks, bounded by ConnectTimeout.
// Failures are upstream errors: TLSHandshakeTimedout, InvalidCert for a certificate that did
// not verify (unknown authority, expired, wrong name), TLSHandshakeFailure otherwise.
func (c *Connector) handshake(ctx context.Context, conn net.Conn, peer *upstream.Peer, h1Only bool) (net.Conn, error) {
	tc := tls.Client(conn, c.tlsConfig(peer, h1Only))
	hctx := ctx
	if t := peer.Options.ConnectTimeout; t > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		t := perr.TLSHandshakeFailure
		var cv *tls.CertificateVerificationError
		switch {
		case hctx.Err() != nil:
			t = perr.TLSHandshakeTimedout
		case errors.As(err, &cv):
			t = perr.InvalidCert
		}
		return nil, perr.Because(t, "TLS handshake with "+peer.String(), err).AsUp()
	}
	c.handshakes.Add(1)
	if tc.ConnectionState().DidResume {
		c.resumed.Add(1)
	}
	return tc, nil
}

// verifyChain verifies the chain against roots and, unless skipName, that the leaf carries
// one of names.
func verifyChain(roots *x509.CertPool, names []string, skipName bool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}
		}
		inter := x509.NewCertPool()
		for _, ic := range cs.PeerCertificates[1:] {
			inter.AddCert(ic)
		}
		leaf := cs.PeerCertificates[0]
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: time.Now()}); err != nil {
			return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
		}
		if skipName {
			return nil
		}
		var err error
		for _, n := range names {
			if err = leaf.VerifyHostname(n); err == nil {
				return nil
			}
		}
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
}
