package connector

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/protocols/h1"
	"github.com/pingora-go/pingora/upstream"
)

// TestPooledDeadlinePassesWhileIdle: a pooled connection keeps the deadlines armed for its
// last exchange (park does not clear them); when they pass while it sits idle, the connection
// is still handed out on reuse, and its next exchange gets fresh deadlines and succeeds.
func TestPooledDeadlinePassesWhileIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	c := New(Options{})
	defer c.Close()
	peer, err := upstream.NewPeer(ln.Addr().String(), false, "")
	if err != nil {
		t.Fatal(err)
	}
	// Deadlines lie at most 5/4 of these ahead: 50 ms.
	peer.Options.ReadTimeout, peer.Options.WriteTimeout = 40*time.Millisecond, 40*time.Millisecond

	exchange := func() (reused bool, local string) {
		t.Helper()
		s, reused, err := c.Get(context.Background(), peer)
		if err != nil {
			t.Fatal(err)
		}
		req := header.NewRequest("GET", "/")
		req.Set("Host", "origin")
		if err := s.WriteRequestHeader(req); err != nil {
			t.Fatal(err)
		}
		if err := s.ReadResponseHeader(); err != nil {
			t.Fatalf("response head (reused %v): %v", reused, err)
		}
		if body := readBody(t, s); body != "ok" {
			t.Fatalf("body %q", body)
		}
		local = s.Conn().LocalAddr().String()
		c.Release(peer, s)
		return reused, local
	}
	_, first := exchange()
	for i := range 3 {
		time.Sleep(150 * time.Millisecond) // past every deadline the last exchange armed
		reused, local := exchange()
		if !reused || local != first {
			t.Fatalf("exchange %d after an idle spell: reused %v on %s, want the pooled connection %s", i+2, reused, local, first)
		}
	}
}

// readBody reads the response body of s to its end.
func readBody(t *testing.T, s *h1.ClientSession) string {
	t.Helper()
	var body []byte
	for {
		b, err := s.ReadBody()
		body = append(body, b...)
		if err == io.EOF {
			return string(body)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
