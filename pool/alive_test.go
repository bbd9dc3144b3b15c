package pool

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// serverAction is what the test server does with its end of a connection
// once the client end is idle.
type serverAction func(net.Conn)

func stayIdle(net.Conn) {}

func closeConn(c net.Conn) { c.Close() }

func resetConn(c net.Conn) {
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
}

func sendByte(c net.Conn) { c.Write([]byte{'x'}) }

// dialPair returns a client connection to a fresh 127.0.0.1 listener and the
// server's end of it.
func dialPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server
}

func requireUnix(t *testing.T) {
	t.Helper()
	switch runtime.GOOS {
	case "windows", "plan9", "js", "wasip1", "aix":
		t.Skip("no non-blocking peek on", runtime.GOOS)
	}
}

func TestConnAlive(t *testing.T) {
	requireUnix(t)
	tests := []struct {
		name   string
		server serverAction
		want   bool
	}{
		{"idle", stayIdle, true},
		{"closed by server", closeConn, false},
		{"reset by server", resetConn, false},
		{"unsolicited data", sendByte, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := dialPair(t)
			tt.server(server)
			if tt.want {
				if !ConnAlive(client) {
					t.Fatal("ConnAlive = false, want true")
				}
				return
			}
			// The server's FIN, RST or byte reaches the client asynchronously.
			waitFor(t, "ConnAlive to report false", func() bool { return !ConnAlive(client) })
		})
	}
}

func TestConnAliveDoesNotConsume(t *testing.T) {
	requireUnix(t)
	client, server := dialPair(t)
	sendByte(server)
	waitFor(t, "the byte to arrive", func() bool { return !ConnAlive(client) })
	var b [1]byte
	if n, err := client.Read(b[:]); n != 1 || b[0] != 'x' {
		t.Fatalf("Read = %d, %v, %q; want the peeked byte", n, err, b[:n])
	}
}

func TestConnAliveExpiredDeadline(t *testing.T) {
	requireUnix(t)
	client, _ := dialPair(t)
	client.SetReadDeadline(time.Now().Add(-time.Second))
	if !ConnAlive(client) {
		t.Fatal("ConnAlive = false on an idle connection with an expired read deadline")
	}
}

func TestConnAliveClosedLocally(t *testing.T) {
	client, _ := dialPair(t)
	client.Close()
	if ConnAlive(client) {
		t.Fatal("ConnAlive = true on a closed connection")
	}
}

func TestConnAliveUninspectable(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if !ConnAlive(a) {
		t.Fatal("ConnAlive = false for a connection it cannot inspect")
	}
}

func TestConnAliveTLS(t *testing.T) {
	requireUnix(t)
	cert := selfSigned(t)
	tests := []struct {
		name   string
		server func(*tls.Conn)
		want   bool
	}{
		{"idle", func(*tls.Conn) {}, true},
		{"close_notify", func(c *tls.Conn) { c.Close() }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rawClient, rawServer := dialPair(t)
			server := tls.Server(rawServer, &tls.Config{Certificates: []tls.Certificate{cert}})
			client := tls.Client(rawClient, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
			done := make(chan error, 1)
			go func() { done <- server.Handshake() }()
			if err := client.Handshake(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			tt.server(server)
			if tt.want {
				if !ConnAlive(client) {
					t.Fatal("ConnAlive = false, want true")
				}
				return
			}
			waitFor(t, "ConnAlive to report false", func() bool { return !ConnAlive(client) })
		})
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestPoolWithTCP runs the pool over real connections: a connection the
// server closed, or one the server wrote to, is skipped by Get and closed;
// a healthy one is handed out.
func TestPoolWithTCP(t *testing.T) {
	requireUnix(t)
	tests := []struct {
		name      string
		server    serverAction
		wantReuse bool
	}{
		{"healthy", stayIdle, true},
		{"closed by server", closeConn, false},
		{"unsolicited data", sendByte, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(Options[net.Conn]{Alive: ConnAlive, SweepInterval: time.Hour})
			defer p.Close()
			client, server := dialPair(t)
			p.Put(9, client, 0)
			tt.server(server)
			if !tt.wantReuse {
				waitFor(t, "the server's action to reach the client", func() bool { return !ConnAlive(client) })
			}
			got, ok := p.Get(9)
			if ok != tt.wantReuse {
				t.Fatalf("Get hit = %v, want %v", ok, tt.wantReuse)
			}
			if ok {
				if got != client {
					t.Fatal("Get returned another connection")
				}
				return
			}
			if st := p.Stats(); st.DeadOnCheckout != 1 {
				t.Fatalf("Stats = %+v, want 1 dead on checkout", st)
			}
			// Get closed the connection: the server's read ends (with end
			// of stream, or a reset when the client had unread data).
			server.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadAll(server); errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("client connection still open after Get skipped it")
			}
		})
	}
}

// TestSweeperClosesPeerClosed checks that the sweeper, not only Get, notices
// a connection the server closed.
func TestSweeperClosesPeerClosed(t *testing.T) {
	requireUnix(t)
	p := New(Options[net.Conn]{Alive: ConnAlive, SweepInterval: time.Millisecond})
	defer p.Close()
	client, server := dialPair(t)
	p.Put(3, client, 0)
	server.Close()
	waitFor(t, "the sweeper", func() bool {
		st := p.Stats()
		return st.DeadIdle == 1 && st.Idle == 0
	})
}

func BenchmarkConnAlive(b *testing.B) {
	client, _ := dialPair(b)
	b.ReportAllocs()
	for b.Loop() {
		if !ConnAlive(client) {
			b.Fatal("dead")
		}
	}
}
