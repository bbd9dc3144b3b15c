// Package ops tests the operations of the pingora binary with real processes: configuration
// checks, signals, daemon mode, metrics and zero-downtime upgrades. Every test builds
// cmd/pingora, talks to it on 127.0.0.1 only, and bounds every wait.
package ops

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// waitBound bounds every wait of these tests: a process or an event that takes longer is a
// failure, not something to wait for forever.
const waitBound = 30 * time.Second

// buildBinary builds cmd/pingora into a temporary directory of t.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pingora")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/pingora-go/pingora/cmd/pingora")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// writeConf writes a configuration file into dir.
func writeConf(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "pingora.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// origin is an upstream server in the test process. "/slow" waits until release is closed;
// "/status/404" answers 404; anything else answers 200 "ok".
type origin struct {
	addr     string
	slowSeen chan struct{}
	release  chan struct{}
	srv      *http.Server
}

func startOrigin(t *testing.T) *origin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &origin{addr: ln.Addr().String(), slowSeen: make(chan struct{}, 16), release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		o.slowSeen <- struct{}{}
		select {
		case <-o.release:
		case <-time.After(waitBound):
		}
		io.WriteString(w, "slow done")
	})
	mux.HandleFunc("/status/404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	o.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go o.srv.Serve(ln)
	t.Cleanup(func() { o.srv.Close() })
	return o
}

// proc is a running pingora process whose stderr is kept and searchable.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the exit error, once done is closed

	mu    sync.Mutex // guards the fields below
	lines []string
	wake  chan struct{}
}

func startProc(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, cmd: exec.Command(bin, args...), done: make(chan struct{}), wake: make(chan struct{})}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.wake)
			p.wake = make(chan struct{})
			p.mu.Unlock()
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitLog waits until a line of stderr contains all of parts.
func (p *proc) waitLog(parts ...string) {
	p.t.Helper()
	deadline := time.After(waitBound)
	for {
		p.mu.Lock()
		for _, l := range p.lines {
			if containsAll(l, parts) {
				p.mu.Unlock()
				return
			}
		}
		wake := p.wake
		p.mu.Unlock()
		select {
		case <-wake:
		case <-p.done:
			p.mu.Lock()
			defer p.mu.Unlock()
			for _, l := range p.lines {
				if containsAll(l, parts) {
					return
				}
			}
			p.t.Fatalf("process exited (%v) before logging %q:\n%s", p.err, parts, strings.Join(p.lines, "\n"))
		case <-deadline:
			p.t.Fatalf("no log line with %q after %s:\n%s", parts, waitBound, p.log())
		}
	}
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

func containsAll(s string, parts []string) bool {
	for _, x := range parts {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

// wait waits for the process to exit, at most bound, and returns its exit error.
func (p *proc) wait(bound time.Duration) error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(bound):
		p.t.Fatalf("process %d still running after %s:\n%s", p.cmd.Process.Pid, bound, p.log())
		return nil
	}
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// get fetches url with a fresh connection and returns the status and body.
func get(url string) (int, string, error) {
	c := &http.Client{Timeout: waitBound, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// processAlive reports whether pid names a running process that is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// waitGone waits until pid has exited, at most waitBound.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running after %s", pid, waitBound)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// counter counts outcomes of a load, safely from many goroutines.
type counter struct {
	ok, failed, refused atomic.Int64
	mu                  sync.Mutex
	errs                []string
}

func (c *counter) fail(err error) {
	c.failed.Add(1)
	if isRefused(err) {
		c.refused.Add(1)
	}
	c.mu.Lock()
	if len(c.errs) < 10 {
		c.errs = append(c.errs, err.Error())
	}
	c.mu.Unlock()
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
