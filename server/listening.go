package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/pingora-go/pingora/conf"
	"github.com/pingora-go/pingora/listeners"
	"github.com/pingora-go/pingora/protocols/proxyproto"
)

// App serves the connections a ListeningService accepts.
type App interface {
	// ServeConn serves one connection until it is done and closes it. shutdown ends when a
	// graceful shutdown begins: the app stops reusing the connection after the request in
	// flight, and wakes it if it sits idle between requests.
	ServeConn(shutdown context.Context, conn net.Conn)
}

// ListeningService accepts connections on its addresses and runs an App goroutine for each.
type ListeningService struct {
	name   string
	app    App
	addrs  []listeners.Address
	opts   []ListenOptions // the options of each of addrs
	logger *slog.Logger
	accept AcceptOptions
	gate   *connGate // set by Serve

	mu        sync.Mutex // guards the fields below
	lns       []net.Listener
	keys      []string        // the configured address of each listener; "" for AddListener's
	lnOpts    []ListenOptions // the options of each listener
	conns     map[net.Conn]connRefs
	inherited map[string]*os.File

	wg sync.WaitGroup
}

// NewListeningService returns a service named name that gives its connections to app.
func NewListeningService(name string, app App) *ListeningService {
	return &ListeningService{name: name, app: app, logger: slog.Default(), conns: map[net.Conn]connRefs{}}
}

// connRefs counts the holders of a connection: ServeConn and an App's Tracker.
type connRefs struct {
	n    int32
	slot bool // the connection holds a slot of the service's connection gate
}

// SetAcceptOptions sets the accept loop's protections (connection limit, backoff after a
// failed accept). Call it before the server runs; fields left zero take the server
// configuration's max_downstream_connections and accept_max_backoff_ms, then the defaults.
func (s *ListeningService) SetAcceptOptions(o AcceptOptions) { s.accept = o }

// AcceptOptions returns the options SetAcceptOptions set.
func (s *ListeningService) AcceptOptions() AcceptOptions { return s.accept }

// applyConf fills the accept options left zero from the server configuration.
func (s *ListeningService) applyConf(c *conf.ServerConf) {
	if s.accept.MaxConns == 0 {
		s.accept.MaxConns = c.MaxDownstreamConnections
	}
	if s.accept.MaxBackoff == 0 {
		s.accept.MaxBackoff = time.Duration(c.AcceptMaxBackoffMs) * time.Millisecond
	}
	if s.accept.Tasks == 0 {
		s.accept.Tasks = c.ListenerTasksPerFD
	}
}

// Conns returns the number of downstream connections the service holds: in a TLS handshake,
// being served, or idle between requests.
func (s *ListeningService) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Name returns the service's name.
func (s *ListeningService) Name() string { return s.name }

// SetLogger replaces the logger (slog.Default() unless set).
func (s *ListeningService) SetLogger(l *slog.Logger) { s.logger = l }

// ListenOptions are the settings of one address of a ListeningService.
type ListenOptions struct {
	// TLS, when set, terminates TLS on the address's connections (see AddTLS).
	TLS *listeners.TLSSettings
	// ProxyProtocol, when set, makes every connection start with a PROXY protocol header
	// (version 1 or 2, as a load balancer in front sends it), read before anything else,
	// the TLS handshake included. The App then sees the client's address the header carries
	// as the connection's RemoteAddr (see package proxyproto). A connection without a valid
	// header within the options' timeout, or from outside their Allow list, is closed and
	// logged.
	ProxyProtocol *proxyproto.Options
}

// Add adds an address with its options.
func (s *ListeningService) Add(a listeners.Address, o ListenOptions) {
	s.addrs = append(s.addrs, a)
	s.opts = append(s.opts, o)
}

// AddTCP adds a TCP address, "host:port".
func (s *ListeningService) AddTCP(addr string) {
	s.Add(listeners.Address{Network: "tcp", Addr: addr}, ListenOptions{})
}

// AddTLS adds a TCP address, "host:port", whose connections speak TLS with settings. The
// handshake runs in the connection's goroutine, bounded by listeners.HandshakeTimeout; the
// App receives the connection as a *tls.Conn after a successful handshake. While the service
// serves, it watches the settings' files for changes (see listeners.TLSSettings.Watch).
func (s *ListeningService) AddTLS(addr string, settings *listeners.TLSSettings) {
	s.Add(listeners.Address{Network: "tcp", Addr: addr}, ListenOptions{TLS: settings})
}

// AddUDS adds a unix domain socket path; perm 0 means listeners.DefaultUDSPerm.
func (s *ListeningService) AddUDS(path string, perm uint32) {
	s.Add(listeners.Address{Network: "unix", Addr: path, Perm: fsMode(perm)}, ListenOptions{})
}

// AddListener adds an already open listener, e.g. one inherited from another process.
func (s *ListeningService) AddListener(ln net.Listener) {
	s.mu.Lock()
	s.lns = append(s.lns, ln)
	s.keys = append(s.keys, "")
	s.lnOpts = append(s.lnOpts, ListenOptions{})
	s.mu.Unlock()
}

// settings returns the distinct TLS settings of the service's addresses.
func (s *ListeningService) settings() []*listeners.TLSSettings {
	var out []*listeners.TLSSettings
	for _, o := range s.opts {
		if t := o.TLS; t != nil && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// Reload reloads the certificates of the service's TLS addresses; the server calls it on
// SIGHUP. A settings object that fails to load keeps its previous certificates.
func (s *ListeningService) Reload() error {
	var errs []error
	for _, t := range s.settings() {
		errs = append(errs, t.Reload())
	}
	return errors.Join(errs...)
}

// inherit offers the sockets received from an old process; Start takes those whose address it
// is configured with out of fds.
func (s *ListeningService) inherit(fds map[string]*os.File) {
	s.mu.Lock()
	s.inherited = fds
	s.mu.Unlock()
}

// listenerFiles returns the configured addresses and duplicates of their sockets, for a
// hand-over to a new process.
func (s *ListeningService) listenerFiles() ([]string, []*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	var files []*os.File
	for i, ln := range s.lns {
		if s.keys[i] == "" {
			continue
		}
		f, err := listeners.File(ln)
		if err != nil {
			closeFiles(files)
			return nil, nil, err
		}
		keys, files = append(keys, s.keys[i]), append(files, f)
	}
	return keys, files, nil
}

// Addrs returns the addresses the service listens on, once started.
func (s *ListeningService) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, len(s.lns))
	for i, ln := range s.lns {
		out[i] = ln.Addr()
	}
	return out
}

// Start binds every configured address, or adopts the socket an old process handed over for
// it during an upgrade.
func (s *ListeningService) Start(ctx context.Context) error {
	s.mu.Lock()
	inherited := s.inherited
	s.inherited = nil
	s.mu.Unlock()
	for i, a := range s.addrs {
		var ln net.Listener
		var err error
		how := "listening"
		if f, ok := inherited[a.String()]; ok {
			delete(inherited, a.String())
			ln, err = listeners.FromFile(f, a)
			how = "listening on an inherited socket"
		} else {
			ln, err = listeners.Listen(ctx, a)
		}
		if err != nil {
			s.closeListeners()
			return err
		}
		s.logger.Info(how, "service", s.name, "addr", ln.Addr().String(), "tls", s.opts[i].TLS != nil,
			"proxy_protocol", s.opts[i].ProxyProtocol != nil)
		s.mu.Lock()
		s.lns = append(s.lns, ln)
		s.keys = append(s.keys, a.String())
		s.lnOpts = append(s.lnOpts, s.opts[i])
		s.mu.Unlock()
	}
	return nil
}

func (s *ListeningService) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ln := range s.lns {
		ln.Close()
	}
}

// Serve accepts until shutdown, then waits for the connections in flight; when kill ends first
// it closes them.
func (s *ListeningService) Serve(shutdown, kill context.Context) error {
	s.mu.Lock()
	lns := append([]net.Listener(nil), s.lns...)
	lnOpts := append([]ListenOptions(nil), s.lnOpts...)
	s.mu.Unlock()
	// Connections see the service as their Tracker through the context they are served with.
	shutdown = context.WithValue(shutdown, trackerKey{}, Tracker(s))
	opts := s.accept.withDefaults()
	gate := &connGate{max: opts.MaxConns}
	s.mu.Lock()
	s.gate = gate
	s.mu.Unlock()
	if opts.MaxConns > 0 {
		s.logger.Info("connection limit", "service", s.name, "max_conns", opts.MaxConns)
	}
	var acceptWG sync.WaitGroup
	watchCtx, stopWatch := context.WithCancel(context.Background())
	for _, t := range s.settings() {
		acceptWG.Add(1)
		go func() {
			defer acceptWG.Done()
			t.Watch(watchCtx)
		}()
	}
	for i, ln := range lns {
		for range opts.Tasks {
			acceptWG.Add(1)
			go func() {
				defer acceptWG.Done()
				s.acceptLoop(shutdown, ln, gate, opts, func(c net.Conn) {
					s.track(c, true, true)
					s.wg.Add(1)
					go s.serveConn(shutdown, c, lnOpts[i])
				})
			}()
		}
	}
	<-shutdown.Done()
	s.closeListeners()
	stopWatch()
	acceptWG.Wait()
	s.logger.Info("stopped accepting", "service", s.name)

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-kill.Done():
		s.mu.Lock()
		n := len(s.conns)
		for c := range s.conns {
			// Each in its own goroutine: closing a connection whose app holds its read side
			// (h1.ServerSession.Hold, while it serves a request) waits until the app lets go,
			// and must not hold up the others, nor s.mu.
			go c.Close()
		}
		s.mu.Unlock()
		if n > 0 {
			// A fast shutdown comes here at once, often before the connections' goroutines
			// have noticed: none left open is nothing to warn about.
			s.logger.Warn("closing connections still in flight", "service", s.name, "count", n)
		}
		<-done
	}
	return nil
}

// serveConn runs the app on c, after reading its PROXY header and running a TLS handshake
// as o says; a panic closes the connection and is logged, and the other connections go on.
func (s *ListeningService) serveConn(shutdown context.Context, c net.Conn, o ListenOptions) {
	defer s.wg.Done()
	tracked := c
	defer func() { s.track(tracked, false, false) }()
	defer func() {
		if r := recover(); r != nil {
			c.Close()
			s.logPanic(c, r)
		}
	}()
	if o.ProxyProtocol != nil || o.TLS != nil {
		if c, tracked = s.unwrap(shutdown, c, o); c == nil {
			return
		}
	}
	s.app.ServeConn(shutdown, c)
}

// unwrap reads the PROXY protocol header and does the TLS handshake that o asks for on c. It
// returns the connection to serve, or nil when c was closed, and the one the service tracks
// it by (the PROXY protocol's wrapper, which a kill closes, or c). It and logPanic are
// functions of their own, not inlined, so that their stack space is not in serveConn's
// frame, which lies above every request of the connection.
//
//go:noinline
func (s *ListeningService) unwrap(shutdown context.Context, c net.Conn, o ListenOptions) (serve, tracked net.Conn) {
	if o.ProxyProtocol != nil {
		pc, _, err := proxyproto.Read(c, *o.ProxyProtocol)
		if err != nil {
			c.Close()
			s.logger.Info("PROXY protocol header refused; connection closed", "service", s.name,
				"peer", c.RemoteAddr().String(), "error", err)
			return nil, c
		}
		// A kill closes the connection by the key the App tracks it with when it parks it.
		s.rekey(c, pc)
		c = pc
	}
	if o.TLS != nil {
		// A graceful shutdown lets a handshake in progress finish; a kill closes c.
		tc, err := o.TLS.ServerHandshake(context.WithoutCancel(shutdown), c)
		if err != nil {
			c.Close()
			s.logger.Info("TLS handshake failed", "service", s.name, "client", c.RemoteAddr().String(), "error", err)
			return nil, c
		}
		return tc, c
	}
	return c, c
}

//go:noinline
func (s *ListeningService) logPanic(c net.Conn, r any) {
	s.logger.Error("panic serving a connection", "service", s.name, "client", c.RemoteAddr().String(),
		"panic", r, "stack", string(debug.Stack()))
}

// rekey counts the connection old under the key nw from now on: the same connection seen
// through a wrapper.
func (s *ListeningService) rekey(old, nw net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.conns[old]; ok {
		delete(s.conns, old)
		s.conns[nw] = r
	}
}

// track counts c in or out of the connections a kill closes; a connection can be counted
// twice while an App hands it from ServeConn to a parked state (see Tracker). A connection
// added with slot holds the slot its accept loop took until its last holder lets it go.
func (s *ListeningService) track(c net.Conn, add, slot bool) {
	s.mu.Lock()
	r := s.conns[c]
	if add {
		r.n++
		r.slot = r.slot || slot
		s.conns[c] = r
		s.mu.Unlock()
		return
	}
	if r.n--; r.n > 0 {
		s.conns[c] = r
		s.mu.Unlock()
		return
	}
	delete(s.conns, c)
	gate := s.gate
	s.mu.Unlock()
	if r.slot && gate != nil {
		gate.release()
	}
}

func fsMode(perm uint32) os.FileMode { return os.FileMode(perm) }

// Tracker lets an App keep a connection counted by its service after ServeConn returned, for
// a connection it parks while idle and serves again later: a graceful shutdown waits for
// tracked connections as for those in ServeConn, and a kill closes them.
type Tracker interface {
	// Track counts c as in flight until Untrack. Call it before ServeConn returns.
	Track(c net.Conn)
	// Untrack ends what Track started.
	Untrack(c net.Conn)
}

type trackerKey struct{}

// TrackerFrom returns the Tracker of the service whose ServeConn received ctx, or nil.
func TrackerFrom(ctx context.Context) Tracker {
	t, _ := ctx.Value(trackerKey{}).(Tracker)
	return t
}

// Track implements Tracker.
func (s *ListeningService) Track(c net.Conn) {
	s.wg.Add(1)
	s.track(c, true, false)
}

// Untrack implements Tracker.
func (s *ListeningService) Untrack(c net.Conn) {
	s.track(c, false, false)
	s.wg.Done()
}
