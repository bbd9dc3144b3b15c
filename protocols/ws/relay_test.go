package ws

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-ch
	if b == nil {
		t.Fatal("accept failed")
	}
	for _, c := range []net.Conn{a, b} {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		t.Cleanup(func() { c.Close() })
	}
	return a, b
}

// fixture is a relay between a test client and a test server over loopback TCP.
type fixture struct {
	client, server net.Conn // the test's ends
	done           chan error
	stats          *Stats
}

// start runs run (Pipe or Relay) on the proxy's ends, with buffered bytes as if they came with
// the handshake.
func start(t *testing.T, run func(c, s Endpoint, o *Options) error, o *Options, cbuf, sbuf []byte) *fixture {
	t.Helper()
	client, pc := tcpPair(t)
	ps, server := tcpPair(t)
	f := &fixture{client: client, server: server, done: make(chan error, 1), stats: new(Stats)}
	o.Stats = f.stats
	go func() { f.done <- run(Endpoint{Conn: pc, Buffered: cbuf}, Endpoint{Conn: ps, Buffered: sbuf}, o) }()
	return f
}

func (f *fixture) wait(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case err := <-f.done:
		return err
	case <-time.After(within):
		t.Fatal("the relay did not end")
		return nil
	}
}

func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPipeForwardsBothWaysAndHalfCloses(t *testing.T) {
	f := start(t, Pipe, &Options{}, []byte("early-c "), []byte("early-s "))
	io.WriteString(f.client, "hello")
	if got := readN(t, f.server, 13); got != "early-c hello" {
		t.Fatalf("server got %q", got)
	}
	if got := readN(t, f.client, 8); got != "early-s " {
		t.Fatalf("client got %q", got)
	}
	// The client is done sending; the server still answers.
	f.client.(*net.TCPConn).CloseWrite()
	if b, err := io.ReadAll(f.server); err != nil || len(b) != 0 {
		t.Fatalf("server after the client's half-close: %q %v", b, err)
	}
	io.WriteString(f.server, "late answer")
	f.server.Close()
	if b, err := io.ReadAll(f.client); err != nil || string(b) != "late answer" {
		t.Fatalf("client: %q %v", b, err)
	}
	if err := f.wait(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	s := f.stats.Snapshot()
	if s.Bytes[FromClient] != 13 || s.Bytes[FromServer] != 19 || s.Active != 0 || s.Sessions != 1 || s.Filtered != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestPipeTimeouts(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		f := start(t, Pipe, &Options{IdleTimeout: 200 * time.Millisecond}, nil, nil)
		// Activity keeps it open past the idle timeout.
		for range 4 {
			io.WriteString(f.client, "x")
			readN(t, f.server, 1)
			time.Sleep(100 * time.Millisecond)
		}
		t0 := time.Now()
		if err := f.wait(t, 3*time.Second); err != ErrIdleTimeout {
			t.Fatalf("ended with %v", err)
		}
		if d := time.Since(t0); d > time.Second {
			t.Fatalf("idle timeout took %v", d)
		}
		if _, err := f.client.Read(make([]byte, 1)); err == nil {
			t.Fatal("client connection still open")
		}
	})
	t.Run("total", func(t *testing.T) {
		f := start(t, Pipe, &Options{TotalTimeout: 300 * time.Millisecond}, nil, nil)
		stop := time.Now().Add(2 * time.Second)
		for time.Now().Before(stop) {
			if _, err := io.WriteString(f.client, "x"); err != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := f.wait(t, 3*time.Second); err != ErrTotalTimeout {
			t.Fatalf("ended with %v", err)
		}
	})
	t.Run("write", func(t *testing.T) {
		f := start(t, Pipe, &Options{WriteTimeout: 300 * time.Millisecond}, nil, nil)
		// The server floods, the client never reads: the relay's write to the client blocks.
		go func() {
			chunk := make([]byte, 64<<10)
			for {
				if _, err := f.server.Write(chunk); err != nil {
					return
				}
			}
		}()
		err := f.wait(t, 10*time.Second)
		var ee *EndpointError
		if !errors.As(err, &ee) || ee.Side != ClientSide || !errors.Is(err, ErrWriteTimeout) {
			t.Fatalf("ended with %v", err)
		}
	})
	t.Run("half-close", func(t *testing.T) {
		f := start(t, Pipe, &Options{HalfCloseTimeout: 200 * time.Millisecond}, nil, nil)
		f.client.Close()
		// The server never closes: the relay ends it after the half-close timeout.
		if err := f.wait(t, 3*time.Second); err != nil {
			t.Fatalf("ended with %v", err)
		}
	})
}

// wsClient and wsServer are the test's WebSocket ends around a relay.
type wsEnd struct {
	r *Reader
	w *Writer
}

func endpoints(f *fixture, c *Config) (client, server wsEnd) {
	return wsEnd{NewReader(f.client, ClientSide, c), NewWriter(f.client, ClientSide, c)},
		wsEnd{NewReader(f.server, ServerSide, c), NewWriter(f.server, ServerSide, c)}
}

func (e wsEnd) expect(t *testing.T, op Opcode, payload string) *Message {
	t.Helper()
	m, err := e.r.ReadMessage()
	if err != nil {
		t.Fatalf("want %s %q: %v", op, payload, err)
	}
	if m.Opcode != op || string(m.Payload) != payload {
		t.Fatalf("got %s %.40q, want %s %.40q", m.Opcode, m.Payload, op, payload)
	}
	return m
}

func TestRelayFilter(t *testing.T) {
	for _, deflate := range []*DeflateParams{nil, {}, {ServerNoContextTakeover: true, ClientNoContextTakeover: true, ClientMaxWindowBits: 9}} {
		filter := func(m *Message) (Action, error) {
			switch s := string(m.Payload); {
			case s == "drop me":
				return Drop, nil
			case m.Direction == FromClient && m.Opcode == OpText:
				m.Payload = []byte(strings.ToUpper(s))
			case m.Direction == FromServer && s == "bye":
				return Close(4000, "filter says bye"), nil
			}
			return Pass, nil
		}
		c := &Config{Deflate: deflate, FragmentSize: 7}
		f := start(t, func(cl, s Endpoint, o *Options) error { return Relay(cl, s, o, filter) }, &Options{Config: *c}, nil, nil)
		client, server := endpoints(f, c)
		client.w.WriteMessage(OpText, []byte("hello, server"), true)
		// A message that came compressed goes on compressed, one that did not, not.
		if m := server.expect(t, OpText, "HELLO, SERVER"); m.Compressed != (deflate != nil) {
			t.Fatalf("deflate %+v: relayed compressed=%v", deflate, m.Compressed)
		}
		client.w.WriteMessage(OpText, []byte("drop me"), true)
		client.w.WriteControl(OpPing, []byte("are you there"))
		server.expect(t, OpPing, "are you there")
		server.w.WriteControl(OpPong, []byte("yes"))
		client.expect(t, OpPong, "yes")
		big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
		server.w.WriteMessage(OpBinary, big, false)
		if m := client.expect(t, OpBinary, string(big)); m.Compressed {
			t.Fatal("an uncompressed message was relayed compressed")
		}
		server.w.WriteMessage(OpText, []byte("bye"), true)
		client.expect(t, OpClose, "\x0f\xa0filter says bye")
		server.expect(t, OpClose, "\x0f\xa0filter says bye")
		client.w.WriteClose(4000, "")
		server.w.WriteClose(4000, "")
		f.server.Close()
		f.client.Close()
		if err := f.wait(t, 5*time.Second); err != nil {
			t.Fatalf("deflate %+v: %v", deflate, err)
		}
		s := f.stats.Snapshot()
		if s.Messages != [2]uint64{2, 2} || s.Dropped != [2]uint64{1, 0} || s.Filtered != 1 {
			t.Fatalf("stats %+v", s)
		}
	}
}

// A close handshake passes through with its code, and the relay ends.
func TestRelayCloseHandshake(t *testing.T) {
	f := start(t, func(c, s Endpoint, o *Options) error { return Relay(c, s, o, nil) }, &Options{},
		cat(cframe(true, OpText, "early")), nil)
	client, server := endpoints(f, nil)
	server.expect(t, OpText, "early")
	client.w.WriteClose(CloseGoingAway, "tab closed")
	server.expect(t, OpClose, "\x03\xe9tab closed")
	server.w.WriteClose(CloseGoingAway, "")
	client.expect(t, OpClose, "\x03\xe9")
	f.server.Close()
	if err := f.wait(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestRelayProtocolViolation(t *testing.T) {
	tests := []struct {
		name   string
		bad    []byte
		code   CloseCode
		limits Config
	}{
		{"unmasked", sframe(true, OpText, "x"), CloseProtocolError, Config{}},
		{"invalid UTF-8", cframe(true, OpText, "\xff"), CloseInvalidPayload, Config{}},
		{"too big", cframe(true, OpBinary, strings.Repeat("x", 100)), CloseMessageTooBig, Config{MaxMessageSize: 64}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t, func(c, s Endpoint, o *Options) error { return Relay(c, s, o, nil) }, &Options{Config: tt.limits}, nil, nil)
			client, server := endpoints(f, nil)
			f.client.Write(tt.bad)
			m, err := client.r.ReadMessage()
			if err != nil || m.Opcode != OpClose || m.CloseCode() != tt.code {
				t.Fatalf("client got %+v %v, want close %d", m, err, tt.code)
			}
			m, err = server.r.ReadMessage()
			if err != nil || m.Opcode != OpClose || m.CloseCode() != CloseGoingAway {
				t.Fatalf("server got %+v %v, want close 1001", m, err)
			}
			server.w.WriteClose(CloseGoingAway, "")
			f.server.Close()
			err = f.wait(t, 5*time.Second)
			var ee *EndpointError
			if !errors.As(err, &ee) || ee.Side != ClientSide {
				t.Fatalf("relay ended with %v", err)
			}
			if code, ok := IsCloseError(err); !ok || code != tt.code {
				t.Fatalf("relay error code %d", code)
			}
		})
	}
}

func TestRelayFilterFailure(t *testing.T) {
	for _, tt := range []struct {
		name   string
		filter Filter
	}{
		{"error", func(*Message) (Action, error) { return Pass, errors.New("no") }},
		{"panic", func(*Message) (Action, error) { panic("boom") }},
		{"invalid UTF-8", func(m *Message) (Action, error) { m.Payload = []byte{0xff}; return Pass, nil }},
		{"control opcode", func(m *Message) (Action, error) { m.Opcode = OpPing; return Pass, nil }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t, func(c, s Endpoint, o *Options) error { return Relay(c, s, o, tt.filter) }, &Options{}, nil, nil)
			client, server := endpoints(f, nil)
			client.w.WriteMessage(OpText, []byte("hi"), false)
			client.expect(t, OpClose, "\x03\xf3proxy filter failed")
			server.expect(t, OpClose, "\x03\xf3proxy filter failed")
			f.client.Close()
			f.server.Close()
			var fe *FilterError
			if err := f.wait(t, 5*time.Second); !errors.As(err, &fe) {
				t.Fatalf("relay ended with %v", err)
			}
		})
	}
}

// The server's connection ending without a close frame reaches the client as the end of its
// connection (1006 for the client).
func TestRelayAbnormalEnd(t *testing.T) {
	f := start(t, func(c, s Endpoint, o *Options) error { return Relay(c, s, o, nil) }, &Options{HalfCloseTimeout: time.Second}, nil, nil)
	client, _ := endpoints(f, nil)
	f.server.Close()
	if _, err := client.r.ReadMessage(); err != io.EOF {
		t.Fatalf("client read %v", err)
	}
	f.client.Close()
	if err := f.wait(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}
