package snippets_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/pingora-go/pingora/connector"
	"github.com/pingora-go/pingora/examples/internal/exampletest"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/upstream"
)

// onePeer sends every request to one peer.
type onePeer struct {
	proxy.Defaults[struct{}]
	peer *upstream.Peer
}

func (o *onePeer) NewCtx() struct{} { return struct{}{} }

func (o *onePeer) UpstreamPeer(*proxy.Session, *struct{}) (*upstream.Peer, error) {
	return o.peer, nil
}

func TestPoolReuse(t *testing.T) {
	tests := []struct {
		name        string
		idleTimeout time.Duration
		wantDials   uint64
		wantReuses  uint64
	}{
		{"kept until closed", 0, 1, 3},
		{"kept 60s", 60 * time.Second, 1, 3},
		{"never reused", upstream.DoNotReuse, 4, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer, err := upstream.NewPeer(exampletest.NamedOrigin(t, "ok", nil), false, "")
			if err != nil {
				t.Fatal(err)
			}
			peer.Options.IdleTimeout = tt.idleTimeout
			conn := connector.New(connector.Options{})
			t.Cleanup(func() { conn.Close() })
			addr := serveWith(t, &onePeer{peer: peer}, proxy.Options{Connector: conn})

			// One client connection: its requests are served one after the other, and each
			// one's upstream connection is released before the next request is read.
			c := exampletest.Client(t)
			for range 4 {
				if resp, _ := exampletest.Get(t, c, addr, "/", nil); resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d", resp.StatusCode)
				}
			}
			st := conn.Stats()
			if st.Dials != tt.wantDials || st.Reuses != tt.wantReuses {
				t.Errorf("dials %d reuses %d, want %d %d", st.Dials, st.Reuses, tt.wantDials, tt.wantReuses)
			}
		})
	}
}

// serveWith is exampletest.Serve with proxy options.
func serveWith(t *testing.T, app proxy.ProxyHTTP[struct{}], opts proxy.Options) string {
	t.Helper()
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	p := proxy.New(app, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.ServeConn(ctx, c)
		}
	}()
	t.Cleanup(func() {
		cancel()
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}
