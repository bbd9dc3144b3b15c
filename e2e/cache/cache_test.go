// Package cache tests the HTTP cache end to end: through proxy.New with real listeners on
// 127.0.0.1, and through the pingora binary's quick mode (--cache-memory, --cache-dir). Every
// wait is bounded.
package cache

import (
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pingora-go/pingora"
	"github.com/pingora-go/pingora/cache"
	"github.com/pingora-go/pingora/cache/storage/disk"
	"github.com/pingora-go/pingora/internal/testbin"
	"github.com/pingora-go/pingora/internal/testserve"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
)

// waitBound bounds every wait of these tests.
const waitBound = testbin.Bound

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) { testbin.Main(m) }

// origin is an upstream on 127.0.0.1 that counts its requests and answers a cacheable body
// naming the path.
type origin struct {
	addr  string
	count atomic.Int64
	srv   *http.Server
}

func startOrigin(t *testing.T) *origin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &origin{addr: ln.Addr().String()}
	o.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.count.Add(1)
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("ETag", `"`+r.URL.Path+`"`)
		io.WriteString(w, "body of "+r.URL.Path)
	})}
	go o.srv.Serve(ln)
	t.Cleanup(func() { o.srv.Close() })
	return o
}

// runProxy serves the quick-start reverse proxy to upstream with c on a fresh loopback port
// until stop is called.
func runProxy(t *testing.T, upstream string, c *cache.Cache) (addr string, stop func()) {
	t.Helper()
	app, err := pingora.NewReverseProxyApp(upstream)
	if err != nil {
		t.Fatal(err)
	}
	log := testserve.Quiet()
	p := proxy.New(app, proxy.Options{Cache: c, Logger: log})
	svc := server.NewListeningService("cache e2e", p)
	svc.SetLogger(log)
	addr = testserve.Listen(t, svc)
	stop = testserve.Run(t, testserve.Options{GracePeriod: 2 * time.Second, Logger: log, AfterStop: p.Connector().Close}, svc)
	return addr, stop
}

// get fetches path from addr with a new connection and returns the status, Cache-Status and
// body.
func get(t *testing.T, addr, path string) (int, string, string) {
	t.Helper()
	client := &http.Client{Timeout: waitBound, Transport: &http.Transport{DisableKeepAlives: true}}
	req, err := http.NewRequest("GET", "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The default cache key holds the host: keep it when the proxy's port changes.
	req.Host = "cache.test"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Cache-Status"), string(b)
}

// TestDiskCacheSurvivesRestart stores responses through one proxy, stops it and the origin,
// and serves them from a second proxy that opens the same directory.
func TestDiskCacheSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	o := startOrigin(t)
	open := func() *cache.Cache {
		st, err := disk.Open(disk.Config{Dir: dir, MaxBytes: 64 << 20})
		if err != nil {
			t.Fatal(err)
		}
		c, err := cache.New(cache.Config{Storage: st})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	addr, stop := runProxy(t, o.addr, open())
	for _, p := range []string{"/one", "/two"} {
		if status, cs, body := get(t, addr, p); status != 200 || body != "body of "+p || !strings.Contains(cs, "stored") {
			t.Fatalf("first proxy %s: %d %q %q", p, status, cs, body)
		}
	}
	stop()
	o.srv.Close()

	c := open()
	if items := c.Stats().Usage.Items; items != 2 {
		t.Fatalf("reopened storage holds %d items", items)
	}
	addr, _ = runProxy(t, o.addr, c)
	for _, p := range []string{"/one", "/two"} {
		if status, cs, body := get(t, addr, p); status != 200 || body != "body of "+p || !strings.Contains(cs, "hit") {
			t.Fatalf("after the restart %s: %d %q %q", p, status, cs, body)
		}
	}
	if n := o.count.Load(); n != 2 {
		t.Fatalf("origin saw %d requests", n)
	}
}

// startBinary runs the binary with args until it answers on addr; the returned function
// stops it with SIGTERM and waits for its exit.
func startBinary(t *testing.T, bin, addr string, args ...string) func() {
	t.Helper()
	p := testbin.Start(t, bin, args...)
	stop := func() {
		if !p.Stop(syscall.SIGTERM) {
			t.Error("pingora did not stop on SIGTERM")
		}
	}
	t.Cleanup(stop)
	p.WaitListening(addr)
	return stop
}

// TestBinaryQuickModeCache runs the binary with --cache-memory and --metrics, and with
// --cache-dir across a restart.
func TestBinaryQuickModeCache(t *testing.T) {
	bin := testbin.Binary(t)
	o := startOrigin(t)

	t.Run("memory", func(t *testing.T) {
		listen, metricsAddr := testbin.FreeAddr(t), testbin.FreeAddr(t)
		startBinary(t, bin, listen, "--listen", listen, "--upstream", o.addr, "--cache-memory", "16MiB", "--metrics", metricsAddr)
		before := o.count.Load()
		if status, cs, _ := get(t, listen, "/m"); status != 200 || !strings.Contains(cs, "stored") {
			t.Fatalf("miss: %d %q", status, cs)
		}
		if status, cs, body := get(t, listen, "/m"); status != 200 || body != "body of /m" || !strings.Contains(cs, "hit") {
			t.Fatalf("hit: %d %q %q", status, cs, body)
		}
		if n := o.count.Load() - before; n != 1 {
			t.Fatalf("origin saw %d requests", n)
		}
		_, _, page := get(t, metricsAddr, "/metrics")
		for _, want := range []string{`pingora_cache_hits_total{cache="default"} 1`, `pingora_cache_stored_total{cache="default"} 1`} {
			if !strings.Contains(page, want) {
				t.Errorf("metrics lack %q", want)
			}
		}
	})

	t.Run("disk restart", func(t *testing.T) {
		dir := t.TempDir()
		listen := testbin.FreeAddr(t)
		args := []string{"--listen", listen, "--upstream", o.addr, "--cache-dir", dir, "--cache-disk", "64MiB"}
		stop := startBinary(t, bin, listen, args...)
		before := o.count.Load()
		if status, cs, _ := get(t, listen, "/d"); status != 200 || !strings.Contains(cs, "stored") {
			t.Fatalf("miss: %d %q", status, cs)
		}
		stop()
		startBinary(t, bin, listen, args...)
		if status, cs, body := get(t, listen, "/d"); status != 200 || body != "body of /d" || !strings.Contains(cs, "hit") {
			t.Fatalf("after the restart: %d %q %q", status, cs, body)
		}
		if n := o.count.Load() - before; n != 1 {
			t.Fatalf("origin saw %d requests", n)
		}
	})

	t.Run("bad flags", func(t *testing.T) {
		for _, args := range [][]string{
			{"--listen", testbin.FreeAddr(t), "--upstream", o.addr, "--cache-memory", "lots"},
			{"--listen", testbin.FreeAddr(t), "--upstream", o.addr, "--cache-disk", "1G"},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), waitBound)
			out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
			cancel()
			if err == nil || !strings.Contains(string(out), "--cache-") {
				t.Errorf("%v: err=%v output %q", args, err, out)
			}
		}
	})
}
