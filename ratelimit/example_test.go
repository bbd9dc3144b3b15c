package ratelimit_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/limits"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/ratelimit"
	"github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

// rateLimiter counts each appid's requests per interval. The guide counts per second; a
// minute keeps this example's output the same on a slow machine.
var rateLimiter = limits.NewRate(time.Minute)

// maxReqPerInterval is each appid's quota.
const maxReqPerInterval = 1

// guideApp is the guide's rate limiter: at most maxReqPerInterval requests per interval for
// each value of the appid header; requests without it are not limited.
type guideApp struct {
	proxy.Defaults[struct{}]
	peer *upstream.Peer
}

func (a *guideApp) NewCtx() struct{} { return struct{}{} }

func (a *guideApp) UpstreamPeer(*proxy.Session, *struct{}) (*upstream.Peer, error) {
	return a.peer, nil
}

func (a *guideApp) RequestFilter(s *proxy.Session, _ *struct{}) (bool, error) {
	appid, ok := s.Req().Get("appid")
	if !ok {
		return false, nil
	}
	if rateLimiter.ObserveBytes(appid, 1) <= maxReqPerInterval {
		return false, nil
	}
	var h header.Fields
	h.Append("X-Rate-Limit-Limit", strconv.Itoa(maxReqPerInterval))
	h.Append("X-Rate-Limit-Remaining", "0")
	h.Append("X-Rate-Limit-Reset", "1")
	s.SetKeepAlive(false)
	return true, s.Respond(429, &h, nil)
}

// The guide's example: a limits.Rate as a global, observed in RequestFilter, and a 429 with
// the X-Rate-Limit fields over the limit.
func Example_guide() {
	addr, stop := serve(func(peer *upstream.Peer) proxy.ProxyHTTP[struct{}] { return &guideApp{peer: peer} })
	defer stop()
	for _, appid := range []string{"1", "1", "2", ""} {
		resp := get(addr, appid)
		fmt.Printf("appid %q: %d, X-Rate-Limit-Limit: %q\n", appid, resp.StatusCode, resp.Header.Get("X-Rate-Limit-Limit"))
	}
	// Output:
	// appid "1": 200, X-Rate-Limit-Limit: ""
	// appid "1": 429, X-Rate-Limit-Limit: "1"
	// appid "2": 200, X-Rate-Limit-Limit: ""
	// appid "": 200, X-Rate-Limit-Limit: ""
}

// limitedApp limits with the ready filter of this package.
type limitedApp struct {
	proxy.Defaults[struct{}]
	peer  *upstream.Peer
	limit *ratelimit.Filter
}

func (a *limitedApp) NewCtx() struct{} { return struct{}{} }

func (a *limitedApp) UpstreamPeer(*proxy.Session, *struct{}) (*upstream.Peer, error) {
	return a.peer, nil
}

func (a *limitedApp) RequestFilter(s *proxy.Session, _ *struct{}) (bool, error) {
	return a.limit.RequestFilter(s)
}

// The ready filter: two requests per minute for each appid, a 429 with Retry-After and the
// RateLimit fields over the limit.
func ExampleFilter() {
	limit := &ratelimit.Filter{
		Limiter: ratelimit.NewLocal(2, time.Minute),
		Key:     ratelimit.Header("appid"),
	}
	addr, stop := serve(func(peer *upstream.Peer) proxy.ProxyHTTP[struct{}] {
		return &limitedApp{peer: peer, limit: limit}
	})
	defer stop()
	for range 3 {
		resp := get(addr, "app-7")
		if resp.StatusCode != http.StatusTooManyRequests {
			fmt.Println(resp.StatusCode)
			continue
		}
		fmt.Println(resp.StatusCode, "RateLimit-Remaining:", resp.Header.Get("RateLimit-Remaining"),
			"RateLimit-Policy:", resp.Header.Get("RateLimit-Policy"))
	}
	// Output:
	// 200
	// 200
	// 429 RateLimit-Remaining: 0 RateLimit-Policy: 2;w=60
}

// One limit for every instance of a proxy: a Redis limiter. Each instance takes ten tokens
// per round trip and spends them locally; while Redis is unreachable, a Local with a share
// of the limit decides.
func ExampleNewRedis() {
	client := redis.NewClient(&redis.Options{
		Addr:                  "127.0.0.1:6379",
		DialTimeout:           100 * time.Millisecond,
		ReadTimeout:           100 * time.Millisecond,
		WriteTimeout:          100 * time.Millisecond,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialerRetries:         1,
	})
	limit := &ratelimit.Filter{
		Limiter: ratelimit.NewRedis(client, ratelimit.RedisOptions{
			Limit:    1000,
			Window:   time.Minute,
			Lease:    10,
			FailMode: ratelimit.FailOpen,
			Fallback: ratelimit.NewLocal(250, time.Minute), // four instances
			OnError:  func(err error) { slog.Warn("rate limit store", "err", err) },
		}),
		Key: ratelimit.ClientIP,
	}
	peer, err := upstream.NewPeer("192.0.2.10:80", false, "")
	if err != nil {
		log.Fatal(err)
	}
	svc := proxy.NewService("limited", &limitedApp{peer: peer, limit: limit}, proxy.Options{})
	svc.AddTCP("0.0.0.0:6188")
	srv := server.New(server.Options{})
	srv.AddService(svc)
	if err := srv.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// A Local limiter on its own: three requests per key per sliding hour.
func ExampleLocal() {
	l := ratelimit.NewLocal(3, time.Hour)
	for range 4 {
		d := l.Allow(context.Background(), []byte("10.0.0.7"))
		fmt.Println(d.Allowed, d.Remaining)
	}
	// Output:
	// true 2
	// true 1
	// true 0
	// false 0
}

func ExampleDecision_AppendHeaders() {
	d := ratelimit.Decision{Limit: 100, Window: time.Minute, Reset: 30 * time.Second, RetryAfter: 1500 * time.Millisecond}
	var f header.Fields
	d.AppendHeaders(&f)
	for _, field := range f.All() {
		fmt.Printf("%s: %s\n", field.Name, field.Value)
	}
	// Output:
	// RateLimit-Limit: 100
	// RateLimit-Remaining: 0
	// RateLimit-Reset: 30
	// RateLimit-Policy: 100;w=60
	// Retry-After: 2
}

// serve runs the proxy program made by newApp in front of an origin answering "ok", both on
// free loopback ports, and returns the proxy's address and a function that stops both.
func serve(newApp func(*upstream.Peer) proxy.ProxyHTTP[struct{}]) (string, func()) {
	oln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	origin := &http.Server{ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })}
	go origin.Serve(oln)
	peer, err := upstream.NewPeer(oln.Addr().String(), false, "")
	if err != nil {
		log.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := proxy.New(newApp(peer), proxy.Options{Logger: quiet})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	svc := server.NewListeningService("example", p)
	svc.SetLogger(quiet)
	svc.AddListener(ln)
	srv := server.New(server.Options{GracePeriod: time.Second, Logger: quiet})
	srv.AddService(svc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.RunServices(ctx) }()
	return ln.Addr().String(), func() {
		cancel()
		<-done
		p.Connector().Close()
		origin.Close()
	}
}

// get sends a GET with the appid header (when not empty) to the proxy at addr, on a new
// connection, and returns the response with its body read.
func get(addr, appid string) *http.Response {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		log.Fatal(err)
	}
	if appid != "" {
		req.Header.Set("appid", appid)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp
}
