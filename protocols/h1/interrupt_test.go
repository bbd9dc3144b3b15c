package h1

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/internal/testbin"
	"github.com/pingora-go/pingora/perr"
)

// TestResetSessionArmsNewConn: a session taken from a pool for another connection sets that
// connection's write deadline, whatever it had armed on the one before. A slow reader on the
// second connection must get a WriteTimedout, not a write that blocks for ever.
func TestResetSessionArmsNewConn(t *testing.T) {
	opts := &ServerOptions{WriteTimeout: 200 * time.Millisecond}
	ca, a := testbin.TCPPair(t)
	s := NewServerSession(a, opts)
	go io.Copy(io.Discard, ca)
	io.WriteString(ca, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if err := s.ReadRequest(); err != nil {
		t.Fatal(err)
	}
	resp := header.NewResponse(200)
	resp.Append("Content-Length", "2")
	if err := s.WriteResponseHeader(resp); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteBody([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishResponse(nil); err != nil {
		t.Fatal(err)
	}

	cb, b := testbin.TCPPair(t)
	s.Reset(b, opts, 0)
	io.WriteString(cb, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
	if err := s.ReadRequest(); err != nil {
		t.Fatal(err)
	}
	big := header.NewResponse(200)
	big.Append("Content-Length", itoa(1<<30))
	done := make(chan error, 1)
	go func() {
		if err := s.WriteResponseHeader(big); err != nil {
			done <- err
			return
		}
		piece := make([]byte, 1<<20)
		for range 1 << 10 {
			if err := s.WriteBody(piece); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if e, ok := perr.As(err); !ok || e.Type != perr.WriteTimedout {
			t.Fatalf("write to a client that does not read ended with %v, want WriteTimedout", err)
		}
	case <-time.After(5 * time.Second):
		b.Close()
		<-done
		t.Fatal("write to a client that does not read blocked: the recycled session set no write deadline")
	}
}

// TestInterruptReadRacesArming interrupts a body reader at random moments while it re-arms
// its short read deadline before nearly every read (the client sends a byte a millisecond):
// each time, the reader must fail with ReadTimedout at once, never read on.
func TestInterruptReadRacesArming(t *testing.T) {
	opts := &ServerOptions{ReadTimeout: 4 * time.Millisecond}
	for i := range 40 {
		cc, sc := testbin.TCPPair(t)
		s := NewServerSession(sc, opts)
		stopSend := make(chan struct{})
		go func() {
			io.WriteString(cc, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n")
			for {
				select {
				case <-stopSend:
					return
				case <-time.After(time.Millisecond):
					cc.Write([]byte{'x'})
				}
			}
		}()
		if err := s.ReadRequest(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			for {
				if _, err := s.ReadBody(); err != nil {
					done <- err
					return
				}
			}
		}()
		time.Sleep(time.Duration(i%8) * time.Millisecond / 2)
		s.InterruptRead()
		select {
		case err := <-done:
			if e, ok := perr.As(err); !ok || e.Type != perr.ReadTimedout {
				t.Fatalf("round %d: interrupted read ended with %v, want ReadTimedout", i, err)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("round %d: the reader read on after InterruptRead", i)
		}
		close(stopSend)
	}
}

// TestInterruptWrite: a request body writer blocked on an upstream that does not read fails
// at once with WriteTimedout.
func TestInterruptWrite(t *testing.T) {
	cc, sc := testbin.TCPPair(t)
	_ = sc // the upstream reads nothing
	c := NewClientSession(cc, &ClientOptions{WriteTimeout: time.Minute})
	req := header.NewRequest("POST", "/")
	req.Append("Host", "a")
	req.Append("Content-Length", itoa(1<<30))
	done := make(chan error, 1)
	go func() {
		if err := c.WriteRequestHeader(req); err != nil {
			done <- err
			return
		}
		piece := make([]byte, 1<<20)
		for range 1 << 10 {
			if err := c.WriteBody(piece); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	time.Sleep(100 * time.Millisecond)
	c.InterruptWrite()
	select {
	case err := <-done:
		if e, ok := perr.As(err); !ok || e.Type != perr.WriteTimedout {
			t.Fatalf("interrupted write ended with %v, want WriteTimedout", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the writer wrote on after InterruptWrite")
	}
}

// TestInterruptAfterCompleteEndsConnection: an interrupt that comes just after the body it
// was meant to stop had already been read (or written) whole, which happens when a response
// completes at the same moment, still ends the connection. Kept, the connection would fail
// its next request: the interrupt stays in force for every later read or write.
func TestInterruptAfterCompleteEndsConnection(t *testing.T) {
	t.Run("server", func(t *testing.T) {
		cc, sc := testbin.TCPPair(t)
		go io.Copy(io.Discard, cc)
		s := NewServerSession(sc, nil)
		io.WriteString(cc, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok")
		if err := s.ReadRequest(); err != nil {
			t.Fatal(err)
		}
		for !s.BodyDone() {
			if _, err := s.ReadBody(); err != nil && err != io.EOF {
				t.Fatal(err)
			}
		}
		s.InterruptRead()
		resp := header.NewResponse(204)
		if err := s.WriteResponseHeader(resp); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishResponse(nil); err != nil {
			t.Fatal(err)
		}
		if s.Finish() {
			t.Fatal("the connection was kept for another request after InterruptRead")
		}
	})
	t.Run("client", func(t *testing.T) {
		cc, sc := testbin.TCPPair(t)
		c := NewClientSession(cc, nil)
		req := header.NewRequest("POST", "/")
		req.Append("Host", "a")
		req.Append("Content-Length", "2")
		if err := c.WriteRequestHeader(req); err != nil {
			t.Fatal(err)
		}
		if err := c.WriteBody([]byte("ok")); err != nil {
			t.Fatal(err)
		}
		if err := c.FinishRequest(nil); err != nil {
			t.Fatal(err)
		}
		c.InterruptWrite()
		io.WriteString(sc, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		if err := c.ReadResponseHeader(); err != nil {
			t.Fatal(err)
		}
		for !c.BodyDone() {
			if _, err := c.ReadBody(); err != nil && err != io.EOF {
				t.Fatal(err)
			}
		}
		if c.Reusable() {
			t.Fatal("the connection was reusable after InterruptWrite")
		}
	})
}

// TestResetBetweenRequestsIsEOF: a client that resets its kept-alive connection between
// requests (wrk does, at its end) ends the connection as a close does: ReadRequest returns
// io.EOF, not an error the server would log as an invalid request; a reset in the middle of a
// body is a ConnectionClosed.
func TestResetBetweenRequestsIsEOF(t *testing.T) {
	cc, sc := testbin.TCPPair(t)
	s := NewServerSession(sc, nil)
	io.WriteString(cc, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab")
	if err := s.ReadRequest(); err != nil {
		t.Fatal(err)
	}
	cc.(*net.TCPConn).SetLinger(0)
	cc.Close()
	var err error
	for err == nil {
		_, err = s.ReadBody()
	}
	if e, ok := perr.As(err); !ok || e.Type != perr.ConnectionClosed {
		t.Fatalf("body cut by a reset: %v, want ConnectionClosed", err)
	}

	cc, sc = testbin.TCPPair(t)
	s = NewServerSession(sc, nil)
	cc.(*net.TCPConn).SetLinger(0)
	cc.Close()
	time.Sleep(20 * time.Millisecond) // the reset arrives
	if err := s.ReadRequest(); err != io.EOF {
		t.Fatalf("ReadRequest after a reset: %v, want io.EOF", err)
	}
}
