package main

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/pingora-go/pingora/examples/internal/exampletest"
)

func TestErrorPages(t *testing.T) {
	tests := []struct {
		name       string
		upstream   func(t *testing.T) string
		wantStatus int
		wantPage   bool
	}{
		{"upstream answers", func(t *testing.T) string { return exampletest.NamedOrigin(t, "hello", nil) }, 200, false},
		{"upstream refuses", func(t *testing.T) string { return exampletest.DeadAddr(t) }, 502, true},
		{"upstream silent", func(t *testing.T) string { return exampletest.SilentOrigin(t) }, 504, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, err := newProxy(tt.upstream(t), 200*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			addr := exampletest.Serve(t, app)
			resp, body := exampletest.Get(t, exampletest.Client(t), addr, "/", nil)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			isPage := resp.Header.Get("Content-Type") == "text/html; charset=utf-8" &&
				strings.Contains(body, "<title>"+resp.Status+"</title>")
			if isPage != tt.wantPage {
				t.Errorf("error page %v, want %v; Content-Type %q, body %q", isPage, tt.wantPage, resp.Header.Get("Content-Type"), body)
			}
			waitStatuses(t, app, map[int]int{tt.wantStatus: 1})
		})
	}
}

// waitStatuses waits until app has counted want. Logging runs after the response was sent, so
// the count may trail the client's view by a moment.
func waitStatuses(t *testing.T, app *errorPager, want map[int]int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := app.Statuses()
		if maps.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("statuses %v, want %v", got, want)
		}
		time.Sleep(time.Millisecond)
	}
}
