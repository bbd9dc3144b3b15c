package main

import (
	"context"
	"fmt"
	"net/http"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/pingora-go/pingora/bench/internal/procutil"
)

// The cache targets measure the hit path of an HTTP cache in front of the origin's cacheable
// files (c1k, c64k, c1m): pingora-go's quick mode with its memory or disk storage, and nginx's
// proxy_cache (files on disk, served from the page cache).

func startPingoraCache(ctx context.Context, e *env, s setup, listen string) (*procutil.Proc, error) {
	return startPingoraWith(ctx, e, s, listen, "pingora-go-cache", "--cache-memory", "1GiB")
}

func startPingoraCacheDisk(ctx context.Context, e *env, s setup, listen string) (*procutil.Proc, error) {
	return startPingoraWith(ctx, e, s, listen, "pingora-go-cache-disk", "--cache-dir", filepath.Join(e.dir, "pingora-cache"), "--cache-disk", "1GiB")
}

func startPingoraWith(ctx context.Context, e *env, s setup, listen, name string, args ...string) (*procutil.Proc, error) {
	pr, err := runPingora(ctx, e, s, name, name+".log", listen, args...)
	if err != nil {
		return pr, err
	}
	return pr, checkHit(listen, "Cache-Status", "hit")
}

// startNginxCache runs nginx as a caching reverse proxy: proxy_cache in the temp dir, the
// origin's max-age deciding freshness, upstream keep-alive as startNginxProxy.
func startNginxCache(ctx context.Context, e *env, s setup, listen string) (*procutil.Proc, error) {
	// The workers run as this user, so that they can write the cache store in the private
	// temp dir (as root, nginx would switch them to nobody).
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	conf := nginxProxyConf(e, s, "nginx-cache", listen, "user "+u.Username+";\n",
		"    proxy_cache_path "+e.dir+"/nginx-cache-store levels=1:2 keys_zone=pc:16m max_size=1g inactive=1h use_temp_path=off;\n",
		"            proxy_cache pc;\n            proxy_cache_lock on;\n            add_header X-Cache-Status $upstream_cache_status;\n")
	pr, err := startNginx(ctx, e, s, "nginx cache", "nginx-cache", conf, listen)
	if err != nil {
		return pr, err
	}
	return pr, checkHit(listen, "X-Cache-Status", "HIT")
}

// checkHit fetches /c1k twice and checks that the second answer says it is a hit in field.
func checkHit(listen, field, want string) error {
	client := &http.Client{Timeout: 5 * time.Second}
	var got string
	for i := 0; i < 2; i++ {
		resp, err := client.Get("http://" + listen + "/c1k")
		if err != nil {
			return err
		}
		resp.Body.Close()
		got = resp.Header.Get(field)
	}
	if !strings.Contains(got, want) {
		return fmt.Errorf("%s not a cache hit: %s: %q", listen, field, got)
	}
	return nil
}
