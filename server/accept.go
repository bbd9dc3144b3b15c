package server

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"sync"
	"syscall"
	"time"
)

// AcceptOptions protects the accept loop of a ListeningService against overload and against
// running out of file descriptors. The zero value uses the defaults.
type AcceptOptions struct {
	// MaxConns is the most downstream connections the service holds at once: connections in
	// their TLS handshake, being served, or idle between requests (parked ones included).
	// At the maximum the service stops accepting; new connections wait in the kernel's listen
	// queue and are accepted as others close, instead of being refused or failing with
	// EMFILE. 0 means DefaultMaxConns(); negative means no limit. With several listening
	// addresses the service may stop up to one connection per extra address short of the
	// maximum, since each accept loop reserves its slot before it waits for a connection.
	MaxConns int
	// MaxBackoff bounds the sleep after a failed accept (EMFILE, ENFILE, ENOBUFS...): the
	// first failure sleeps 10 ms, each further one twice as long, up to MaxBackoff. Existing
	// connections are served meanwhile. 0 means DefaultAcceptMaxBackoff.
	MaxBackoff time.Duration
	// LogInterval is the least time between two log lines about failed accepts, or about
	// accepting paused at MaxConns; the lines left out are counted in the next one. 0 means
	// DefaultAcceptLogInterval.
	LogInterval time.Duration
	// Tasks is the number of accept loops (goroutines calling Accept) per listening socket:
	// the server configuration's listener_tasks_per_fd. 0 means 1. More than one helps only
	// when accepting itself is the bottleneck.
	Tasks int
}

// Defaults of AcceptOptions.
const (
	// DefaultAcceptMaxBackoff is the reference's sleep after EMFILE.
	DefaultAcceptMaxBackoff = time.Second
	// DefaultAcceptLogInterval keeps a flood of failed accepts to one line each 10 s.
	DefaultAcceptLogInterval = 10 * time.Second
	// ReservedFiles is the number of file descriptors DefaultMaxConns keeps for the process's
	// own files: listening sockets, logs, configuration and certificates.
	ReservedFiles = 32
	// firstBackoff is the sleep after the first failed accept in a row.
	firstBackoff = 10 * time.Millisecond
)

// DefaultMaxConns returns the default of AcceptOptions.MaxConns: half of what is left of the
// soft RLIMIT_NOFILE after ReservedFiles, at least 1, so that a proxy keeps one descriptor
// for the upstream connection of each downstream one. It returns -1 (no limit) when the
// descriptor limit is unknown or infinite. The limit is read when a service starts serving:
// each service of a process gets this maximum, so set MaxConns when several busy services
// share one process.
func DefaultMaxConns() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == math.MaxUint64 {
		return -1
	}
	if rl.Cur > math.MaxInt32 {
		return math.MaxInt32 / 2
	}
	n := (int(rl.Cur) - ReservedFiles) / 2
	return max(n, 1)
}

// withDefaults fills the zero fields of o.
func (o AcceptOptions) withDefaults() AcceptOptions {
	if o.MaxConns == 0 {
		o.MaxConns = DefaultMaxConns()
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultAcceptMaxBackoff
	}
	if o.LogInterval <= 0 {
		o.LogInterval = DefaultAcceptLogInterval
	}
	if o.Tasks <= 0 {
		o.Tasks = 1
	}
	return o
}

// connGate counts the connections a service holds and makes accept loops wait while the
// count is at the maximum.
type connGate struct {
	max int // <= 0: no limit

	mu    sync.Mutex // guards the fields below
	n     int        // slots taken: connections held plus slots reserved by accept loops
	freed chan struct{}
}

// acquire takes a slot, waiting while none is free; it returns false if done ends first.
// paused is called once when acquire has to wait.
func (g *connGate) acquire(done <-chan struct{}, paused func()) bool {
	if g.max <= 0 {
		return true
	}
	for waited := false; ; waited = true {
		g.mu.Lock()
		if g.n < g.max {
			g.n++
			g.mu.Unlock()
			return true
		}
		if g.freed == nil {
			g.freed = make(chan struct{})
		}
		freed := g.freed
		g.mu.Unlock()
		if !waited {
			paused()
		}
		select {
		case <-freed:
		case <-done:
			return false
		}
	}
}

// release gives a slot back and wakes the accept loops waiting for one.
func (g *connGate) release() {
	if g.max <= 0 {
		return
	}
	g.mu.Lock()
	g.n--
	if g.freed != nil {
		close(g.freed)
		g.freed = nil
	}
	g.mu.Unlock()
}

// acceptLog rate-limits the log lines of one accept loop.
type acceptLog struct {
	logger   *slog.Logger
	service  string
	interval time.Duration

	last     time.Time // when the last line was written
	left     int       // events since then that were not logged
	failures int       // accepts failed in a row
	since    time.Time // when the current run of failures began
	told     bool      // a failure of the current run was logged
}

// event logs msg unless a line was written less than interval ago, in which case it only
// counts it. It reports whether it logged.
func (l *acceptLog) event(level slog.Level, msg string, attrs ...any) bool {
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < l.interval {
		l.left++
		return false
	}
	attrs = append(attrs, "service", l.service)
	if l.left > 0 {
		attrs = append(attrs, "not_logged", l.left)
	}
	l.logger.Log(context.Background(), level, msg, attrs...)
	l.last, l.left = now, 0
	return true
}

// failed records a failed accept and returns how long to sleep before the next one.
func (l *acceptLog) failed(err error, maxBackoff time.Duration) time.Duration {
	if l.failures == 0 {
		l.since = time.Now()
	}
	l.failures++
	delay := firstBackoff
	for i := 1; i < l.failures && delay < maxBackoff; i++ {
		delay *= 2
	}
	delay = min(delay, maxBackoff)
	msg := "accept failed; backing off"
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
		msg = "accept failed: out of file descriptors; backing off, existing connections are still served"
	}
	if l.event(slog.LevelError, msg, "error", err, "retry_in", delay, "failures_in_a_row", l.failures) {
		l.told = true
	}
	return delay
}

// succeeded ends a run of failed accepts. The recovery is logged when a failure of the run
// was, so that flapping accepts log no more than the rate limit lets failures log.
func (l *acceptLog) succeeded() {
	if l.failures == 0 {
		return
	}
	if l.told {
		l.logger.Info("accepting again", "service", l.service, "failed_accepts", l.failures,
			"for", time.Since(l.since).Round(time.Millisecond))
	}
	l.failures, l.told = 0, false
}

// acceptLoop accepts connections on ln until shutdown and serves each on its own goroutine.
// It waits for a free slot before each accept (MaxConns), and sleeps with a growing, bounded
// delay after a failed one.
func (s *ListeningService) acceptLoop(shutdown context.Context, ln net.Listener, gate *connGate, opts AcceptOptions, serve func(net.Conn)) {
	lg := &acceptLog{logger: s.logger, service: s.name, interval: opts.LogInterval}
	paused := func() {
		lg.event(slog.LevelWarn, "connection limit reached; accepting paused until connections close",
			"max_conns", gate.max, "addr", ln.Addr().String())
	}
	for {
		if !gate.acquire(shutdown.Done(), paused) {
			return
		}
		c, err := ln.Accept()
		if err != nil {
			gate.release()
			if shutdown.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			t := time.NewTimer(lg.failed(err, opts.MaxBackoff))
			select {
			case <-shutdown.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		lg.succeeded()
		serve(c)
	}
}
