// Package faults_test aims the faults kit at a real proxy (proxy.New behind a server.Server)
// on 127.0.0.1: misbehaving upstreams must end with 502/504 when nothing was sent downstream
// yet and with a closed downstream connection (never a complete-looking response) when bytes
// were; misbehaving clients must be cut by the server's timeouts and limits. Every wait is
// bounded.
package faults_test

import (
	"bytes"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pingora-go/pingora/faults"
	"github.com/pingora-go/pingora/protocols/h1"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

// forward proxies every request to one peer.
type forward struct {
	proxy.Defaults[struct{}]
	peer *upstream.Peer
}

func (forward) NewCtx() struct{} { return struct{}{} }

func (f forward) UpstreamPeer(*proxy.Session, *struct{}) (*upstream.Peer, error) { return f.peer, nil }

// upstreamRead is the peer's read timeout in these tests: a never-answering upstream ends
// with 504 after it.
const upstreamRead = 500 * time.Millisecond

// startProxy runs a proxy forwarding to addr, with opts.
func startProxy(t *testing.T, addr string, opts faults.ProxyOptions) *faults.Proxy {
	t.Helper()
	peer, err := upstream.NewPeer(addr, false, "")
	if err != nil {
		t.Fatal(err)
	}
	peer.Options.ReadTimeout = upstreamRead
	peer.Options.ConnectTimeout = time.Second
	return faults.StartProxy(t, forward{peer: peer}, opts)
}

// healthy answers every request with 200 "ok".
var healthy = faults.Respond(faults.Response(200, "ok"))

// checkFresh checks that a fresh connection to the proxy, now forwarding to a healthy
// upstream, gets a complete 200: the fault left the proxy serving.
func checkFresh(t *testing.T, p *faults.Proxy) {
	t.Helper()
	if o := p.Client().Fetch(faults.Get("/healthy")); o.Status != 200 || !o.Complete || string(o.Body) != "ok" {
		t.Fatalf("a fresh request after the fault: %v", o)
	}
}

// switchUpstream sends requests for /healthy to a healthy upstream, and others to the fault.
type switchUpstream struct {
	proxy.Defaults[struct{}]
	fault, good *upstream.Peer
}

func (switchUpstream) NewCtx() struct{} { return struct{}{} }

func (s switchUpstream) UpstreamPeer(sess *proxy.Session, _ *struct{}) (*upstream.Peer, error) {
	if string(sess.Req().Target()) == "/healthy" {
		return s.good, nil
	}
	return s.fault, nil
}

func peerFor(t *testing.T, addr string) *upstream.Peer {
	t.Helper()
	peer, err := upstream.NewPeer(addr, false, "")
	if err != nil {
		t.Fatal(err)
	}
	peer.Options.ReadTimeout = upstreamRead
	peer.Options.ConnectTimeout = time.Second
	return peer
}

func TestUpstreamFaults(t *testing.T) {
	big := strings.Repeat("x", 100_000)
	cases := []struct {
		name  string
		fault faults.Fault
		req   []byte
		// status is the status the client must see; 0 means the proxy may have sent the
		// response head already: the client gets 502, or the connection closes before a
		// complete response.
		status  int
		errLike string // in the proxy's error log line
	}{
		{"reset before any byte", faults.ResetAfter(faults.Response(200, "hello"), 0), faults.Get("/"), 502, "request failed"},
		{"reset inside the head", faults.ResetAfter(faults.Response(200, "hello"), 10), faults.Get("/"), 502, "request failed"},
		{"reset inside the body", faults.ResetAfter(faults.Response(200, big), 50_000), faults.Get("/"), 0, "request failed"},
		{"body shorter than Content-Length", faults.TruncateBody(1000, 10), faults.Get("/"), 0, "request failed"},
		{"chunked without the last chunk", faults.ChunkedWithoutLastChunk("hello", "world"), faults.Get("/"), 0, "request failed"},
		{"garbage instead of a status line", faults.Garbage([]byte("SSH-2.0-OpenSSH_9.6\r\n\r\n")), faults.Get("/"), 502, "request failed"},
		{"binary garbage", faults.Garbage(bytes.Repeat([]byte{0, 0xff, '\n'}, 100)), faults.Get("/"), 502, "request failed"},
		{"close after the head", faults.CloseAfterHead(500), faults.Get("/"), 0, "request failed"},
		{"never answers", faults.NeverAnswer(), faults.Get("/"), 504, "request failed"},
		{"never answers a POST", faults.NeverAnswer(), faults.Post("/", "payload"), 504, "request failed"},
		{"1xx storm within the cap", faults.InformationalStorm(proxy.MaxInterimResponses, 103, faults.Response(200, "after the storm")), faults.Get("/"), 200, ""},
		{"1xx storm past the cap", faults.InformationalStorm(proxy.MaxInterimResponses+1, 103, faults.Response(200, "too late")), faults.Get("/"), 502, "request failed"},
		{"endless 1xx storm", faults.InformationalStorm(1<<40, 103, nil), faults.Get("/"), 502, "request failed"},
		{"answer before the request body", faults.AnswerBeforeBody(faults.Response(413, "too big")), faults.Post("/", strings.Repeat("b", 1000)), 413, ""},
		{"slow response within the read timeout", faults.SlowResponse(faults.Response(200, "slow"), 5*time.Millisecond), faults.Get("/"), 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := faults.NewUpstream(t, tc.fault)
			good := faults.NewUpstream(t, healthy)
			p := faults.StartProxy(t, switchUpstream{fault: peerFor(t, bad.Addr()), good: peerFor(t, good.Addr())}, faults.ProxyOptions{})
			c := p.Client()
			c.Bound = 3 * time.Second
			o := c.Fetch(tc.req)
			t.Logf("client saw: %v", o)
			if tc.status == 0 {
				if o.Complete && o.Status != 502 || !o.Complete && !o.Closed || o.CloseDelimited {
					t.Fatalf("a cut upstream response must end in 502 or in a closed connection without a complete response: %v", o)
				}
			} else if o.Status != tc.status || !o.Complete {
				t.Fatalf("want a complete %d, got %v\nlog:\n%s", tc.status, o, p.Log())
			}
			if tc.status == 504 && o.Elapsed > upstreamRead+5*time.Second {
				t.Errorf("504 after %v, the read timeout is %v", o.Elapsed, upstreamRead)
			}
			recs := p.Recorder.Wait(1, faults.DefaultBound)
			if len(recs) != 1 {
				t.Fatalf("%d requests recorded, want 1", len(recs))
			}
			if tc.errLike != "" {
				if recs[0].Err == nil {
					t.Errorf("the failed request was logged without an error: %+v", recs[0])
				}
				if !strings.Contains(p.Log(), tc.errLike) {
					t.Errorf("no %q line in the log:\n%s", tc.errLike, p.Log())
				}
			}
			checkFresh(t, p)
		})
	}
}

func TestClientFaults(t *testing.T) {
	good := faults.NewUpstream(t, healthy)
	const head, idle, read = 300 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond
	p := startProxy(t, good.Addr(), faults.ProxyOptions{Proxy: proxy.Options{
		Server: h1.ServerOptions{HeadTimeout: head, IdleTimeout: idle, ReadTimeout: read},
	}})
	c := p.Client()
	// A cut exchange is over well before the bound: the timeout plus scheduling slack.
	const slack = 3 * time.Second

	t.Run("slowloris head", func(t *testing.T) {
		o := c.Slowloris(faults.Get("/"), 50*time.Millisecond)
		if o.Sent >= len(faults.Get("/")) {
			t.Fatalf("the whole head got through: %v", o)
		}
		if o.Elapsed > head+slack {
			t.Fatalf("cut after %v, head timeout %v", o.Elapsed, head)
		}
		if o.Status != 0 && o.Status != 408 || o.Status == 0 && !o.Closed {
			t.Fatalf("want 408 or a close, got %v", o)
		}
	})
	t.Run("slow body", func(t *testing.T) {
		o := c.SlowBody([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"), bytes.Repeat([]byte("b"), 100), 2*read)
		if o.Elapsed > read+slack+2*read {
			t.Fatalf("cut after %v, read timeout %v", o.Elapsed, read)
		}
		if o.Status != 0 && o.Status != 408 || o.Status == 0 && !o.Closed {
			t.Fatalf("want 408 or a close, got %v", o)
		}
	})
	t.Run("idle connection", func(t *testing.T) {
		nc, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		start := time.Now()
		nc.SetReadDeadline(start.Add(faults.DefaultBound))
		n, err := nc.Read(make([]byte, 1))
		if n != 0 || err == nil {
			t.Fatalf("an idle connection read %d bytes, err %v", n, err)
		}
		if d := time.Since(start); d > idle+slack {
			t.Fatalf("idle connection closed after %v, idle timeout %v", d, idle)
		}
	})
	t.Run("oversized head", func(t *testing.T) {
		o := c.OversizedHead(1 << 20)
		if o.Status != 431 && !(o.Status == 0 && o.Closed) {
			t.Fatalf("want 431 or a close, got %v", o)
		}
	})
	t.Run("pipeline flood", func(t *testing.T) {
		const n = 500
		o := c.PipelineFlood(faults.Get("/"), n)
		if o.Responses != n || o.Status != 200 {
			t.Fatalf("want %d responses, got %v", n, o)
		}
	})
	t.Run("half close", func(t *testing.T) {
		o := c.HalfClose(faults.Get("/"))
		if o.Status != 200 || !o.Complete {
			t.Fatalf("a half-closed client must get its answer: %v", o)
		}
	})
	checkFresh(t, p)
}

func TestSlowReadersMemoryBounded(t *testing.T) {
	const size = 4 << 20 // per response
	const readers = 50
	big := faults.NewUpstream(t, faults.Respond(faults.Response(200, strings.Repeat("z", size))))
	p := startProxy(t, big.Addr(), faults.ProxyOptions{Proxy: proxy.Options{
		Server: h1.ServerOptions{WriteTimeout: 2 * time.Second},
	}})
	start := time.Now()
	before := heap()
	var srs []*faults.SlowReader
	for range readers {
		sr, err := p.Client().StartSlowReader(faults.Get("/big"))
		if err != nil {
			t.Fatal(err)
		}
		defer sr.Close()
		if sr.Status != 200 {
			t.Fatalf("status %d", sr.Status)
		}
		srs = append(srs, sr)
	}
	// Wait until the proxy has pushed what the sockets take and blocks on every writer.
	time.Sleep(500 * time.Millisecond)
	t.Logf("slow readers started after %v", time.Since(start))
	during := heap()
	growth := int64(during) - int64(before)
	t.Logf("heap before %d KiB, with %d slow readers of %d MiB responses %d KiB: %d KiB per reader",
		before>>10, readers, size>>20, during>>10, growth/readers>>10)
	// The proxy must not buffer responses for slow readers: far less than one response each.
	if growth > readers*256<<10 {
		t.Fatalf("heap grew by %d KiB with %d slow readers", growth>>10, readers)
	}
	// The write timeout cuts every slow reader: the proxy lets go of their connections, and
	// a reader that resumes finds its body cut.
	waitConns(t, p.Service, 0)
	t.Logf("slow readers cut after %v; heap then %d KiB", time.Since(start), heap()>>10)
	for _, sr := range srs[:3] {
		if o := sr.Resume(faults.DefaultBound); o.Complete || !o.Closed {
			t.Fatalf("a slow reader cut by the write timeout: %v", o)
		}
	}
	if o := p.Client().Fetch(faults.Get("/big")); o.Status != 200 || !o.Complete || len(o.Body) != size {
		t.Fatalf("a reader that reads, after the slow ones: %v", o)
	}
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func TestMaxConnections(t *testing.T) {
	const max, extra = 4, 3
	good := faults.NewUpstream(t, healthy)
	p := startProxy(t, good.Addr(), faults.ProxyOptions{Accept: server.AcceptOptions{MaxConns: max}})
	var held []net.Conn
	for i := range max {
		nc, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		held = append(held, nc)
		_ = i
	}
	waitConns(t, p.Service, max)
	type result struct {
		i int
		o faults.Outcome
	}
	results := make(chan result, extra)
	for i := range extra {
		go func() { results <- result{i, p.Client().Fetch(faults.Get(fmt.Sprint("/extra/", i)))} }()
	}
	select {
	case r := <-results:
		t.Fatalf("extra connection %d was answered beyond the limit: %v", r.i, r.o)
	case <-time.After(500 * time.Millisecond):
	}
	if n := p.Service.Conns(); n != max {
		t.Fatalf("%d connections held, want %d", n, max)
	}
	for _, nc := range held {
		nc.Close()
	}
	for range extra {
		r := <-results
		if r.o.Status != 200 || !r.o.Complete {
			t.Fatalf("extra connection %d after others closed: %v", r.i, r.o)
		}
	}
	if !strings.Contains(p.Log(), "connection limit reached") {
		t.Errorf("no log line about the limit:\n%s", p.Log())
	}
}

func waitConns(t *testing.T, svc *server.ListeningService, n int) {
	t.Helper()
	deadline := time.Now().Add(faults.DefaultBound)
	for svc.Conns() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections held, want %d", svc.Conns(), n)
		}
		time.Sleep(time.Millisecond)
	}
}
