package main

import (
	"net/http"
	"sync"
	"testing"

	"github.com/pingora-go/pingora/examples/internal/exampletest"
)

func TestRoundRobinAlternates(t *testing.T) {
	var mu sync.Mutex
	var hosts []string
	seen := func(r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
	}
	a := exampletest.NamedOrigin(t, "a", seen)
	b := exampletest.NamedOrigin(t, "b", seen)
	app, err := newProxy("backend.example", a, b)
	if err != nil {
		t.Fatal(err)
	}
	addr := exampletest.Serve(t, app)
	c := exampletest.Client(t)

	var bodies []string
	for range 6 {
		resp, body := exampletest.Get(t, c, addr, "/", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d, want 200", resp.StatusCode)
		}
		bodies = append(bodies, body)
	}
	for i := 1; i < len(bodies); i++ {
		if bodies[i] == bodies[i-1] {
			t.Fatalf("responses %v: upstream %q answered twice in a row", bodies, bodies[i])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, h := range hosts {
		if h != "backend.example" {
			t.Errorf("upstream saw Host %q, want backend.example", h)
		}
	}
}

func TestFailoverToLiveUpstream(t *testing.T) {
	tests := []struct {
		name  string
		order func(live, dead string) []string
	}{
		{"dead first in list", func(live, dead string) []string { return []string{dead, live} }},
		{"dead second in list", func(live, dead string) []string { return []string{live, dead} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live := exampletest.NamedOrigin(t, "live", nil)
			app, err := newProxy("", tt.order(live, exampletest.DeadAddr(t))...)
			if err != nil {
				t.Fatal(err)
			}
			addr := exampletest.Serve(t, app)
			c := exampletest.Client(t)
			// Round robin sends every other request to the dead upstream first; each of
			// them must be retried on the live one.
			for i := range 6 {
				resp, body := exampletest.Get(t, c, addr, "/", nil)
				if resp.StatusCode != 200 || body != "live" {
					t.Fatalf("request %d: %d %q, want 200 \"live\"", i, resp.StatusCode, body)
				}
			}
		})
	}
}

func TestAllUpstreamsDown(t *testing.T) {
	app, err := newProxy("", exampletest.DeadAddr(t), exampletest.DeadAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := exampletest.Serve(t, app)
	resp, _ := exampletest.Get(t, exampletest.Client(t), addr, "/", nil)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
}
