package h1

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/pingora-go/pingora/internal/testbin"
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
