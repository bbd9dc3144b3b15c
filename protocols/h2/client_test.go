package h2

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"

	"golang.org/x/net/http2"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
)

// rawServer accepts one connection, reads the preface, sends its settings and runs act when
// the first request's HEADERS arrive.
func rawServer(t *testing.T, act func(r *rawConn, streamID uint32)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		pre := make([]byte, len(ClientPreface))
		if _, err := io.ReadFull(c, pre); err != nil {
			return
		}
		r := newRawConn(c)
		r.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1})
		for {
			f, err := r.fr.ReadFrame()
			if err != nil {
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					r.fr.WriteSettingsAck()
				}
			case *http2.HeadersFrame:
				act(r, f.StreamID)
			}
		}
	}()
	return ln.Addr().String()
}

func TestClientErrors(t *testing.T) {
	cases := []struct {
		name  string
		act   func(r *rawConn, id uint32)
		typ   perr.ErrorType
		retry perr.RetryType
	}{
		{"refused stream", func(r *rawConn, id uint32) { r.fr.WriteRSTStream(id, http2.ErrCodeRefusedStream) },
			perr.H2Error, perr.Retry(true)},
		{"http/1.1 required", func(r *rawConn, id uint32) { r.fr.WriteRSTStream(id, http2.ErrCodeHTTP11Required) },
			perr.H2Downgrade, perr.Retry(true)},
		{"internal error", func(r *rawConn, id uint32) { r.fr.WriteRSTStream(id, http2.ErrCodeInternal) },
			perr.H2Error, perr.Retry(false)},
		{"goaway no error, not processed", func(r *rawConn, id uint32) { r.fr.WriteGoAway(0, http2.ErrCodeNo, nil) },
			perr.H2Error, perr.Retry(true)},
		{"goaway protocol error", func(r *rawConn, id uint32) {
			r.fr.WriteGoAway(0, http2.ErrCodeProtocol, nil)
			r.Close()
		}, perr.InvalidH2, perr.Retry(true)},
		{"goaway no error, then closed", func(r *rawConn, id uint32) {
			r.fr.WriteGoAway(id, http2.ErrCodeNo, nil)
			r.Close()
		}, perr.H2Error, perr.Retry(true)},
		{"closed before the head", func(r *rawConn, id uint32) { r.Close() },
			perr.ReadError, perr.ReusedOnly},
		{"invalid frame", func(r *rawConn, id uint32) { r.fr.WriteData(id+100, true, []byte("x")) },
			perr.InvalidH2, perr.Retry(true)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cc := dial(t, rawServer(t, tc.act), nil, nil)
			_, err := exchangeOn(t, cc, header.NewRequest("GET", "/"), nil, nil)
			pe, ok := perr.As(err)
			if !ok {
				t.Fatalf("error %v is not a *perr.Error", err)
			}
			if pe.Type != tc.typ || pe.Retry != tc.retry || pe.Source != perr.Upstream {
				t.Fatalf("got %v (retry %v), want %v retry %v", pe, pe.Retry, tc.typ.Name(), tc.retry)
			}
		})
	}
}

// TestStreamLimits checks both caps on concurrent streams: this side's option and the
// server's setting.
func TestStreamLimits(t *testing.T) {
	release := make(chan struct{})
	addr := serve(t, &ServerOptions{MaxConcurrentStreams: 2}, nil, nil, func(s *ServerStream) {
		s.WriteResponseHeader(header.NewResponse(200))
		s.Flush()
		<-release
		s.FinishResponse(nil)
	})
	defer close(release)
	cases := []struct {
		name string
		max  int
		open int // streams that must open
	}{
		{"own limit", 1, 1},
		{"server limit", 10, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cc := dial(t, addr, nil, &ClientOptions{MaxConcurrentStreams: tc.max})
			for i := range tc.open {
				st, err := cc.NewStream(context.Background())
				if err != nil {
					t.Fatalf("stream %d: %v", i, err)
				}
				defer st.Close()
				st.WriteRequestHeader(header.NewRequest("GET", "/"), true)
				if err := st.ReadResponseHeader(); err != nil {
					t.Fatal(err)
				}
			}
			if cc.CanTakeStream() {
				t.Fatal("CanTakeStream past the limit")
			}
			_, err := cc.NewStream(context.Background())
			if pe, ok := perr.As(err); !ok || !pe.Retryable() {
				t.Fatalf("stream past the limit: %v", err)
			}
			if cc.Idle() || cc.ActiveStreams() != tc.open {
				t.Fatalf("idle %v active %d", cc.Idle(), cc.ActiveStreams())
			}
		})
	}
}

func TestPingAndClose(t *testing.T) {
	addr := serve(t, nil, nil, nil, echo)
	cc := dial(t, addr, nil, nil)
	if err := cc.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !cc.Idle() || cc.Closing() {
		t.Fatalf("fresh connection: idle %v closing %v", cc.Idle(), cc.Closing())
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	if err := cc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if !cc.Closing() || cc.Idle() {
		t.Fatal("shut down connection still usable")
	}
	if _, err := cc.NewStream(context.Background()); err == nil {
		t.Fatal("new stream on a shut down connection")
	}
}

// TestCancelStream checks that closing an unfinished stream resets it on the server and frees
// its place.
func TestCancelStream(t *testing.T) {
	canceled := make(chan struct{})
	addr := serve(t, nil, nil, nil, func(s *ServerStream) {
		s.WriteResponseHeader(header.NewResponse(200))
		s.Flush()
		<-s.Context().Done()
		close(canceled)
	})
	cc := dial(t, addr, nil, nil)
	st, err := cc.NewStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st.WriteRequestHeader(header.NewRequest("POST", "/"), false)
	st.WriteBody([]byte("partial"))
	if err := st.ReadResponseHeader(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	<-canceled
	if cc.ActiveStreams() != 0 {
		t.Fatal("closed stream still counted")
	}
}

// TestClientErrorMapping checks error mappings that a scripted server cannot provoke on
// demand.
func TestClientErrorMapping(t *testing.T) {
	e := clientError(errors.New("http2: client conn not usable"), goAwayState{}, true, "reading the response head")
	if retry, decided := e.Retry.Decided(); !decided || !retry || e.Source != perr.Upstream {
		t.Fatalf("a request that never left a closing connection: %v, retry %v/%v", e, retry, decided)
	}
}
