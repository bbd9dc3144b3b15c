package main

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/pingora-go/pingora"
	"github.com/pingora-go/pingora/listeners"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/upstream"
)

// tlsFlags are the quick-mode TLS flags.
type tlsFlags struct {
	certs, keys []string
	clientCA    string
	upstreamTLS bool
	upstreamSNI string
	upstreamCA  string
}

// listenTLS returns the settings for --tls-cert/--tls-key, or nil when TLS is not asked for.
// The certificates are reloaded when their files change and on SIGHUP.
func (f *tlsFlags) listenTLS(logger *slog.Logger) (*listeners.TLSSettings, error) {
	if len(f.certs) != len(f.keys) {
		return nil, fmt.Errorf("--tls-cert and --tls-key must be given as many times each (%d and %d)", len(f.certs), len(f.keys))
	}
	if len(f.certs) == 0 {
		if f.clientCA != "" {
			return nil, fmt.Errorf("--tls-client-ca needs --tls-cert and --tls-key")
		}
		return nil, nil
	}
	o := listeners.TLSOptions{ClientCAFile: f.clientCA, Logger: logger}
	o.EnableH2()
	for i := range f.certs {
		o.Certs = append(o.Certs, listeners.CertFiles{CertFile: f.certs[i], KeyFile: f.keys[i]})
	}
	return listeners.NewTLS(o)
}

// check reports flag combinations that cannot work, before anything starts.
func (f *tlsFlags) check() error {
	if !f.upstreamTLS && (f.upstreamSNI != "" || f.upstreamCA != "") {
		return fmt.Errorf("--upstream-sni and --upstream-ca need --upstream-tls")
	}
	return nil
}

// tlsReverseProxy is the quick-mode proxy with TLS to its upstreams: the round robin of
// pingora.ReverseProxy, each choice replaced by its TLS peer.
type tlsReverseProxy struct {
	*pingora.ReverseProxy
	peers map[string]*upstream.Peer // by address
}

// newTLSReverseProxy returns rp speaking TLS to upstreams with sni (the upstream host when
// empty) verified against the roots of caFile (the connector's roots when empty).
func newTLSReverseProxy(rp *pingora.ReverseProxy, upstreams []string, sni, caFile string) (*tlsReverseProxy, error) {
	var roots *x509.CertPool
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--upstream-ca %s holds no PEM certificate", caFile)
		}
	}
	t := &tlsReverseProxy{ReverseProxy: rp, peers: map[string]*upstream.Peer{}}
	for _, u := range upstreams {
		p, err := upstream.NewPeer(u, true, sni)
		if err != nil {
			return nil, err
		}
		if p.SNI == "" {
			p.SNI, _ = hostOf(p.Addr)
		}
		p.Options.CA = roots
		t.peers[p.Addr] = p
	}
	return t, nil
}

// UpstreamPeer picks the next upstream as pingora.ReverseProxy does, over TLS.
func (t *tlsReverseProxy) UpstreamPeer(s *proxy.Session, a *pingora.Attempt) (*upstream.Peer, error) {
	p, err := t.ReverseProxy.UpstreamPeer(s, a)
	if err != nil {
		return nil, err
	}
	return t.peers[p.Addr], nil
}

// hostOf returns the host of a "host:port" address.
func hostOf(addr string) (string, error) {
	h, _, err := net.SplitHostPort(addr)
	return h, err
}
