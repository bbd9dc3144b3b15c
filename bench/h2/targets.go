package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/pingora-go/pingora/bench/internal/procutil"
	"github.com/pingora-go/pingora/internal/nginxtest"
)

// proxyCPU and clientCPU are the taskset CPU lists of the proxy under test and of h2load and
// the origin.
const (
	proxyCPU  = "1"
	clientCPU = "0"
)

// origin is the nginx origin: 1 KiB as /1k over HTTP/1.1 on h1 and over cleartext HTTP/2 with
// prior knowledge on h2, and stub_status on status.
type origin struct {
	h1, h2, status string
	client         *http.Client
}

// startOrigin starts the origin as one nginx process on clientCPU.
func startOrigin(ctx context.Context, e *env) (*origin, error) {
	o := &origin{client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	for _, a := range []*string{&o.h1, &o.h2, &o.status} {
		var err error
		if *a, err = procutil.FreeAddr(); err != nil {
			return nil, err
		}
	}
	www := filepath.Join(e.dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(www, "1k"), bytes.Repeat([]byte("x"), bodySize), 0o644); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`    keepalive_requests 100000000;
    keepalive_timeout 300s;
    sendfile on;
    open_file_cache max=16;
    default_type application/octet-stream;
    server { listen %[1]s backlog=4096; location / { root %[4]s; } }
    server { listen %[2]s http2 backlog=4096; location / { root %[4]s; } }
    server { listen %[3]s; location = /status { stub_status; } }`, o.h1, o.h2, o.status, www)
	p, err := startNginx(e, "origin", clientCPU, conf)
	if err != nil {
		return nil, err
	}
	for _, a := range []string{o.h1, o.h2, o.status} {
		if err := procutil.WaitListening(ctx, p, a); err != nil {
			return nil, err
		}
	}
	return o, nil
}

var acceptsRE = regexp.MustCompile(`server accepts handled requests\s+(\d+) `)

// accepts returns the number of connections the origin accepted so far, counting the one
// this request opens.
func (o *origin) accepts(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+o.status+"/status", nil)
	if err != nil {
		return 0, err
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return 0, err
	}
	m := acceptsRE.FindSubmatch(b)
	if m == nil {
		return 0, fmt.Errorf("origin status: no accepts in %q", b)
	}
	return strconv.ParseInt(string(m[1]), 10, 64)
}

// startNginx runs one nginx process named name (one worker, no master) on cpu with http
// inside its http block.
func startNginx(e *env, name, cpu, conf string) (*procutil.Proc, error) {
	prefix := filepath.Join(e.dir, name)
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return nil, err
	}
	cmd, err := nginxtest.Command(e.nginx, prefix, nginxtest.Conf(prefix, 8192, conf))
	if err != nil {
		return nil, err
	}
	return procutil.Start(name, cpu, nil, filepath.Join(prefix, "stderr.log"), cmd.Args...)
}

// startPingora returns the start function of the pingora binary with one P (GOMAXPROCS=1),
// speaking HTTP/2 to the origin when upH2 is set and HTTP/1.1 otherwise.
func startPingora(upH2 bool) func(ctx context.Context, e *env, listen string) (*procutil.Proc, error) {
	return func(ctx context.Context, e *env, listen string) (*procutil.Proc, error) {
		args := []string{e.pingora, "--listen", listen}
		if upH2 {
			args = append(args, "--upstream", e.origin.h2, "--upstream-h2")
		} else {
			args = append(args, "--upstream", e.origin.h1)
		}
		if e.certFile != "" {
			args = append(args, "--tls-cert", e.certFile, "--tls-key", e.keyFile)
		} else {
			args = append(args, "--h2c")
		}
		p, err := procutil.Start("pingora-go", proxyCPU, []string{"GOMAXPROCS=1"}, filepath.Join(e.dir, "pingora.log"), args...)
		if err != nil {
			return nil, err
		}
		return p, procutil.WaitListening(ctx, p, listen)
	}
}

// startNginxProxy runs nginx as an HTTP/2 reverse proxy with one worker, keeping as many idle
// upstream connections as pingora's pool (128).
func startNginxProxy(ctx context.Context, e *env, listen string) (*procutil.Proc, error) {
	tlsConf := ""
	params := "http2"
	if e.certFile != "" {
		params = "ssl http2"
		tlsConf = fmt.Sprintf("ssl_certificate %s; ssl_certificate_key %s; ssl_protocols TLSv1.3;", e.certFile, e.keyFile)
	}
	conf := fmt.Sprintf(`    keepalive_requests 100000000;
    keepalive_timeout 300s;
    upstream origin {
        server %s;
        keepalive 128;
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }
    server {
        listen %s %s backlog=4096;
        %s
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }`, e.origin.h1, listen, params, tlsConf)
	p, err := startNginx(e, "nginx-proxy", proxyCPU, conf)
	if err != nil {
		return nil, err
	}
	return p, procutil.WaitListening(ctx, p, listen)
}
