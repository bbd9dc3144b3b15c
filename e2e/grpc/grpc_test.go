package grpce2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// call is what a case gets: a client of the proxy and the service behind it.
type call struct {
	cc  *grpc.ClientConn
	svc *service
}

// ctx returns a context that ends after waitBound, the bound of every call.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), waitBound)
	t.Cleanup(cancel)
	return c
}

// TestGRPCThroughProxy runs every case over each pair of downstream and upstream transports:
// h2c or TLS between the client and the proxy, h2c or TLS between the proxy and the server.
func TestGRPCThroughProxy(t *testing.T) {
	k := newPKI(t)
	cases := []struct {
		name string
		run  func(t *testing.T, c call)
	}{
		{"unary", testUnary},
		{"concurrent unary", testConcurrentUnary},
		{"4 MiB message", testLargeMessage},
		{"server streaming", testServerStreaming},
		{"client streaming", testClientStreaming},
		{"bidirectional interleaved", testBidi},
		{"metadata both ways", testMetadata},
		{"status in trailers only", testNotFound},
		{"status after messages", testStreamError},
		{"deadline propagation", testDeadline},
		{"client cancel resets upstream", testCancel},
	}
	for _, down := range endpoints {
		for _, up := range endpoints {
			t.Run(down.name+" to "+up.name, func(t *testing.T) {
				svc := newService()
				origin := startGRPC(t, up, k, svc)
				addr := startProxy(t, down, up, k, origin)
				c := call{cc: dialProxy(t, down, k, addr), svc: svc}
				for _, tc := range cases {
					t.Run(tc.name, func(t *testing.T) { tc.run(t, c) })
				}
			})
		}
	}
}

func testUnary(t *testing.T, c call) {
	out := new(msg)
	if err := c.cc.Invoke(ctx(t), method("Echo"), &msg{b: []byte("hello")}, out); err != nil {
		t.Fatal(err)
	}
	if string(out.b) != "hello" {
		t.Fatalf("got %q", out.b)
	}
}

// testConcurrentUnary sends many calls at once, as streams of one client connection that the
// proxy multiplexes onto its upstream connection.
func testConcurrentUnary(t *testing.T, c call) {
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			in := &msg{b: []byte(strings.Repeat(strconv.Itoa(i), i*100+1))}
			out := new(msg)
			if err := c.cc.Invoke(ctx(t), method("Echo"), in, out); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(in.b, out.b) {
				errs <- fmt.Errorf("call %d: got %d bytes back, sent %d", i, len(out.b), len(in.b))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// testLargeMessage sends a 4 MiB message and gets it back: many DATA frames each way, and
// more than the default HTTP/2 windows, so the proxy must keep flow control moving.
func testLargeMessage(t *testing.T, c call) {
	in := &msg{b: make([]byte, 4<<20)}
	rand.Read(in.b)
	out := new(msg)
	if err := c.cc.Invoke(ctx(t), method("Echo"), in, out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in.b, out.b) {
		t.Fatalf("got %d bytes back, not the 4 MiB sent", len(out.b))
	}
}

func testServerStreaming(t *testing.T, c call) {
	const n = 2000
	s, err := c.cc.NewStream(ctx(t), &listDesc, method("List"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendMsg(&msg{b: []byte(strconv.Itoa(n))}); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		m := new(msg)
		if err := s.RecvMsg(m); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if want := strconv.Itoa(i) + ":"; !bytes.HasPrefix(m.b, []byte(want)) || len(m.b) != len(want)+100 {
			t.Fatalf("message %d is %q", i, m.b)
		}
	}
	if err := s.RecvMsg(new(msg)); !errors.Is(err, io.EOF) {
		t.Fatalf("after %d messages: %v, want io.EOF (status OK)", n, err)
	}
}

func testClientStreaming(t *testing.T, c call) {
	s, err := c.cc.NewStream(ctx(t), &sumDesc, method("Sum"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	total := 0
	for i := range n {
		b := bytes.Repeat([]byte{'c'}, i%300)
		total += len(b)
		if err := s.SendMsg(&msg{b: b}); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	out := new(msg)
	if err := s.RecvMsg(out); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d %d", n, total); string(out.b) != want {
		t.Fatalf("server counted %q, want %q", out.b, want)
	}
	if err := s.RecvMsg(new(msg)); !errors.Is(err, io.EOF) {
		t.Fatalf("after the answer: %v, want io.EOF", err)
	}
}

// testBidi sends a message only once the answer to the previous one came back: a proxy that
// held either direction back (buffering a whole body, waiting for the end of the request)
// would stall the call.
func testBidi(t *testing.T, c call) {
	s, err := c.cc.NewStream(ctx(t), &chatDesc, method("Chat"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		say := fmt.Sprintf("message %d %s", i, strings.Repeat("b", i*10))
		if err := s.SendMsg(&msg{b: []byte(say)}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		m := new(msg)
		if err := s.RecvMsg(m); err != nil {
			t.Fatalf("receive %d: %v", i, err)
		}
		if string(m.b) != "echo "+say {
			t.Fatalf("answer %d is %.40q", i, m.b)
		}
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := s.RecvMsg(new(msg)); !errors.Is(err, io.EOF) {
		t.Fatalf("after CloseSend: %v, want io.EOF", err)
	}
}

// testMetadata sends ASCII and binary metadata and checks what the server echoes in its
// response headers and trailers.
func testMetadata(t *testing.T, c call) {
	bin := string([]byte{0, 0xff, '\r', '\n', 0x80, 'z'})
	mctx := metadata.AppendToOutgoingContext(ctx(t), "x-client", "c1", "x-data-bin", bin)
	var hdr, tr metadata.MD
	out := new(msg)
	if err := c.cc.Invoke(mctx, method("Echo"), &msg{b: []byte("md")}, out, grpc.Header(&hdr), grpc.Trailer(&tr)); err != nil {
		t.Fatal(err)
	}
	if got := hdr.Get("x-echo-client"); len(got) != 1 || got[0] != "c1" {
		t.Errorf("header x-echo-client = %q, want [c1]", got)
	}
	if got := hdr.Get("x-echo-data-bin"); len(got) != 1 || got[0] != bin {
		t.Errorf("header x-echo-data-bin = %q, want [%q]", got, bin)
	}
	if got := tr.Get("x-trailer"); len(got) != 1 || got[0] != "t-c1" {
		t.Errorf("trailer x-trailer = %q, want [t-c1] (all trailers: %v)", got, tr)
	}
}

// testNotFound gets an error status that the server sends as a trailers-only response: one
// HEADERS frame with END_STREAM holding grpc-status, grpc-message and the trailer metadata.
func testNotFound(t *testing.T, c call) {
	var tr metadata.MD
	err := c.cc.Invoke(ctx(t), method("Echo"), &msg{b: []byte("notfound")}, new(msg), grpc.Trailer(&tr))
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.NotFound || st.Message() != notFoundMessage {
		t.Fatalf("got %v, want NotFound %q", err, notFoundMessage)
	}
	if got := tr.Get("x-why"); len(got) != 1 || got[0] != "missing" {
		t.Errorf("trailer x-why = %q, want [missing] (all trailers: %v)", got, tr)
	}
}

// testStreamError gets an error status in trailers that follow messages.
func testStreamError(t *testing.T, c call) {
	var tr metadata.MD
	s, err := c.cc.NewStream(ctx(t), &listDesc, method("List"), grpc.Trailer(&tr))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendMsg(&msg{b: []byte("3 fail")}); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.RecvMsg(new(msg)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	err = s.RecvMsg(new(msg))
	if st, ok := status.FromError(err); !ok || st.Code() != codes.Aborted || st.Message() != "stopped after 3" {
		t.Fatalf("got %v, want Aborted \"stopped after 3\"", err)
	}
	if got := tr.Get("x-sent"); len(got) != 1 || got[0] != "3" {
		t.Errorf("trailer x-sent = %q, want [3] (all trailers: %v)", got, tr)
	}
}

// testDeadline checks that the client's deadline reaches the server through the proxy as
// grpc-timeout: the server's context has nearly the same deadline.
func testDeadline(t *testing.T, c call) {
	const timeout = 7 * time.Second
	dctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out := new(msg)
	if err := c.cc.Invoke(dctx, method("Deadline"), &msg{}, out); err != nil {
		t.Fatal(err)
	}
	ms, err := strconv.Atoi(string(out.b))
	if err != nil {
		t.Fatalf("the server saw no deadline: %q", out.b)
	}
	if left := time.Duration(ms) * time.Millisecond; left <= timeout-3*time.Second || left > timeout {
		t.Fatalf("the server's deadline was %v away, want a little under %v", left, timeout)
	}
}

// testCancel cancels a call in flight: the proxy must reset the upstream stream, so that the
// server's context ends with context.Canceled.
func testCancel(t *testing.T, c call) {
	cctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	s, err := c.cc.NewStream(cctx, &hangDesc, method("Hang"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendMsg(&msg{b: []byte("hang")}); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	m := new(msg)
	if err := s.RecvMsg(m); err != nil || string(m.b) != "started" {
		t.Fatalf("first message %q, %v", m.b, err)
	}
	cancel()
	if err := s.RecvMsg(new(msg)); status.Code(err) != codes.Canceled {
		t.Errorf("client after cancel: %v, want Canceled", err)
	}
	select {
	case err := <-c.svc.canceled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the server's call ended with %v, want context.Canceled", err)
		}
	case <-time.After(waitBound + 5*time.Second):
		t.Fatal("the server never learned that the call was canceled")
	}
}
