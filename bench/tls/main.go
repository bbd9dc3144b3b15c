// Command tls measures TLS termination of the pingora binary against nginx, in one run, on
// the same certificate and the same origin:
//
//   - full handshakes per second and the server's CPU time per new TLS connection (each
//     connection makes a full TLS 1.3 handshake with X25519 and an ECDSA P-256 certificate,
//     sends one request and closes; session resumption is off);
//   - requests per second and the server's CPU time per request over reused TLS connections.
//
// Both servers terminate TLS and proxy to one plain nginx origin over kept-alive connections;
// each is pinned to CPU 0 with taskset when available, the origin to CPU 1, and the load
// generator (this program) runs unpinned. CPU time is utime+stime from /proc/PID/stat.
//
// Run it from the bench module: cd bench && go run ./tls [-duration 5s] [-conns 16].
// It needs nginx and the Go toolchain (to build cmd/pingora).
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pingora-go/pingora/bench/internal/procutil"
	"github.com/pingora-go/pingora/internal/nginxtest"
	"github.com/pingora-go/pingora/internal/testpki"
)

func main() {
	duration := flag.Duration("duration", 5*time.Second, "how long each measurement runs")
	conns := flag.Int("conns", 16, "concurrent client connections")
	flag.Parse()
	if err := run(*duration, *conns); err != nil {
		fmt.Fprintln(os.Stderr, "bench/tls:", err)
		os.Exit(1)
	}
}

// target is a TLS-terminating server under test.
type target struct {
	name string
	addr string
	cmd  *exec.Cmd
}

func run(duration time.Duration, conns int) error {
	dir, err := os.MkdirTemp("", "bench-tls")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ca, err := testpki.NewCA("bench CA")
	if err != nil {
		return err
	}
	leaf, err := ca.Issue(testpki.LeafOptions{Names: []string{"localhost"}})
	if err != nil {
		return err
	}
	certFile, keyFile, err := leaf.WriteFiles(dir, "server")
	if err != nil {
		return err
	}
	nginx, err := nginxtest.Find()
	if err != nil {
		return err
	}

	origin := freeAddr()
	orig, err := startNginx(nginx, dir, "origin", "1", fmt.Sprintf(`server { listen %s; location / { return 200 "hello\n"; } }`, origin))
	if err != nil {
		return err
	}
	defer stop(orig)

	bin, err := procutil.BuildPingora(context.Background(), dir)
	if err != nil {
		return err
	}
	paddr := freeAddr()
	pcmd, err := startProc(filepath.Join(dir, "pingora.log"), "0", bin, "--listen", paddr, "--upstream", origin,
		"--tls-cert", certFile, "--tls-key", keyFile)
	if err != nil {
		return err
	}
	defer stop(pcmd)

	naddr := freeAddr()
	ncmd, err := startNginx(nginx, dir, "nginx-tls", "0", fmt.Sprintf(`
upstream origin { server %s; keepalive 64; }
server {
    listen %s ssl;
    ssl_certificate %s;
    ssl_certificate_key %s;
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_requests 1000000;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; }
}`, origin, naddr, certFile, keyFile))
	if err != nil {
		return err
	}
	defer stop(ncmd)

	targets := []target{{"pingora-go", paddr, pcmd}, {"nginx", naddr, ncmd}}
	cfg := &tls.Config{
		RootCAs:                ca.Pool(),
		ServerName:             "localhost",
		SessionTicketsDisabled: true,
		CurvePreferences:       []tls.CurveID{tls.X25519},
		NextProtos:             []string{"http/1.1"},
	}
	for _, t := range targets {
		if err := waitListening(t.addr); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		// Warm-up: a request through each, so that the origin connections exist.
		if _, err := measure(t, time.Second, conns, cfg, false); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}
	fmt.Printf("TLS 1.3, X25519, ECDSA P-256; %d connections, %v per measurement; servers on CPU 0\n", conns, duration)
	fmt.Printf("%-11s %-28s %12s %14s %8s\n", "server", "measurement", "rate/s", "CPU µs/each", "errors")
	for _, newConns := range []bool{true, false} {
		for _, t := range targets {
			r, err := measure(t, duration, conns, cfg, newConns)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			what := "request on reused conn"
			if newConns {
				what = "new conn (full handshake)"
			}
			fmt.Printf("%-11s %-28s %12.0f %14.1f %8d\n", t.name, what, r.rate, r.cpuPer, r.errors)
		}
	}
	return nil
}

// result is one measurement.
type result struct {
	rate   float64 // operations per second
	cpuPer float64 // server CPU µs per operation
	errors int64
}

// measure runs conns clients against t for d: each makes a new TLS connection per request
// when newConns is set, and sends all its requests over one connection otherwise.
func measure(t target, d time.Duration, conns int, cfg *tls.Config, newConns bool) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var ops, errs atomic.Int64
	var firstErr atomic.Value
	cpu0, err := procutil.ProcessCPU(t.cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *client
			for ctx.Err() == nil {
				if c == nil {
					var err error
					if c, err = dial(t.addr, cfg); err != nil {
						errs.Add(1)
						firstErr.CompareAndSwap(nil, err)
						continue
					}
				}
				if err := c.get(); err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
						firstErr.CompareAndSwap(nil, err)
					}
					c.conn.Close()
					c = nil
					continue
				}
				ops.Add(1)
				if newConns {
					c.conn.Close()
					c = nil
				}
			}
			if c != nil {
				c.conn.Close()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, err := procutil.ProcessCPU(t.cmd.Process.Pid)
	if err != nil {
		return result{}, err
	}
	n := ops.Load()
	if n == 0 {
		return result{}, fmt.Errorf("no request succeeded: %v", firstErr.Load())
	}
	return result{
		rate:   float64(n) / elapsed.Seconds(),
		cpuPer: float64((cpu1 - cpu0).Microseconds()) / float64(n),
		errors: errs.Load(),
	}, nil
}

// client is one keep-alive HTTP/1.1 connection over TLS.
type client struct {
	conn *tls.Conn
	r    *bufio.Reader
}

var request = []byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")

func dial(addr string, cfg *tls.Config) (*client, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &client{conn: c.(*tls.Conn), r: bufio.NewReaderSize(c, 4096)}, nil
}

// get sends a request and reads the response, which must be 200 with a Content-Length.
func (c *client) get() error {
	c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write(request); err != nil {
		return err
	}
	status, err := c.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200")) {
		return fmt.Errorf("status %q", status)
	}
	length := -1
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(name), "content-length") {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(value)))
		}
	}
	if length < 0 {
		return errors.New("response without Content-Length")
	}
	_, err = c.r.Discard(length)
	return err
}

// startNginx runs one single-process nginx named name with the server blocks given.
func startNginx(bin, dir, name, cpu, servers string) (*exec.Cmd, error) {
	prefix := filepath.Join(dir, name)
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return nil, err
	}
	confPath := filepath.Join(prefix, "nginx.conf")
	conf := nginxtest.Conf(prefix, 4096, "    keepalive_requests 1000000;\n    "+servers)
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return startProc(filepath.Join(prefix, "stderr.log"), cpu, bin, "-p", prefix, "-c", confPath)
}

// startProc starts argv pinned to cpu (when taskset exists) with its output in log.
func startProc(log, cpu string, argv ...string) (*exec.Cmd, error) {
	if ts, err := exec.LookPath("taskset"); err == nil {
		argv = append([]string{ts, "-c", cpu}, argv...)
	}
	lf, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// The kernel kills the child if the benchmark dies without stopping it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd, cmd.Start()
}

// stop ends a process the benchmark started.
func stop(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitListening(addr string) error {
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
	}
}
