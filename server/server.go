// Package server runs services: listening services that accept connections and hand them to
// an application such as the proxy, and background services. It owns the process lifecycle:
// signals, graceful shutdown with a grace period, and fast shutdown.
package server

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
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

// Options configures a Server. The zero value uses the defaults.
type Options struct {
	// GracePeriod is how long a graceful shutdown waits for in-flight work after it stops
	// accepting (the reference's grace_period_seconds; default 300 s). Unlike the reference,
	// the server exits as soon as every service has finished, without sleeping the rest.
	GracePeriod time.Duration
	// Logger receives lifecycle messages; nil uses slog.Default().
	Logger *slog.Logger
}

// DefaultGracePeriod is the reference's grace period.
const DefaultGracePeriod = 300 * time.Second

// Server runs services and stops them on a signal or a call to Shutdown.
type Server struct {
	opts     Options
	services []Service

	mu       sync.Mutex // guards the fields below
	stopping bool
	shutdown context.CancelFunc
	kill     context.CancelFunc
}

// New returns a server with opts.
func New(opts Options) *Server {
	if opts.GracePeriod <= 0 {
		opts.GracePeriod = DefaultGracePeriod
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Server{opts: opts}
}

// AddService adds a service to run. Services are started in the order they are added.
func (s *Server) AddService(svc Service) { s.services = append(s.services, svc) }

// Run starts every service and blocks until they have all stopped. SIGTERM starts a graceful
// shutdown (stop accepting, finish in-flight requests within the grace period); SIGINT a fast
// one (in-flight requests are cut). It returns the first error of a service that failed.
func (s *Server) Run(ctx context.Context) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGINT {
				s.opts.Logger.Info("SIGINT: fast shutdown")
				s.Shutdown(false)
			} else {
				s.opts.Logger.Info("SIGTERM: graceful shutdown", "grace_period", s.opts.GracePeriod)
				s.Shutdown(true)
			}
		}
	}()
	return s.RunServices(ctx)
}

// RunServices is Run without signal handling: it starts every service, serves until ctx ends
// or Shutdown is called, and returns when all services have stopped. Ending ctx is a graceful
// shutdown.
func (s *Server) RunServices(ctx context.Context) error {
	shutdownCtx, shutdown := context.WithCancel(context.Background())
	killCtx, kill := context.WithCancel(context.Background())
	s.mu.Lock()
	s.shutdown, s.kill = shutdown, kill
	stopping := s.stopping
	s.mu.Unlock()
	defer kill()
	if stopping {
		return nil
	}

	for _, svc := range s.services {
		if err := svc.Start(ctx); err != nil {
			shutdown()
			return errors.Join(errors.New("server: starting "+svc.Name()), err)
		}
		s.opts.Logger.Info("service started", "service", svc.Name())
	}
	stop := context.AfterFunc(ctx, func() { s.Shutdown(true) })
	defer stop()

	errs := make(chan error, len(s.services))
	for _, svc := range s.services {
		go func() {
			err := svc.Serve(shutdownCtx, killCtx)
			if err != nil {
				s.opts.Logger.Error("service failed", "service", svc.Name(), "error", err)
			}
			errs <- err
		}()
	}
	var first error
	for range s.services {
		if err := <-errs; err != nil && first == nil {
			first = err
			s.Shutdown(true)
		}
	}
	s.opts.Logger.Info("all services stopped")
	return first
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
		s.kill()
		return
	}
	if !s.stopping {
		s.stopping = true
		kill := s.kill
		time.AfterFunc(s.opts.GracePeriod, kill)
	}
}
