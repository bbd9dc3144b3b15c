package proxy_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/pingora-go/pingora/cache"
	"github.com/pingora-go/pingora/proxy"
)

// TestCacheDirectives runs the freshness rules of RFC 9111 through the proxy, each on its own
// path of one origin: a request sequence, and how many of its requests reach the origin.
func TestCacheDirectives(t *testing.T) {
	lastModified := time.Now().Add(-10 * 24 * time.Hour).UTC().Format(http.TimeFormat)
	heads := map[string][][2]string{
		"/s-maxage":        {{"Cache-Control", "max-age=0, s-maxage=60"}},
		"/heuristic":       {{"Last-Modified", lastModified}},
		"/heuristic-no":    {{"Last-Modified", lastModified}}, // answered 201: not heuristically cacheable
		"/must-revalidate": {{"Cache-Control", "max-age=0, must-revalidate"}, {"ETag", `"m1"`}},
		"/no-cache":        {{"Cache-Control", "no-cache"}, {"ETag", `"n1"`}},
		"/fresh":           {{"Cache-Control", "max-age=60"}, {"ETag", `"f1"`}},
		"/stale":           {{"Cache-Control", "max-age=60"}, {"Age", "100"}, {"ETag", `"s1"`}},
		"/expires":         {{"Expires", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}},
		"/expired":         {{"Expires", "0"}},
	}
	r := newCacheRig(t, cache.Config{}, proxy.Options{}, func(w http.ResponseWriter, req *http.Request) {
		for _, kv := range heads[req.URL.Path] {
			w.Header().Set(kv[0], kv[1])
		}
		if inm := req.Header.Get("If-None-Match"); inm != "" && inm == w.Header().Get("ETag") {
			w.WriteHeader(304)
			return
		}
		if req.URL.Path == "/heuristic-no" {
			w.WriteHeader(201)
		}
		io.WriteString(w, "body of "+req.URL.Path)
	})
	type step struct {
		lines []string // request fields
		stale bool     // the answer must be a stale hit
	}
	plain := step{}
	for _, tc := range []struct {
		name, path string
		steps      []step
		upstream   int64 // requests that reach the origin
	}{
		{"s-maxage wins over max-age in a shared cache (§5.2.2.10)", "/s-maxage", []step{plain, plain}, 1},
		{"heuristic freshness from Last-Modified (§4.2.2)", "/heuristic", []step{plain, plain}, 1},
		{"no heuristic freshness for a status not cacheable by default", "/heuristic-no", []step{plain, plain}, 2},
		{"Expires in the future (§5.3)", "/expires", []step{plain, plain}, 1},
		{"an invalid Expires is already expired (§5.3)", "/expired", []step{plain, plain}, 2},
		{"must-revalidate: a stale response is validated (§5.2.2.2)", "/must-revalidate", []step{plain, plain}, 2},
		{"no-cache response: stored, validated every time (§5.2.2.4)", "/no-cache", []step{plain, plain, plain}, 3},
		{"request no-cache goes upstream (§5.2.1.4)", "/fresh", []step{plain, {lines: []string{"Cache-Control: no-cache"}}}, 2},
		{"request max-age=0 goes upstream (§5.2.1.1)", "/fresh", []step{{lines: []string{"Cache-Control: max-age=0"}}}, 1},
		{"request min-fresh beyond the lifetime goes upstream (§5.2.1.3)", "/fresh", []step{{lines: []string{"Cache-Control: min-fresh=3600"}}}, 1},
		{"Pragma: no-cache without Cache-Control goes upstream (§5.4)", "/fresh", []step{{lines: []string{"Pragma: no-cache"}}}, 1},
		{"a fresh hit stays a hit", "/fresh", []step{plain}, 0},
		{"request max-stale takes a stale response (§5.2.1.2)", "/stale", []step{plain, {lines: []string{"Cache-Control: max-stale=3600"}, stale: true}}, 1},
		{"without max-stale a stale response is validated", "/stale", []step{plain}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := r.hits.Load()
			for i, s := range tc.steps {
				rep := r.do("GET", tc.path, s.lines...)
				if rep.status/100 != 2 || rep.body != "body of "+tc.path {
					t.Fatalf("step %d: %d %q", i, rep.status, rep.body)
				}
				if s.stale && !rep.cs("hit") {
					t.Fatalf("step %d: Cache-Status %q, want a (stale) hit", i, rep.head.Get("Cache-Status"))
				}
			}
			if got := r.hits.Load() - before; got != tc.upstream {
				t.Fatalf("%d requests reached the origin, want %d", got, tc.upstream)
			}
		})
	}
}
