package proxy_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/pingora-go/pingora/internal/testpki"
	"github.com/pingora-go/pingora/listeners"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

func TestSessionTLSState(t *testing.T) {
	ca, err := testpki.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert := leafCert(t, ca, "proxy.test")
	settings, err := listeners.NewTLS(listeners.TLSOptions{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	origin := startOrigin(t, echoHandler())
	app := &testApp{peers: []*upstream.Peer{mustPeer(t, origin.addr)}}
	app.requestFilter = func(s *proxy.Session) (bool, error) {
		st, ok := s.TLSState()
		if !ok {
			return true, s.RespondError(400)
		}
		return true, s.Respond(200, nil, []byte(st.ServerName+" "+tls.VersionName(st.Version)))
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := server.NewListeningService("tls", proxy.New(app, proxy.Options{Logger: logger}))
	svc.SetLogger(logger)
	svc.AddTLS("127.0.0.1:0", settings)
	srv := server.New(server.Options{GracePeriod: time.Second, Logger: logger})
	srv.AddService(svc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.RunServices(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	var addr string
	for deadline := time.Now().Add(5 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if a := svc.Addrs(); len(a) > 0 {
			addr = a[0].String()
		}
	}
	if addr == "" {
		t.Fatal("TLS service did not start")
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "proxy.test"},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
	}}
	resp, err := client.Get("https://proxy.test/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "proxy.test TLS 1.3" {
		t.Fatalf("status %d body %q", resp.StatusCode, b)
	}
}
