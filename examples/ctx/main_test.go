package main

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/pingora-go/pingora/examples/internal/exampletest"
)

func TestAttemptsInContext(t *testing.T) {
	tests := []struct {
		name         string
		deadBefore   int // refused upstreams tried before the live one
		wantAttempts string
	}{
		{"first upstream answers", 0, "1"},
		{"one refused upstream first", 1, "2"},
		{"two refused upstreams first", 2, "3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var addrs []string
			for range tt.deadBefore {
				addrs = append(addrs, exampletest.DeadAddr(t))
			}
			addrs = append(addrs, exampletest.NamedOrigin(t, "live", nil))
			app, err := newProxy(addrs...)
			if err != nil {
				t.Fatal(err)
			}
			addr := exampletest.Serve(t, app)
			resp, body := exampletest.Get(t, exampletest.Client(t), addr, "/", nil)
			if resp.StatusCode != 200 || body != "live" {
				t.Fatalf("got %d %q, want 200 \"live\"", resp.StatusCode, body)
			}
			if got := resp.Header.Get("X-Attempts"); got != tt.wantAttempts {
				t.Errorf("X-Attempts %q, want %q", got, tt.wantAttempts)
			}
		})
	}
}

func TestContextAcrossKeepAlive(t *testing.T) {
	origin := exampletest.NamedOrigin(t, "ok", nil)
	app, err := newProxy(origin)
	if err != nil {
		t.Fatal(err)
	}
	addr := exampletest.Serve(t, app)

	// Two clients, each with its own keep-alive connection, take turns.
	clients := []*http.Client{exampletest.Client(t), exampletest.Client(t)}
	for _, c := range clients {
		c.Transport.(*http.Transport).MaxConnsPerHost = 1
	}
	type want struct{ client, onConn, number int }
	steps := []want{{0, 1, 1}, {0, 2, 2}, {1, 1, 3}, {0, 3, 4}, {1, 2, 5}}
	for i, w := range steps {
		resp, _ := exampletest.Get(t, clients[w.client], addr, "/", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("step %d: status %d", i, resp.StatusCode)
		}
		for name, v := range map[string]int{
			"X-Connection-Request": w.onConn,
			"X-Connection-Served":  w.onConn,
			"X-Request-Number":     w.number,
		} {
			if got := resp.Header.Get(name); got != strconv.Itoa(v) {
				t.Errorf("step %d: %s %q, want %d", i, name, got, v)
			}
		}
	}
}
