package proxyproto

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/pingora-go/pingora/internal/testbin"
)

// send writes the pieces with a pause between them, on its own goroutine.
func send(c net.Conn, pause time.Duration, pieces ...[]byte) {
	go func() {
		for i, p := range pieces {
			if i > 0 {
				time.Sleep(pause)
			}
			if _, err := c.Write(p); err != nil {
				return
			}
		}
	}()
}

// after reads what follows the header on c, until n bytes.
func after(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReadLeavesWhatFollows(t *testing.T) {
	v2hdr, _ := Append(nil, &Header{Version: 2, Command: Proxy,
		Source:      &net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 5555},
		Destination: &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443},
		TLVs:        []TLV{{Type: TypeAuthority, Value: []byte("example.com")}}})
	v1hdr := []byte("PROXY TCP4 203.0.113.9 198.51.100.1 61000 80\r\n")
	req := []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	tests := []struct {
		name   string
		pieces [][]byte
		src    string
	}{
		{"v1 with the request in one write", [][]byte{append(append([]byte{}, v1hdr...), req...)}, "203.0.113.9:61000"},
		{"v1 in three writes", [][]byte{v1hdr[:10], v1hdr[10:30], append(append([]byte{}, v1hdr[30:]...), req...)}, "203.0.113.9:61000"},
		{"v1 byte pieces across the 15-byte mark", [][]byte{v1hdr[:14], v1hdr[14:16], v1hdr[16:], req}, "203.0.113.9:61000"},
		{"v2 with the request in one write", [][]byte{append(append([]byte{}, v2hdr...), req...)}, "[2001:db8::7]:5555"},
		{"v2 in two writes", [][]byte{v2hdr[:20], append(append([]byte{}, v2hdr[20:]...), req...)}, "[2001:db8::7]:5555"},
		{"v1 unknown", [][]byte{[]byte("PROXY UNKNOWN\r\n"), req}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := testbin.TCPPair(t)
			send(client, 20*time.Millisecond, tt.pieces...)
			c, h, err := Read(server, Options{})
			if err != nil {
				t.Fatal(err)
			}
			want := tt.src
			if want == "" {
				want = client.LocalAddr().String()
			}
			if c.RemoteAddr().String() != want {
				t.Fatalf("RemoteAddr %v, want %s", c.RemoteAddr(), want)
			}
			if HeaderOf(c) != h {
				t.Fatal("HeaderOf does not find the header")
			}
			if _, ok := c.(syscall.Conn); !ok {
				t.Fatal("a socket's connection does not expose SyscallConn")
			}
			if got := after(t, c, len(req)); got != string(req) {
				t.Fatalf("after the header: %q", got)
			}
		})
	}
}

func TestReadFailures(t *testing.T) {
	t.Run("no header", func(t *testing.T) {
		client, server := testbin.TCPPair(t)
		send(client, 0, []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
		if _, _, err := Read(server, Options{}); !errors.Is(err, ErrNoHeader) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("malformed v1", func(t *testing.T) {
		client, server := testbin.TCPPair(t)
		send(client, 0, []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\nGET"))
		if _, _, err := Read(server, Options{}); err == nil || errors.Is(err, ErrNoHeader) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("v1 never ends", func(t *testing.T) {
		client, server := testbin.TCPPair(t)
		send(client, 0, []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2"))
		start := time.Now()
		_, _, err := Read(server, Options{Timeout: 200 * time.Millisecond})
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%v", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("took %v", d)
		}
	})
	t.Run("silent client", func(t *testing.T) {
		_, server := testbin.TCPPair(t)
		if _, _, err := Read(server, Options{Timeout: 100 * time.Millisecond}); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("closed mid-header", func(t *testing.T) {
		client, server := testbin.TCPPair(t)
		client.Write([]byte("PROXY TCP4 1.2.3.4 5.6"))
		client.Close()
		if _, _, err := Read(server, Options{}); err == nil || !errors.Is(err, io.EOF) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("v2 over the limit", func(t *testing.T) {
		client, server := testbin.TCPPair(t)
		hdr, _ := Append(nil, &Header{Version: 2, Command: Local, TLVs: []TLV{{Type: 0xE0, Value: make([]byte, 500)}}})
		send(client, 0, hdr)
		if _, _, err := Read(server, Options{MaxV2Length: 256}); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("allow list", func(t *testing.T) {
		client, server := testbin.TCPPair(t)
		send(client, 0, []byte("PROXY UNKNOWN\r\n"))
		if _, _, err := Read(server, Options{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}); !errors.Is(err, ErrNotAllowed) {
			t.Fatalf("%v", err)
		}
		client2, server2 := testbin.TCPPair(t)
		send(client2, 0, []byte("PROXY UNKNOWN\r\n"))
		if _, _, err := Read(server2, Options{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestReadWithoutDescriptor covers connections that cannot be peeked at (net.Pipe).
func TestReadWithoutDescriptor(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	go client.Write([]byte("PROXY TCP6 ::1 ::2 1 2\r\nrest"))
	c, h, err := Read(server, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if h.Source.String() != "[::1]:1" {
		t.Fatalf("%v", h.Source)
	}
	if _, ok := c.(syscall.Conn); ok {
		t.Fatal("a pipe's connection claims a descriptor")
	}
	if got := after(t, c, 4); got != "rest" {
		t.Fatalf("%q", got)
	}
}

func TestHeaderOfThroughTLS(t *testing.T) {
	h := &Header{Version: 1}
	c := &Conn{Conn: nil, hdr: h}
	if HeaderOf(tls.Server(c, &tls.Config{})) != h {
		t.Fatal("HeaderOf does not look through TLS")
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if HeaderOf(a) != nil {
		t.Fatal("a plain connection has a header")
	}
}
