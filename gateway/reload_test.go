package gateway

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pingora-go/pingora/internal/testbin"
	"github.com/pingora-go/pingora/internal/testserve"
)

const reloadConf = `
listeners: [{address: "{{LISTEN}}"}]
upstreams:
  pool: {backends: ["{{ORIGIN}}"], health_check: {type: http, path: /health, interval: 50ms, timeout: 5s, unhealthy: 3}}
services:
  s:
    routes:
      - match: {path: /limited}
        rate_limit: {requests: 2, window: 1m}
        respond: {body: ok}
      - upstream: pool
        response_headers: {set: {X-Version: "{{VERSION}}"}}
`

// TestReloadUnderLoad reloads five times, switching between two upstream pools, while eight
// clients send 2000 requests: none may fail, and each reload is seen by the requests after
// it.
func TestReloadUnderLoad(t *testing.T) {
	a, b := startOrigin(t, "A"), startOrigin(t, "B")
	listen := testbin.FreeAddr(t)
	dir := t.TempDir()
	version := func(v int) string {
		o := a.addr
		if v%2 == 1 {
			o = b.addr
		}
		return expand(reloadConf, map[string]string{"LISTEN": listen, "ORIGIN": o, "VERSION": fmt.Sprint(v)})
	}
	path := writeFile(t, dir, version(0))
	r := serve(t, path)

	const clients, perClient = 8, 250
	var failed, done atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{}, Timeout: bound}
			defer c.CloseIdleConnections()
			for range perClient {
				resp, err := c.Get("http://" + listen + "/x")
				if err != nil {
					failed.Add(1)
					t.Log(err)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					t.Logf("status %d", resp.StatusCode)
				}
				done.Add(1)
			}
		}()
	}
	for v := 1; v <= 5; v++ {
		for done.Load() < int64(v*clients*perClient/6) && done.Load()+failed.Load() < clients*perClient {
			time.Sleep(time.Millisecond)
		}
		if err := os.WriteFile(path, []byte(version(v)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := r.g.Reload(); err != nil {
			t.Fatalf("reload %d: %v", v, err)
		}
		resp, _ := testserve.Do(t, testserve.Client(t), "GET", "http://"+listen+"/after")
		if got := resp.Header.Get("X-Version"); got != fmt.Sprint(v) {
			t.Errorf("after reload %d the response says version %s", v, got)
		}
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed across 5 reloads; log:\n%s", failed.Load(), clients*perClient, r.log.String())
	}
	if a.count("/x") == 0 || b.count("/x") == 0 {
		t.Errorf("requests did not move between pools: A %d, B %d", a.count("/x"), b.count("/x"))
	}
	t.Logf("%d requests, 5 reloads, 0 failed", clients*perClient)
}

// TestReloadKeepsOldOnError: an invalid file is logged with its line and the running
// configuration stays.
func TestReloadKeepsOldOnError(t *testing.T) {
	a := startOrigin(t, "A")
	listen := testbin.FreeAddr(t)
	dir := t.TempDir()
	good := expand(reloadConf, map[string]string{"LISTEN": listen, "ORIGIN": a.addr, "VERSION": "1"})
	path := writeFile(t, dir, good)
	r := serve(t, path)
	bad := strings.Replace(good, "requests: 2", "requests: -1", 1)
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	err := r.g.Reload()
	if err == nil || !strings.Contains(err.Error(), "gateway.yaml:9: services.s.routes[0].rate_limit.requests") {
		t.Fatalf("reload error %v", err)
	}
	if !strings.Contains(r.log.String(), "configuration reload failed") || !strings.Contains(r.log.String(), "gateway.yaml:9:") {
		t.Errorf("log:\n%s", r.log.String())
	}
	if resp, _ := testserve.Do(t, testserve.Client(t), "GET", "http://"+listen+"/x"); resp.StatusCode != 200 || resp.Header.Get("X-Version") != "1" {
		t.Errorf("old configuration gone: %d %v", resp.StatusCode, resp.Header)
	}
	// A file that does not parse at all keeps it too.
	if err := os.WriteFile(path, []byte("listeners: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r.g.Reload() == nil {
		t.Fatal("a broken file reloaded")
	}
	if resp, _ := testserve.Do(t, testserve.Client(t), "GET", "http://"+listen+"/x"); resp.StatusCode != 200 {
		t.Errorf("after a broken file: %d", resp.StatusCode)
	}
}

// TestReloadLifecycle: a request in flight finishes on the old pool, the old pool's health
// checker stops, a rate limit that did not change keeps its count, and a listener change is
// logged as needing a restart.
func TestReloadLifecycle(t *testing.T) {
	a, b := startOrigin(t, "A"), startOrigin(t, "B")
	listen := testbin.FreeAddr(t)
	dir := t.TempDir()
	path := writeFile(t, dir, expand(reloadConf, map[string]string{"LISTEN": listen, "ORIGIN": a.addr, "VERSION": "1"}))
	r := serve(t, path)
	c := testserve.Client(t)
	if resp, _ := testserve.Do(t, c, "GET", "http://"+listen+"/limited"); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}

	slow := make(chan string, 1)
	go func() {
		resp, err := (&http.Client{Timeout: bound}).Get("http://" + listen + "/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		resp.Body.Close()
		slow <- fmt.Sprint(resp.StatusCode, " ", resp.Header.Get("X-Origin"), " ", resp.Header.Get("X-Version"))
	}()
	deadline := time.Now().Add(bound)
	for a.count("/slow") == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}

	other := testbin.FreeAddr(t)
	next := expand(reloadConf, map[string]string{"LISTEN": other, "ORIGIN": b.addr, "VERSION": "2"})
	if err := os.WriteFile(path, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.g.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := <-slow; got != "200 A 1" {
		t.Errorf("the request in flight during the reload: %s", got)
	}
	checks := a.count("/health")
	time.Sleep(300 * time.Millisecond)
	if n := a.count("/health"); n > checks+1 {
		t.Errorf("the old pool's health checker still runs: %d checks after the reload", n-checks)
	}
	if b.count("/health") == 0 {
		t.Error("the new pool's health checker does not run")
	}
	// The running listener stays and serves the new routes; the new one is not opened.
	resp, _ := testserve.Do(t, c, "GET", "http://"+listen+"/x")
	if resp.Header.Get("X-Origin") != "B" || resp.Header.Get("X-Version") != "2" {
		t.Errorf("after the reload: %v", resp.Header)
	}
	if !strings.Contains(r.log.String(), "needs a restart or a graceful upgrade") || !strings.Contains(r.log.String(), "new listener "+other) {
		t.Errorf("listener change not logged:\n%s", r.log.String())
	}
	// The unchanged rate limit kept its count: one more request is allowed, then 429.
	if resp, _ := testserve.Do(t, c, "GET", "http://"+listen+"/limited"); resp.StatusCode != 200 {
		t.Errorf("second request: %d", resp.StatusCode)
	}
	if resp, _ := testserve.Do(t, c, "GET", "http://"+listen+"/limited"); resp.StatusCode != 429 {
		t.Errorf("third request: %d", resp.StatusCode)
	}
}

// TestWatchReload: with WatchInterval, a change of the file is applied without SIGHUP, and a
// broken change keeps the running configuration.
func TestWatchReload(t *testing.T) {
	a := startOrigin(t, "A")
	listen := testbin.FreeAddr(t)
	dir := t.TempDir()
	conf := func(v string) string {
		return expand(reloadConf, map[string]string{"LISTEN": listen, "ORIGIN": a.addr, "VERSION": v})
	}
	path := writeFile(t, dir, conf("1"))
	r := serveWith(t, path, Options{WatchInterval: 20 * time.Millisecond})
	c := testserve.Client(t)
	version := func() string {
		resp, _ := testserve.Do(t, c, "GET", "http://"+listen+"/x")
		return resp.Header.Get("X-Version")
	}
	waitVersion := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); version() != want; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("version %q after 5 s, want %q; log:\n%s", version(), want, r.log.String())
			}
		}
	}
	if err := os.WriteFile(path, []byte(conf("2")), 0o644); err != nil {
		t.Fatal(err)
	}
	waitVersion("2")
	if err := os.WriteFile(path, []byte("listeners: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(r.log.String(), "configuration reload failed"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no failed reload logged:\n%s", r.log.String())
		}
	}
	if v := version(); v != "2" {
		t.Fatalf("a broken file changed the version to %q", v)
	}
	if err := os.WriteFile(path, []byte(conf("3")), 0o644); err != nil {
		t.Fatal(err)
	}
	waitVersion("3")
}
