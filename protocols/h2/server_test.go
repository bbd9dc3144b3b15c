package h2

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
)

func TestDetectPreface(t *testing.T) {
	cases := []struct {
		name    string
		send    string
		close   bool
		wantH2  bool
		wantErr bool
		peeked  string
	}{
		{name: "h2", send: ClientPreface + "\x00\x00", wantH2: true, peeked: ClientPreface},
		{name: "http1", send: "GET / HTTP/1.1\r\n\r\n", peeked: "G"},
		{name: "short http1", send: "P", close: true, wantErr: true, peeked: "P"},
		{name: "pri but http1", send: "PRI * HTTP/1.1\r\n", peeked: "PRI * HTTP/1"},
		{name: "closed", close: true, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			go func() {
				io.WriteString(b, tc.send)
				if tc.close {
					b.Close()
				}
			}()
			isH2, peeked, err := DetectPreface(a, time.Now().Add(waitBound))
			if isH2 != tc.wantH2 || (err != nil) != tc.wantErr || !strings.HasPrefix(string(peeked), tc.peeked) {
				t.Fatalf("h2 %v peeked %q err %v", isH2, peeked, err)
			}
			if !strings.HasPrefix(tc.send, string(peeked)) {
				t.Fatalf("peeked %q is not what was sent", peeked)
			}
			b.Close()
			rest, _ := io.ReadAll(PrefixConn(a, peeked))
			if !strings.HasPrefix(tc.send, string(rest)) || len(rest) < len(peeked) {
				t.Fatalf("replayed %q", rest)
			}
		})
	}
}

// TestH2cOnSharedPort serves HTTP/1 and HTTP/2 on one listener, telling them apart by the
// preface.
func TestH2cOnSharedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				isH2, peeked, err := DetectPreface(c, time.Now().Add(waitBound))
				if err != nil {
					c.Close()
					return
				}
				c = PrefixConn(c, peeked)
				if isH2 {
					NewServerConn(c, nil).Serve(echo)
					return
				}
				line := make([]byte, 14)
				io.ReadFull(c, line)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 14\r\nConnection: close\r\n\r\n")
				c.Write(line)
				c.Close()
			}()
		}
	}()
	cc := dial(t, ln.Addr().String(), nil, nil)
	x, err := exchangeOn(t, cc, header.NewRequest("GET", "/h2"), nil, nil)
	if err != nil || x.resp.Value("x-target") != "/h2" {
		t.Fatalf("h2: %v", err)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /h1 HTTP/1.1\r\nHost: x\r\n\r\n")
	got, _ := io.ReadAll(c)
	if !bytes.HasSuffix(got, []byte("GET /h1 HTTP/1")) {
		t.Fatalf("h1 answer %q", got)
	}
}

// TestServerSlowReader checks that a handler that does not read its request body holds the
// client to the stream window, however much the client wants to send.
func TestServerSlowReader(t *testing.T) {
	const window = 64 << 10
	const total = 16 << 20
	var sent atomic.Int64
	result := make(chan string, 1)
	addr := serve(t, &ServerOptions{StreamWindow: window, ConnWindow: window}, nil, nil, func(s *ServerStream) {
		settle(&sent)
		ahead := sent.Load()
		var got int64
		for {
			p, err := s.ReadBody()
			got += int64(len(p))
			if err != nil {
				break
			}
		}
		s.WriteResponseHeader(header.NewResponse(200))
		s.FinishResponse(nil)
		if ahead > window+64<<10 || got != total {
			result <- "client sent " + itoa(int(ahead)) + " bytes before any read; read " + itoa(int(got))
			return
		}
		result <- ""
	})
	cc := dial(t, addr, nil, nil)
	st, err := cc.NewStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.WriteRequestHeader(header.NewRequest("POST", "/"), false); err != nil {
		t.Fatal(err)
	}
	piece := make([]byte, 8<<10)
	for n := 0; n < total; n += len(piece) {
		if err := st.WriteBody(piece); err != nil {
			t.Fatal(err)
		}
		sent.Add(int64(len(piece)))
	}
	st.FinishRequest(nil)
	if err := st.ReadResponseHeader(); err != nil {
		t.Fatal(err)
	}
	if msg := <-result; msg != "" {
		t.Fatal(msg)
	}
}

// settle waits until n stops growing for a while (bounded by waitBound), so that a writer
// that is not held back would have run far ahead.
func settle(n *atomic.Int64) {
	deadline := time.Now().Add(waitBound)
	last, still := n.Load(), 0
	for still < 100 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
		if v := n.Load(); v != last {
			last, still = v, 0
		} else {
			still++
		}
	}
}

// TestClientSlowReader checks that a client that does not read a response body holds the
// server's handler to the client's stream window.
func TestClientSlowReader(t *testing.T) {
	const window = 64 << 10
	const total = 16 << 20
	var written atomic.Int64
	addr := serve(t, nil, nil, nil, func(s *ServerStream) {
		s.WriteResponseHeader(header.NewResponse(200))
		piece := make([]byte, 8<<10)
		for n := 0; n < total; n += len(piece) {
			if s.WriteBody(piece) != nil {
				return
			}
			written.Add(int64(len(piece)))
		}
		s.FinishResponse(nil)
	})
	cc := dial(t, addr, nil, &ClientOptions{StreamWindow: window, ConnWindow: window})
	st, err := cc.NewStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.WriteRequestHeader(header.NewRequest("GET", "/"), true)
	if err := st.ReadResponseHeader(); err != nil {
		t.Fatal(err)
	}
	settle(&written)
	if ahead := written.Load(); ahead > window+64<<10 {
		t.Fatalf("server wrote %d bytes before the client read any", ahead)
	}
	var got int64
	for {
		p, err := st.ReadBody()
		got += int64(len(p))
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if got != total {
		t.Fatalf("read %d", got)
	}
}

// TestGracefulShutdown checks that Shutdown sends GOAWAY, refuses new streams and lets the
// open one finish.
func TestGracefulShutdown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	conns := make(chan *ServerConn, 1)
	addr := serve(t, nil, nil, conns, func(s *ServerStream) {
		started <- struct{}{}
		<-release
		s.WriteResponseHeader(header.NewResponse(200))
		s.WriteBody([]byte("late"))
		s.FinishResponse(nil)
	})
	cc := dial(t, addr, nil, nil)
	sc := <-conns
	st, err := cc.NewStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.WriteRequestHeader(header.NewRequest("GET", "/slow"), true)
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- sc.Shutdown(ctx) }()
	for !cc.Closing() {
		select {
		case <-ctx.Done():
			t.Fatal("client never saw the GOAWAY")
		case <-time.After(time.Millisecond):
		}
	}
	_, err = cc.NewStream(context.Background())
	if pe, ok := perr.As(err); !ok || !pe.Retryable() {
		t.Fatalf("new stream after GOAWAY: %v", err)
	}
	close(release)
	if err := st.ReadResponseHeader(); err != nil {
		t.Fatal(err)
	}
	body, err := readAll(st)
	if err != nil || body != "late" {
		t.Fatalf("body %q, %v", body, err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func readAll(st *ClientStream) (string, error) {
	var b []byte
	for {
		p, err := st.ReadBody()
		b = append(b, p...)
		if err == io.EOF {
			return string(b), nil
		}
		if err != nil {
			return string(b), err
		}
	}
}

// TestShutdownBounded checks that Shutdown closes the connection when its context ends before
// the streams do.
func TestShutdownBounded(t *testing.T) {
	conns := make(chan *ServerConn, 1)
	started := make(chan struct{}, 1)
	addr := serve(t, nil, nil, conns, func(s *ServerStream) {
		started <- struct{}{}
		<-s.Context().Done()
	})
	cc := dial(t, addr, nil, nil)
	sc := <-conns
	st, _ := cc.NewStream(context.Background())
	defer st.Close()
	st.WriteRequestHeader(header.NewRequest("GET", "/forever"), true)
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := sc.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("shutdown: %v", err)
	}
	<-sc.Done()
	if err := st.ReadResponseHeader(); err == nil {
		t.Fatal("stream survived a closed connection")
	}
}

// TestRapidReset opens and resets streams as fast as it can against handlers that do not
// notice the reset (CVE-2023-44487): no more handlers than MaxConcurrentStreams may run, and
// the connection must be closed.
func TestRapidReset(t *testing.T) {
	const limit = 4
	var running, peak atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	addr := serve(t, &ServerOptions{MaxConcurrentStreams: limit}, nil, nil, func(s *ServerStream) {
		wg.Add(1)
		defer wg.Done()
		n := running.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-release
		running.Add(-1)
	})
	defer func() {
		close(release)
		wg.Wait()
	}()
	r := dialRaw(t, addr)
	block := r.request()
	go func() {
		for id := uint32(1); id < 2000; id += 2 {
			if r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}) != nil ||
				r.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
				return
			}
		}
	}()
	code := r.untilClosed()
	if code != int(http2.ErrCodeEnhanceYourCalm) && code != -1 {
		t.Errorf("connection ended with GOAWAY code %d", code)
	}
	if p := peak.Load(); p > limit {
		t.Fatalf("%d handlers ran at once, limit %d", p, limit)
	}
}

// TestContinuationFlood sends an endless header block in CONTINUATION frames: the server must
// close the connection without running a handler (CVE-2023-45288).
func TestContinuationFlood(t *testing.T) {
	var handled atomic.Bool
	addr := serve(t, &ServerOptions{MaxHeaderListSize: 16 << 10}, nil, nil, func(s *ServerStream) { handled.Store(true) })
	r := dialRaw(t, addr)
	chunk := r.block("x-flood", strings.Repeat("a", 8000))
	writeErr := make(chan error, 1)
	go func() {
		err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: r.request(), EndStream: true})
		for i := 0; err == nil && i < 8192; i++ { // 64 MB unless the server hangs up
			err = r.fr.WriteContinuation(1, false, chunk)
		}
		writeErr <- err
	}()
	r.untilClosed()
	r.Close()
	if err := <-writeErr; err == nil {
		t.Fatal("the server read the whole flood")
	}
	if handled.Load() {
		t.Fatal("a handler ran for the flooded request")
	}
}

// TestMalformedRequests sends requests RFC 9113 section 8.1.1 calls malformed: each must be
// reset with PROTOCOL_ERROR and never reach the handler.
func TestMalformedRequests(t *testing.T) {
	var handled atomic.Int32
	addr := serve(t, nil, nil, nil, func(s *ServerStream) {
		handled.Add(1)
		s.WriteResponseHeader(header.NewResponse(200))
		s.FinishResponse(nil)
	})
	base := []string{":method", "GET", ":scheme", "http", ":path", "/", ":authority", "a"}
	cases := []struct {
		name   string
		fields []string
	}{
		{"no method", []string{":scheme", "http", ":path", "/"}},
		{"no path", []string{":method", "GET", ":scheme", "http"}},
		{"empty path", []string{":method", "GET", ":scheme", "http", ":path", ""}},
		{"connect with path", []string{":method", "CONNECT", ":authority", "a:1", ":path", "/"}},
		{"connection field", append(base, "connection", "close")},
		{"transfer-encoding", append(base, "transfer-encoding", "chunked")},
		{"te gzip", append(base, "te", "gzip")},
		{"bad content-length", append(base, "content-length", "1x")},
		{"uppercase name", append(base, "X-Up", "1")},
		{"status in request", append([]string{":status", "200"}, base...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, addr)
			r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: r.block(tc.fields...), EndStream: true, EndHeaders: true})
			for {
				f, err := r.fr.ReadFrame()
				if err != nil {
					t.Fatalf("connection ended: %v", err)
				}
				switch f := f.(type) {
				case *http2.RSTStreamFrame:
					if f.ErrCode != http2.ErrCodeProtocol {
						t.Fatalf("reset with %v", f.ErrCode)
					}
					return
				case *http2.GoAwayFrame:
					if f.ErrCode != http2.ErrCodeProtocol {
						t.Fatalf("GOAWAY with %v", f.ErrCode)
					}
					return
				case *http2.HeadersFrame:
					t.Fatal("malformed request was answered")
				}
			}
		})
	}
	if n := handled.Load(); n != 0 {
		t.Fatalf("%d malformed requests reached the handler", n)
	}
}

// TestServerStreamBehaviour covers what a handler's choices put on the wire.
func TestServerStreamBehaviour(t *testing.T) {
	addr := serve(t, nil, nil, nil, func(s *ServerStream) {
		switch string(s.Req.Path()) {
		case "/nohead":
			return
		case "/close":
			s.SetKeepAlive(false)
		case "/panic":
			panic("handler bug")
		}
		resp := header.NewResponse(200)
		resp.Append("X-Cookie", s.Req.Value("cookie"))
		resp.Append("X-Host", s.Req.Value("host"))
		s.WriteResponseHeader(resp)
		s.WriteBody([]byte("body"))
		s.FinishResponse(nil)
	})
	cases := []struct {
		name, method, path string
		fields             []string
		wantErr            bool
		wantBody           string
		check              func(t *testing.T, x *exchange, cc *ClientConn)
	}{
		{name: "no head resets", method: "GET", path: "/nohead", wantErr: true},
		{name: "panic resets", method: "GET", path: "/panic", wantErr: true},
		{name: "head drops body", method: "HEAD", path: "/", wantBody: ""},
		{name: "cookies joined", method: "GET", path: "/", fields: []string{"Cookie", "a=1", "Cookie", "b=2", "Host", "h.test"},
			wantBody: "body", check: func(t *testing.T, x *exchange, _ *ClientConn) {
				if got := x.resp.Value("x-cookie"); got != "a=1; b=2" {
					t.Errorf("cookie %q", got)
				}
				if got := x.resp.Value("x-host"); got != "h.test" {
					t.Errorf("host %q", got)
				}
			}},
		{name: "keep-alive off sends GOAWAY", method: "GET", path: "/close", wantBody: "body",
			check: func(t *testing.T, _ *exchange, cc *ClientConn) {
				for i := 0; !cc.Closing(); i++ {
					if i > 10000 {
						t.Fatal("no GOAWAY")
					}
					time.Sleep(time.Millisecond)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cc := dial(t, addr, nil, nil)
			req := header.NewRequest(tc.method, tc.path)
			for i := 0; i+1 < len(tc.fields); i += 2 {
				req.Append(tc.fields[i], tc.fields[i+1])
			}
			x, err := exchangeOn(t, cc, req, nil, nil)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v", err)
			}
			if err != nil {
				return
			}
			if string(x.body) != tc.wantBody {
				t.Errorf("body %q", x.body)
			}
			if tc.check != nil {
				tc.check(t, x, cc)
			}
		})
	}
}

// TestControlFrameFloods sends PING and SETTINGS frames for two seconds without reading the
// acknowledgements: the server must not queue acknowledgements without bound. It writes them
// on its serve loop and stops reading while those writes are blocked (its write timeout then
// closes the connection), so the heap stays flat however long the flood goes on.
func TestControlFrameFloods(t *testing.T) {
	for _, kind := range []string{"ping", "settings"} {
		t.Run(kind, func(t *testing.T) {
			addr := serve(t, &ServerOptions{WriteTimeout: 500 * time.Millisecond}, nil, nil, func(s *ServerStream) {})
			r := dialRaw(t, addr)
			if tc, ok := r.Conn.(*net.TCPConn); ok {
				tc.SetReadBuffer(4 << 10) // the acknowledgements pile up at the server at once
			}
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			var err error
			var sent int
			r.Conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
			var longest time.Duration // the longest a single write was held back
			for ; err == nil && sent < 2_000_000; sent++ {
				t0 := time.Now()
				if kind == "ping" {
					err = r.fr.WritePing(false, [8]byte{byte(sent)})
				} else {
					err = r.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
				}
				longest = max(longest, time.Since(t0))
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("the server took %d %s frames it could not acknowledge", sent, kind)
			}
			if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 16<<20 {
				t.Fatalf("heap grew by %d MiB during the flood", grown>>20)
			}
			t.Logf("flood of %d %s frames stopped after %v (longest write %v): %v", sent, kind, time.Since(start), longest, err)
		})
	}
}

// TestWriteLastBody checks that the last body piece and the end of the stream go out as one
// DATA frame with END_STREAM.
func TestWriteLastBody(t *testing.T) {
	addr := serve(t, nil, nil, nil, func(s *ServerStream) {
		s.WriteResponseHeader(header.NewResponse(200))
		s.WriteLastBody([]byte("the end"))
	})
	r := dialRaw(t, addr)
	r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: r.request(), EndStream: true, EndHeaders: true})
	var data []string
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := f.(*http2.DataFrame); ok && d.StreamID == 1 {
			data = append(data, string(d.Data()))
			if d.StreamEnded() {
				break
			}
		}
	}
	if len(data) != 1 || data[0] != "the end" {
		t.Fatalf("DATA frames %q, want one with the body and END_STREAM", data)
	}
}

// TestUnreadBodyReturnsConnWindow answers requests whose bodies arrived whole without reading
// them: the bytes left unread must go back to the connection's flow-control window when the
// stream ends, or the connection stalls once they add up to the window.
func TestUnreadBodyReturnsConnWindow(t *testing.T) {
	const window, size = 65535, 16 << 10
	addr := serve(t, &ServerOptions{ConnWindow: window, StreamWindow: window}, nil, nil, func(s *ServerStream) {
		waitWholeBody(s)
		s.WriteResponseHeader(header.NewResponse(403))
		s.FinishResponse(nil)
	})
	cc := dial(t, addr, nil, nil)
	done := make(chan error, 1)
	go func() {
		for i := range 3 * window / size {
			x, err := exchangeOn(t, cc, header.NewRequest("POST", "/"), []string{strings.Repeat("x", size)}, nil)
			if err == nil && x.status != 403 {
				err = fmt.Errorf("status %d", x.status)
			}
			if err != nil {
				done <- fmt.Errorf("request %d: %w", i, err)
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitBound):
		t.Fatal("the connection stalled: the window of unread bodies was not given back")
	}
}

// TestBodyDoneWithLastPiece: when the end of the stream has arrived by the time the handler
// reads the last bytes, ReadBody returns them with BodyDone already true, and the trailers in
// place, so that a proxy forwards the body and its end in one go; then io.EOF.
func TestBodyDoneWithLastPiece(t *testing.T) {
	type result struct {
		body          string
		doneWithLast  bool
		trailer, tail string
	}
	got := make(chan result, 1)
	addr := serve(t, nil, nil, nil, func(s *ServerStream) {
		waitWholeBody(s)
		var r result
		for {
			p, err := s.ReadBody()
			r.body += string(p)
			if len(p) > 0 && s.BodyDone() {
				r.doneWithLast = true
				r.trailer = s.Trailers().Value("x-t")
			}
			if err != nil {
				r.tail = err.Error()
				break
			}
		}
		got <- r
		s.WriteResponseHeader(header.NewResponse(204))
		s.FinishResponse(nil)
	})
	cc := dial(t, addr, nil, nil)
	if _, err := exchangeOn(t, cc, header.NewRequest("POST", "/"), []string{"one", "two"}, fields("x-t", "v")); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.body != "onetwo" || !r.doneWithLast || r.trailer != "v" || r.tail != "EOF" {
		t.Fatalf("read %+v; want the body, BodyDone and the trailer with the last piece, then EOF", r)
	}
}

// waitWholeBody waits (within waitBound) until the end of s's request stream has arrived.
func waitWholeBody(s *ServerStream) {
	for deadline := time.Now().Add(waitBound); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		s.body.mu.Lock()
		arrived := s.body.done
		s.body.mu.Unlock()
		if arrived {
			return
		}
	}
}
