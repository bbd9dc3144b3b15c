// Command limitproxy is a rate-limited proxy for the process-level tests of package ratelimit:
// it forwards every request to one upstream after a Redis-backed limit keyed by the appid
// header, and prints "listening ADDR" on standard output once it accepts connections.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/ratelimit"
	"github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

type app struct {
	proxy.Defaults[struct{}]
	peer  *upstream.Peer
	limit *ratelimit.Filter
}

func (a *app) NewCtx() struct{} { return struct{}{} }

func (a *app) UpstreamPeer(*proxy.Session, *struct{}) (*upstream.Peer, error) { return a.peer, nil }

func (a *app) RequestFilter(s *proxy.Session, _ *struct{}) (bool, error) {
	return a.limit.RequestFilter(s)
}

func main() {
	upstreamAddr := flag.String("upstream", "", "upstream host:port")
	redisAddr := flag.String("redis", "", "Redis host:port")
	limit := flag.Int64("limit", 40, "requests per window")
	window := flag.Duration("window", time.Hour, "window")
	lease := flag.Int64("lease", 4, "tokens taken from Redis at a time")
	flag.Parse()
	if err := run(*upstreamAddr, *redisAddr, *limit, *window, *lease); err != nil {
		fmt.Fprintln(os.Stderr, "limitproxy:", err)
		os.Exit(1)
	}
}

func run(upstreamAddr, redisAddr string, limit int64, window time.Duration, lease int64) error {
	peer, err := upstream.NewPeer(upstreamAddr, false, "")
	if err != nil {
		return err
	}
	rc := redis.NewClient(&redis.Options{Addr: redisAddr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, ContextTimeoutEnabled: true})
	defer rc.Close()
	lim := ratelimit.NewRedis(rc, ratelimit.RedisOptions{Limit: limit, Window: window, Lease: lease,
		LeaseTTL: time.Hour, Timeout: 2 * time.Second, FailMode: ratelimit.FailClosed})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := proxy.New(&app{peer: peer, limit: &ratelimit.Filter{Limiter: lim, Key: ratelimit.Header("appid")}},
		proxy.Options{Logger: quiet})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	svc := server.NewListeningService("limitproxy", p)
	svc.SetLogger(quiet)
	svc.AddListener(ln)
	srv := server.New(server.Options{GracePeriod: time.Second, Logger: quiet})
	srv.AddService(svc)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	fmt.Println("listening", ln.Addr().String())
	return srv.RunServices(ctx)
}
