package main

import (
	"net/http"
	"slices"
	"testing"

	"github.com/pingora-go/pingora/examples/internal/exampletest"
)

// echoOrigin returns in response fields named Echo-<name> the request fields it saw, and sends
// the fields the proxy is expected to edit.
func echoOrigin(t *testing.T) string {
	return exampletest.Origin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, name := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Internal-Token", "X-Custom"} {
			if v, ok := r.Header[name]; ok {
				w.Header()["Echo-"+name] = v
			}
		}
		w.Header().Set("Server", "origin/1.0")
		w.Header().Set("Alt-Svc", `h3=":443"; ma=86400`)
		w.Header().Set("X-Powered-By", "php")
		w.Header().Set("Via", "1.1 cdn")
		w.Write([]byte("ok"))
	}))
}

func TestHeaderEdits(t *testing.T) {
	app, err := newProxy(echoOrigin(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := exampletest.Serve(t, app)
	c := exampletest.Client(t)

	tests := []struct {
		name   string
		sent   http.Header
		header string   // response field to check
		want   []string // its values; nil means absent
	}{
		{"X-Forwarded-For added", nil, "Echo-X-Forwarded-For", []string{"127.0.0.1"}},
		{"X-Forwarded-For extended", http.Header{"X-Forwarded-For": {"203.0.113.7"}}, "Echo-X-Forwarded-For", []string{"203.0.113.7, 127.0.0.1"}},
		{"X-Forwarded-Proto set", nil, "Echo-X-Forwarded-Proto", []string{"http"}},
		{"X-Forwarded-Proto replaced", http.Header{"X-Forwarded-Proto": {"https"}}, "Echo-X-Forwarded-Proto", []string{"http"}},
		{"X-Internal-Token removed", http.Header{"X-Internal-Token": {"secret"}}, "Echo-X-Internal-Token", nil},
		{"other request fields kept", http.Header{"X-Custom": {"1"}}, "Echo-X-Custom", []string{"1"}},
		{"Server replaced", nil, "Server", []string{"pingora-go"}},
		{"Via appended", nil, "Via", []string{"1.1 cdn", "1.1 pingora-go"}},
		{"Alt-Svc removed", nil, "Alt-Svc", nil},
		{"X-Powered-By removed", nil, "X-Powered-By", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := exampletest.Get(t, c, addr, "/", tt.sent)
			if resp.StatusCode != 200 || body != "ok" {
				t.Fatalf("got %d %q, want 200 \"ok\"", resp.StatusCode, body)
			}
			if got := resp.Header[tt.header]; !slices.Equal(got, tt.want) {
				t.Errorf("%s = %q, want %q", tt.header, got, tt.want)
			}
		})
	}
}
