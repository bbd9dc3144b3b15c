package main

import (
	"context"
	"fmt"
	"net/http"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The cache targets measure the hit path of an HTTP cache in front of the origin's cacheable
// files (c1k, c64k, c1m): pingora-go's quick mode with its memory or disk storage, and nginx's
// proxy_cache (files on disk, served from the page cache).

func startPingoraCache(ctx context.Context, e *env, s setup, listen string) (*proc, error) {
	return startPingoraWith(ctx, e, s, listen, "pingora-go-cache", "--cache-memory", "1GiB")
}

func startPingoraCacheDisk(ctx context.Context, e *env, s setup, listen string) (*proc, error) {
	return startPingoraWith(ctx, e, s, listen, "pingora-go-cache-disk", "--cache-dir", filepath.Join(e.dir, "pingora-cache"), "--cache-disk", "1GiB")
}

func startPingoraWith(ctx context.Context, e *env, s setup, listen, name string, args ...string) (*proc, error) {
	cf, err := e.writeFile("pingora.yaml", []byte("version: 1\nmax_downstream_connections: -1\n"))
	if err != nil {
		return nil, err
	}
	argv := append([]string{e.pingora, "-c", cf, "--listen", listen, "--upstream", e.origin}, args...)
	pr, err := start(name, s.proxyCPUs, []string{"GOMAXPROCS=" + strconv.Itoa(s.workers)},
		filepath.Join(e.dir, name+".log"), argv...)
	if err != nil {
		return nil, err
	}
	if err := waitListening(ctx, pr, listen); err != nil {
		return pr, err
	}
	return pr, checkHit(listen, "Cache-Status", "hit")
}

// startNginxCache runs nginx as a caching reverse proxy: proxy_cache in the temp dir, the
// origin's max-age deciding freshness, upstream keep-alive as startNginxProxy.
func startNginxCache(ctx context.Context, e *env, s setup, listen string) (*proc, error) {
	// The workers run as this user, so that they can write the cache store in the private
	// temp dir (as root, nginx would switch them to nobody).
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`daemon off;
user %[6]s;
worker_processes %[1]d;
worker_rlimit_nofile 19000;
pid %[2]s/nginx-cache.pid;
error_log %[2]s/nginx-cache-error.log warn;
events { worker_connections 18000; }
http {
    access_log off;
%[3]s    keepalive_requests 100000000;
    keepalive_timeout 300s;
    proxy_cache_path %[2]s/nginx-cache-store levels=1:2 keys_zone=pc:16m max_size=1g inactive=1h use_temp_path=off;
    upstream origin {
        server %[4]s;
        keepalive 64;
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }
    server {
        listen %[5]s backlog=4096;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache pc;
            proxy_cache_lock on;
            add_header X-Cache-Status $upstream_cache_status;
        }
    }
}
`, s.workers, e.dir, nginxTempPaths(filepath.Join(e.dir, "nginx-cache")), e.origin, listen, u.Username)
	p, err := e.writeFile("nginx-cache.conf", []byte(conf))
	if err != nil {
		return nil, err
	}
	pr, err := start("nginx cache", s.proxyCPUs, nil, filepath.Join(e.dir, "nginx-cache.log"),
		"nginx", "-e", filepath.Join(e.dir, "nginx-cache-error.log"), "-p", e.dir, "-c", p)
	if err != nil {
		return nil, err
	}
	if err := waitListening(ctx, pr, listen); err != nil {
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
