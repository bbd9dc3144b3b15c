package h1

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/internal/testbin"
	"github.com/pingora-go/pingora/perr"
)

// TestIdleWaiter: Wait returns at once when something waits to be read, after a wake-up when
// the next bytes or the peer's close arrive later (leaving the bytes unread), with the
// deadline's error when nothing comes, and when another goroutine moves the deadline into the
// past.
func TestIdleWaiter(t *testing.T) {
	far := func() time.Time { return time.Now().Add(10 * time.Second) }
	later := func(f func()) {
		go func() {
			time.Sleep(30 * time.Millisecond)
			f()
		}()
	}
	t.Run("data waiting", func(t *testing.T) {
		a, b := testbin.TCPPair(t)
		b.Write([]byte("GET"))
		time.Sleep(10 * time.Millisecond)
		if err := NewIdleWaiter(a).Wait(far()); err != nil {
			t.Fatal(err)
		}
		readBack(t, a, "GET")
	})
	t.Run("data later", func(t *testing.T) {
		a, b := testbin.TCPPair(t)
		w := NewIdleWaiter(a)
		for _, msg := range []string{"one", "two"} {
			later(func() { b.Write([]byte(msg)) })
			if err := w.Wait(far()); err != nil {
				t.Fatal(err)
			}
			readBack(t, a, msg)
		}
	})
	t.Run("close later", func(t *testing.T) {
		a, b := testbin.TCPPair(t)
		later(func() { b.Close() })
		if err := NewIdleWaiter(a).Wait(far()); err != nil {
			t.Fatal(err)
		}
		if n, err := a.Read(make([]byte, 8)); n != 0 || err == nil {
			t.Fatalf("read after the close: %d, %v", n, err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		a, _ := testbin.TCPPair(t)
		if err := NewIdleWaiter(a).Wait(time.Now().Add(30 * time.Millisecond)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("woken", func(t *testing.T) {
		a, _ := testbin.TCPPair(t)
		later(func() { a.SetReadDeadline(time.Unix(1, 0)) })
		if err := NewIdleWaiter(a).Wait(far()); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("err %v", err)
		}
	})
}

func readBack(t *testing.T, c net.Conn, want string) {
	t.Helper()
	buf := make([]byte, 16)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != want {
		t.Fatalf("read %q, %v; want %q", buf[:n], err, want)
	}
}

// deadlineCounter counts the read deadlines set on a connection.
type deadlineCounter struct {
	net.Conn
	n    int
	last time.Time
}

func (c *deadlineCounter) SetReadDeadline(t time.Time) error {
	c.n++
	c.last = t
	return c.Conn.SetReadDeadline(t)
}

// TestIdleDeadlineSetOnce: requests read with the same idle deadline set it on the connection
// once; a new one sets it again. A head that comes in two pieces gets HeadTimeout from its
// second read on.
func TestIdleDeadlineSetOnce(t *testing.T) {
	a, b := testbin.TCPPair(t)
	dc := &deadlineCounter{Conn: a}
	s := NewServerSession(dc, &ServerOptions{HeadTimeout: 7 * time.Second})
	req := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	until := time.Now().Add(10 * time.Second)
	for i, tc := range []struct {
		until  time.Time
		pieces int
		want   int
	}{{until, 1, 1}, {until, 1, 1}, {until, 1, 1}, {until.Add(time.Second), 1, 2}, {until.Add(time.Second), 2, 3}} {
		go func() {
			if tc.pieces == 1 {
				b.Write(req)
				return
			}
			b.Write(req[:10])
			time.Sleep(20 * time.Millisecond)
			b.Write(req[10:])
		}()
		s.SetIdleDeadline(tc.until)
		if err := s.ReadRequest(); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if dc.n != tc.want {
			t.Fatalf("request %d: %d read deadlines set, want %d", i, dc.n, tc.want)
		}
		if tc.pieces == 2 {
			if d := time.Until(dc.last); d < 6*time.Second || d > 7*time.Second {
				t.Fatalf("the second read of a head had a deadline %v away, want HeadTimeout", d)
			}
		}
		s.Finish()
	}
}

// TestServerHold: inside Hold, ReadRequest returns ErrWouldBlock until a whole head is there
// (one split over two wake-ups included); after a request is answered, f returns false
// without a read when the socket was drained, and a request the client sent while the one
// before was being served still wakes the wait. With nothing coming, the deadline of
// ArmIdleDeadline ends Hold with ErrIdle.
func TestServerHold(t *testing.T) {
	a, b := testbin.TCPPair(t)
	s := NewServerSession(a, nil)
	if !s.CanHold() {
		t.Skip("no raw socket access here")
	}
	req := "GET /%d HTTP/1.1\r\nHost: x\r\n\r\n"
	go func() {
		b.Write(fmt.Appendf(nil, req, 1)[:12])
		time.Sleep(20 * time.Millisecond)
		b.Write(fmt.Appendf(nil, req, 1)[12:])
		time.Sleep(20 * time.Millisecond)
		b.Write(fmt.Appendf(nil, req, 2)) // while /1 is being served
	}()
	var paths []string
	blocked := 0
	s.SetIdleDeadline(time.Now().Add(10 * time.Second))
	err := s.Hold(func() bool {
		for {
			err := s.ReadRequest()
			if err == ErrWouldBlock {
				blocked++
				return false
			}
			if err != nil {
				t.Error(err)
				return true
			}
			paths = append(paths, string(s.Req.Path()))
			time.Sleep(60 * time.Millisecond) // serving
			resp := header.NewResponse(200)
			resp.Append("Content-Length", "0")
			if err := s.WriteResponseHeader(resp); err != nil {
				t.Error(err)
				return true
			}
			if err := s.FinishResponse(nil); err != nil || !s.Finish() {
				t.Error("finish", err)
				return true
			}
			if len(paths) == 2 {
				return true
			}
			if err := s.ArmIdleDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Error(err)
				return true
			}
			if s.Drained() && s.Buffered() == 0 {
				return false
			}
		}
	})
	if err != nil || len(paths) != 2 || paths[0] != "/1" || paths[1] != "/2" {
		t.Fatalf("err %v, paths %q", err, paths)
	}
	if blocked == 0 {
		t.Fatal("ReadRequest never returned ErrWouldBlock for the split head")
	}
	// Waiting with nothing arrived, the session holds no read buffer.
	s.ArmIdleDeadline(time.Now().Add(30 * time.Millisecond))
	held := false
	err = s.Hold(func() bool {
		if s.ReadRequest() != ErrWouldBlock {
			return true
		}
		held = held || s.rd.buf != nil
		return false
	})
	if err != ErrIdle {
		t.Fatalf("Hold with nothing coming: %v, want ErrIdle", err)
	}
	if held {
		t.Fatal("the session kept a read buffer while it waited for a request")
	}
}

// TestServerHoldHeadTimeout: inside Hold, a head that comes a few bytes at a time keeps the
// deadline its first wait was given: a client that sends a byte now and then does not push it
// back, and Hold ends with the ReadTimedout error ReadRequest would give.
func TestServerHoldHeadTimeout(t *testing.T) {
	a, b := testbin.TCPPair(t)
	s := NewServerSession(a, &ServerOptions{HeadTimeout: 150 * time.Millisecond})
	if !s.CanHold() {
		t.Skip("no raw socket access here")
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for _, c := range []byte("GET / HTTP/1.1\r\nHost: slow\r\nX-Slow: " + strings.Repeat("a", 60)) {
			select {
			case <-stop:
				return
			case <-time.After(40 * time.Millisecond):
			}
			b.Write([]byte{c})
		}
	}()
	s.SetIdleDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	err := s.Hold(func() bool {
		err := s.ReadRequest()
		if err == ErrWouldBlock {
			return false
		}
		t.Errorf("ReadRequest: %v", err)
		return true
	})
	e, ok := perr.As(err)
	if !ok || e.Type != perr.ReadTimedout || e.Source != perr.Downstream {
		t.Fatalf("Hold: %v, want a downstream ReadTimedout", err)
	}
	// The client goes on sending for 3.5 s: a deadline pushed back by each byte would not
	// have passed before that.
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("the head timed out after %v", d)
	}
}
