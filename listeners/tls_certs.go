package listeners

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// fileStamp is what a cheap check of a file sees: a change of either means the file may have
// changed.
type fileStamp struct {
	size    int64
	modTime time.Time
}

// racyWindow is how recent a file's modification time must be for its stamp not to be
// trusted: a file rewritten with the same size within the file system's timestamp
// granularity (a few milliseconds on Linux, up to 2 s on some file systems) keeps its stamp,
// so while any file is this recent each check reads the contents again.
const racyWindow = 3 * time.Second

// fileState is what the settings last read from their files.
type fileState struct {
	stamps []fileStamp
	// racy is set when a stamp was too recent to be trusted (see racyWindow).
	racy bool
	// sum is the hash of the contents last read and err the outcome of loading them, so that
	// the same broken contents are reported once by the watch.
	sum [sha256.Size]byte
	err error
}

// paths lists the files the settings read, in a fixed order.
func (s *TLSSettings) paths() []string {
	var ps []string
	for _, c := range s.opts.Certs {
		ps = append(ps, c.CertFile, c.KeyFile)
		if c.OCSPFile != "" {
			ps = append(ps, c.OCSPFile)
		}
	}
	if s.opts.ClientCAFile != "" {
		ps = append(ps, s.opts.ClientCAFile)
	}
	return ps
}

// reload reads the files when force is set, their stamps changed or were too recent to be
// trusted, and swaps in a new configuration when their contents changed. Contents that failed
// to load are not loaded again until they change; only force reports their error again, so
// that the watch reports a broken file once.
func (s *TLSSettings) reload(force bool) (changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	paths := s.paths()
	stamps := make([]fileStamp, len(paths))
	racy := false
	for i, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return false, err
		}
		stamps[i] = fileStamp{size: fi.Size(), modTime: fi.ModTime()}
		racy = racy || now.Sub(fi.ModTime()) < racyWindow
	}
	loaded := s.cur.Load() != nil
	if !force && loaded && !s.files.racy && slices.Equal(stamps, s.files.stamps) {
		return false, nil
	}
	data := make(map[string][]byte, len(paths))
	h := sha256.New()
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return false, err
		}
		data[p] = b
		h.Write(binary.AppendUvarint(nil, uint64(len(b))))
		h.Write(b)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	s.files.stamps, s.files.racy = stamps, racy
	if loaded && sum == s.files.sum {
		if force {
			return false, s.files.err
		}
		return false, nil
	}
	cfg, err := s.build(data)
	s.files.sum, s.files.err = sum, err
	if err != nil {
		return false, err
	}
	s.cur.Store(cfg)
	return true, nil
}

// build makes the per-handshake configuration from the files' contents.
func (s *TLSSettings) build(data map[string][]byte) (*tls.Config, error) {
	o := &s.opts
	store := &certStore{exact: map[string]*tls.Certificate{}, wild: map[string]*tls.Certificate{}}
	for _, cf := range o.Certs {
		c, err := tls.X509KeyPair(data[cf.CertFile], data[cf.KeyFile])
		if err != nil {
			return nil, fmt.Errorf("listeners: certificate %s with key %s: %w", cf.CertFile, cf.KeyFile, err)
		}
		if cf.OCSPFile != "" {
			if len(data[cf.OCSPFile]) == 0 {
				return nil, fmt.Errorf("listeners: OCSP response file %s is empty", cf.OCSPFile)
			}
			c.OCSPStaple = data[cf.OCSPFile]
		}
		store.add(&c)
	}
	cfg := &tls.Config{
		MinVersion:             o.MinVersion,
		CipherSuites:           intermediateSuites,
		NextProtos:             o.NextProtos,
		SessionTicketsDisabled: o.DisableSessionTickets,
		ClientAuth:             o.ClientAuth,
	}
	if o.ClientCAFile != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data[o.ClientCAFile]) {
			return nil, fmt.Errorf("listeners: client CA file %s holds no PEM certificate", o.ClientCAFile)
		}
		cfg.ClientCAs = pool
		if cfg.ClientAuth == tls.NoClientCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	dynamic := o.GetCertificate
	cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if dynamic != nil {
			if c, err := dynamic(hello); c != nil || err != nil {
				return c, err
			}
		}
		if c := store.get(hello.ServerName); c != nil {
			return c, nil
		}
		return nil, fmt.Errorf("listeners: no certificate for server name %q", hello.ServerName)
	}
	return cfg, nil
}

// certStore finds the certificate for a server name.
type certStore struct {
	def   *tls.Certificate
	exact map[string]*tls.Certificate
	// wild maps the parent domain of a wildcard name ("example.com" for "*.example.com").
	wild map[string]*tls.Certificate
}

// add indexes c by the DNS names of its leaf (its common name when it has none); the first
// certificate added to a name keeps it, and the first added overall is the default.
func (st *certStore) add(c *tls.Certificate) {
	if st.def == nil {
		st.def = c
	}
	names := c.Leaf.DNSNames
	if len(names) == 0 && c.Leaf.Subject.CommonName != "" {
		names = []string{c.Leaf.Subject.CommonName}
	}
	for _, n := range names {
		n = strings.ToLower(n)
		m, key := st.exact, n
		if rest, ok := strings.CutPrefix(n, "*."); ok {
			m, key = st.wild, rest
		}
		if _, dup := m[key]; !dup {
			m[key] = c
		}
	}
}

// get returns the certificate for name: an exact match, else a wildcard one level up, else
// the default.
func (st *certStore) get(name string) *tls.Certificate {
	if name == "" {
		return st.def
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if c, ok := st.exact[name]; ok {
		return c
	}
	if _, parent, ok := strings.Cut(name, "."); ok {
		if c, ok := st.wild[parent]; ok {
			return c
		}
	}
	return st.def
}
