package proxy_test

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pingora-go/pingora/protocols/h1"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/upstream"
)

// TestMinBodyRate checks that a client trickling its request body below MinBodyRate is cut
// once the grace has passed, with 408, while a fast one is served.
func TestMinBodyRate(t *testing.T) {
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Got", strings.Repeat("x", int(min(n, 1))))
	}))
	app := &testApp{peers: []*upstream.Peer{mustPeer(t, origin.addr)}}
	addr, _ := startProxy(t, app, proxy.Options{Server: h1.ServerOptions{MinBodyRate: 1000, BodyRateGrace: 300 * time.Millisecond}})

	c := dial(t, addr)
	io.WriteString(c, "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 100; i++ {
			if _, err := io.WriteString(c, "0123456789"); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	br := bufio.NewReader(c)
	head, err := readHead(br)
	if !strings.HasPrefix(head, "HTTP/1.1 408 ") {
		t.Fatalf("a body at 200 B/s against a minimum of 1000 B/s got %q, %v", head, err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("cut after %v, the grace is 300ms", el)
	}
	c.Close()
	<-done

	// A body at full speed is unaffected.
	resp, err := newClient().Post("http://"+addr+"/fast", "text/plain", strings.NewReader(strings.Repeat("y", 1<<20)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("fast body answered %d", resp.StatusCode)
	}
}
