package server

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestHTTPAppAnswersDuringShutdown: a connection handed over just as shutdown began (the
// accept loop took it, then the upgrade started) still gets its request answered, with
// keep-alive off. It used to be closed unanswered half of the time, which a client sees as a
// request dropped during an upgrade.
func TestHTTPAppAnswersDuringShutdown(t *testing.T) {
	app := NewHTTPApp(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	shutdown, cancel := context.WithCancel(context.Background())
	cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for i := range 20 {
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		server, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan struct{})
		go func() {
			app.ServeConn(shutdown, server)
			close(served)
		}()
		client.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(client, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(client), nil)
		if err != nil {
			t.Fatalf("connection %d: no answer during shutdown: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" || !resp.Close {
			t.Fatalf("connection %d: %d %q close=%v, want 200 ok and Connection: close", i, resp.StatusCode, b, resp.Close)
		}
		client.Close()
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Fatalf("connection %d: ServeConn did not return", i)
		}
	}
}
