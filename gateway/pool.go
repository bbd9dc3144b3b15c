package gateway

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pingora-go/pingora/connector"
	"github.com/pingora-go/pingora/lb"
	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/ratelimit"
	"github.com/pingora-go/pingora/upstream"
)

// NoBackend is the error type of a request whose pool has no backend at all (a DNS pool
// before its first answer): 503.
var NoBackend = perr.HTTPStatus(503)

// maxCachedPeers caps the peers a pool keeps built; a DNS pool whose answers keep changing
// builds the others per request.
const maxCachedPeers = 4096

// stopWait bounds the wait for a pool's health checker to stop.
const stopWait = 5 * time.Second

// pool is a running upstream: its load balancer, the service that discovers and checks its
// backends, and the peers requests connect to.
type pool struct {
	name        string
	fingerprint string // equal fingerprints are the same pool: a reload keeps it running
	lb          *lb.LoadBalancer
	svc         *lb.Service
	template    upstream.Peer // TLS, SNI and Options of every backend's peer
	defaultSNI  bool          // SNI is each backend's host name
	retries     int
	hashKey     ratelimit.KeyFunc // nil for algorithms without a key
	leased      bool              // least_inflight: requests hold a Lease
	maxIter     int

	peers  sync.Map // backend address -> *upstream.Peer
	npeers atomic.Int32

	cancel context.CancelFunc // stops the service; nil until start
	done   chan struct{}      // closed when the service returned
}

// newPool builds the pool u (named name, at path p of c) without starting it.
func newPool(c *Config, name string, u *Upstream, conn *connector.Connector, logger *slog.Logger) (*pool, error) {
	p := "upstreams." + name
	fp, err := fingerprint(c, u)
	if err != nil {
		return nil, c.errAt(p, "%v", err)
	}
	pl := &pool{name: name, fingerprint: fp, retries: *u.Retries, leased: u.Algorithm == "least_inflight", maxIter: 16}
	o := upstream.Options{
		ConnectTimeout: u.ConnectTimeout.D(),
		ReadTimeout:    u.ReadTimeout.D(),
		WriteTimeout:   u.WriteTimeout.D(),
		IdleTimeout:    u.IdleTimeout.D(),
	}
	if u.HTTP2 {
		o.ALPN = upstream.H2
		if u.TLS != nil {
			o.ALPN = upstream.H2H1
		}
	}
	pl.template = upstream.Peer{Network: upstream.NetworkTCP}
	if t := u.TLS; t != nil {
		pl.template.TLS = true
		pl.template.SNI = t.SNI
		if t.SNI == "" && u.DNS != nil && !u.DNS.SRV {
			pl.template.SNI = u.DNS.Name
		}
		pl.defaultSNI = pl.template.SNI == ""
		o.SkipVerifyCert = !*t.Verify
		o.SkipVerifyHostname = !*t.Verify
		if t.CAFile != "" {
			pem, err := os.ReadFile(c.resolve(t.CAFile))
			if err != nil {
				return nil, c.errAt(p+".tls.ca_file", "%v", err)
			}
			o.CA = x509.NewCertPool()
			if !o.CA.AppendCertsFromPEM(pem) {
				return nil, c.errAt(p+".tls.ca_file", "no PEM certificate in %s", t.CAFile)
			}
		}
	}
	pl.template.Options = o

	if hashed(u.Algorithm) {
		switch k := u.HashKey; {
		case k == "client_ip":
			pl.hashKey = ratelimit.ClientIP
		case k == "path":
			pl.hashKey = func(s *proxy.Session, dst []byte) []byte { return append(dst, s.Req().Path()...) }
		default:
			pl.hashKey = ratelimit.Header(headerKey(k))
		}
	}

	var backends []lb.Backend
	for _, b := range u.Backends {
		backends = append(backends, lb.Backend{Addr: b.Address, Weight: b.Weight})
	}
	bs, err := lb.NewBackends(backends...)
	if err != nil {
		return nil, c.errAt(p+".backends", "%v", err)
	}
	pl.lb, err = lb.NewFromBackends(Algorithms[u.Algorithm], bs)
	if err != nil {
		return nil, c.errAt(p, "%v", err)
	}
	if n := 2 * len(backends); n > pl.maxIter {
		pl.maxIter = n
	}
	cfg := lb.ServiceConfig{Name: "upstream " + name, Logger: logger}
	if d := u.DNS; d != nil {
		cfg.Discovery = &lb.DNS{Name: d.Name, Port: d.Port, SRV: d.SRV, Network: d.Network, Resolver: d.Resolver,
			Timeout: d.Timeout.D(), MinTTL: d.MinTTL.D(), MaxTTL: d.MaxTTL.D()}
		pl.maxIter = 64
	}
	if h := u.HealthCheck; h != nil {
		tmpl := pl.template
		if pl.defaultSNI {
			tmpl.SNI = "" // each backend's own name is not known to the checker: no verification
		}
		switch h.Type {
		case "tcp":
			cfg.Health.Checker = &lb.TCPCheck{Peer: &tmpl, Timeout: h.Timeout.D(), Connector: conn}
		case "http":
			hc := &lb.HTTPCheck{Peer: &tmpl, Connector: conn, Timeout: h.Timeout.D(), Path: h.Path, Host: h.Host, Status: h.Status}
			if h.Body != "" {
				hc.Body = []byte(h.Body)
			}
			cfg.Health.Checker = hc
		}
		cfg.Health.Interval = h.Interval.D()
		cfg.Health.Healthy, cfg.Health.Unhealthy = h.Healthy, h.Unhealthy
	}
	pl.svc, err = lb.NewService(pl.lb, cfg)
	if err != nil {
		return nil, c.errAt(p, "%v", err)
	}
	return pl, nil
}

// fingerprint identifies the pool's configuration, and the CA file's contents it reads.
func fingerprint(c *Config, u *Upstream) (string, error) {
	b, err := json.Marshal(u)
	if err != nil {
		return "", err
	}
	fp := string(b)
	if u.TLS != nil && u.TLS.CAFile != "" {
		if st, err := os.Stat(c.resolve(u.TLS.CAFile)); err == nil {
			fp += fmt.Sprintf("|%d|%d", st.Size(), st.ModTime().UnixNano())
		}
	}
	return fp, nil
}

// start runs the pool's discovery and health checks until stop.
func (pl *pool) start() {
	ctx, cancel := context.WithCancel(context.Background())
	pl.cancel, pl.done = cancel, make(chan struct{})
	go func() {
		defer close(pl.done)
		pl.svc.Run(ctx)
	}()
}

// ready returns a channel closed after the first discovery and round of health checks.
func (pl *pool) ready() <-chan struct{} { return pl.svc.Ready() }

// stop ends the pool's background work and waits for it, at most stopWait. Requests still
// using the pool keep working with the backends' last known state.
func (pl *pool) stop() {
	if pl.cancel == nil {
		return
	}
	pl.cancel()
	select {
	case <-pl.done:
	case <-time.After(stopWait):
	}
}

// pick chooses a backend for the request in s, avoiding the addresses in tried while
// another ready backend exists. When no backend is ready (every health check fails) it
// picks one all the same, as nginx does when every server is marked down: a request that
// may succeed beats a certain 503. For least_inflight the returned lease counts the request
// until released.
func (pl *pool) pick(s *proxy.Session, tried []string) (lb.Backend, lb.Lease, bool) {
	var key []byte
	if pl.hashKey != nil {
		var buf [128]byte
		key = pl.hashKey(s, buf[:0])
	}
	b, l, ok := pl.pickReady(key, tried)
	if !ok {
		b, ok = pl.lb.SelectWith(key, pl.maxIter, func(*lb.Backend, bool) bool { return true })
	}
	return b, l, ok
}

func (pl *pool) pickReady(key []byte, tried []string) (lb.Backend, lb.Lease, bool) {
	if pl.leased {
		l, ok := pl.lb.Acquire(key, pl.maxIter)
		return l.Backend, l, ok
	}
	if len(tried) > 0 {
		b, ok := pl.lb.SelectWith(key, pl.maxIter, func(b *lb.Backend, ready bool) bool {
			if !ready {
				return false
			}
			for _, t := range tried {
				if t == b.Addr {
					return false
				}
			}
			return true
		})
		if ok {
			return b, lb.Lease{}, true
		}
	}
	b, ok := pl.lb.Select(key, pl.maxIter)
	return b, lb.Lease{}, ok
}

// peer returns the peer of the backend at addr.
func (pl *pool) peer(addr string) (*upstream.Peer, error) {
	if p, ok := pl.peers.Load(addr); ok {
		return p.(*upstream.Peer), nil
	}
	p := pl.template
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		p.Network, p.Addr = upstream.NetworkUnix, path
	} else {
		np, err := upstream.NewPeer(addr, p.TLS, p.SNI)
		if err != nil {
			return nil, err
		}
		p.Addr = np.Addr
		if pl.defaultSNI {
			if h, _, err := net.SplitHostPort(addr); err == nil {
				if _, err := netip.ParseAddr(h); err != nil {
					p.SNI = h
				}
			}
		}
	}
	if pl.npeers.Load() < maxCachedPeers {
		if prev, loaded := pl.peers.LoadOrStore(addr, &p); loaded {
			return prev.(*upstream.Peer), nil
		}
		pl.npeers.Add(1)
	}
	return &p, nil
}
