package server

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// HTTPApp serves a net/http Handler on the connections of a ListeningService: for small
// internal endpoints such as /metrics, where the proxy's own HTTP engine is not needed.
type HTTPApp struct {
	srv   *http.Server
	ln    *connQueue
	start sync.Once
}

// NewHTTPApp returns an App serving h, with read and idle timeouts.
func NewHTTPApp(h http.Handler) *HTTPApp {
	return &HTTPApp{
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second},
		ln: &connQueue{conns: make(chan net.Conn), closed: make(chan struct{})},
	}
}

// ServeConn hands c to the HTTP server and returns when c is closed. Once shutdown ends the
// server turns keep-alive off and closes idle connections; requests in flight finish, and so
// does the request of a connection accepted just as shutdown began: it is answered, with
// keep-alive off, not closed unanswered.
func (a *HTTPApp) ServeConn(shutdown context.Context, c net.Conn) {
	a.start.Do(func() { go a.srv.Serve(a.ln) })
	tc := &trackedConn{Conn: c, done: make(chan struct{})}
	if shutdown.Err() != nil {
		a.srv.SetKeepAlivesEnabled(false)
	}
	// The server's accept loop runs for as long as the process: the queue is never closed.
	a.ln.conns <- tc
	select {
	case <-tc.done:
	case <-shutdown.Done():
		a.srv.SetKeepAlivesEnabled(false)
		<-tc.done
	}
}

// connQueue is a net.Listener whose connections come from ServeConn.
type connQueue struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.closed:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.closed) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return &net.TCPAddr{} }

// trackedConn tells when the HTTP server has closed it.
type trackedConn struct {
	net.Conn
	once sync.Once
	done chan struct{}
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.done) })
	return err
}
