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
