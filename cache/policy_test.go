package cache

import (
	"testing"
	"time"
)

// TestStorable covers what a shared cache may store: RFC 9111 §3, §3.5, §5.2.2.
func TestStorable(t *testing.T) {
	date := "Date: " + httpDate(t0)
	tests := []struct {
		name   string
		method string
		req    []string
		status int
		resp   []string
		want   Reason
	}{
		{"GET 200 max-age §3", "GET", nil, 200, []string{"Cache-Control: max-age=60"}, Storable},
		{"POST declined §3", "POST", nil, 200, []string{"Cache-Control: max-age=60", "Content-Location: /x"}, MethodNotCacheable},
		{"HEAD is fetched as GET, not stored as HEAD", "HEAD", nil, 200, []string{"Cache-Control: max-age=60"}, MethodNotCacheable},
		{"request no-store §5.2.1.5", "GET", []string{"Cache-Control: no-store"}, 200, []string{"Cache-Control: max-age=60"}, RequestNoStore},
		{"response no-store §5.2.2.5", "GET", nil, 200, []string{"Cache-Control: max-age=60, no-store"}, ResponseNoStore},
		{"private §5.2.2.7", "GET", nil, 200, []string{"Cache-Control: private, max-age=60"}, ResponsePrivate},
		{"qualified private is storable §5.2.2.7", "GET", nil, 200, []string{`Cache-Control: private="X-User", max-age=60`}, Storable},
		{"must-understand with known status ignores no-store §5.2.2.3", "GET", nil, 200, []string{"Cache-Control: must-understand, no-store, max-age=60"}, Storable},
		{"must-understand with unknown status §5.2.2.3", "GET", nil, 299, []string{"Cache-Control: must-understand, max-age=60"}, ResponseNoStore},
		{"1xx not final", "GET", nil, 103, []string{"Cache-Control: max-age=60"}, StatusNotCacheable},
		{"206 partial §3.3", "GET", nil, 206, []string{"Cache-Control: max-age=60", "Content-Range: bytes 0-1/10"}, StatusNotCacheable},
		{"304 not stored", "GET", nil, 304, []string{"Cache-Control: max-age=60"}, StatusNotCacheable},
		{"Authorization without permission §3.5", "GET", []string{"Authorization: Basic x"}, 200, []string{"Cache-Control: max-age=60"}, Authorized},
		{"Authorization with public §3.5", "GET", []string{"Authorization: Basic x"}, 200, []string{"Cache-Control: public, max-age=60"}, Storable},
		{"Authorization with s-maxage §3.5", "GET", []string{"Authorization: Basic x"}, 200, []string{"Cache-Control: s-maxage=60"}, Storable},
		{"Authorization with must-revalidate §3.5", "GET", []string{"Authorization: Basic x"}, 200, []string{"Cache-Control: must-revalidate, max-age=60"}, Storable},
		{"Vary: * §4.1", "GET", nil, 200, []string{"Cache-Control: max-age=60", "Vary: Accept, *"}, VaryStar},
		{"malformed Vary", "GET", nil, 200, []string{"Cache-Control: max-age=60", "Vary: a b"}, VaryStar},
		{"Set-Cookie by default", "GET", nil, 200, []string{"Cache-Control: max-age=60", "Set-Cookie: a=b"}, SetCookie},
		{"heuristically cacheable 404 with Last-Modified §4.2.2", "GET", nil, 404, []string{date, "Last-Modified: " + httpDate(t0.Add(-time.Hour))}, Storable},
		{"302 without freshness RFC 9110 §15.1", "GET", nil, 302, []string{date, "Last-Modified: " + httpDate(t0.Add(-time.Hour))}, StatusNotCacheable},
		{"302 with max-age", "GET", nil, 302, []string{"Cache-Control: max-age=60"}, Storable},
		{"302 with Expires", "GET", nil, 302, []string{date, "Expires: " + httpDate(t0.Add(time.Minute))}, Storable},
		{"500 with public and Last-Modified", "GET", nil, 500, []string{"Cache-Control: public", date, "Last-Modified: " + httpDate(t0.Add(-time.Hour))}, Storable},
		{"200 with no freshness and no validator", "GET", nil, 200, []string{date}, NoFreshness},
		{"200 no-cache with ETag stored stale §5.2.2.4", "GET", nil, 200, []string{"Cache-Control: no-cache", `ETag: "a"`}, Storable},
		{"invalid Expires, no validator", "GET", nil, 200, []string{"Expires: 0"}, NoFreshness},
	}
	var p Policy
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, got := p.NewMeta(reqOf(tt.method, "/", tt.req...), respOf(tt.status, tt.resp...), t0, t0)
			if got != tt.want || (got == Storable) != (m != nil) {
				t.Fatalf("got %v (meta %v), want %v", got, m != nil, tt.want)
			}
		})
	}
	p.StoreSetCookie = true
	if _, r := p.NewMeta(reqOf("GET", "/"), respOf(200, "Cache-Control: max-age=6", "Set-Cookie: a=b"), t0, t0); r != Storable {
		t.Fatalf("StoreSetCookie: %v", r)
	}
}

// TestFreshnessLifetime covers RFC 9111 §4.2.1 (s-maxage > max-age > Expires - Date) and the
// heuristic of §4.2.2.
func TestFreshnessLifetime(t *testing.T) {
	date := "Date: " + httpDate(t0)
	lm := func(d time.Duration) string { return "Last-Modified: " + httpDate(t0.Add(-d)) }
	tests := []struct {
		name      string
		policy    Policy
		status    int
		resp      []string
		want      time.Duration
		heuristic bool
	}{
		{"s-maxage wins", Policy{}, 200, []string{"Cache-Control: max-age=10, s-maxage=20", date, "Expires: " + httpDate(t0.Add(time.Hour))}, 20 * time.Second, false},
		{"max-age over Expires", Policy{}, 200, []string{"Cache-Control: max-age=10", date, "Expires: " + httpDate(t0.Add(time.Hour))}, 10 * time.Second, false},
		{"Expires - Date", Policy{}, 200, []string{date, "Expires: " + httpDate(t0.Add(time.Hour)), `ETag: "x"`}, time.Hour, false},
		{"Expires in the past", Policy{}, 200, []string{date, "Expires: " + httpDate(t0.Add(-time.Hour)), `ETag: "x"`}, 0, false},
		{"invalid Expires = expired §5.3", Policy{}, 200, []string{date, "Expires: 0", `ETag: "x"`, lm(time.Hour)}, 0, false},
		{"conflicting Expires = stale", Policy{}, 200, []string{date, "Expires: " + httpDate(t0.Add(time.Hour)), "Expires: " + httpDate(t0.Add(2*time.Hour)), `ETag: "x"`}, 0, false},
		{"equal duplicate Expires", Policy{}, 200, []string{date, "Expires: " + httpDate(t0.Add(time.Hour)), "Expires: " + httpDate(t0.Add(time.Hour))}, time.Hour, false},
		{"Expires without Date uses response time", Policy{}, 200, []string{"Expires: " + httpDate(t0.Add(time.Hour))}, time.Hour, false},
		{"heuristic 10% §4.2.2", Policy{}, 200, []string{date, lm(10 * time.Hour)}, time.Hour, true},
		{"heuristic capped", Policy{}, 200, []string{date, lm(100 * 24 * time.Hour)}, 24 * time.Hour, true},
		{"heuristic configured", Policy{HeuristicFraction: 0.5, HeuristicMax: time.Hour}, 200, []string{date, lm(time.Hour)}, 30 * time.Minute, true},
		{"heuristic off", Policy{NoHeuristic: true}, 200, []string{date, lm(10 * time.Hour)}, 0, false},
		{"no heuristic for 302 even with Last-Modified", Policy{DefaultTTL: func(int) time.Duration { return 0 }}, 302, []string{date, lm(time.Hour), "Cache-Control: max-age=0"}, 0, false},
		{"default TTL for status", Policy{NoHeuristic: true, DefaultTTL: func(s int) time.Duration {
			if s == 200 {
				return time.Minute
			}
			return 0
		}}, 200, []string{date}, time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, r := tt.policy.NewMeta(reqOf("GET", "/"), respOf(tt.status, tt.resp...), t0, t0)
			if m == nil {
				t.Fatalf("not stored: %v", r)
			}
			if m.Lifetime != tt.want || m.Heuristic != tt.heuristic {
				t.Fatalf("lifetime %v heuristic %v, want %v %v", m.Lifetime, m.Heuristic, tt.want, tt.heuristic)
			}
		})
	}
}

// TestAge covers RFC 9111 §4.2.3: apparent age, corrected age value with the response delay,
// resident time, and the Age value sent on a hit (§5.1).
func TestAge(t *testing.T) {
	var p Policy
	reqTime := t0
	respTime := t0.Add(2 * time.Second) // response delay 2s
	tests := []struct {
		name string
		resp []string
		want time.Duration // corrected initial age
	}{
		{"no Date, no Age: the delay", []string{"Cache-Control: max-age=100"}, 2 * time.Second},
		{"Age plus delay", []string{"Cache-Control: max-age=100", "Age: 10"}, 12 * time.Second},
		{"apparent age from an old Date wins", []string{"Cache-Control: max-age=100", "Date: " + httpDate(t0.Add(-30*time.Second)), "Age: 5"}, 32 * time.Second},
		{"Date in the future: apparent age 0", []string{"Cache-Control: max-age=100", "Date: " + httpDate(t0.Add(time.Hour))}, 2 * time.Second},
		{"invalid Age ignored", []string{"Cache-Control: max-age=100", "Age: soon"}, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := p.NewMeta(reqOf("GET", "/"), respOf(200, tt.resp...), reqTime, respTime)
			if m.InitialAge != tt.want {
				t.Fatalf("corrected initial age %v, want %v", m.InitialAge, tt.want)
			}
			now := respTime.Add(5*time.Second + 900*time.Millisecond)
			if got := m.Age(now); got != tt.want+5900*time.Millisecond {
				t.Fatalf("current age %v", got)
			}
			want := int64((tt.want + 5900*time.Millisecond) / time.Second)
			if got := string(m.AppendAge(nil, now)); got != itoa(want) {
				t.Fatalf("Age header %q, want %d", got, want)
			}
			if m.Header.Has("Age") {
				t.Fatal("Age must not be stored in the header")
			}
		})
	}
}

func itoa(n int64) string { return string(appendInt(nil, n)) }

// TestStoredHeaderStripping covers RFC 9111 §3.1: hop-by-hop fields, fields Connection names,
// and fields named by a qualified private or no-cache are not stored.
func TestStoredHeaderStripping(t *testing.T) {
	var p Policy
	m, r := p.NewMeta(reqOf("GET", "/"), respOf(200,
		"Cache-Control: max-age=60, private=\"X-Secret\", no-cache=\"X-Fresh\"",
		"Connection: close, X-Hop",
		"X-Hop: 1", "Keep-Alive: timeout=5", "Transfer-Encoding: chunked",
		"X-Secret: s", "X-Fresh: f", "X-Kept: k", "Age: 3", "Surrogate-Key: a  b c"), t0, t0)
	if m == nil {
		t.Fatal(r)
	}
	for _, n := range []string{"Connection", "X-Hop", "Keep-Alive", "Transfer-Encoding", "X-Secret", "X-Fresh", "Age"} {
		if m.Header.Has(n) {
			t.Errorf("%s stored", n)
		}
	}
	if !m.Header.Has("X-Kept") || !m.Header.Has("Cache-Control") {
		t.Error("end-to-end fields lost")
	}
	if len(m.Tags) != 3 || m.Tags[0] != "a" || m.Tags[2] != "c" {
		t.Errorf("tags %q", m.Tags)
	}
	if m.NoCache {
		t.Error("a qualified no-cache must not force revalidation")
	}
}
