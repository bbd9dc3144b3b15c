// Package soak runs the proxy under mixed traffic with a share of faults for a bounded time,
// then checks that it let go of everything: goroutines, file descriptors and memory back near
// where they started. It is off by default; run it with a duration:
//
//	go test ./e2e/soak -run Soak -soak 2m -v
package soak

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pingora-go/pingora/connector"
	"github.com/pingora-go/pingora/faults"
	"github.com/pingora-go/pingora/protocols/h1"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/upstream"
)

var soakFor = flag.Duration("soak", 0, "run the soak test for this long (0: skip it)")

// router sends /ok/... and /h2/... to healthy origins (HTTP/1.1, and HTTP/2 cleartext) and
// /fault/N/... to the Nth faulty upstream.
type router struct {
	proxy.Defaults[struct{}]
	ok, h2 *upstream.Peer
	faults []*upstream.Peer
}

func (r *router) NewCtx() struct{} { return struct{}{} }

func (r *router) UpstreamPeer(s *proxy.Session, _ *struct{}) (*upstream.Peer, error) {
	path := string(s.Req().Path())
	switch {
	case strings.HasPrefix(path, "/h2/"):
		return r.h2, nil
	case strings.HasPrefix(path, "/fault/"):
		var n int
		fmt.Sscanf(path, "/fault/%d/", &n)
		return r.faults[n%len(r.faults)], nil
	}
	return r.ok, nil
}

// usage is what the process holds.
type usage struct {
	goroutines int
	fds        int
	heap       uint64
}

func measure() usage {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	ents, _ := os.ReadDir("/proc/self/fd")
	return usage{goroutines: runtime.NumGoroutine(), fds: len(ents), heap: ms.HeapInuse}
}

func TestSoak(t *testing.T) {
	if *soakFor <= 0 {
		t.Skip("off by default: go test ./e2e/soak -run Soak -soak 2m")
	}
	body := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		n := len(body)
		if strings.HasSuffix(r.URL.Path, "/small") {
			n = 100
		}
		w.Write(body[:n])
	})
	origin := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	origin.Protocols = new(http.Protocols)
	origin.Protocols.SetHTTP1(true)
	origin.Protocols.SetUnencryptedHTTP2(true)
	oln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go origin.Serve(oln)
	defer origin.Close()

	const bound = 2 * time.Second
	var ups []*faults.Upstream
	for _, f := range []faults.Fault{
		faults.ResetAfter(faults.Response(200, strings.Repeat("r", 5000)), 100),
		faults.TruncateBody(10000, 500),
		faults.ChunkedWithoutLastChunk("a", "b"),
		faults.Garbage([]byte("garbage\r\n\r\n")),
		faults.CloseAfterHead(1000),
		faults.InformationalStorm(5, 103, faults.Response(200, "after")),
		faults.SlowResponse(faults.Response(200, "slow"), time.Millisecond),
		faults.NeverAnswer(),
	} {
		u, err := faults.StartUpstream(f, bound)
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		ups = append(ups, u)
	}
	mk := func(addr string) *upstream.Peer {
		p, err := upstream.NewPeer(addr, false, "")
		if err != nil {
			t.Fatal(err)
		}
		p.Options.ReadTimeout = 500 * time.Millisecond
		return p
	}
	r := &router{ok: mk(oln.Addr().String()), h2: mk(oln.Addr().String())}
	r.h2.Options.ALPN = upstream.H2
	for _, u := range ups {
		r.faults = append(r.faults, mk(u.Addr()))
	}
	conn := connector.New(connector.Options{})
	p, err := faults.NewProxy(r, faults.ProxyOptions{Proxy: proxy.Options{
		Connector: conn, H2C: true,
		Server: h1.ServerOptions{HeadTimeout: time.Second, IdleTimeout: 2 * time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	h1c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	h2tr := &http.Transport{Protocols: new(http.Protocols)}
	h2tr.Protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Timeout: 5 * time.Second, Transport: h2tr}
	get := func(c *http.Client, path string) error {
		resp, err := c.Get("http://" + p.Addr + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	// Warm up, then let everything settle and take the baseline.
	for range 20 {
		get(h1c, "/ok/small")
		get(h2c, "/h2/small")
	}
	settle := func() usage {
		h1c.CloseIdleConnections()
		h2tr.CloseIdleConnections()
		deadline := time.Now().Add(15 * time.Second)
		for p.Service.Conns() > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		conn.Close()
		time.Sleep(300 * time.Millisecond) // peers notice closed connections
		return measure()
	}
	base := settle()

	var ok, failed, faulted atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), *soakFor)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for ctx.Err() == nil {
				var err error
				switch x := rng.IntN(100); {
				case x < 55:
					err = get(h1c, "/ok/big")
				case x < 70:
					err = get(h2c, "/h2/big")
				case x < 80:
					var resp *http.Response
					resp, err = h1c.Post("http://"+p.Addr+"/ok/small", "text/plain", bytes.NewReader(body))
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				case x < 90:
					get(h1c, fmt.Sprintf("/fault/%d/", rng.IntN(len(r.faults))))
					faulted.Add(1)
					continue
				case x < 95:
					// A client that leaves in the middle of a response.
					c, derr := net.Dial("tcp", p.Addr)
					if derr == nil {
						io.WriteString(c, "GET /ok/big HTTP/1.1\r\nHost: soak\r\n\r\n")
						c.Read(make([]byte, 1000))
						c.Close()
					}
					faulted.Add(1)
					continue
				default:
					// A slowloris head cut by the head timeout.
					faults.Client{Addr: p.Addr, Bound: 3 * time.Second}.Slowloris(faults.Get("/ok/small"), 300*time.Millisecond)
					faulted.Add(1)
					continue
				}
				if err != nil {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	after := settle()
	t.Logf("%v: %d healthy requests ok, %d failed, %d faulty exchanges", *soakFor, ok.Load(), failed.Load(), faulted.Load())
	t.Logf("before: %d goroutines, %d fds, heap %d KiB", base.goroutines, base.fds, base.heap>>10)
	t.Logf("after:  %d goroutines, %d fds, heap %d KiB", after.goroutines, after.fds, after.heap>>10)
	if failed.Load() > 0 {
		t.Errorf("%d requests to healthy origins failed", failed.Load())
	}
	if after.goroutines > base.goroutines+4 {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines %d → %d:\n%s", base.goroutines, after.goroutines, buf[:runtime.Stack(buf, true)])
	}
	if after.fds > base.fds+4 {
		t.Errorf("file descriptors %d → %d", base.fds, after.fds)
	}
	if after.heap > base.heap+16<<20 {
		t.Errorf("heap %d KiB → %d KiB", base.heap>>10, after.heap>>10)
	}
}
