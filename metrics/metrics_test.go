package metrics

import (
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pingora-go/pingora"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// runProxy serves a reverse proxy to origin with observers, and returns its address.
func runProxy(tb testing.TB, origin string, wrap func(server.App) server.App, observers ...proxy.Observer) string {
	tb.Helper()
	app, err := pingora.NewReverseProxyApp(origin)
	if err != nil {
		tb.Fatal(err)
	}
	var sa server.App = proxy.New(app, proxy.Options{Observers: observers, Logger: quiet})
	if wrap != nil {
		sa = wrap(sa)
	}
	ls := server.NewListeningService("proxy", sa)
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

func newOrigin(tb testing.TB) *httptest.Server {
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "hello")
	}))
	tb.Cleanup(o.Close)
	return o
}

func TestProxyMetrics(t *testing.T) {
	o := newOrigin(t)
	reg := NewRegistry()
	m, err := NewProxy(reg)
	if err != nil {
		t.Fatal(err)
	}
	addr := runProxy(t, strings.TrimPrefix(o.URL, "http://"), m.CountConns, m)
	client := &http.Client{Timeout: 10 * time.Second}
	reqs := []struct {
		method, path string
		body         string
	}{
		{"GET", "/", ""},
		{"GET", "/missing", ""},
		{"POST", "/", "12345"},
		{"BREW", "/", ""},
	}
	for _, r := range reqs {
		req, _ := http.NewRequest(r.method, "http://"+addr+r.path, strings.NewReader(r.body))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	client.CloseIdleConnections()
	// The observer runs after the response went out: wait until it saw every request.
	deadline := time.Now().Add(10 * time.Second)
	for value(m.duration) < float64(len(reqs)) {
		if time.Now().After(deadline) {
			t.Fatalf("observer saw %v requests, want %d", value(m.duration), len(reqs))
		}
		time.Sleep(time.Millisecond)
	}
	cases := []struct {
		c    prometheus.Metric
		want float64
	}{
		{m.requests.WithLabelValues("GET", "2xx"), 1},
		{m.requests.WithLabelValues("GET", "4xx"), 1},
		{m.requests.WithLabelValues("POST", "2xx"), 1},
		{m.requests.WithLabelValues("OTHER", "2xx"), 1},
		{m.upstreamConns.WithLabelValues("false"), 1},
		{m.upstreamConns.WithLabelValues("true"), 3},
		{m.bytesIn, 5},
		{m.bytesOut, 5*3 + float64(len("404 page not found\n"))},
		{m.downstreamConns, 1},
		{m.upstreamInUse, 0},
		{m.retries, 0},
	}
	for i, c := range cases {
		if got := value(c.c); got != c.want {
			t.Errorf("case %d: got %v, want %v", i, got, c.want)
		}
	}
	if n := value(m.duration); n != float64(len(reqs)) {
		t.Errorf("duration histogram count: %v", n)
	}
	if _, err := NewProxy(reg); err == nil {
		t.Error("registering the metrics twice on one registry succeeded")
	}
}

// value reads a counter or gauge, or a histogram's sample count.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return -1
}

func TestErrorsByType(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewProxy(reg)
	if err != nil {
		t.Fatal(err)
	}
	// An upstream nobody listens on: the connect fails, the request answers 502.
	ln := httptest.NewServer(http.NotFoundHandler())
	dead := strings.TrimPrefix(ln.URL, "http://")
	ln.Close()
	addr := runProxy(t, dead, nil, m)
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for value(m.duration) < 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := value(m.errs.WithLabelValues("ConnectRefused", "Upstream")); got != 1 {
		mfs, _ := reg.Gather()
		t.Errorf("ConnectRefused errors = %v; gathered %v", got, mfs)
	}
	if got := value(m.requests.WithLabelValues("GET", "5xx")); got != 1 {
		t.Errorf("5xx = %v", got)
	}
}

func TestLabels(t *testing.T) {
	classes := map[int]string{0: "none", 99: "none", 100: "1xx", 204: "2xx", 301: "3xx", 499: "4xx", 503: "5xx", 600: "none"}
	for code, want := range classes {
		if got := statusClass(code); got != want {
			t.Errorf("statusClass(%d) = %q, want %q", code, got, want)
		}
	}
	methods := map[string]string{"GET": "GET", "PATCH": "PATCH", "get": "OTHER", "": "OTHER", "PURGE": "OTHER"}
	for m, want := range methods {
		if got := methodLabel([]byte(m)); got != want {
			t.Errorf("methodLabel(%q) = %q, want %q", m, got, want)
		}
	}
}

func TestService(t *testing.T) {
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "user_things_total", Help: "Things."})
	reg.MustRegister(c)
	c.Add(3)
	svc := NewService(reg)
	svc.SetLogger(quiet)
	svc.AddTCP("127.0.0.1:0")
	srv := server.New(server.Options{Logger: quiet})
	srv.AddService(svc)
	done := make(chan error, 1)
	go func() { done <- srv.RunServices(context.Background()) }()
	defer func() {
		srv.Shutdown(true)
		<-done
	}()
	for len(svc.Addrs()) == 0 {
		time.Sleep(time.Millisecond)
	}
	base := "http://" + svc.Addrs()[0].String()
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	cases := []struct {
		path string
		gzip bool
	}{{"/metrics", false}, {"/anything", false}, {"/metrics", true}}
	for _, tc := range cases {
		req, _ := http.NewRequest("GET", base+tc.path, nil)
		if tc.gzip {
			req.Header.Set("Accept-Encoding", "deflate, gzip;q=1.0")
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = resp.Body
		if tc.gzip {
			if resp.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("%s: not gzip-encoded", tc.path)
			}
			if r, err = gzip.NewReader(resp.Body); err != nil {
				t.Fatal(err)
			}
		}
		b, _ := io.ReadAll(r)
		resp.Body.Close()
		for _, want := range []string{"user_things_total 3", "go_goroutines", "process_cpu_seconds_total"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s (gzip %v) lacks %q", tc.path, tc.gzip, want)
			}
		}
	}
}

// BenchmarkObservers measures the cost of the metrics and access-log observers on a proxied
// request over a keep-alive connection, against none.
func BenchmarkObservers(b *testing.B) {
	o := newOrigin(b)
	origin := strings.TrimPrefix(o.URL, "http://")
	cases := []struct {
		name string
		obs  func() []proxy.Observer
	}{
		{"none", func() []proxy.Observer { return nil }},
		{"metrics", func() []proxy.Observer {
			m, _ := NewProxy(prometheus.NewRegistry())
			return []proxy.Observer{m}
		}},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			addr := runProxy(b, origin, nil, bc.obs()...)
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
		})
	}
}
