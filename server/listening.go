package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/pingora-go/pingora/listeners"
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
	logger *slog.Logger

	mu    sync.Mutex // guards the fields below
	lns   []net.Listener
	conns map[net.Conn]struct{}

	wg sync.WaitGroup
}

// NewListeningService returns a service named name that gives its connections to app.
func NewListeningService(name string, app App) *ListeningService {
	return &ListeningService{name: name, app: app, logger: slog.Default(), conns: map[net.Conn]struct{}{}}
}

// Name returns the service's name.
func (s *ListeningService) Name() string { return s.name }

// SetLogger replaces the logger (slog.Default() unless set).
func (s *ListeningService) SetLogger(l *slog.Logger) { s.logger = l }

// AddTCP adds a TCP address, "host:port".
func (s *ListeningService) AddTCP(addr string) {
	s.addrs = append(s.addrs, listeners.Address{Network: "tcp", Addr: addr})
}

// AddUDS adds a unix domain socket path; perm 0 means listeners.DefaultUDSPerm.
func (s *ListeningService) AddUDS(path string, perm uint32) {
	s.addrs = append(s.addrs, listeners.Address{Network: "unix", Addr: path, Perm: fsMode(perm)})
}

// AddListener adds an already open listener, e.g. one inherited from another process.
func (s *ListeningService) AddListener(ln net.Listener) {
	s.mu.Lock()
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
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

// Start binds every configured address.
func (s *ListeningService) Start(ctx context.Context) error {
	for _, a := range s.addrs {
		ln, err := listeners.Listen(ctx, a)
		if err != nil {
			s.closeListeners()
			return err
		}
		s.logger.Info("listening", "service", s.name, "addr", ln.Addr().String())
		s.mu.Lock()
		s.lns = append(s.lns, ln)
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
	s.mu.Unlock()
	var acceptWG sync.WaitGroup
	for _, ln := range lns {
		acceptWG.Add(1)
		go func() {
			defer acceptWG.Done()
			s.acceptLoop(shutdown, ln)
		}()
	}
	<-shutdown.Done()
	s.closeListeners()
	acceptWG.Wait()

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
			c.Close()
		}
		s.mu.Unlock()
		s.logger.Warn("closing connections still in flight", "service", s.name, "count", n)
		<-done
	}
	return nil
}

func (s *ListeningService) acceptLoop(shutdown context.Context, ln net.Listener) {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if shutdown.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors or a transient error: back off as the reference does
			// (1 s for EMFILE), without spinning.
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				delay = time.Second
			} else if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay < time.Second {
				delay *= 2
			}
			s.logger.Error("accept failed", "service", s.name, "error", err, "retry_in", delay)
			t := time.NewTimer(delay)
			select {
			case <-shutdown.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		delay = 0
		s.track(c, true)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.track(c, false)
			s.app.ServeConn(shutdown, c)
		}()
	}
}

func (s *ListeningService) track(c net.Conn, add bool) {
	s.mu.Lock()
	if add {
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
	s.mu.Unlock()
}

func fsMode(perm uint32) os.FileMode { return os.FileMode(perm) }
