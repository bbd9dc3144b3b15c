package listeners

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// HandshakeTimeout caps a downstream TLS handshake, as in the reference.
const HandshakeTimeout = 60 * time.Second

// Defaults of TLSOptions.
const (
	// DefaultReloadInterval is how often certificate files are checked for changes.
	DefaultReloadInterval = time.Second
	// DefaultTicketKeyRotation is how often a new session ticket key is made.
	DefaultTicketKeyRotation = time.Hour
	// TicketKeysKept is how many ticket keys decrypt tickets: the newest encrypts, and a ticket
	// stays usable for at least TicketKeysKept-1 rotation periods.
	TicketKeysKept = 3
)

// Application protocols offered through ALPN.
const (
	// ProtoHTTP1 is the ALPN name of HTTP/1.1.
	ProtoHTTP1 = "http/1.1"
	// ProtoH2 is the ALPN name of HTTP/2 over TLS.
	ProtoH2 = "h2"
)

// intermediateSuites are the TLS 1.2 cipher suites of Mozilla's "intermediate" server profile
// (TLS 1.3 suites are not configurable in crypto/tls and are all modern).
var intermediateSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// CertFiles names the files of one certificate.
type CertFiles struct {
	// CertFile holds the PEM certificate chain, leaf first.
	CertFile string
	// KeyFile holds the PEM private key of the leaf.
	KeyFile string
	// OCSPFile, when set, holds a DER-encoded OCSP response that is stapled to handshakes
	// using this certificate (for example the output of `openssl ocsp -respout`).
	OCSPFile string
}

// TLSOptions configure TLS termination on a listener. The zero value of each field is a
// sensible default; at least one certificate or GetCertificate is required.
type TLSOptions struct {
	// Certs are the certificates served. A client's SNI picks the certificate naming it,
	// exactly or through a wildcard ("*.example.com" matches one label); the first
	// certificate is served when no name matches or the client sends no SNI.
	Certs []CertFiles
	// GetCertificate, when set, is asked first on every handshake (the reference's
	// certificate callback); returning nil and no error falls back to Certs.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// NextProtos are the ALPN protocols offered, most preferred first; nil offers
	// http/1.1 only. HTTP/2 is off by default, as in the reference: see EnableH2.
	NextProtos []string
	// ClientCAFile, when set, is a PEM bundle of the CAs that sign client certificates
	// (mutual TLS). It is reloaded with the certificates.
	ClientCAFile string
	// ClientAuth is the client certificate policy; the zero value means
	// tls.RequireAndVerifyClientCert when ClientCAFile is set and tls.NoClientCert otherwise.
	ClientAuth tls.ClientAuthType
	// MinVersion is the lowest TLS version accepted; zero means TLS 1.2.
	MinVersion uint16
	// TicketKeyRotation is how often a new session ticket key is made; zero means
	// DefaultTicketKeyRotation.
	TicketKeyRotation time.Duration
	// DisableSessionTickets turns session resumption by tickets off.
	DisableSessionTickets bool
	// ReloadInterval is how often the files are checked for changes; zero means
	// DefaultReloadInterval and a negative value turns the check off (Reload still works).
	ReloadInterval time.Duration
	// Logger receives reload messages; nil uses slog.Default().
	Logger *slog.Logger
}

// EnableH2 offers HTTP/2 before HTTP/1.1 through ALPN (the reference's enable_h2).
func (o *TLSOptions) EnableH2() { o.NextProtos = []string{ProtoH2, ProtoHTTP1} }

// TLSSettings is the live TLS configuration of one or more listeners: it holds the loaded
// certificates, swaps them when their files change, and rotates session ticket keys. Every
// handshake sees one complete configuration, the old or the new, never a mix, so a reload
// fails no handshake. It is safe for concurrent use.
type TLSSettings struct {
	opts  TLSOptions
	log   *slog.Logger
	outer *tls.Config
	cur   atomic.Pointer[tls.Config]

	mu          sync.Mutex // guards the fields below
	files       fileState
	keys        [][32]byte
	lastRotated time.Time
}

// NewTLS loads the files of o and returns the settings, or the first error met loading them.
func NewTLS(o TLSOptions) (*TLSSettings, error) {
	if len(o.Certs) == 0 && o.GetCertificate == nil {
		return nil, errors.New("listeners: TLS needs a certificate or GetCertificate")
	}
	if o.NextProtos == nil {
		o.NextProtos = []string{ProtoHTTP1}
	}
	if o.MinVersion == 0 {
		o.MinVersion = tls.VersionTLS12
	}
	if o.TicketKeyRotation <= 0 {
		o.TicketKeyRotation = DefaultTicketKeyRotation
	}
	if o.ReloadInterval == 0 {
		o.ReloadInterval = DefaultReloadInterval
	}
	s := &TLSSettings{opts: o, log: o.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.outer = &tls.Config{
		MinVersion:             o.MinVersion,
		SessionTicketsDisabled: o.DisableSessionTickets,
		GetConfigForClient:     func(*tls.ClientHelloInfo) (*tls.Config, error) { return s.cur.Load(), nil },
	}
	if _, err := s.reload(true); err != nil {
		return nil, err
	}
	if !o.DisableSessionTickets {
		s.RotateTicketKeys()
	}
	return s, nil
}

// Intermediate returns settings serving one certificate, with the defaults (Mozilla's
// intermediate profile, HTTP/1.1 only), as the reference's TlsSettings::intermediate.
func Intermediate(certFile, keyFile string) (*TLSSettings, error) {
	return NewTLS(TLSOptions{Certs: []CertFiles{{CertFile: certFile, KeyFile: keyFile}}})
}

// Config returns the configuration for tls.Server. It stays valid across reloads: it hands
// each handshake the configuration current when the handshake starts.
func (s *TLSSettings) Config() *tls.Config { return s.outer }

// ServerHandshake runs the server handshake on c under HandshakeTimeout and ctx, and returns
// the TLS connection with its deadline cleared. On failure c is not closed.
func (s *TLSSettings) ServerHandshake(ctx context.Context, c net.Conn) (*tls.Conn, error) {
	tc := tls.Server(c, s.outer)
	ctx, cancel := context.WithTimeout(ctx, HandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// Reload reads the files again and, when any of them changed, swaps in the new
// configuration. On an error the current configuration stays in use.
func (s *TLSSettings) Reload() error {
	_, err := s.reload(true)
	return err
}

// RotateTicketKeys makes a new session ticket key: it encrypts new tickets, and the last
// TicketKeysKept-1 keys still decrypt older ones.
func (s *TLSSettings) RotateTicketKeys() {
	var k [32]byte
	rand.Read(k[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append([][32]byte{k}, s.keys...)
	if len(s.keys) > TicketKeysKept {
		s.keys = s.keys[:TicketKeysKept]
	}
	s.lastRotated = time.Now()
	s.outer.SetSessionTicketKeys(s.keys)
}

// Watch checks the files every ReloadInterval and rotates the ticket keys every
// TicketKeyRotation until ctx ends. Several Watch calls on the same settings may run at
// once; they share the work.
func (s *TLSSettings) Watch(ctx context.Context) {
	every := s.opts.ReloadInterval
	if every < 0 || (!s.opts.DisableSessionTickets && s.opts.TicketKeyRotation < every) {
		every = s.opts.TicketKeyRotation
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.tick(now)
		}
	}
}

// tick does what is due at now: a file check and a ticket key rotation.
func (s *TLSSettings) tick(now time.Time) {
	if s.opts.ReloadInterval > 0 {
		if changed, err := s.reload(false); err != nil {
			s.log.Error("TLS certificate reload failed; still serving the previous certificates", "error", err)
		} else if changed {
			s.log.Info("TLS certificates reloaded")
		}
	}
	if s.opts.DisableSessionTickets {
		return
	}
	s.mu.Lock()
	due := now.Sub(s.lastRotated) >= s.opts.TicketKeyRotation
	s.mu.Unlock()
	if due {
		s.RotateTicketKeys()
	}
}
