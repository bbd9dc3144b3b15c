package faults

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
)

// ProxyOptions configures StartProxy. The zero value uses the defaults of every package.
type ProxyOptions struct {
	// Proxy configures the engine; its Logger is replaced by the log Proxy.Log returns, and
	// a Recorder is added to its Observers.
	Proxy proxy.Options
	// Accept configures the listening service's accept loop (connection limit).
	Accept server.AcceptOptions
}

// Proxy is a proxy under test, serving on 127.0.0.1.
type Proxy struct {
	// Addr is the proxy's "127.0.0.1:port".
	Addr string
	// Service is the listening service, for its connection count.
	Service *server.ListeningService
	// Recorder has seen every request the proxy finished.
	Recorder *Recorder
	log      *lockedBuffer
	stop     func() error
}

// Client returns a Client aimed at the proxy.
func (p *Proxy) Client() Client { return Client{Addr: p.Addr} }

// Log returns the proxy's error log so far, one text line per record.
func (p *Proxy) Log() string { return p.log.String() }

// StartProxy runs app behind a server on a free 127.0.0.1 port until the test ends (see
// NewProxy), and fails tb if the proxy cannot start or does not stop cleanly.
func StartProxy[C any](tb testing.TB, app proxy.ProxyHTTP[C], o ProxyOptions) *Proxy {
	tb.Helper()
	p, err := NewProxy(app, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Error(err)
		}
	})
	return p
}

// NewProxy runs app behind a server on a free 127.0.0.1 port, as a program built with
// proxy.New and server.Server runs it, until Close.
func NewProxy[C any](app proxy.ProxyHTTP[C], o ProxyOptions) (*Proxy, error) {
	buf := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rec := &Recorder{}
	opts := o.Proxy
	opts.Logger = logger
	opts.Observers = append(append([]proxy.Observer(nil), opts.Observers...), rec)
	engine := proxy.New(app, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	svc := server.NewListeningService("proxy under test", engine)
	svc.SetLogger(logger)
	svc.SetAcceptOptions(o.Accept)
	svc.AddListener(ln)
	srv := server.New(server.Options{GracePeriod: time.Second, Logger: logger})
	srv.AddService(svc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.RunServices(ctx) }()
	p := &Proxy{Addr: ln.Addr().String(), Service: svc, Recorder: rec, log: buf}
	p.stop = func() error {
		cancel()
		defer engine.Connector().Close()
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("faults: proxy server: %w", err)
			}
			return nil
		case <-time.After(DefaultBound):
			return fmt.Errorf("faults: the proxy server did not stop within %v", DefaultBound)
		}
	}
	return p, nil
}

// Close shuts the proxy down gracefully (one second of grace period) and reports an error
// of its server, or its failure to stop within DefaultBound.
func (p *Proxy) Close() error { return p.stop() }

// Record is what the engine told the observers about one finished request.
type Record struct {
	// Status is the response status sent downstream, 0 for none.
	Status int
	// ResponseStarted says a response head had been sent when the request ended.
	ResponseStarted bool
	// BodyBytesSent counts the response body bytes sent downstream.
	BodyBytesSent int64
	// Err is the error that ended the request, nil for success.
	Err error
}

// Recorder is a proxy.Observer that keeps a Record of every finished request.
type Recorder struct {
	mu      sync.Mutex // guards the fields below
	records []Record
	added   chan struct{}
}

// UpstreamConnected implements proxy.Observer.
func (r *Recorder) UpstreamConnected(*proxy.Session, bool, time.Duration) {}

// RequestDone implements proxy.Observer.
func (r *Recorder) RequestDone(s *proxy.Session) {
	r.mu.Lock()
	r.records = append(r.records, Record{Status: s.ResponseStatus(), ResponseStarted: s.ResponseStarted(),
		BodyBytesSent: s.BodyBytesSent(), Err: s.Err()})
	if r.added != nil {
		close(r.added)
		r.added = nil
	}
	r.mu.Unlock()
}

// Records returns the records so far.
func (r *Recorder) Records() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Record(nil), r.records...)
}

// Wait waits up to bound for at least n records and returns the records then.
func (r *Recorder) Wait(n int, bound time.Duration) []Record {
	t := time.NewTimer(bound)
	defer t.Stop()
	for {
		r.mu.Lock()
		if len(r.records) >= n {
			out := append([]Record(nil), r.records...)
			r.mu.Unlock()
			return out
		}
		if r.added == nil {
			r.added = make(chan struct{})
		}
		added := r.added
		r.mu.Unlock()
		select {
		case <-added:
		case <-t.C:
			return r.Records()
		}
	}
}

// lockedBuffer is a log destination safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Clone(l.b.String())
}
