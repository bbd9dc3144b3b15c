package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pingora-go/pingora/listeners"
	"github.com/pingora-go/pingora/ratelimit"
)

// DefaultRedisPrefix is the default of Redis.Prefix.
const DefaultRedisPrefix = "pingora:ratelimit:"

// redisErrorLogInterval is the least time between two log lines about failed Redis calls.
const redisErrorLogInterval = 10 * time.Second

// redisConn is the running client of a Redis configuration.
type redisConn struct {
	cfg    Redis
	client *redis.Client
	// lastLog is when a failed call was last logged (unix ns); failures between two lines
	// are counted in suppressed.
	lastLog    atomic.Int64
	suppressed atomic.Int64
}

// redisClient returns the client for c.Redis: the running one when its settings did not
// change, else a new one (go-redis connects on first use). nil without redis.
func (g *Gateway) redisClient(c *Config) (*redisConn, error) {
	if c.Redis == nil {
		return nil, nil
	}
	cfg := *c.Redis
	if g.redis != nil && g.redis.cfg == cfg {
		return g.redis, nil
	}
	o := &redis.Options{Username: cfg.Username, Password: cfg.Password, DB: cfg.DB,
		DialTimeout: time.Second, ReadTimeout: cfg.Timeout.D(), WriteTimeout: cfg.Timeout.D(),
		// A rate limit decision is not worth a retry: the fail mode decides instead.
		MaxRetries: -1}
	a, _ := listeners.ParseAddress(cfg.Address)
	o.Network, o.Addr = a.Network, a.Addr
	if cfg.PasswordFile != "" {
		pw, err := readPasswordFile(c.resolve(cfg.PasswordFile))
		if err != nil {
			return nil, c.errAt("redis.password_file", "%v", err)
		}
		o.Password = pw
	}
	return &redisConn{cfg: cfg, client: redis.NewClient(o)}, nil
}

// readPasswordFile returns the first line of a file of at most 4 KiB.
func readPasswordFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b := make([]byte, 4097)
	n, _ := f.Read(b)
	if n > 4096 {
		return "", fmt.Errorf("%s: longer than 4096 bytes", path)
	}
	line, _, _ := bufio.NewReader(bytes.NewReader(b[:n])).ReadLine()
	return string(line), nil
}

// onError logs failed Redis calls, at most one line each redisErrorLogInterval.
func (r *redisConn) onError(g *Gateway) func(error) {
	return func(err error) {
		now := time.Now().UnixNano()
		last := r.lastLog.Load()
		if now-last < int64(redisErrorLogInterval) || !r.lastLog.CompareAndSwap(last, now) {
			r.suppressed.Add(1)
			return
		}
		g.log.Warn("rate limit: Redis call failed; requests are decided by on_redis_error",
			"redis", r.cfg.Address, "error", err.Error(), "failures_not_logged", r.suppressed.Swap(0))
	}
}

// clusterLimiter returns the Redis limiter of a route's rate limit of scope cluster.
func (g *Gateway) clusterLimiter(rc *redisConn, svc, route string, rl *RateLimit) ratelimit.Limiter {
	o := ratelimit.RedisOptions{
		Limit: rl.Requests, Window: rl.Window.D(), Burst: rl.Burst,
		Prefix:  rc.cfg.Prefix + svc + ":" + route + ":",
		Timeout: rc.cfg.Timeout.D(),
		OnError: rc.onError(g),
	}
	switch rl.OnRedisError {
	case "closed":
		o.FailMode = ratelimit.FailClosed
	case "local":
		o.Fallback = ratelimit.NewLocal(rl.Requests, rl.Window.D())
	}
	return ratelimit.NewRedis(rc.client, o)
}
