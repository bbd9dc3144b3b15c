package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pingora-go/pingora/internal/testpki"
	"github.com/pingora-go/pingora/listeners"
	"github.com/pingora-go/pingora/protocols/proxyproto"
)

// addrApp reports the RemoteAddr of each connection it serves, then echoes lines.
type addrApp struct {
	lineApp
	addrs chan string
}

func (a *addrApp) ServeConn(shutdown context.Context, c net.Conn) {
	a.addrs <- c.RemoteAddr().String()
	a.lineApp.ServeConn(shutdown, c)
}

// TestProxyProtocolListener: a plain and a TLS address that read PROXY headers give the App
// the client's address from the header; a connection without one never reaches the App; the
// connection counts stay right.
func TestProxyProtocolListener(t *testing.T) {
	ca, err := testpki.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(testpki.LeafOptions{Names: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := leaf.WriteFiles(t.TempDir(), "server")
	if err != nil {
		t.Fatal(err)
	}
	settings, err := listeners.NewTLS(listeners.TLSOptions{Certs: []listeners.CertFiles{{CertFile: certFile, KeyFile: keyFile}},
		ReloadInterval: -1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	app := &addrApp{lineApp: *newLineApp(), addrs: make(chan string, 8)}
	ls := NewListeningService("pp", app)
	ls.SetLogger(quiet)
	pp := &proxyproto.Options{Timeout: 500 * time.Millisecond}
	ls.Add(listeners.Address{Network: "tcp", Addr: "127.0.0.1:0"}, ListenOptions{ProxyProtocol: pp})
	ls.Add(listeners.Address{Network: "tcp", Addr: "127.0.0.1:0"}, ListenOptions{ProxyProtocol: pp, TLS: settings})
	ls.SetAcceptOptions(AcceptOptions{Tasks: 2})
	srv := New(Options{Logger: quiet})
	srv.AddService(ls)
	startServer(t, srv, ls)
	for len(ls.Addrs()) < 2 {
		time.Sleep(time.Millisecond)
	}
	plain, secure := ls.Addrs()[0].String(), ls.Addrs()[1].String()

	echo := func(c net.Conn) {
		t.Helper()
		io.WriteString(c, "hello\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "echo: hello\n" {
			t.Fatalf("got %q, %v", line, err)
		}
	}
	expectAddr := func(want string) {
		t.Helper()
		select {
		case got := <-app.addrs:
			if got != want {
				t.Fatalf("App saw %s, want %s", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the App saw no connection")
		}
	}

	c, err := net.Dial("tcp", plain)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "PROXY TCP4 203.0.113.7 192.0.2.1 40000 80\r\n")
	echo(c)
	expectAddr("203.0.113.7:40000")
	c.Close()

	raw, err := net.Dial("tcp", secure)
	if err != nil {
		t.Fatal(err)
	}
	hdr, _ := proxyproto.Append(nil, &proxyproto.Header{Version: 2, Command: proxyproto.Proxy,
		Source:      &net.TCPAddr{IP: net.ParseIP("2001:db8::9"), Port: 5000},
		Destination: &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443}})
	raw.Write(hdr)
	tc := tls.Client(raw, &tls.Config{ServerName: "localhost", RootCAs: ca.Pool()})
	echo(tc)
	expectAddr("[2001:db8::9]:5000")
	tc.Close()

	// No header: closed before the App, at once for bytes that cannot be a header, after the
	// timeout for silence.
	for _, first := range []string{"GET / HTTP/1.1\r\n\r\n", ""} {
		c, err := net.Dial("tcp", plain)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, first)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatalf("%q: read %d bytes, want the connection closed", first, n)
		}
		c.Close()
	}
	// A good header, then bytes that are no TLS handshake: closed, and no longer counted
	// (the loop below), under the key the header's wrapper gave it.
	c2, err := net.Dial("tcp", secure)
	if err != nil {
		t.Fatal(err)
	}
	c2.Write(hdr)
	io.WriteString(c2, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.Copy(io.Discard, c2) // the server's alert, then its close
	c2.Close()
	select {
	case a := <-app.addrs:
		t.Fatalf("a connection without a header or a handshake reached the App (%s)", a)
	default:
	}
	deadline := time.Now().Add(10 * time.Second)
	for ls.Conns() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still counted", ls.Conns())
		}
		time.Sleep(time.Millisecond)
	}
}
