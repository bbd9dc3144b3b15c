// Package server runs services: listening services that accept connections and hand them to
// an application such as the proxy, and background services. It owns the process lifecycle:
// configuration, daemon mode, signals, graceful and fast shutdown, and zero-downtime upgrade.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pingora-go/pingora/conf"
	"github.com/pingora-go/pingora/listeners"
)

// Service is something the server runs until shutdown.
type Service interface {
	// Name identifies the service in logs.
	Name() string
	// Start prepares the service (binds its listeners) and must return once it is ready or
	// has failed; ctx ends when the server stops starting services.
	Start(ctx context.Context) error
	// Serve runs the service until shutdown is cancelled (graceful shutdown begins), then
	// finishes in-flight work and returns. When kill is cancelled it must return promptly,
	// abandoning what is left.
	Serve(shutdown, kill context.Context) error
}

// Reopener is something that reopens its files, such as a LogFile; the server calls it on
// SIGUSR1 so that log rotation works.
type Reopener interface {
	Reopen() error
}

// Reloader is a service that reloads its files (TLS certificates) on SIGHUP.
// ListeningService is one.
type Reloader interface {
	Reload() error
}

// Options configures a Server. The zero value uses the defaults.
type Options struct {
	// Conf is the server configuration; nil uses conf.Default().
	Conf *conf.ServerConf
	// Upgrade takes the listening sockets over from a running instance (the -u flag).
	Upgrade bool
	// Daemon runs the server in the background (the -d flag); it ORs with Conf.Daemon.
	Daemon bool
	// GracePeriod, when not zero, overrides Conf.GracePeriodSeconds: how long a graceful
	// shutdown waits for in-flight work after it stops accepting. Negative means none.
	// Unlike the reference, the server exits as soon as every service has finished, without
	// sleeping the rest.
	GracePeriod time.Duration
	// UpgradeCloseTimeout is how long an old process keeps accepting after handing its
	// sockets over, so that the new one gets ready (the reference's CLOSE_TIMEOUT); 0 means
	// DefaultUpgradeCloseTimeout.
	UpgradeCloseTimeout time.Duration
	// Reopeners are reopened on SIGUSR1.
	Reopeners []Reopener
	// Logger receives lifecycle messages; nil uses slog.Default().
	Logger *slog.Logger
}

// Lifecycle constants of the reference.
const (
	// DefaultGracePeriod is the reference's grace_period_seconds.
	DefaultGracePeriod = conf.DefaultGracePeriodSeconds * time.Second
	// DefaultUpgradeCloseTimeout is the reference's CLOSE_TIMEOUT.
	DefaultUpgradeCloseTimeout = 5 * time.Second
)

// Server runs services and stops them on a signal or a call to Shutdown.
type Server struct {
	opts     Options
	conf     *conf.ServerConf
	grace    time.Duration
	services []Service
	log      *slog.Logger
	// upgrading is set while Upgrade starts a new instance, and stays set once it did.
	upgrading atomic.Bool

	mu        sync.Mutex // guards the fields below
	stopping  bool
	fast      bool
	shutdown  context.CancelFunc
	kill      context.CancelFunc
	inherited map[string]*os.File
}

// New returns a server with opts.
func New(opts Options) *Server {
	c := opts.Conf
	if c == nil {
		c = conf.Default()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.UpgradeCloseTimeout <= 0 {
		opts.UpgradeCloseTimeout = DefaultUpgradeCloseTimeout
	}
	grace := opts.GracePeriod
	switch {
	case grace < 0:
		grace = 0
	case grace == 0:
		grace = time.Duration(c.GracePeriodSeconds) * time.Second
	}
	return &Server{opts: opts, conf: c, grace: grace, log: opts.Logger}
}

// Conf returns the server's configuration.
func (s *Server) Conf() *conf.ServerConf { return s.conf }

// AddService adds a service to run. Services are started in the order they are added.
func (s *Server) AddService(svc Service) { s.services = append(s.services, svc) }

// Run runs the server as a process: in daemon mode it first detaches (the calling process
// starts a copy of itself in the background and returns nil once that copy is ready); with
// Upgrade it receives the listening sockets of the old instance; it starts every service,
// drops privileges to the configured user and group, and serves until a signal:
//
//   - SIGTERM: graceful shutdown (stop accepting, finish in-flight requests within the grace
//     period);
//   - SIGINT: fast shutdown (in-flight requests are cut);
//   - SIGQUIT: zero-downtime upgrade (hand the listening sockets to a new instance started
//     with -u, keep accepting for UpgradeCloseTimeout, then shut down gracefully);
//   - SIGUSR1: reopen the log files;
//   - SIGHUP: reload the services that are Reloaders (TLS certificates).
//
// It returns the first error of a service that failed.
func (s *Server) Run(ctx context.Context) error {
	if (s.opts.Daemon || s.conf.Daemon) && !IsDaemonChild() {
		return s.detach()
	}
	if s.conf.Threads > 0 {
		runtime.GOMAXPROCS(s.conf.Threads)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGHUP)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	defer close(done)
	go s.watchSignals(sigs, done)

	if s.opts.Upgrade {
		s.log.Info("waiting for the old process to hand over its listening sockets", "upgrade_sock", s.conf.UpgradeSock)
		fds, err := listeners.ReceiveFds(s.conf.UpgradeSock, s.conf.UpgradeSockConnectAcceptMaxRetries)
		if err != nil {
			return err
		}
		s.log.Info("received listening sockets", "count", len(fds))
		s.mu.Lock()
		s.inherited = fds
		s.mu.Unlock()
	}
	var pid *pidFile
	if IsDaemonChild() {
		var err error
		if pid, err = writePidFile(s.conf.PidFile); err != nil {
			return err
		}
		defer pid.remove()
		if wd := s.conf.WorkingDirectory; wd != "" {
			if err := os.Chdir(wd); err != nil {
				return fmt.Errorf("server: working_directory: %w", err)
			}
		}
	}
	return s.run(ctx, func() error {
		if err := dropPrivileges(s.conf.User, s.conf.Group, pid); err != nil {
			return err
		}
		notifyReady()
		return nil
	})
}

func (s *Server) watchSignals(sigs <-chan os.Signal, done <-chan struct{}) {
	for {
		var sig os.Signal
		select {
		case sig = <-sigs:
		case <-done:
			return
		}
		switch sig {
		case syscall.SIGINT:
			s.log.Info("SIGINT: fast shutdown")
			s.Shutdown(false)
		case syscall.SIGTERM:
			s.log.Info("SIGTERM: graceful shutdown", "grace_period", s.grace)
			s.Shutdown(true)
		case syscall.SIGQUIT:
			s.log.Info("SIGQUIT: graceful upgrade", "upgrade_sock", s.conf.UpgradeSock)
			go s.upgrade()
		case syscall.SIGUSR1:
			for _, r := range s.opts.Reopeners {
				if err := r.Reopen(); err != nil {
					s.log.Error("reopening log file", "error", err)
				}
			}
			s.log.Info("SIGUSR1: log files reopened")
		case syscall.SIGHUP:
			s.reload()
		}
	}
}

// reload reloads every service that is a Reloader.
func (s *Server) reload() {
	for _, svc := range s.services {
		if r, ok := svc.(Reloader); ok {
			if err := r.Reload(); err != nil {
				s.log.Error("SIGHUP: reload failed; the previous files stay in use", "service", svc.Name(), "error", err)
				continue
			}
			s.log.Info("SIGHUP: reloaded", "service", svc.Name())
		}
	}
}

// upgrade hands the listening sockets to the new process, keeps accepting for the close
// timeout, then shuts down gracefully. If the hand-over fails the server keeps serving: no
// one else would take the traffic.
func (s *Server) upgrade() {
	if err := s.handOver(); err != nil {
		s.log.Error("upgrade aborted; still serving", "error", err)
		return
	}
	s.drainAfterUpgrade()
}

// handOver sends the listening sockets to the process waiting on upgrade_sock.
func (s *Server) handOver() error {
	var keys []string
	var files []*os.File
	for _, svc := range s.services {
		if ls, ok := svc.(*ListeningService); ok {
			k, f, err := ls.listenerFiles()
			if err != nil {
				closeFiles(files)
				return fmt.Errorf("cannot hand over a listener of %s: %w", ls.Name(), err)
			}
			keys, files = append(keys, k...), append(files, f...)
		}
	}
	err := listeners.SendFds(s.conf.UpgradeSock, s.conf.UpgradeSockConnectAcceptMaxRetries, keys, files)
	closeFiles(files)
	if err != nil {
		return fmt.Errorf("the new process did not take the listening sockets: %w", err)
	}
	s.log.Info("listening sockets handed over", "count", len(files))
	return nil
}

// drainAfterUpgrade keeps accepting for the close timeout, then shuts down gracefully.
func (s *Server) drainAfterUpgrade() {
	s.log.Info("accepting until the close timeout", "close_timeout", s.opts.UpgradeCloseTimeout)
	time.Sleep(s.opts.UpgradeCloseTimeout)
	s.log.Info("upgrade: graceful shutdown", "grace_period", s.grace)
	s.Shutdown(true)
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// RunServices is Run without signal handling, daemon mode or privilege changes: it starts
// every service, serves until ctx ends or Shutdown is called, and returns when all services
// have stopped. Ending ctx is a graceful shutdown.
func (s *Server) RunServices(ctx context.Context) error { return s.run(ctx, nil) }

func (s *Server) run(ctx context.Context, started func() error) error {
	shutdownCtx, shutdown := context.WithCancel(context.Background())
	killCtx, kill := context.WithCancel(context.Background())
	s.mu.Lock()
	s.shutdown, s.kill = shutdown, kill
	stopping := s.stopping
	inherited := s.inherited
	s.inherited = nil
	s.mu.Unlock()
	defer kill()
	if stopping {
		closeFilesMap(inherited)
		return nil
	}

	// A shutdown during start (SIGTERM while a listener waits for its address) ends the start.
	startCtx, cancelStart := context.WithCancel(ctx)
	defer cancelStart()
	stopStart := context.AfterFunc(shutdownCtx, cancelStart)
	defer stopStart()
	for _, svc := range s.services {
		if ls, ok := svc.(*ListeningService); ok {
			ls.inherit(inherited)
			ls.applyConf(s.conf)
		}
		if bg, ok := svc.(*BackgroundService); ok && bg.logger == nil {
			bg.logger = s.log
		}
		if err := svc.Start(startCtx); err != nil {
			closeFilesMap(inherited)
			shutdown()
			return errors.Join(errors.New("server: starting "+svc.Name()), err)
		}
		s.log.Info("service started", "service", svc.Name())
	}
	for k := range inherited {
		s.log.Warn("inherited listening socket not configured here; closing it", "addr", k)
	}
	closeFilesMap(inherited)
	if started != nil {
		if err := started(); err != nil {
			shutdown()
			return err
		}
	}
	stop := context.AfterFunc(ctx, func() { s.Shutdown(true) })
	defer stop()

	errs := make(chan error, len(s.services))
	for _, svc := range s.services {
		go func() { errs <- s.serve(svc, shutdownCtx, killCtx) }()
	}
	var first error
	var deadline <-chan time.Time
	fast := false
	killed := killCtx.Done()
	for remaining := len(s.services); remaining > 0; {
		select {
		case err := <-errs:
			remaining--
			if err != nil && first == nil {
				first = err
				s.Shutdown(true)
			}
		case <-killed:
			killed = nil
			s.mu.Lock()
			timeout := time.Duration(s.conf.GracefulShutdownTimeoutSeconds) * time.Second
			if fast = s.fast; fast {
				timeout = 0
			}
			s.mu.Unlock()
			deadline = time.After(timeout)
		case <-deadline:
			if fast {
				// As the reference's runtimes, with a 0 s timeout: not waiting is the point.
				s.log.Info("fast shutdown: exiting without waiting for the services", "running", remaining)
			} else {
				s.log.Warn("services still running after the shutdown timeout; leaving them", "count", remaining)
			}
			return first
		}
	}
	s.log.Info("all services stopped")
	return first
}

// serve runs one service, turning a panic into an error.
func (s *Server) serve(svc Service, shutdown, kill context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("service panicked", "service", svc.Name(), "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("server: service %s panicked: %v", svc.Name(), r)
		}
	}()
	err = svc.Serve(shutdown, kill)
	if err != nil {
		s.log.Error("service failed", "service", svc.Name(), "error", err)
	}
	return err
}

func closeFilesMap(m map[string]*os.File) {
	for k, f := range m {
		f.Close()
		delete(m, k)
	}
}

// Shutdown stops the server. A graceful shutdown stops accepting and lets in-flight work finish
// within the grace period; a fast one cuts it at once.
func (s *Server) Shutdown(graceful bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown == nil {
		s.stopping = true
		return
	}
	s.shutdown()
	if !graceful {
		s.fast = true
		s.kill()
		return
	}
	if !s.stopping {
		s.stopping = true
		time.AfterFunc(s.grace, s.kill)
	}
}
