package rawio

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pingora-go/pingora/internal/testbin"
)

// waitBound bounds every wait of these tests.
const waitBound = 10 * time.Second

func pair(t *testing.T) (a, b net.Conn, ra, rb *Conn) {
	t.Helper()
	a, b = testbin.TCPPair(t)
	ra, rb = New(a), New(b)
	if ra == nil || rb == nil {
		t.Skip("raw socket I/O is not supported here")
	}
	return a, b, ra, rb
}

// TestStream sends 8 MiB, far more than the socket buffers hold, from one raw Conn to
// another in pieces of varied sizes: the writer waits for room, the reader for data, and the
// bytes arrive intact; then the writer's close reads as io.EOF.
func TestStream(t *testing.T) {
	a, _, ra, rb := pair(t)
	data := make([]byte, 8<<20)
	rand.Read(data)
	done := make(chan error, 1)
	go func() {
		for off, size := 0, 1; off < len(data); size = size*7%(3*MaxChunk) + 1 {
			end := min(off+size, len(data))
			n, err := ra.Write(data[off:end])
			if err != nil || n != end-off {
				done <- err
				return
			}
			off = end
		}
		done <- a.Close()
	}()
	got := readToEOF(t, rb, 40<<10)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, not the %d sent", len(got), len(data))
	}
}

// readToEOF reads r in pieces of at most size bytes until io.EOF; a read that returns nothing
// and no error fails the test.
func readToEOF(t *testing.T, r *Conn, size int) []byte {
	t.Helper()
	var got bytes.Buffer
	buf := make([]byte, size)
	for {
		n, err := r.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			return got.Bytes()
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatal("a read returned nothing and no error")
		}
	}
}

// TestWritev sends 8 MiB as pairs of pieces with Writev, some pairs with an empty side and
// some with a side larger than MaxChunk, to a reader that drains slowly enough for the writer
// to meet full socket buffers mid-pair: the bytes arrive intact and in order, and each Writev
// reports the whole pair written.
func TestWritev(t *testing.T) {
	a, _, ra, rb := pair(t)
	data := make([]byte, 8<<20)
	rand.Read(data)
	done := make(chan error, 1)
	go func() {
		sizes := []int{0, 1, 250, 4 << 10, 16 << 10, MaxChunk + 3, 2*MaxChunk + 1}
		for off, i := 0, 0; off < len(data); i++ {
			na := min(sizes[i%len(sizes)], len(data)-off)
			nb := min(sizes[(i*3+1)%len(sizes)], len(data)-off-na)
			n, err := ra.Writev(data[off:off+na], data[off+na:off+na+nb])
			if err != nil || n != na+nb {
				done <- fmt.Errorf("pair %d: wrote %d of %d: %v", i, n, na+nb, err)
				return
			}
			off += na + nb
		}
		done <- a.Close()
	}()
	got := readToEOF(t, rb, 8<<10)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, not the %d sent, or not in order", len(got), len(data))
	}
}

// TestDeadlines: a read with nothing to read and a write to a peer that reads nothing end
// with os.ErrDeadlineExceeded at their deadlines, as through net.Conn; a deadline in the past
// fails the next call at once.
func TestDeadlines(t *testing.T) {
	a, b, ra, rb := pair(t)
	b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	if _, err := rb.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v", err)
	}
	if d := time.Since(start); d > waitBound {
		t.Fatalf("read deadline took %v", d)
	}
	a.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := ra.Write(make([]byte, 64<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) || n == 64<<20 {
		t.Fatalf("write past its deadline: %d bytes, %v", n, err)
	}
	b.SetReadDeadline(time.Unix(1, 0))
	if _, err := rb.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with a past deadline: %v", err)
	}
}

// TestWakeups: a blocked read wakes up when another goroutine moves the deadline into the
// past (how sessions interrupt a body reader) and when it closes the connection.
func TestWakeups(t *testing.T) {
	for _, how := range []string{"deadline", "close"} {
		t.Run(how, func(t *testing.T) {
			_, b, _, rb := pair(t)
			done := make(chan error, 1)
			go func() {
				_, err := rb.Read(make([]byte, 10))
				done <- err
			}()
			time.Sleep(20 * time.Millisecond)
			want := os.ErrDeadlineExceeded
			if how == "close" {
				want = net.ErrClosed
				b.Close()
			} else {
				b.SetReadDeadline(time.Unix(1, 0))
			}
			select {
			case err := <-done:
				if !errors.Is(err, want) {
					t.Fatalf("woken read: %v, want %v", err, want)
				}
			case <-time.After(waitBound):
				t.Fatal("the read was not woken")
			}
		})
	}
}

// TestReset: a peer that resets the connection makes reads fail with ECONNRESET in an
// *os.SyscallError, as net.Conn reports it.
func TestReset(t *testing.T) {
	a, _, _, rb := pair(t)
	a.(*net.TCPConn).SetLinger(0)
	a.Close()
	_, err := rb.Read(make([]byte, 10))
	var se *os.SyscallError
	if !errors.As(err, &se) || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after a reset: %v", err)
	}
}

// TestWriteAfterReset: writes to a peer that reset the connection fail with EPIPE or
// ECONNRESET in an *os.SyscallError (no SIGPIPE ends the process), for one buffer (sendto) and
// for two (writev).
func TestWriteAfterReset(t *testing.T) {
	for _, two := range []bool{false, true} {
		t.Run(fmt.Sprint("two buffers ", two), func(t *testing.T) {
			a, b, ra, _ := pair(t)
			b.(*net.TCPConn).SetLinger(0)
			b.Close()
			var err error
			for i := 0; i < 100 && err == nil; i++ {
				if two {
					_, err = ra.Writev([]byte("head "), []byte("body"))
				} else {
					_, err = ra.Write([]byte("some bytes"))
				}
				if err == nil {
					time.Sleep(time.Millisecond) // the reset has not arrived yet
				}
			}
			var se *os.SyscallError
			if !errors.As(err, &se) || !(errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)) {
				t.Fatalf("write after a reset: %v", err)
			}
			a.Close()
		})
	}
}

// TestWhichConns: plain TCP and unix sockets are taken; TLS and in-memory connections are not,
// and a Conn pointed at one by Reset refuses it.
func TestWhichConns(t *testing.T) {
	a, _, ra, _ := pair(t)
	if New(tls.Client(a, &tls.Config{})) != nil {
		t.Error("a TLS connection was taken")
	}
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if ra.Reset(p1) {
		t.Error("a pipe was taken")
	}
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	u, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if !ra.Reset(u) {
		t.Fatal("a unix socket was refused")
	}
	got, err := io.ReadAll(readerFunc(ra.Read))
	if err != nil || string(got) != "hi" {
		t.Fatalf("read %q, %v over a unix socket", got, err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// TestNoAllocs: reads, writes and paired writes allocate nothing.
func TestNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on system calls")
	}
	_, _, ra, rb := pair(t)
	msg, buf := []byte("ping"), make([]byte, 16)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := ra.Write(msg[:2]); err != nil {
			t.Fatal(err)
		}
		if _, err := ra.Writev(msg[2:3], msg[3:]); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(msg); {
			n, err := rb.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per write and read", allocs)
	}
}

// TestWriteReadNoAllocs: a checked request and the read of its answer allocate nothing.
func TestWriteReadNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on system calls")
	}
	_, b, ra, rb := pair(t)
	go func() {
		// Echo until a closes.
		ebuf := make([]byte, 16)
		for {
			n, err := rb.Read(ebuf)
			if err != nil {
				return
			}
			if _, err := rb.Write(ebuf[:n]); err != nil {
				return
			}
		}
	}()
	defer b.Close()
	msg, buf := []byte("ping"), make([]byte, 16)
	allocs := testing.AllocsPerRun(200, func() {
		if !ra.Quiet() {
			t.Fatal("not quiet")
		}
		n, werr, rerr := ra.WriteRead(true, msg, buf)
		if werr != nil || rerr != nil {
			t.Fatal(werr, rerr)
		}
		for n < len(msg) {
			m, err := ra.Read(buf[n:])
			if err != nil {
				t.Fatal(err)
			}
			n += m
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per request and answer", allocs)
	}
}

// TestWriteRead: the message goes out whole, also when it is far larger than the socket
// buffers (the write waits for room inside the read's wait), and the read returns the
// answer, which the peer sends only after it has read the whole message.
func TestWriteRead(t *testing.T) {
	for _, size := range []int{1, 300, 8 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			_, b, ra, _ := pair(t)
			msg := make([]byte, size)
			rand.Read(msg)
			got := make(chan []byte, 1)
			go func() {
				buf := make([]byte, size)
				_, err := io.ReadFull(b, buf)
				if err == nil {
					time.Sleep(20 * time.Millisecond) // a's wait is well under way
					_, err = b.Write([]byte("answer"))
				}
				if err != nil {
					t.Error(err)
				}
				got <- buf
			}()
			buf := make([]byte, 64)
			n, werr, rerr := ra.WriteRead(true, msg, buf)
			if werr != nil || rerr != nil {
				t.Fatal(werr, rerr)
			}
			if string(buf[:n]) != "answer" {
				t.Fatalf("read %q", buf[:n])
			}
			if !bytes.Equal(<-got, msg) {
				t.Fatal("the peer did not get the message intact")
			}
		})
	}
}

// TestWriteReadCheck: with check, a peer that sent something unasked, closed its end (a
// half-close: it still reads) or reset the connection is found before anything is written, at
// once (no wait for an answer that will not come), and the peer receives nothing. Without
// check, the message goes out to the half-closed peer and the wait lasts until the deadline:
// the end of the stream arrived before the wait began and wakes nothing, which is why a
// pooled connection is checked in the same wait.
func TestWriteReadCheck(t *testing.T) {
	for _, how := range []string{"data", "half-close", "reset"} {
		t.Run(how, func(t *testing.T) {
			a, b, ra, _ := pair(t)
			switch how {
			case "data":
				b.Write([]byte("HTTP/1.1 200 OK\r\n\r\n"))
			case "half-close":
				b.(*net.TCPConn).CloseWrite()
			case "reset":
				b.(*net.TCPConn).SetLinger(0)
				b.Close()
			}
			time.Sleep(20 * time.Millisecond)
			if ra.Quiet() {
				t.Fatal("Quiet reports true")
			}
			a.SetReadDeadline(time.Now().Add(waitBound))
			start := time.Now()
			_, werr, rerr := ra.WriteRead(true, []byte("GET / HTTP/1.1\r\n\r\n"), make([]byte, 64))
			if !errors.Is(werr, ErrNotQuiet) || rerr != nil {
				t.Fatalf("werr %v, rerr %v; want ErrNotQuiet", werr, rerr)
			}
			if d := time.Since(start); d > waitBound/2 {
				t.Fatalf("the check took %v", d)
			}
			if how == "reset" {
				return
			}
			b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if n, _ := b.Read(make([]byte, 64)); n != 0 {
				t.Fatalf("the peer received %d bytes", n)
			}
			if how == "half-close" {
				a.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				_, werr, rerr = ra.WriteRead(false, []byte("x"), make([]byte, 64))
				if werr != nil || !errors.Is(rerr, os.ErrDeadlineExceeded) {
					t.Fatalf("unchecked: werr %v, rerr %v; want the deadline", werr, rerr)
				}
			}
		})
	}
}

// TestWriteReadDeadlines: a read deadline that passes during the wait for the answer ends
// it with os.ErrDeadlineExceeded as the read's error; one already past writes nothing and is
// the write's error.
func TestWriteReadDeadlines(t *testing.T) {
	a, b, ra, _ := pair(t)
	a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, werr, rerr := ra.WriteRead(true, []byte("ping"), make([]byte, 16))
	if werr != nil || !errors.Is(rerr, os.ErrDeadlineExceeded) {
		t.Fatalf("werr %v, rerr %v", werr, rerr)
	}
	buf := make([]byte, 16)
	b.SetReadDeadline(time.Now().Add(waitBound))
	if n, err := b.Read(buf); err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}
	a.SetReadDeadline(time.Unix(1, 0))
	_, werr, rerr = ra.WriteRead(true, []byte("pong"), make([]byte, 16))
	if !errors.Is(werr, os.ErrDeadlineExceeded) || rerr != nil {
		t.Fatalf("past deadline: werr %v, rerr %v", werr, rerr)
	}
	b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, _ := b.Read(buf); n != 0 {
		t.Fatalf("the peer received %q", buf[:n])
	}
}

// TestHold: inside Hold, reads do not wait (ErrWouldBlock); bytes that arrive while the
// function runs, after its last read, wake the wait though no read came after them; the
// function's true ends Hold with nil, a passing deadline and a close end it with their errors.
func TestHold(t *testing.T) {
	t.Run("serve", func(t *testing.T) {
		a, b, ra, _ := pair(t)
		a.SetReadDeadline(time.Now().Add(waitBound))
		buf := make([]byte, 16)
		var got []string
		go func() {
			// The second message goes out while the first is being "served".
			b.Write([]byte("one"))
			time.Sleep(20 * time.Millisecond)
			b.Write([]byte("two"))
		}()
		start := time.Now()
		err := ra.Hold(func() bool {
			n, err := ra.Read(buf)
			if err == ErrWouldBlock {
				return false
			}
			if err != nil {
				t.Error(err)
				return true
			}
			got = append(got, string(buf[:n]))
			if len(got) == 1 {
				time.Sleep(60 * time.Millisecond) // serving; "two" arrives meanwhile
				return false                      // wait without a read
			}
			return true
		})
		if err != nil || len(got) != 2 || got[1] != "two" {
			t.Fatalf("err %v, got %q", err, got)
		}
		if d := time.Since(start); d > waitBound/2 {
			t.Fatalf("the wait missed the bytes that came while serving (%v)", d)
		}
	})
	for _, tc := range []struct {
		name string
		end  func(a net.Conn) // ends the wait on a
		want error
	}{
		{"deadline", func(a net.Conn) { a.SetReadDeadline(time.Now()) }, os.ErrDeadlineExceeded},
		{"close", func(a net.Conn) { a.Close() }, net.ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _, ra, _ := pair(t)
			a.SetReadDeadline(time.Now().Add(waitBound))
			go func() {
				time.Sleep(30 * time.Millisecond)
				tc.end(a)
			}()
			err := ra.Hold(func() bool {
				_, err := ra.Read(make([]byte, 4))
				return err != ErrWouldBlock
			})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("write", func(t *testing.T) {
		// f answers each message it reads: a small answer goes out at once, a large one
		// (8 MiB, far more than the socket buffers hold) waits for room inside f, and both
		// arrive whole. Then a write the peer never reads ends
		// at the write deadline.
		a, b, ra, rb := pair(t)
		a.SetReadDeadline(time.Now().Add(waitBound))
		b.SetReadDeadline(time.Now().Add(waitBound))
		big := make([]byte, 8<<20)
		rand.Read(big)
		got := make(chan []byte, 2)
		go func() {
			buf := make([]byte, 16<<10)
			b.Write([]byte("small"))
			n, _ := io.ReadFull(b, buf[:2])
			got <- append([]byte(nil), buf[:n]...)
			b.Write([]byte("large"))
			var all bytes.Buffer
			for all.Len() < len(big) {
				n, err := rb.Read(buf)
				if err != nil {
					break
				}
				all.Write(buf[:n])
			}
			got <- all.Bytes()
		}()
		msg := make([]byte, 16)
		served := 0
		err := ra.Hold(func() bool {
			n, err := ra.Read(msg)
			if err == ErrWouldBlock {
				return false
			}
			if err != nil {
				t.Error(err)
				return true
			}
			switch string(msg[:n]) {
			case "small":
				_, err = ra.Write([]byte("ok"))
			case "large":
				_, err = ra.Writev(big[:100], big[100:])
			}
			if err != nil {
				t.Error(err)
				return true
			}
			served++
			return served == 2
		})
		if err != nil {
			t.Fatal(err)
		}
		if g := <-got; string(g) != "ok" {
			t.Fatalf("small answer %q", g)
		}
		if g := <-got; !bytes.Equal(g, big) {
			t.Fatalf("large answer: %d bytes of %d, or not these", len(g), len(big))
		}
		b.Write([]byte("x"))
		a.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		var werr error
		ra.Hold(func() bool {
			if _, err := ra.Read(msg); err == ErrWouldBlock {
				return false
			}
			_, werr = ra.Write(make([]byte, 64<<20))
			return true
		})
		if !errors.Is(werr, os.ErrDeadlineExceeded) {
			t.Fatalf("write inside Hold past its deadline: %v", werr)
		}
	})
	t.Run("eof", func(t *testing.T) {
		a, b, ra, _ := pair(t)
		a.SetReadDeadline(time.Now().Add(waitBound))
		go func() {
			time.Sleep(30 * time.Millisecond)
			b.Close()
		}()
		var rerr error
		err := ra.Hold(func() bool {
			_, rerr = ra.Read(make([]byte, 4))
			return rerr != ErrWouldBlock
		})
		if err != nil || rerr != io.EOF {
			t.Fatalf("Hold %v, read %v", err, rerr)
		}
		// Outside Hold, Read waits again as usual.
		if _, err := ra.Read(make([]byte, 4)); err != io.EOF {
			t.Fatalf("read after Hold: %v", err)
		}
	})
}

// TestWriteTimeout: with SetWriteTimeout, a write to a peer that reads nothing ends at the
// timeout; a write that had to wait leaves no deadline behind, so a write long after it still
// goes through, as does one that has to wait again; and a stop flag set just before a write
// that has to wait fails it at once, though the write armed a deadline of its own.
func TestWriteTimeout(t *testing.T) {
	const timeout = 50 * time.Millisecond
	big := make([]byte, 8<<20)
	t.Run("expires", func(t *testing.T) {
		_, _, ra, _ := pair(t)
		ra.SetWriteTimeout(timeout, nil)
		start := time.Now()
		n, err := ra.Write(make([]byte, 64<<20))
		if !errors.Is(err, os.ErrDeadlineExceeded) || n == 64<<20 {
			t.Fatalf("write to a peer that reads nothing: %d bytes, %v", n, err)
		}
		if d := time.Since(start); d > waitBound {
			t.Fatalf("the write timeout took %v", d)
		}
	})
	t.Run("cleared", func(t *testing.T) {
		_, b, ra, _ := pair(t)
		b.SetReadDeadline(time.Now().Add(waitBound))
		ra.SetWriteTimeout(timeout, nil)
		drained := make(chan int64, 1)
		go func() {
			n, _ := io.Copy(io.Discard, b)
			drained <- n
		}()
		for i := 0; i < 2; i++ {
			// Each 8 MiB write waits for room, then the next write comes after the timeout:
			// a deadline left armed would fail it before it is tried.
			if n, err := ra.Write(big); err != nil || n != len(big) {
				t.Fatalf("write %d: %d bytes, %v", i, n, err)
			}
			time.Sleep(2 * timeout)
			if _, err := ra.Write([]byte("x")); err != nil {
				t.Fatalf("a write %v after one that waited: %v", 2*timeout, err)
			}
		}
	})
	t.Run("stopped", func(t *testing.T) {
		// An interrupt (the flag, then a deadline in the past) that comes just before a
		// write: inside Hold the write is tried without the runtime's deadline check, fills
		// the socket buffer, and arms its own deadline over the past one as it begins to
		// wait; the flag then fails it at once instead of after that deadline.
		a, b, ra, _ := pair(t)
		a.SetReadDeadline(time.Now().Add(waitBound))
		b.Write([]byte("go"))
		var stop atomic.Bool
		ra.SetWriteTimeout(3*waitBound, &stop)
		var n int
		var werr error
		start := time.Now()
		ra.Hold(func() bool {
			if _, err := ra.Read(make([]byte, 4)); err == ErrWouldBlock {
				return false
			}
			stop.Store(true)
			a.SetWriteDeadline(time.Unix(1, 0))
			n, werr = ra.Write(make([]byte, 64<<20))
			return true
		})
		if !errors.Is(werr, os.ErrDeadlineExceeded) || n == 64<<20 {
			t.Fatalf("write after a stop: %d bytes, %v", n, werr)
		}
		if d := time.Since(start); d > waitBound {
			t.Fatalf("the stopped write took %v", d)
		}
	})
}
