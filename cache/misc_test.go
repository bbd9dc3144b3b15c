package cache

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/pingora-go/pingora/header"
)

// TestInvalidations covers RFC 9111 §4.4.
func TestInvalidations(t *testing.T) {
	targets := func(method string, status int, lines ...string) []string {
		var out []string
		for _, r := range Invalidations("http", reqOf(method, "/a/b?x=1", "Host: Example.com"), respOf(status, lines...)) {
			out = append(out, r.Value("Host")+" "+string(r.Target())+" "+string(r.Method()))
		}
		return out
	}
	if got := targets("POST", 201, "Location: /a/c", "Content-Location: http://example.com:80/d?q"); !slices.Equal(got,
		[]string{"Example.com /a/b?x=1 GET", "Example.com /a/c GET", "Example.com /d?q GET"}) {
		t.Errorf("same-origin Location/Content-Location: %q", got)
	}
	if got := targets("PUT", 204, "Location: c"); !slices.Equal(got, []string{"Example.com /a/b?x=1 GET", "Example.com /a/c GET"}) {
		t.Errorf("relative Location: %q", got)
	}
	if got := targets("DELETE", 200, "Location: http://other.example/x", "Content-Location: https://example.com/y"); len(got) != 1 {
		t.Errorf("other origins must not be invalidated: %q", got)
	}
	if got := targets("PATCH", 500); got != nil {
		t.Errorf("error status: %q", got)
	}
	if got := targets("GET", 200); got != nil {
		t.Errorf("safe method: %q", got)
	}
	if got := targets("POST", 302, "Location: /z"); len(got) != 2 {
		t.Errorf("3xx is a non-error status: %q", got)
	}
}

// TestCacheStatus covers the RFC 9211 field syntax.
func TestCacheStatus(t *testing.T) {
	tests := []struct {
		cs   CacheStatus
		want string
	}{
		{CacheStatus{Name: "pingora", Hit: true, HasTTL: true, TTL: 30}, "pingora; hit; ttl=30"},
		{CacheStatus{Name: "pingora", Fwd: FwdURIMiss, FwdStatus: 200, Stored: true}, "pingora; fwd=uri-miss; fwd-status=200; stored"},
		{CacheStatus{Name: "pingora", Hit: true, HasTTL: true, TTL: -5, Detail: "stale-while-revalidate"}, `pingora; hit; ttl=-5; detail="stale-while-revalidate"`},
		{CacheStatus{Name: "my cache", Fwd: FwdStale, Collapsed: true, Key: `a"b\c`}, `"my cache"; fwd=stale; collapsed; key="a\"b\\c"`},
		{CacheStatus{Name: "c", Fwd: FwdBypass}, "c; fwd=bypass"},
		{CacheStatus{Name: "c", Fwd: FwdRequest}, "c; fwd=request"},
		{CacheStatus{Name: "c", Fwd: FwdMiss}, "c; fwd=miss"},
	}
	for _, tt := range tests {
		if got := tt.cs.String(); got != tt.want {
			t.Errorf("got %s, want %s", got, tt.want)
		}
	}
	h := respOf(200, "Cache-Status: origin-cache; hit")
	AppendCacheStatus(&h.Fields, &CacheStatus{Name: "edge", Fwd: FwdMiss}, nil)
	if got := h.Value("Cache-Status"); got != "origin-cache; hit, edge; fwd=miss" {
		t.Errorf("appended member: %q", got)
	}
}

// TestMetaEncoding round-trips a Meta and rejects corrupt forms.
func TestMetaEncoding(t *testing.T) {
	var p Policy
	m, _ := p.NewMeta(reqOf("GET", "/"), respOf(200, "Cache-Control: max-age=60, stale-if-error=5, must-revalidate",
		"Vary: Accept", "Surrogate-Key: t1 t2", `ETag: "x"`, "Date: "+httpDate(t0)), t0, t0.Add(time.Second))
	m.Header.SetReason("Fine")
	m.BodySize = 1234
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Meta
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if got.Header.String() != m.Header.String() {
		t.Fatalf("header:\n%s\nwant\n%s", got.Header.String(), m.Header.String())
	}
	if !reflect.DeepEqual(normal(&got), normal(m)) {
		t.Fatalf("got  %+v\nwant %+v", got, *m)
	}
	for i := range b {
		var x Meta
		_ = x.UnmarshalBinary(b[:i]) // truncated: must not panic
	}
	if err := new(Meta).UnmarshalBinary(append(b, 0)); err == nil {
		t.Fatal("trailing bytes accepted")
	}
}

// normal strips monotonic clock readings so that times compare with DeepEqual.
func normal(m *Meta) Meta {
	c := *m
	c.Header = header.ResponseHeader{}
	c.Created, c.RequestTime, c.ResponseTime = c.Created.Round(0).UTC(), c.RequestTime.Round(0).UTC(), c.ResponseTime.Round(0).UTC()
	return c
}

// TestDefaultKey covers the default primary key: scheme, host (case, default port), path and
// query; not the method.
func TestDefaultKey(t *testing.T) {
	k := func(scheme, method, target string, lines ...string) Key {
		return DefaultKey(scheme, reqOf(method, target, lines...))
	}
	base := k("http", "GET", "/a?b=1", "Host: example.com")
	same := []Key{
		k("http", "HEAD", "/a?b=1", "Host: example.com"),
		k("http", "GET", "/a?b=1", "Host: EXAMPLE.com:80"),
		k("http", "GET", "http://example.com/a?b=1"),
	}
	for i, s := range same {
		if s != base {
			t.Errorf("same[%d] differs", i)
		}
	}
	different := []Key{
		k("https", "GET", "/a?b=1", "Host: example.com"),
		k("http", "GET", "/a?b=2", "Host: example.com"),
		k("http", "GET", "/A?b=1", "Host: example.com"),
		k("http", "GET", "/a?b=1", "Host: example.org"),
		k("http", "GET", "/a?b=1", "Host: example.com:8080"),
	}
	for i, d := range different {
		if d == base {
			t.Errorf("different[%d] equals", i)
		}
	}
	h, ok := ParseHash(base.Primary.String())
	if !ok || h != base.Primary {
		t.Error("hash hex round trip")
	}
}
