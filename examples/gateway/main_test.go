package main

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/pingora-go/pingora/examples/internal/exampletest"
)

func TestGateway(t *testing.T) {
	var upstreamHits atomic.Int64
	count := func(*http.Request) { upstreamHits.Add(1) }
	def := exampletest.NamedOrigin(t, "main", count)
	family := exampletest.NamedOrigin(t, "family", count)
	app, err := newProxy(def, family)
	if err != nil {
		t.Fatal(err)
	}
	addr := exampletest.Serve(t, app)
	c := exampletest.Client(t)

	tests := []struct {
		name       string
		path       string
		hdr        http.Header
		wantStatus int
		wantBody   string // checked for 200 answers only
		wantUp     bool
	}{
		{"no login", "/", nil, 403, "", false},
		{"no login on family path", "/family/photos", nil, 403, "", false},
		{"authorization", "/", http.Header{"Authorization": {"Bearer x"}}, 200, "main", true},
		{"custom login header", "/index.html", http.Header{LoginHeader: {"alice"}}, 200, "main", true},
		{"family prefix", "/family/photos?id=1", http.Header{LoginHeader: {"alice"}}, 200, "family", true},
		{"family without slash is not the prefix", "/family", http.Header{LoginHeader: {"alice"}}, 200, "main", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := upstreamHits.Load()
			resp, body := exampletest.Get(t, c, addr, tt.path, tt.hdr)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus == 200 && body != tt.wantBody {
				t.Errorf("body %q, want %q", body, tt.wantBody)
			}
			if went := upstreamHits.Load() > before; went != tt.wantUp {
				t.Errorf("request reached an upstream: %v, want %v", went, tt.wantUp)
			}
		})
	}
}
