package faults

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// The kit's upstreams, read directly by the kit's client: each fault produces what its doc
// comment says on the wire.
func TestUpstreamFaultsOnTheWire(t *testing.T) {
	const bound = 2 * time.Second
	cases := []struct {
		name  string
		fault Fault
		req   []byte
		check func(t *testing.T, o Outcome)
	}{
		{"Respond", Respond(Response(200, "ok")), Get("/"), func(t *testing.T, o Outcome) {
			if o.Status != 200 || !o.Complete || string(o.Body) != "ok" {
				t.Fatal(o)
			}
		}},
		{"ResetAfter in the body", ResetAfter(Response(200, strings.Repeat("r", 1000)), 500), Get("/"), func(t *testing.T, o Outcome) {
			if o.Status != 200 || o.Complete || !o.Reset {
				t.Fatal(o)
			}
		}},
		{"ResetAfter 0", ResetAfter(Response(200, "x"), 0), Get("/"), func(t *testing.T, o Outcome) {
			if o.Status != 0 || !o.Closed {
				t.Fatal(o)
			}
		}},
		{"TruncateBody", TruncateBody(100, 7), Get("/"), func(t *testing.T, o Outcome) {
			if o.Status != 200 || o.Complete || len(o.Body) != 7 || !o.Closed || o.Reset {
				t.Fatal(o)
			}
		}},
		{"ChunkedWithoutLastChunk", ChunkedWithoutLastChunk("ab", "cd"), Get("/"), func(t *testing.T, o Outcome) {
			if o.Status != 200 || o.Complete || string(o.Body) != "abcd" || o.CloseDelimited {
				t.Fatal(o)
			}
		}},
		{"Garbage", Garbage([]byte("\x00\x01garbage\r\n\r\n")), Get("/"), func(t *testing.T, o Outcome) {
			if o.Status != 0 || o.Err == nil {
				t.Fatal(o)
			}
		}},
		{"InformationalStorm", InformationalStorm(300, 100, Response(204, "")), Get("/"), func(t *testing.T, o Outcome) {
			if o.Interim != 300 || o.Status != 204 || !o.Complete {
				t.Fatal(o)
			}
		}},
		{"NeverAnswer", NeverAnswer(), Get("/"), func(t *testing.T, o Outcome) {
			if o.Status != 0 || !errors.Is(o.Err, os.ErrDeadlineExceeded) || o.Elapsed < 200*time.Millisecond {
				t.Fatal(o)
			}
		}},
		{"SlowResponse", SlowResponse(Response(200, "s"), 2*time.Millisecond), Get("/"), func(t *testing.T, o Outcome) {
			min := time.Duration(len(Response(200, "s"))-1) * 2 * time.Millisecond
			if o.Status != 200 || !o.Complete || o.Elapsed < min {
				t.Fatalf("%v; want at least %v", o, min)
			}
		}},
		{"CloseAfterHead", CloseAfterHead(10), Get("/"), func(t *testing.T, o Outcome) {
			if o.Status != 200 || o.Complete || len(o.Body) != 0 || !o.Closed {
				t.Fatal(o)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := NewUpstream(t, tc.fault)
			c := Client{Addr: up.Addr(), Bound: bound}
			if tc.name == "NeverAnswer" {
				c.Bound = 200 * time.Millisecond
			}
			tc.check(t, c.Fetch(tc.req))
			if up.Accepted() != 1 || up.Requests() != 1 {
				t.Fatalf("accepted %d, requests %d; want 1 and 1", up.Accepted(), up.Requests())
			}
		})
	}
}

func TestAnswerBeforeBody(t *testing.T) {
	up := NewUpstream(t, AnswerBeforeBody(Response(413, "no")))
	c := Client{Addr: up.Addr(), Bound: 5 * time.Second}
	// The body would take 10 s to send: the answer comes after the head.
	o := c.SlowBody([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"), []byte("0123456789"), time.Second)
	if o.Status != 413 || o.Sent > 60 || o.Elapsed > 2*time.Second {
		t.Fatal(o)
	}
}

func TestUpstreamCloseEndsFaults(t *testing.T) {
	up, err := StartUpstream(NeverAnswer(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", up.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write(Get("/"))
	for up.Requests() == 0 {
		time.Sleep(time.Millisecond)
	}
	done := make(chan struct{})
	go func() { up.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the fault in flight")
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the connection stayed open after Close: %v", err)
	}
}

// recordingServer accepts one connection, sends resp after reading what it was told to, and
// reports what it read.
func recordingServer(t *testing.T, readHead bool, resp []byte) (string, <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan string, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(nc)
		var b strings.Builder
		if readHead {
			req, err := http.ReadRequest(br)
			if err != nil {
				got <- err.Error()
				return
			}
			b.WriteString(req.Method + " " + req.URL.Path)
		}
		nc.Write(resp)
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		rest, _ := readAllFrom(br)
		b.WriteString("|" + rest)
		got <- b.String()
	}()
	return ln.Addr().String(), got
}

func readAllFrom(br *bufio.Reader) (string, error) {
	var b strings.Builder
	_, err := br.WriteTo(&b)
	return b.String(), err
}

func TestClientFaultsOnTheWire(t *testing.T) {
	t.Run("HalfClose sends FIN after the request", func(t *testing.T) {
		addr, got := recordingServer(t, true, Response(200, "ok"))
		o := Client{Addr: addr, Bound: 5 * time.Second}.HalfClose(Get("/half"))
		if o.Status != 200 || !o.Complete {
			t.Fatal(o)
		}
		// The server read EOF right after the request: nothing followed the FIN.
		if s := <-got; s != "GET /half|" {
			t.Fatalf("server read %q", s)
		}
	})
	t.Run("PipelineFlood", func(t *testing.T) {
		up := NewUpstream(t, Respond(Response(200, "p")))
		o := Client{Addr: up.Addr()}.PipelineFlood(Get("/"), 50)
		if o.Responses != 50 || o.Sent != 50*len(Get("/")) || up.Requests() != 50 {
			t.Fatalf("%v; upstream saw %d requests", o, up.Requests())
		}
	})
	t.Run("Slowloris stops when the server answers", func(t *testing.T) {
		addr, _ := recordingServer(t, false, []byte("HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
		o := Client{Addr: addr, Bound: 5 * time.Second}.Slowloris(Get("/"), 50*time.Millisecond)
		if o.Status != 408 || o.Sent >= len(Get("/")) {
			t.Fatal(o)
		}
	})
	t.Run("OversizedHead", func(t *testing.T) {
		addr, got := recordingServer(t, true, Response(200, ""))
		o := Client{Addr: addr, Bound: 5 * time.Second}.OversizedHead(100_000)
		if o.Sent != 100_000 {
			t.Fatalf("sent %d bytes, want 100000: %v", o.Sent, o)
		}
		if s := <-got; !strings.HasPrefix(s, "GET /") {
			t.Fatalf("server read %q", s)
		}
	})
	t.Run("SlowReader stops reading", func(t *testing.T) {
		big := strings.Repeat("b", 8<<20)
		up := NewUpstream(t, Respond(Response(200, big)))
		sr, err := Client{Addr: up.Addr()}.StartSlowReader(Get("/"))
		if err != nil {
			t.Fatal(err)
		}
		defer sr.Close()
		if sr.Status != 200 {
			t.Fatalf("status %d", sr.Status)
		}
		o := sr.Resume(5 * time.Second)
		if !o.Complete || len(o.Body) != len(big) {
			t.Fatal(o)
		}
	})
}
