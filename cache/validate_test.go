package cache

import (
	"testing"
	"time"

	"github.com/pingora-go/pingora/header"
)

// TestConditionalRequest covers RFC 9111 §4.3.1: validators from the stored response, the
// client's own conditionals and Range removed, HEAD fetched as GET.
func TestConditionalRequest(t *testing.T) {
	var p Policy
	m, _ := p.NewMeta(reqOf("GET", "/"), respOf(200, "Cache-Control: max-age=1", `ETag: "v1"`, "Last-Modified: "+httpDate(t0.Add(-time.Hour))), t0, t0)
	req := reqOf("HEAD", "/", "If-None-Match: \"other\"", "Range: bytes=0-1", "If-Range: \"v1\"", "If-Modified-Since: "+httpDate(t0), "Accept: */*")
	ConditionalRequest(req, m)
	if !req.IsMethod("GET") {
		t.Error("HEAD must be fetched as GET")
	}
	if req.Value("If-None-Match") != `"v1"` || req.Count("If-None-Match") != 1 {
		t.Errorf("If-None-Match %q", req.Value("If-None-Match"))
	}
	if req.Value("If-Modified-Since") != httpDate(t0.Add(-time.Hour)) {
		t.Errorf("If-Modified-Since %q", req.Value("If-Modified-Since"))
	}
	if req.Has("Range") || req.Has("If-Range") || !req.Has("Accept") {
		t.Error("Range/If-Range kept or Accept lost")
	}
	plain := reqOf("GET", "/", "If-Match: *")
	UpstreamRequest(plain)
	if plain.Has("If-Match") {
		t.Error("UpstreamRequest must remove conditionals")
	}
}

// TestMerge304 covers RFC 9111 §4.3.4 and §3.2: which stored response a 304 updates and how
// its fields are merged.
func TestMerge304(t *testing.T) {
	var p Policy
	stored := respOf(200, "Cache-Control: max-age=10", `ETag: "v1"`, "Content-Length: 5", "Content-Type: text/plain",
		"Content-Encoding: gzip", "X-Old: a", "X-Old: b", "Vary: Accept", "Date: "+httpDate(t0))
	m, _ := p.NewMeta(reqOf("GET", "/"), stored, t0, t0)
	m.BodySize = 5
	later := t0.Add(time.Hour)
	resp := respOf(304, "Cache-Control: max-age=100", `ETag: "v1"`, "Content-Length: 0", "Content-Type: text/html",
		"Content-Encoding: br", "X-Old: new", "X-New: n", "Vary: Accept-Language", "Date: "+httpDate(later), "Connection: close")
	merged, _, ok := p.Merge304(m, reqOf("GET", "/"), resp, later, later)
	if !ok || merged == nil {
		t.Fatal("304 with the same ETag must update")
	}
	h := &merged.Header
	checks := map[string]string{
		"Content-Length": "5", "Content-Type": "text/plain", "Content-Encoding": "gzip",
		"X-Old": "new", "X-New": "n", "Cache-Control": "max-age=100", "Vary": "Accept",
		"Date": httpDate(later),
	}
	for n, v := range checks {
		if got := h.Value(n); got != v {
			t.Errorf("%s = %q, want %q", n, got, v)
		}
	}
	if h.Count("X-Old") != 1 || h.Has("Connection") {
		t.Error("replaced lines kept, or hop-by-hop merged")
	}
	if merged.Lifetime != 100*time.Second || !merged.IsFresh(later.Add(50*time.Second)) {
		t.Errorf("freshness not recomputed: %v", merged.Lifetime)
	}
	if merged.BodySize != 5 || !merged.Created.Equal(m.Created) {
		t.Error("body size or creation time lost")
	}
	if len(m.Header.Value("X-New")) != 0 {
		t.Error("the stored meta must not change")
	}

	mismatch := []*header.ResponseHeader{
		respOf(304, `ETag: "v2"`),
		respOf(304, `ETag: W/"v2"`),
	}
	for _, r := range mismatch {
		if _, _, ok := p.Merge304(m, reqOf("GET", "/"), r, later, later); ok {
			t.Errorf("%v must not update", r)
		}
	}
	if _, _, ok := p.Merge304(m, reqOf("GET", "/"), respOf(304, `ETag: W/"v1"`), later, later); !ok {
		t.Error("a weak ETag matching weakly updates")
	}
	if merged, r, ok := p.Merge304(m, reqOf("GET", "/"), respOf(304, "Cache-Control: no-store"), later, later); !ok || merged != nil || r != ResponseNoStore {
		t.Errorf("304 with no-store: %v %v %v", merged != nil, r, ok)
	}
	lmMeta, _ := p.NewMeta(reqOf("GET", "/"), respOf(200, "Cache-Control: max-age=10", "Last-Modified: "+httpDate(t0)), t0, t0)
	if _, _, ok := p.Merge304(lmMeta, reqOf("GET", "/"), respOf(304, "Last-Modified: "+httpDate(later)), later, later); ok {
		t.Error("a different Last-Modified must not update")
	}
}

// TestPreconditions covers RFC 9110 §13.2.2's order of evaluation against a stored response.
func TestPreconditions(t *testing.T) {
	lm := t0.Add(-time.Hour)
	stored := respOf(200, `ETag: "abc"`, "Last-Modified: "+httpDate(lm))
	weak := respOf(200, `ETag: W/"abc"`)
	tests := []struct {
		name   string
		method string
		req    []string
		resp   *header.ResponseHeader
		want   Precondition
	}{
		{"none", "GET", nil, stored, Proceed},
		{"If-None-Match match", "GET", []string{`If-None-Match: "x", "abc"`}, stored, NotModified},
		{"If-None-Match weak comparison", "GET", []string{`If-None-Match: W/"abc"`}, stored, NotModified},
		{"If-None-Match weak stored", "GET", []string{`If-None-Match: "abc"`}, weak, NotModified},
		{"If-None-Match star", "GET", []string{`If-None-Match: *`}, stored, NotModified},
		{"If-None-Match no match", "GET", []string{`If-None-Match: "x"`}, stored, Proceed},
		{"If-None-Match wins over IMS", "GET", []string{`If-None-Match: "x"`, "If-Modified-Since: " + httpDate(t0)}, stored, Proceed},
		{"If-None-Match on POST fails", "POST", []string{`If-None-Match: "abc"`}, stored, PreconditionFailed},
		{"If-None-Match on HEAD", "HEAD", []string{`If-None-Match: "abc"`}, stored, NotModified},
		{"IMS not modified", "GET", []string{"If-Modified-Since: " + httpDate(lm)}, stored, NotModified},
		{"IMS modified", "GET", []string{"If-Modified-Since: " + httpDate(lm.Add(-time.Second))}, stored, Proceed},
		{"IMS invalid ignored", "GET", []string{"If-Modified-Since: yesterday"}, stored, Proceed},
		{"If-Match strong match", "GET", []string{`If-Match: "abc"`}, stored, Proceed},
		{"If-Match weak never matches", "GET", []string{`If-Match: W/"abc"`}, stored, PreconditionFailed},
		{"If-Match against weak stored", "GET", []string{`If-Match: "abc"`}, weak, PreconditionFailed},
		{"If-Match star", "GET", []string{`If-Match: *`}, stored, Proceed},
		{"If-Match fails first", "GET", []string{`If-Match: "x"`, `If-None-Match: "abc"`}, stored, PreconditionFailed},
		{"IUS fails", "GET", []string{"If-Unmodified-Since: " + httpDate(lm.Add(-time.Second))}, stored, PreconditionFailed},
		{"IUS passes", "GET", []string{"If-Unmodified-Since: " + httpDate(lm)}, stored, Proceed},
		{"IUS ignored with If-Match", "GET", []string{`If-Match: "abc"`, "If-Unmodified-Since: " + httpDate(lm.Add(-time.Second))}, stored, Proceed},
		{"non-2xx ignores preconditions §13.2.1", "GET", []string{`If-Match: "x"`}, respOf(404, `ETag: "abc"`), Proceed},
		{"304 only from 200", "GET", []string{`If-None-Match: "abc"`}, respOf(203, `ETag: "abc"`), Proceed},
		{"malformed list", "GET", []string{`If-None-Match: abc`}, stored, Proceed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EvaluatePreconditions(reqOf(tt.method, "/", tt.req...), tt.resp); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	h := respOf(200, "Content-Length: 5", "Content-Type: text/plain", `ETag: "abc"`, "Cache-Control: max-age=5", "Accept-Ranges: bytes")
	NotModifiedHeader(h)
	if h.Status != 304 || h.Has("Content-Length") || h.Has("Content-Type") || h.Has("Accept-Ranges") || !h.Has("ETag") || !h.Has("Cache-Control") {
		t.Fatalf("304 head:\n%s", h)
	}
}
