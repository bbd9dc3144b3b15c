package proxy_test

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/upstream"
)

// TestPeerInflightLimit sends 12 concurrent requests to a peer with MaxInflight 3 and
// MaxQueued 4: 3 run at once, 4 wait and are served after, 5 are shed with 503 and
// Retry-After; the origin never sees more than 3 at once.
func TestPeerInflightLimit(t *testing.T) {
	var running, peak atomic.Int64
	release := make(chan struct{})
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		running.Add(-1)
		io.WriteString(w, "ok")
	}))
	peer := mustPeer(t, origin.addr)
	peer.Options.MaxInflight = 3
	peer.Options.MaxQueued = 4
	peer.Options.QueueTimeout = 20 * time.Second
	app := &testApp{peers: []*upstream.Peer{peer}}
	addr, p := startProxy(t, app, proxy.Options{})

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	const n = 12
	codes := make(chan *http.Response, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get("http://" + addr + "/")
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp
		}()
	}
	// Wait until 3 run and 4 wait; the other 5 have been answered 503 by then.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, q := p.Inflight(peer)
		if r == 3 && q == 4 && len(codes) == 5 && running.Load() == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("running %d (origin %d) queued %d answered %d", r, running.Load(), q, len(codes))
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(codes)
	ok, shed := 0, 0
	for resp := range codes {
		switch {
		case resp.StatusCode == 200:
			ok++
		case resp.StatusCode == 503 && resp.Header.Get("Retry-After") == proxy.RetryAfterBusy:
			shed++
		default:
			t.Errorf("status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if ok != 7 || shed != 5 || peak.Load() != 3 {
		t.Fatalf("%d served, %d shed, origin peak %d; want 7, 5, 3", ok, shed, peak.Load())
	}
	// A slot is given back just after the response went out: wait for the last ones.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		r, q := p.Inflight(peer)
		if r == 0 && q == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the burst: %d running, %d queued", r, q)
		}
	}
}

// TestPeerQueueTimeout checks that a request waiting longer than QueueTimeout is shed.
func TestPeerQueueTimeout(t *testing.T) {
	release := make(chan struct{})
	origin := startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "ok")
	}))
	defer close(release)
	peer := mustPeer(t, origin.addr)
	peer.Options.MaxInflight = 1
	peer.Options.MaxQueued = 1
	peer.Options.QueueTimeout = 200 * time.Millisecond
	app := &testApp{peers: []*upstream.Peer{peer}}
	addr, p := startProxy(t, app, proxy.Options{})
	go newClient().Get("http://" + addr + "/first")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if r, _ := p.Inflight(peer); r == 1 {
			break // the first request holds the only slot
		}
		if time.Now().After(deadline) {
			t.Fatal("the first request took no slot")
		}
	}
	start := time.Now()
	resp, err := newClient().Get("http://" + addr + "/second")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if el := time.Since(start); resp.StatusCode != 503 || el < 150*time.Millisecond || el > 5*time.Second {
		t.Fatalf("status %d after %v, want 503 after the 200ms queue timeout", resp.StatusCode, el)
	}
}
