package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/upstream"
)

// rawH2Origin is a cleartext HTTP/2 upstream driven frame by frame: after the preface and
// settings it calls onHeaders for each request's HEADERS frame.
func rawH2Origin(t testing.TB, onHeaders func(fr *http2.Framer, enc func(status string) []byte, f *http2.MetaHeadersFrame)) string {
	t.Helper()
	return rawOrigin(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		preface := make([]byte, len(http2.ClientPreface))
		if _, err := io.ReadFull(br, preface); err != nil || string(preface) != http2.ClientPreface {
			return
		}
		fr := http2.NewFramer(c, br)
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		fr.WriteSettings()
		var hbuf bytes.Buffer
		henc := hpack.NewEncoder(&hbuf)
		enc := func(status string) []byte {
			hbuf.Reset()
			henc.WriteField(hpack.HeaderField{Name: ":status", Value: status})
			henc.WriteField(hpack.HeaderField{Name: "content-type", Value: "text/plain"})
			return append([]byte(nil), hbuf.Bytes()...)
		}
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
			case *http2.PingFrame:
				if !f.IsAck() {
					fr.WritePing(true, f.Data)
				}
			case *http2.MetaHeadersFrame:
				onHeaders(fr, enc, f)
			}
		}
	})
}

// TestH2RefusedStreamRetried checks that a stream the upstream refuses (RST_STREAM
// REFUSED_STREAM: not processed) is retried, and the client gets the answer of the retry.
func TestH2RefusedStreamRetried(t *testing.T) {
	var streams atomic.Int64
	up := rawH2Origin(t, func(fr *http2.Framer, enc func(string) []byte, f *http2.MetaHeadersFrame) {
		if streams.Add(1) == 1 {
			fr.WriteRSTStream(f.StreamID, http2.ErrCodeRefusedStream)
			return
		}
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: enc("200"), EndHeaders: true})
		fr.WriteData(f.StreamID, true, []byte("second try"))
	})
	peer := mustPeer(t, up)
	peer.Options.ALPN = upstream.H2
	app := &testApp{peers: []*upstream.Peer{peer}}
	addr, _ := startProxy(t, app, proxy.Options{})
	resp, err := newClient().Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "second try" || streams.Load() != 2 {
		t.Fatalf("status %d body %q after %d streams", resp.StatusCode, b, streams.Load())
	}
}

// TestH2UpstreamReadTimeout checks that an HTTP/2 upstream that never answers a stream is
// given up after the peer's ReadTimeout with 504, and one that stops in the middle of a body
// ends the response early (the client sees an error, not a complete body).
func TestH2UpstreamReadTimeout(t *testing.T) {
	up := rawH2Origin(t, func(fr *http2.Framer, enc func(string) []byte, f *http2.MetaHeadersFrame) {
		if strings.HasSuffix(f.PseudoValue("path"), "/half") {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: enc("200"), EndHeaders: true})
			fr.WriteData(f.StreamID, false, []byte("partial"))
		}
		// Otherwise: never answer.
	})
	peer := mustPeer(t, up)
	peer.Options.ALPN = upstream.H2
	peer.Options.ReadTimeout = 300 * time.Millisecond
	app := &testApp{peers: []*upstream.Peer{peer}}
	addr, _ := startProxy(t, app, proxy.Options{})
	start := time.Now()
	resp, err := newClient().Get("http://" + addr + "/never")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 504 || time.Since(start) > 5*time.Second {
		t.Fatalf("status %d after %v, want 504 after about 300ms", resp.StatusCode, time.Since(start))
	}
	resp, err = newClient().Get("http://" + addr + "/half")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("a body cut short upstream read as complete: %q", b)
	}
}

// TestH2SlowReaderBoundedMemory checks end-to-end backpressure: an HTTP/2 client that does not
// read a large response keeps the proxy's memory bounded by the flow-control windows, and the
// response arrives whole once it reads.
func TestH2SlowReaderBoundedMemory(t *testing.T) {
	const size = 128 << 20
	chunk := bytes.Repeat([]byte("z"), 64<<10)
	var sent atomic.Int64
	origin := startH2COrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for sent.Load() < size {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			sent.Add(int64(len(chunk)))
		}
	}))
	peer := mustPeer(t, origin.addr)
	peer.Options.ALPN = upstream.H2
	app := &testApp{peers: []*upstream.Peer{peer}}
	addr, _ := startProxy(t, app, proxy.Options{H2C: true})

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	resp, err := h2cClient().Get("http://" + addr + "/big")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	time.Sleep(time.Second) // the client reads nothing meanwhile
	stalled := sent.Load()
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	if stalled > 48<<20 {
		t.Fatalf("origin sent %d MiB to a client that reads nothing", stalled>>20)
	}
	if grown := int64(during.HeapInuse) - int64(before.HeapInuse); grown > 48<<20 {
		t.Fatalf("heap grew by %d MiB for one stalled stream", grown>>20)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != size {
		t.Fatalf("read %d of %d bytes: %v", n, size, err)
	}
	t.Logf("origin had sent %d KiB while the client read nothing", stalled>>10)
}

// TestH2ClientResetCancelsUpstream checks that an HTTP/2 client resetting its stream while
// the upstream has not answered yet makes the proxy cancel the upstream request at once.
func TestH2ClientResetCancelsUpstream(t *testing.T) {
	canceled := make(chan struct{}, 1)
	arrived := make(chan struct{}, 1)
	origin := startH2COrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
			canceled <- struct{}{}
		case <-time.After(20 * time.Second):
		}
	}))
	for _, upH2 := range []bool{true, false} {
		peer := mustPeer(t, origin.addr)
		if upH2 {
			peer.Options.ALPN = upstream.H2
		}
		app := &testApp{peers: []*upstream.Peer{peer}}
		addr, _ := startProxy(t, app, proxy.Options{H2C: true})
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/wait", nil)
		errc := make(chan error, 1)
		go func() {
			resp, err := h2cClient().Do(req)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("request did not reach the origin")
		}
		cancel() // the client resets its stream
		select {
		case <-canceled:
		case <-time.After(5 * time.Second):
			t.Fatalf("upstream HTTP/2=%v: the origin's request was not canceled after the client reset", upH2)
		}
		<-errc
		for deadline := time.Now().Add(5 * time.Second); app.logged.Load() == 0 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		if e, _ := app.lastErr.Load().(string); !strings.HasPrefix(e, "Downstream ConnectionClosed") {
			t.Fatalf("upstream HTTP/2=%v: a client's reset was logged as %q", upH2, e)
		}
	}
}
