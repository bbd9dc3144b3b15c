package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/pingora-go/pingora/bench/internal/procutil"
)

// setup is one measured configuration: how many workers the proxies get and where each side
// runs.
type setup struct {
	workers    int    // nginx worker_processes, haproxy nbthread, GOMAXPROCS
	proxyCPUs  string // taskset list for the proxy; "" leaves it unpinned
	clientCPUs string // taskset list for wrk and the origin
	wrkThreads int
}

// setups are the two configurations the issue asks for. On a 2-core machine, one worker gets
// a core of its own while wrk and the origin share the other; with two workers nothing can be
// kept apart, so nothing is pinned.
var setups = map[int]setup{
	1: {workers: 1, proxyCPUs: "1", clientCPUs: "0", wrkThreads: 1},
	2: {workers: 2, wrkThreads: 2},
}

// target is a proxy (or none, for the direct baseline) the harness measures.
type target struct {
	name  string
	start func(ctx context.Context, env *env, s setup, listen string) (*procutil.Proc, error)
}

// env is what the targets share during a run.
type env struct {
	dir     string // temp dir for configs, logs and the origin's files
	self    string // this harness's executable, re-run for the httputil proxy and idle client
	pingora string // the pingora binary
	origin  string // the origin's address
}

// targets lists the proxies in the order of the first round.
var targets = []target{
	{"pingora-go", startPingora},
	{"nginx", startNginxProxy},
	{"haproxy", startHAProxy},
	{"httputil", startHTTPUtil},
	{"direct", nil},
	{"pingora-go-cache", startPingoraCache},
	{"pingora-go-cache-disk", startPingoraCacheDisk},
	{"nginx-cache", startNginxCache},
}

// writeFile writes content under the env's temp dir and returns its path.
func (e *env) writeFile(name string, content []byte) (string, error) {
	p := filepath.Join(e.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	return p, os.WriteFile(p, content, 0o644)
}

// nginxTempPaths creates dir and returns the directives that keep nginx's temp directories
// in it (nginx otherwise uses /var/lib/nginx). nginx reports a dir it cannot use.
func nginxTempPaths(dir string) string {
	_ = os.MkdirAll(dir, 0o755)
	var b bytes.Buffer
	for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&b, "    %s_temp_path %s;\n", t, filepath.Join(dir, t+"_temp"))
	}
	return b.String()
}

// startOrigin writes the static files (1 KiB as /1k, 16 KiB as /16k) and starts nginx as the
// origin: one process, keep-alive without a request limit.
func startOrigin(ctx context.Context, e *env, s setup) (*procutil.Proc, error) {
	www := filepath.Join(e.dir, "www")
	for name, size := range sizes {
		if _, err := e.writeFile(filepath.Join("www", name), bytes.Repeat([]byte("x"), size)); err != nil {
			return nil, err
		}
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/origin.pid;
error_log %[1]s/origin-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
%[2]s    sendfile on;
    open_file_cache max=16;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    default_type application/octet-stream;
    server {
        listen %[3]s backlog=4096;
        location / { root %[4]s; }
        location /c { root %[4]s; expires 1h; }
    }
}
`, e.dir, nginxTempPaths(filepath.Join(e.dir, "origin")), e.origin, www)
	p, err := e.writeFile("origin.conf", []byte(conf))
	if err != nil {
		return nil, err
	}
	pr, err := procutil.Start("origin nginx", s.clientCPUs, nil, filepath.Join(e.dir, "origin.log"),
		"nginx", "-e", filepath.Join(e.dir, "origin-error.log"), "-p", e.dir, "-c", p)
	if err != nil {
		return nil, err
	}
	return pr, procutil.WaitListening(ctx, pr, e.origin)
}

func startPingora(ctx context.Context, e *env, s setup, listen string) (*procutil.Proc, error) {
	return runPingora(ctx, e, s, "pingora-go", "pingora.log", listen)
}

// runPingora runs the pingora binary named name in front of the origin on listen, with the
// extra flags args and its output in the file log of the temp dir, until it listens.
func runPingora(ctx context.Context, e *env, s setup, name, log, listen string, args ...string) (*procutil.Proc, error) {
	// No connection limit: its default (half the descriptor limit) would hold back some of the
	// idle test's 10,000 clients, which nginx and HAProxy are configured to admit.
	cf, err := e.writeFile("pingora.yaml", []byte("version: 1\nmax_downstream_connections: -1\n"))
	if err != nil {
		return nil, err
	}
	argv := append([]string{e.pingora, "-c", cf, "--listen", listen, "--upstream", e.origin}, args...)
	pr, err := procutil.Start(name, s.proxyCPUs, []string{"GOMAXPROCS=" + strconv.Itoa(s.workers)},
		filepath.Join(e.dir, log), argv...)
	if err != nil {
		return nil, err
	}
	return pr, procutil.WaitListening(ctx, pr, listen)
}

func startHTTPUtil(ctx context.Context, e *env, s setup, listen string) (*procutil.Proc, error) {
	pr, err := procutil.Start("httputil", s.proxyCPUs, []string{"GOMAXPROCS=" + strconv.Itoa(s.workers)},
		filepath.Join(e.dir, "httputil.log"), e.self, "-serve-httputil", listen, "-upstream", e.origin)
	if err != nil {
		return nil, err
	}
	return pr, procutil.WaitListening(ctx, pr, listen)
}

// startNginxProxy runs nginx as a reverse proxy with upstream keep-alive. worker_connections
// and the file limit leave room for the idle-connection test's 10,000 clients.
func startNginxProxy(ctx context.Context, e *env, s setup, listen string) (*procutil.Proc, error) {
	return startNginx(ctx, e, s, "nginx proxy", "nginx-proxy", nginxProxyConf(e, s, "nginx-proxy", listen, "", "", ""), listen)
}

// nginxProxyConf is the configuration of nginx as a reverse proxy on listen to the origin,
// with upstream keep-alive; base names its pid file, error log and temporary paths in the
// env's temp dir. main goes before worker_processes, http into the http block and location
// into the location; each is empty or lines ending in a newline.
func nginxProxyConf(e *env, s setup, base, listen, main, http, location string) string {
	return fmt.Sprintf(`daemon off;
%[6]sworker_processes %[1]d;
worker_rlimit_nofile 19000;
pid %[2]s/%[9]s.pid;
error_log %[2]s/%[9]s-error.log warn;
events { worker_connections 18000; }
http {
    access_log off;
%[3]s    keepalive_requests 100000000;
    keepalive_timeout 300s;
%[7]s    upstream origin {
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
%[8]s        }
    }
}
`, s.workers, e.dir, nginxTempPaths(filepath.Join(e.dir, base)), e.origin, listen, main, http, location, base)
}

// startNginx writes conf to base.conf in the env's temp dir and runs nginx with it, its
// output in base.log and its error log in base-error.log, until it listens on listen.
func startNginx(ctx context.Context, e *env, s setup, name, base, conf, listen string) (*procutil.Proc, error) {
	p, err := e.writeFile(base+".conf", []byte(conf))
	if err != nil {
		return nil, err
	}
	pr, err := procutil.Start(name, s.proxyCPUs, nil, filepath.Join(e.dir, base+".log"),
		"nginx", "-e", filepath.Join(e.dir, base+"-error.log"), "-p", e.dir, "-c", p)
	if err != nil {
		return nil, err
	}
	return pr, procutil.WaitListening(ctx, pr, listen)
}

// startHAProxy runs HAProxy in http mode with connection reuse to the origin. maxconn 11000
// admits the idle test's 10,000 clients; HAProxy reserves two descriptors per connection,
// more than the machine's hard limit (20,000), so strict-limits is off: it warns and runs,
// and idle keep-alive clients hold no server-side connection.
func startHAProxy(ctx context.Context, e *env, s setup, listen string) (*procutil.Proc, error) {
	conf := fmt.Sprintf(`global
    nbthread %d
    maxconn 11000
    no strict-limits
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
    http-reuse always
frontend fe
    bind %s
    default_backend be
backend be
    server origin %s
`, s.workers, listen, e.origin)
	p, err := e.writeFile("haproxy.cfg", []byte(conf))
	if err != nil {
		return nil, err
	}
	pr, err := procutil.Start("haproxy", s.proxyCPUs, nil, filepath.Join(e.dir, "haproxy.log"), "haproxy", "-db", "-f", p)
	if err != nil {
		return nil, err
	}
	return pr, procutil.WaitListening(ctx, pr, listen)
}
