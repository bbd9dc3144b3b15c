// Package ratelimit tests rate limiting end to end: proxies serving real connections, in
// this process, with their limits kept locally or in a real redis-server started by the test
// on a free loopback port. Every wait is bounded.
package ratelimit

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pingora-go/pingora/internal/testbin"
	"github.com/pingora-go/pingora/internal/testserve"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/ratelimit"
	"github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

// waitBound bounds every wait of these tests.
const waitBound = 20 * time.Second

// app is a proxy program that sends every request to one origin after its rate-limit filter,
// if any.
type app struct {
	proxy.Defaults[struct{}]
	peer  *upstream.Peer
	limit *ratelimit.Filter
}

func (a *app) NewCtx() struct{} { return struct{}{} }

func (a *app) UpstreamPeer(*proxy.Session, *struct{}) (*upstream.Peer, error) { return a.peer, nil }

func (a *app) RequestFilter(s *proxy.Session, _ *struct{}) (bool, error) {
	if a.limit == nil {
		return false, nil
	}
	return a.limit.RequestFilter(s)
}

// startOrigin starts an origin answering 200 "ok" and returns its address.
func startOrigin(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// startProxy runs a proxy limiting with f (nil: not limiting) in front of origin until the test ends and returns
// its address.
func startProxy(t testing.TB, origin string, f *ratelimit.Filter) string {
	t.Helper()
	peer, err := upstream.NewPeer(origin, false, "")
	if err != nil {
		t.Fatal(err)
	}
	quiet := testserve.Quiet()
	p := proxy.New(&app{peer: peer, limit: f}, proxy.Options{Logger: quiet})
	svc := server.NewListeningService("rate-limited proxy", p)
	svc.SetLogger(quiet)
	addr := testserve.Listen(t, svc)
	testserve.Run(t, testserve.Options{Logger: quiet, AfterStop: p.Connector().Close, ReportErr: true}, svc)
	return addr
}

// client returns an HTTP client whose every request is bounded; its idle connections close
// when the test ends.
func client(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: waitBound}
}

// get sends a GET to the proxy at addr with the appid header (when not empty) and returns
// the response, its body read.
func get(t testing.TB, c *http.Client, addr, appid string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if appid != "" {
		req.Header.Set("appid", appid)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp
}

// redisServer is a redis-server process of one test.
type redisServer struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// startRedis starts a redis-server without persistence on a free loopback port, waits until
// it answers PING and stops it by its PID when the test ends. It skips the test when
// redis-server is not installed (scripts/test.sh installs it).
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not installed; scripts/test.sh installs it")
		}
		t.Skip("redis-server not installed")
	}
	for attempt := 0; ; attempt++ {
		r, err := runRedis(t, bin, testbin.FreeAddr(t))
		if err == nil {
			return r
		}
		if attempt == 2 {
			t.Fatal(err)
		}
	}
}

// restart starts a new, empty redis-server on the address of r, which must have exited.
func (r *redisServer) restart(t testing.TB) *redisServer {
	t.Helper()
	n, err := runRedis(t, r.cmd.Path, r.addr)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// runRedis starts redis-server on addr and waits until it answers.
func runRedis(t testing.TB, bin, addr string) (*redisServer, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &redisServer{addr: addr, done: make(chan struct{}),
		cmd: exec.Command(bin, "--port", port, "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning")}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(r.kill)
	c := redis.NewClient(&redis.Options{Addr: r.addr, MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	deadline := time.Now().Add(waitBound)
	for {
		select {
		case <-r.done:
			return nil, fmt.Errorf("redis-server on %s exited", r.addr)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return r, nil
		}
		if time.Now().After(deadline) {
			r.kill()
			return nil, fmt.Errorf("redis-server on %s does not answer: %v", r.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops the server with SIGKILL, as a crash would, and waits for it to exit.
func (r *redisServer) kill() {
	r.cmd.Process.Signal(syscall.SIGCONT)
	r.cmd.Process.Kill()
	select {
	case <-r.done:
	case <-time.After(waitBound):
	}
}

// stop freezes the server with SIGSTOP: connections stay open and nothing answers, as with
// a hung server or a network partition.
func (r *redisServer) stop() { r.cmd.Process.Signal(syscall.SIGSTOP) }

// newClient returns a go-redis client for r with short timeouts and no retries, closed when
// the test ends.
func newClient(t testing.TB, r *redisServer) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}
