package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pingora-go/pingora/accesslog"
	"github.com/pingora-go/pingora/cache"
	"github.com/pingora-go/pingora/cache/storage/disk"
	"github.com/pingora-go/pingora/cache/storage/memory"
	"github.com/pingora-go/pingora/compression"
	"github.com/pingora-go/pingora/connector"
	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/listeners"
	"github.com/pingora-go/pingora/metrics"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/ratelimit"
	"github.com/pingora-go/pingora/server"
)

// DefaultReadyTimeout is the default of Options.ReadyTimeout.
const DefaultReadyTimeout = 5 * time.Second

// Options configures a Gateway beside its file.
type Options struct {
	// Connector makes the upstream connections of every listener and health check; nil makes
	// one with connector.Options{}.
	Connector *connector.Connector
	// MaxRetries caps the attempts of one request (the server key max_retries); 0 means
	// proxy.DefaultMaxRetries.
	MaxRetries int
	// Proxy is the base of every listener's proxy options (HTTP/1 and HTTP/2 limits and
	// timeouts, observers, modules); Connector, Logger, MaxRetries and H2C are set by the
	// gateway, and its compression module is added to Modules.
	Proxy proxy.Options
	// ReadyTimeout bounds the wait, at start and on each reload, for new upstream pools'
	// first discovery and round of health checks, so that their backends take requests
	// checked; 0 means DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Logger receives the error log and reload messages; nil uses slog.Default().
	Logger *slog.Logger
	// WatchInterval, when positive, makes the running gateway look at its file this often and
	// reload it when its modification time or size changed (besides SIGHUP). An invalid new
	// file is logged and the running configuration stays, as with SIGHUP.
	WatchInterval time.Duration
	// OnFixedChange, when set, is called after a reload applied what a running process can
	// change, with what it could not (listeners added, removed or changed; access_log;
	// metrics). The pingora binary starts a graceful upgrade from it (server.Upgrade), so
	// that a new process serves the whole new file. Without it such changes are logged as
	// needing a restart or an upgrade.
	OnFixedChange func(changes []string)
}

// Gateway runs a configuration: one proxy per listener routing by the current routes, the
// upstream pools' health checks, and reloads.
type Gateway struct {
	opts        Options
	log         *slog.Logger
	listeners   []Listener // as started; a reload cannot change them
	compression *proxy.CompressionBuilder
	access      *accesslog.Logger // nil without access_log
	accessFile  *server.LogFile
	accessCfg   *AccessLog
	metricsCfg  *Metrics
	cur         atomic.Pointer[state]

	mu       sync.Mutex // guards the fields below; serializes Start, Apply and Close
	started  bool
	closed   bool
	pools    map[string]*pool             // the pools of the current state, by name
	limiters map[string]*ratelimit.Filter // the rate limits of the current state, by limitKey
	caches   map[string]*namedCache       // the caches of the current state, by name
	redis    *redisConn                   // the Redis client of the current state, nil without redis
}

// namedCache is a running HTTP cache and the configuration it was made from.
type namedCache struct {
	c   *cache.Cache
	cfg Cache
}

// state is one configuration compiled: what a request uses from RequestFilter to Logging.
type state struct {
	cfg        *Config
	byListener map[string]*service // by listener address
	pools      map[string]*pool
	limiters   map[string]*ratelimit.Filter
	caches     map[string]*namedCache
	redis      *redisConn
}

// service is a compiled Service.
type service struct {
	name   string
	routes []*route
}

// route is a compiled Route.
type route struct {
	service, name string
	m             *matcher

	pool     *pool
	redirect *redirect
	respond  *respond
	files    *files

	cidrs               *cidrs
	auth                *basicAuth
	limit               *ratelimit.Filter
	rewrite             *rewriter
	reqEdits, respEdits *edits
	compression         *compression.Options // nil: bodies pass as they are
	accessLog           bool
	ws                  *wsPolicy
	cache               *cache.Cache // nil: the route caches nothing
}

// route returns the first route of the listener's service that matches req, or nil.
func (st *state) route(listener string, req *header.RequestHeader) *route {
	svc := st.byListener[listener]
	if svc == nil {
		return nil
	}
	host := hostOnly(req.Host())
	for _, r := range svc.routes {
		if r.m.match(req, host) {
			return r
		}
	}
	return nil
}

// New returns a gateway for c. It opens the access log and checks every file the
// configuration names; nothing runs until Start (or its Services run).
func New(c *Config, opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Connector == nil {
		opts.Connector = connector.New(connector.Options{})
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = DefaultReadyTimeout
	}
	g := &Gateway{
		opts:        opts,
		log:         opts.Logger,
		listeners:   c.Listeners,
		compression: proxy.NewCompression(compression.Options{DisableCompression: true, DisableDecompression: true}),
		accessCfg:   c.AccessLog,
		metricsCfg:  c.Metrics,
		pools:       map[string]*pool{},
		limiters:    map[string]*ratelimit.Filter{},
	}
	if _, err := g.tlsSettings(c); err != nil {
		return nil, err
	}
	st, err := g.build(c)
	if err != nil {
		return nil, err
	}
	if a := c.AccessLog; a != nil {
		w := io.Writer(os.Stderr)
		if a.Path != "-" {
			f, err := server.OpenLogFile(c.resolve(a.Path))
			if err != nil {
				return nil, Errors{c.errAt("access_log.path", "%v", err)}
			}
			g.accessFile, w = f, f
		}
		g.access = accesslog.New(slog.New(slog.NewJSONHandler(w, nil)))
	}
	g.pools, g.limiters, g.caches, g.redis = st.pools, st.limiters, st.caches, st.redis
	g.cur.Store(st)
	return g, nil
}

// Check builds c as New would, to find every problem -t reports, and releases it.
func Check(c *Config) error {
	g := &Gateway{opts: Options{Connector: connector.New(connector.Options{}), Logger: slog.Default()}, pools: map[string]*pool{}, limiters: map[string]*ratelimit.Filter{}}
	if _, err := g.tlsSettings(c); err != nil {
		return err
	}
	st, err := g.build(c)
	if st != nil && st.redis != nil {
		st.redis.client.Close()
	}
	return err
}

// build compiles c, reusing the running pools and rate limits whose configuration did not
// change. The caller holds g.mu (or owns g alone).
func (g *Gateway) build(c *Config) (*state, error) {
	var errs Errors
	st := &state{cfg: c, byListener: map[string]*service{}, pools: map[string]*pool{}, limiters: map[string]*ratelimit.Filter{},
		caches: map[string]*namedCache{}}
	rc, err := g.redisClient(c)
	if err != nil {
		errs = appendErr(errs, err)
	}
	st.redis = rc
	for _, name := range sortedNames(c.Caches) {
		nc, err := g.cache(c, name)
		if err != nil {
			errs = appendErr(errs, err)
			continue
		}
		st.caches[name] = nc
	}
	for _, name := range sortedNames(c.Upstreams) {
		u := c.Upstreams[name]
		if old := g.pools[name]; old != nil {
			if fp, err := fingerprint(c, u); err == nil && fp == old.fingerprint {
				st.pools[name] = old
				continue
			}
		}
		pl, err := newPool(c, name, u, g.opts.Connector, g.log)
		if err != nil {
			errs = appendErr(errs, err)
			continue
		}
		st.pools[name] = pl
	}
	services := map[string]*service{}
	for _, name := range sortedNames(c.Services) {
		svc := &service{name: name}
		for i, rc := range c.Services[name].Routes {
			r, err := g.buildRoute(c, st, name, i, rc)
			if err != nil {
				errs = appendErr(errs, err)
				continue
			}
			svc.routes = append(svc.routes, r)
		}
		services[name] = svc
	}
	for _, l := range c.Listeners {
		if a, err := listeners.ParseAddress(l.Address); err == nil {
			st.byListener[a.String()] = services[l.Service]
		}
	}
	// A running listener the new file no longer has keeps its service when that still exists.
	for _, l := range g.listeners {
		if a, err := listeners.ParseAddress(l.Address); err == nil {
			if _, ok := st.byListener[a.String()]; !ok {
				st.byListener[a.String()] = services[l.Service]
			}
		}
	}
	if len(errs) > 0 {
		g.discard(st)
		return nil, errs
	}
	return st, nil
}

func appendErr(errs Errors, err error) Errors {
	if es, ok := asErrors(err); ok {
		return append(errs, es...)
	}
	var e *Error
	if errors.As(err, &e) {
		return append(errs, e)
	}
	return append(errs, &Error{Msg: err.Error()})
}

// limitKey identifies a rate limit across reloads: the same route with the same quota keeps
// its counts.
func limitKey(svc, route string, rl *RateLimit, rc *redisConn) string {
	k := svc + "\x00" + route + "\x00" + strconv.FormatInt(rl.Requests, 10) + "\x00" + rl.Window.D().String() + "\x00" + rl.Key +
		"\x00" + rl.Scope + "\x00" + strconv.FormatInt(rl.Burst, 10) + "\x00" + rl.OnRedisError
	if rl.Scope == "cluster" && rc != nil {
		k += fmt.Sprintf("\x00%p", rc) // a new Redis client makes new limiters
	}
	return k
}

// cache returns the cache name of c: the running one when its configuration did not change
// (its stored responses stay), else a new one. A cache on disk whose directory a running cache
// uses keeps running as it is: two caches cannot share a directory, so a change of its bounds
// waits for a restart (and is logged).
func (g *Gateway) cache(c *Config, name string) (*namedCache, error) {
	cfg := *c.Caches[name]
	if old := g.caches[name]; old != nil && old.cfg == cfg {
		return old, nil
	}
	if cfg.Dir != "" {
		dir := c.resolve(cfg.Dir)
		for oname, old := range g.caches {
			if old.cfg.Dir != "" && c.resolve(old.cfg.Dir) == dir {
				g.log.Warn("the cache on disk keeps its settings until a restart", "cache", name, "was", oname, "dir", dir)
				return old, nil
			}
		}
		ds, err := disk.Open(disk.Config{Dir: dir, MaxBytes: int64(cfg.Disk)})
		if err != nil {
			return nil, c.errAt("caches."+name+".dir", "%v", err)
		}
		hc, err := cache.New(cache.Config{Storage: ds, MaxObjectSize: int64(cfg.MaxObjectSize)})
		if err != nil {
			return nil, c.errAt("caches."+name, "%v", err)
		}
		return &namedCache{c: hc, cfg: cfg}, nil
	}
	hc, err := cache.New(cache.Config{Storage: memory.New(memory.Config{MaxBytes: int64(cfg.Memory)}),
		MaxObjectSize: int64(cfg.MaxObjectSize)})
	if err != nil {
		return nil, c.errAt("caches."+name, "%v", err)
	}
	return &namedCache{c: hc, cfg: cfg}, nil
}

func (g *Gateway) buildRoute(c *Config, st *state, svc string, i int, rc *Route) (*route, error) {
	p := "services." + svc + ".routes[" + itoa(i) + "]"
	r := &route{
		service: svc, name: rc.Name, m: newMatcher(&rc.Match),
		cidrs: newCIDRs(rc.Allow, rc.Deny), rewrite: newRewriter(rc.Rewrite),
		reqEdits: newEdits(rc.RequestHeaders), respEdits: newEdits(rc.ResponseHeaders),
		compression: routeCompression(rc.Compression), ws: newWSPolicy(rc.WebSocket), accessLog: *rc.AccessLog,
	}
	if rc.BasicAuth != nil {
		r.auth = newBasicAuth(rc.BasicAuth)
	}
	if rl := rc.RateLimit; rl != nil {
		k := limitKey(svc, rc.Name, rl, st.redis)
		f := g.limiters[k]
		if f == nil {
			f = st.limiters[k]
		}
		if f == nil {
			f = &ratelimit.Filter{}
			if rl.Scope == "cluster" {
				f.Limiter = g.clusterLimiter(st.redis, svc, rc.Name, rl)
			} else {
				f.Limiter = ratelimit.NewLocal(rl.Requests, rl.Window.D())
			}
			if name := headerKey(rl.Key); name != "" {
				f.Key = ratelimit.Header(name)
			}
		}
		st.limiters[k] = f
		r.limit = f
	}
	switch {
	case rc.Upstream != "":
		r.pool = st.pools[rc.Upstream]
		if r.pool == nil {
			return nil, c.errAt(p+".upstream", "upstream %q could not be built", rc.Upstream)
		}
		if rc.Cache != "" {
			nc := st.caches[rc.Cache]
			if nc == nil {
				return nil, c.errAt(p+".cache", "cache %q could not be built", rc.Cache)
			}
			r.cache = nc.c
		}
	case rc.Redirect != nil:
		r.redirect = &redirect{status: rc.Redirect.Status, location: mustTemplate(rc.Redirect.Location)}
	case rc.Respond != nil:
		r.respond = &respond{status: rc.Respond.Status, headers: kvs(rc.Respond.Headers), body: mustTemplate(rc.Respond.Body)}
	case rc.Files != nil:
		root := c.resolve(rc.Files.Root)
		st, err := os.Stat(root)
		if err != nil {
			return nil, c.errAt(p+".files.root", "%v", err)
		}
		if !st.IsDir() {
			return nil, c.errAt(p+".files.root", "%s is not a directory", root)
		}
		r.files = &files{root: root, index: rc.Files.Index, cacheControl: rc.Files.CacheControl}
	}
	return r, nil
}

// discard stops the pools of st that are not running pools of g: those of a state that is
// not going to be used.
func (g *Gateway) discard(st *state) {
	for name, pl := range st.pools {
		if g.pools[name] != pl {
			pl.stop()
		}
	}
	if st.redis != nil && st.redis != g.redis {
		st.redis.client.Close()
	}
}

// resolve returns path relative to the configuration file's directory.
func (c *Config) resolve(path string) string {
	if path == "" || filepath.IsAbs(path) || path == "-" {
		return path
	}
	return filepath.Join(c.dir, path)
}

// tlsSettings loads the certificates of every TLS listener, indexed like c.Listeners.
func (g *Gateway) tlsSettings(c *Config) ([]*listeners.TLSSettings, error) {
	out := make([]*listeners.TLSSettings, len(c.Listeners))
	var errs Errors
	for i, l := range c.Listeners {
		if l.TLS == nil {
			continue
		}
		o := listeners.TLSOptions{ClientCAFile: c.resolve(l.TLS.ClientCA), Logger: g.log}
		if l.TLS.MinVersion == "1.3" {
			o.MinVersion = tls.VersionTLS13
		}
		if *l.H2 {
			o.EnableH2()
		}
		for _, cf := range l.TLS.Certificates {
			o.Certs = append(o.Certs, listeners.CertFiles{CertFile: c.resolve(cf.Cert), KeyFile: c.resolve(cf.Key)})
		}
		s, err := listeners.NewTLS(o)
		if err != nil {
			errs = append(errs, c.errAt("listeners["+itoa(i)+"].tls", "%v", err))
			continue
		}
		out[i] = s
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// Services returns the services to add to a server.Server, in order: the gateway itself
// (which starts the upstream pools before the listeners open, stops them at shutdown, and
// reloads the file on SIGHUP), one listening service per listener, and the metrics
// service when the file has one.
func (g *Gateway) Services() ([]server.Service, error) {
	c := g.cur.Load().cfg
	settings, err := g.tlsSettings(c)
	if err != nil {
		return nil, err
	}
	popts := g.opts.Proxy
	popts.Connector = g.opts.Connector
	popts.Logger = g.log
	if g.opts.MaxRetries > 0 {
		popts.MaxRetries = g.opts.MaxRetries
	}
	popts.Modules = append(append([]proxy.ModuleBuilder(nil), popts.Modules...), g.compression)
	out := []server.Service{&control{g: g}}
	var pm *metrics.Proxy
	if g.metricsCfg != nil {
		reg := metrics.NewRegistry()
		if pm, err = metrics.NewProxy(reg); err != nil {
			return nil, err
		}
		if err := metrics.WatchConnector(reg, g.opts.Connector); err != nil {
			return nil, err
		}
		popts.Observers = append(append([]proxy.Observer(nil), popts.Observers...), pm)
		msvc := metrics.NewService(reg)
		msvc.AddTCP(g.metricsCfg.Address)
		defer func() { out = append(out, msvc) }()
	}
	for i, l := range g.listeners {
		a, _ := listeners.ParseAddress(l.Address)
		o := popts
		o.H2C = l.H2C
		var sa server.App = proxy.New[Ctx](&app{g: g, addr: a.String()}, o)
		if pm != nil {
			sa = pm.CountConns(sa)
		}
		svc := server.NewListeningService(fmt.Sprintf("gateway listener %s", a), sa)
		svc.SetLogger(g.log)
		svc.Add(a, server.ListenOptions{TLS: settings[i], ProxyProtocol: l.ProxyProtocol.options()})
		out = append(out, svc)
	}
	return out, nil
}

// Reopeners returns the files to reopen on SIGUSR1: the access log.
func (g *Gateway) Reopeners() []server.Reopener {
	if g.accessFile == nil {
		return nil
	}
	return []server.Reopener{g.accessFile}
}

// Start starts the upstream pools' discovery and health checks and waits, at most
// ReadyTimeout, for their first round.
func (g *Gateway) Start() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started || g.closed {
		return
	}
	g.started = true
	var fresh []*pool
	for _, pl := range g.pools {
		pl.start()
		fresh = append(fresh, pl)
	}
	g.waitReady(fresh)
}

// waitReady waits for the pools' first round, at most ReadyTimeout in all.
func (g *Gateway) waitReady(pools []*pool) {
	deadline := time.NewTimer(g.opts.ReadyTimeout)
	defer deadline.Stop()
	for _, pl := range pools {
		select {
		case <-pl.ready():
		case <-deadline.C:
			g.log.Warn("upstream pools not ready in time; serving with the backends known so far", "timeout", g.opts.ReadyTimeout)
			return
		}
	}
}

// Close stops the upstream pools; requests in flight keep working with the backends' last
// known state. The access log stays open for them: the process's exit closes it.
func (g *Gateway) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	g.closed = true
	for _, pl := range g.pools {
		pl.stop()
	}
	if g.redis != nil {
		g.redis.client.Close()
	}
}

// Apply makes c the configuration of new requests. Requests in flight finish on the
// configuration they started with. Pools whose configuration did not change keep running
// with their health state; new pools are started and get ReadyTimeout to finish their first
// round of checks before the switch; pools no longer used are stopped after it. What a
// running process cannot change (listeners, access log and metrics) is logged as needing a
// restart or an upgrade, and the rest is applied. On an error the current configuration
// stays.
func (g *Gateway) Apply(c *Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errors.New("gateway: closed")
	}
	if _, err := g.tlsSettings(c); err != nil {
		return err
	}
	st, err := g.build(c)
	if err != nil {
		return err
	}
	var fresh []*pool
	for name, pl := range st.pools {
		if g.pools[name] != pl && g.started {
			pl.start()
			fresh = append(fresh, pl)
		}
	}
	g.waitReady(fresh)
	fixed := g.fixedChanges(c)
	if g.opts.OnFixedChange == nil {
		for _, msg := range fixed {
			g.log.Warn("configuration change needs a restart or a graceful upgrade (SIGQUIT and -u) to take effect; the running value stays", "change", msg)
		}
	} else if len(fixed) > 0 {
		g.log.Info("configuration change needs a new process; starting a graceful upgrade", "changes", fixed)
		defer func() { go g.opts.OnFixedChange(fixed) }()
	}
	old, oldRedis := g.pools, g.redis
	g.pools, g.limiters, g.caches, g.redis = st.pools, st.limiters, st.caches, st.redis
	g.cur.Store(st)
	if oldRedis != nil && oldRedis != st.redis {
		// Requests in flight may still ask the old server; its client closes once they are done.
		time.AfterFunc(time.Minute, func() { oldRedis.client.Close() })
	}
	for name, pl := range old {
		if st.pools[name] != pl {
			pl.stop()
		}
	}
	return nil
}

// Reload reads the file the current configuration came from and applies it. An invalid file
// is logged with its lines and reasons, and the current configuration stays.
func (g *Gateway) Reload() error {
	file := g.cur.Load().cfg.file
	if file == "" {
		return errors.New("gateway: the configuration did not come from a file")
	}
	c, err := Load(file)
	if err == nil {
		err = g.Apply(c)
	}
	if err != nil {
		g.log.Error("configuration reload failed; the previous configuration stays", "file", file, "error", err.Error())
		return err
	}
	g.log.Info("configuration reloaded", "file", file, "routes", g.cur.Load().routes(), "upstreams", len(c.Upstreams))
	return nil
}

// routes counts the routes of st.
func (st *state) routes() int {
	n := 0
	for _, s := range st.cfg.Services {
		n += len(s.Routes)
	}
	return n
}

// fixedChanges describes how c differs from the running configuration in what a reload
// cannot change.
func (g *Gateway) fixedChanges(c *Config) []string {
	var out []string
	running := map[string]Listener{}
	for _, l := range g.listeners {
		a, _ := listeners.ParseAddress(l.Address)
		running[a.String()] = l
	}
	seen := map[string]bool{}
	for _, l := range c.Listeners {
		a, _ := listeners.ParseAddress(l.Address)
		seen[a.String()] = true
		r, ok := running[a.String()]
		switch {
		case !ok:
			out = append(out, "new listener "+a.String()+" is not opened")
		case !reflect.DeepEqual(r.TLS, l.TLS) || !reflect.DeepEqual(r.H2, l.H2) || r.H2C != l.H2C ||
			!reflect.DeepEqual(r.ProxyProtocol, l.ProxyProtocol):
			out = append(out, "listener "+a.String()+": tls, h2, h2c and proxy_protocol keep their running values")
		}
	}
	for addr := range running {
		if !seen[addr] {
			out = append(out, "listener "+addr+" is no longer in the file but stays open")
		}
	}
	if !reflect.DeepEqual(g.accessCfg, c.AccessLog) {
		out = append(out, "access_log")
	}
	if !reflect.DeepEqual(g.metricsCfg, c.Metrics) {
		out = append(out, "metrics")
	}
	return out
}

// control is the gateway as a server service: it starts the pools before the listeners,
// stops them at shutdown, and reloads the file on SIGHUP.
type control struct{ g *Gateway }

// Name returns the service's name.
func (c *control) Name() string { return "gateway" }

// Start starts the upstream pools.
func (c *control) Start(context.Context) error {
	c.g.Start()
	return nil
}

// Serve watches the file when asked to (Options.WatchInterval) until the shutdown, then
// stops the pools.
func (c *control) Serve(shutdown, _ context.Context) error {
	if d := c.g.opts.WatchInterval; d > 0 {
		c.g.watch(shutdown, d)
	}
	<-shutdown.Done()
	c.g.Close()
	return nil
}

// watch reloads the configuration file whenever its modification time or size changes,
// looking every interval until ctx ends.
func (g *Gateway) watch(ctx context.Context, every time.Duration) {
	file := g.cur.Load().cfg.file
	if file == "" {
		return
	}
	stamp := func() (time.Time, int64) {
		if st, err := os.Stat(file); err == nil {
			return st.ModTime(), st.Size()
		}
		return time.Time{}, -1
	}
	mod, size := stamp()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m, s := stamp()
		if s < 0 || m.Equal(mod) && s == size {
			continue
		}
		mod, size = m, s
		g.log.Info("configuration file changed", "file", file)
		g.Reload() // logs its outcome
	}
}

// Reload reloads the configuration file.
func (c *control) Reload() error { return c.g.Reload() }
