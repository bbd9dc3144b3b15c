package accesslog

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pingora-go/pingora"
	"github.com/pingora-go/pingora/cache"
	"github.com/pingora-go/pingora/cache/storage/memory"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// syncBuffer is a bytes.Buffer safe for the proxy's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func runProxy(tb testing.TB, origin string, obs proxy.Observer) string {
	tb.Helper()
	return runProxyWith(tb, origin, proxy.Options{Observers: []proxy.Observer{obs}})
}

// runProxyWith is runProxy with the proxy's options (its Logger is replaced).
func runProxyWith(tb testing.TB, origin string, opts proxy.Options) string {
	tb.Helper()
	app, err := pingora.NewReverseProxyApp(origin)
	if err != nil {
		tb.Fatal(err)
	}
	opts.Logger = quiet
	ls := server.NewListeningService("proxy", proxy.New(app, opts))
	ls.SetLogger(quiet)
	ls.AddTCP("127.0.0.1:0")
	srv := server.New(server.Options{Logger: quiet})
	srv.AddService(ls)
	done := make(chan error, 1)
	go func() { done <- srv.RunServices(context.Background()) }()
	tb.Cleanup(func() {
		srv.Shutdown(false)
		<-done
	})
	for len(ls.Addrs()) == 0 {
		time.Sleep(time.Millisecond)
	}
	return ls.Addrs()[0].String()
}

func TestAccessLog(t *testing.T) {
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(201)
		io.WriteString(w, "created")
	}))
	defer o.Close()
	var buf syncBuffer
	addr := runProxy(t, strings.TrimPrefix(o.URL, "http://"), New(slog.New(slog.NewJSONHandler(&buf, nil))))
	resp, err := http.Post("http://"+addr+"/items?x=1", "text/plain", strings.NewReader("abc"))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	rec := waitRecord(t, &buf)
	want := map[string]any{
		"level": "INFO", "msg": "access", "method": "POST", "path": "/items?x=1", "status": 201.0,
		"bytes_in": 3.0, "bytes_out": 7.0, "upstream": strings.TrimPrefix(o.URL, "http://"), "attempts": 1.0,
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v", k, rec[k], v)
		}
	}
	for _, k := range []string{"time", "client", "duration", "upstream_connect", "upstream_head"} {
		if _, ok := rec[k]; !ok {
			t.Errorf("field %s missing: %v", k, rec)
		}
	}
	if _, ok := rec["error"]; ok {
		t.Errorf("error field on a good request: %v", rec)
	}
}

// waitRecord waits for the access-log record: the observer runs after the response went out.
func waitRecord(t *testing.T, buf *syncBuffer) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for buf.String() == "" {
		if time.Now().After(deadline) {
			t.Fatal("no access-log record")
		}
		time.Sleep(time.Millisecond)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(buf.String())), &rec); err != nil {
		t.Fatalf("%v: %q", err, buf.String())
	}
	return rec
}

func TestAccessLogError(t *testing.T) {
	o := httptest.NewServer(http.NotFoundHandler())
	dead := strings.TrimPrefix(o.URL, "http://")
	o.Close()
	var buf syncBuffer
	addr := runProxy(t, dead, New(slog.New(slog.NewJSONHandler(&buf, nil))))
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	rec := waitRecord(t, &buf)
	if rec["level"] != "WARN" || rec["error_type"] != "ConnectRefused" || rec["status"] != 502.0 {
		t.Errorf("record %v, want WARN ConnectRefused 502", rec)
	}
}

func TestSince(t *testing.T) {
	t0 := time.Unix(100, 0)
	cases := []struct {
		start, end time.Time
		want       time.Duration
	}{
		{t0, t0.Add(time.Second), time.Second},
		{time.Time{}, t0, 0},
		{t0, time.Time{}, 0},
	}
	for _, c := range cases {
		if got := since(c.start, c.end); got != c.want {
			t.Errorf("since(%v, %v) = %v, want %v", c.start, c.end, got, c.want)
		}
	}
}

// BenchmarkAccessLog measures a proxied keep-alive request with the access log writing JSON
// to io.Discard.
func BenchmarkAccessLog(b *testing.B) {
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer o.Close()
	addr := runProxy(b, strings.TrimPrefix(o.URL, "http://"), New(slog.New(slog.NewJSONHandler(io.Discard, nil))))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// TestAccessLogCache checks the cache field: a miss, then a hit.
func TestAccessLogCache(t *testing.T) {
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "cached")
	}))
	defer o.Close()
	c, err := cache.New(cache.Config{Storage: memory.New(memory.Config{MaxBytes: 1 << 20})})
	if err != nil {
		t.Fatal(err)
	}
	var buf syncBuffer
	addr := runProxyWith(t, strings.TrimPrefix(o.URL, "http://"), proxy.Options{Cache: c,
		Observers: []proxy.Observer{New(slog.New(slog.NewJSONHandler(&buf, nil)))}})
	var got []any
	for i := range 2 {
		resp, err := http.Get("http://" + addr + "/c")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(buf.String(), "\n") <= i && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		var rec map[string]any
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rec); err != nil {
			t.Fatal(err)
		}
		got = append(got, rec["cache"])
		if rec["proto"] != "HTTP/1.1" {
			t.Errorf("proto %v", rec["proto"])
		}
	}
	if got[0] != "miss" || got[1] != "hit" {
		t.Fatalf("cache fields %v, want miss then hit", got)
	}
}
