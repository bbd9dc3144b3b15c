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
)

// connTypeApp reports whether each connection it serves is a *tls.Conn, then echoes lines.
type connTypeApp struct {
	lineApp
	isTLS chan bool
}

func (a *connTypeApp) ServeConn(shutdown context.Context, c net.Conn) {
	_, ok := c.(*tls.Conn)
	a.isTLS <- ok
	a.lineApp.ServeConn(shutdown, c)
}

func TestAddTLS(t *testing.T) {
	ca, err := testpki.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	leaf, err := ca.Issue(testpki.LeafOptions{Names: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := leaf.WriteFiles(dir, "server")
	if err != nil {
		t.Fatal(err)
	}
	settings, err := listeners.NewTLS(listeners.TLSOptions{
		Certs:          []listeners.CertFiles{{CertFile: certFile, KeyFile: keyFile}},
		ReloadInterval: -1,
		Logger:         quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	app := &connTypeApp{lineApp: *newLineApp(), isTLS: make(chan bool, 8)}
	ls := NewListeningService("tls", app)
	ls.SetLogger(quiet)
	ls.AddTLS("127.0.0.1:0", settings)
	srv := New(Options{Logger: quiet})
	srv.AddService(ls)
	addr, _ := startServer(t, srv, ls)

	served := func() *tls.ConnectionState {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "localhost", RootCAs: ca.Pool()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "hello\n")
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "echo: hello\n" {
			t.Fatalf("got %q, %v", line, err)
		}
		if !<-app.isTLS {
			t.Error("the App did not receive a *tls.Conn")
		}
		cs := c.ConnectionState()
		return &cs
	}
	if got := served().PeerCertificates[0]; !got.Equal(leaf.Cert) {
		t.Errorf("served serial %v, want %v", got.SerialNumber, leaf.Cert.SerialNumber)
	}

	// A client that does not speak TLS never reaches the App.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.ReadAll(c)
	c.Close()
	select {
	case <-app.isTLS:
		t.Error("a failed handshake reached the App")
	default:
	}

	// SIGHUP's reload swaps in a certificate written since.
	next, err := ca.Issue(testpki.LeafOptions{Names: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := next.WriteFiles(dir, "server"); err != nil {
		t.Fatal(err)
	}
	srv.reload()
	if got := served().PeerCertificates[0]; !got.Equal(next.Cert) {
		t.Errorf("after reload served serial %v, want %v", got.SerialNumber, next.Cert.SerialNumber)
	}
}
