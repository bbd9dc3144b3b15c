package ops

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pingora-go/pingora/internal/testbin"
)

// load sends GET requests from several goroutines until stop is closed: half on keep-alive
// connections, half on a new connection per request, so that both idle connections and new
// connects cross every hand-over.
func load(c *counter, addr string, workers int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range workers {
		tr := &http.Transport{DisableKeepAlives: w%2 == 1, MaxIdleConnsPerHost: 4}
		client := &http.Client{Timeout: waitBound, Transport: tr}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer tr.CloseIdleConnections()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(fmt.Sprintf("http://%s/w%d/%d", addr, w, i))
				if err != nil {
					c.fail(err)
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || string(b) != "ok" {
					c.fail(fmt.Errorf("status %d body %q err %v", resp.StatusCode, b, err))
					continue
				}
				c.ok.Add(1)
			}
		}()
	}
	return &wg
}

// startLoad runs load against addr until the returned stop is called (at the latest when the
// test ends); stop waits for the workers and may be called more than once.
func startLoad(t *testing.T, addr string, workers int) (*counter, func()) {
	c := &counter{}
	ch := make(chan struct{})
	wg := load(c, addr, workers, ch)
	var once sync.Once
	stop := func() {
		once.Do(func() { close(ch) })
		wg.Wait()
	}
	t.Cleanup(stop)
	return c, stop
}

// waitRequests waits until the load has made n more successful requests, at most waitBound.
func waitRequests(t *testing.T, c *counter, n int64) {
	t.Helper()
	target := c.ok.Load() + n
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	for c.ok.Load() < target {
		if ctx.Err() != nil {
			t.Fatalf("load stalled: %d ok, %d failed", c.ok.Load(), c.failed.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestUpgradeUnderLoad performs three zero-downtime upgrades (a new process with -u, then
// SIGQUIT to the old one) under a continuous load, and checks that no request failed, no
// connection was refused, every old process exited cleanly, and the last process serves.
func TestUpgradeUnderLoad(t *testing.T) {
	bin := testbin.Binary(t)
	o := startOrigin(t)
	addr := testbin.FreeAddr(t)
	dir := t.TempDir()
	cfg := writeConf(t, dir, fmt.Sprintf("version: 1\nupgrade_sock: %s\ngrace_period_seconds: 20\n", filepath.Join(dir, "upgrade.sock")))
	args := []string{"-c", cfg, "--listen", addr, "--upstream", o.addr}
	cur := testbin.Start(t, bin, args...)
	cur.WaitLog("service started")

	c, stop := startLoad(t, addr, 8)
	waitRequests(t, c, 200)

	const upgrades = 3
	for i := range upgrades {
		next := testbin.Start(t, bin, append([]string{"-u"}, args...)...)
		next.WaitLog("waiting for the old process")
		cur.Signal(syscall.SIGQUIT)
		next.WaitLog("service started")
		waitRequests(t, c, 200)
		// The old process keeps accepting for the close timeout, then drains and exits.
		if err := cur.Wait(waitBound); err != nil {
			t.Fatalf("upgrade %d: old process exited with %v\n%s", i+1, err, cur.Log())
		}
		cur.WaitLog("listening sockets handed over")
		waitRequests(t, c, 200)
		cur = next
	}
	stop()

	t.Logf("%d requests succeeded, %d failed, %d refused", c.ok.Load(), c.failed.Load(), c.refused.Load())
	if c.failed.Load() != 0 || c.refused.Load() != 0 {
		t.Fatalf("%d failed requests (%d refused connections); first errors: %v", c.failed.Load(), c.refused.Load(), c.errs)
	}
	if status, body, err := get("http://" + addr + "/last"); err != nil || status != 200 || body != "ok" {
		t.Fatalf("the last process does not serve: %d %q %v", status, body, err)
	}
	cur.Signal(syscall.SIGTERM)
	if err := cur.Wait(waitBound); err != nil {
		t.Fatalf("last process: %v", err)
	}
}
