package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pingora-go/pingora/bench/internal/procutil"
)

// idleDialers is how many connections the idle client opens at once, well below the
// listeners' backlog.
const idleDialers = 64

// runIdleClient opens n keep-alive connections to addr (at most rate per second when rate is
// positive), sends one GET for path on each and reads its response, prints "ready OK FAILED",
// then holds the connections open until its stdin closes or it is signalled. It runs in a process of its own: 10,000 client sockets
// plus the proxy's 10,000 would not fit in one process's file limit (20,000 here).
func runIdleClient(addr, path string, n, rate int) error {
	var (
		mu     sync.Mutex // guards conns and failed
		conns  []net.Conn
		failed int
	)
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: e2e-idle\r\n\r\n")
	next := make(chan struct{})
	var wg sync.WaitGroup
	for range idleDialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				c, err := oneRequest(addr, req)
				mu.Lock()
				if err != nil {
					failed++
				} else {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		}()
	}
	var tick <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		tick = t.C
	}
	for range n {
		if tick != nil {
			<-tick
		}
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	fmt.Printf("ready %d %d\n", len(conns), failed)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	eof := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-sig:
	case <-eof:
	}
	for _, c := range conns {
		c.Close()
	}
	return nil
}

// oneRequest dials addr, sends req and reads one whole response, leaving the connection open.
func oneRequest(addr string, req []byte) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if err == nil && (resp.StatusCode != http.StatusOK || br.Buffered() != 0) {
		err = fmt.Errorf("status %d, %d extra bytes", resp.StatusCode, br.Buffered())
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// idleResult is the idle-connection measurement of one proxy.
type idleResult struct {
	name    string
	conns   int   // connections that got their response and stayed open
	failed  int   // connections that did not
	baseKB  int64 // VmRSS before the clients connected
	samples []idleSample
}

// idleSample is the proxy's state some time after the last client got its response.
type idleSample struct {
	after time.Duration
	rssKB int64
	fds   int
}

// measureIdle starts the proxy t (one worker, unpinned), warms it with wrk, takes its RSS
// after c.idleSettle, opens c.idleConns idle keep-alive connections through a client process
// and samples the RSS at each of c.idleAfter after the last response.
func measureIdle(ctx context.Context, e *env, t target, c config) (idleResult, error) {
	res := idleResult{name: t.name}
	listen, err := procutil.FreeAddr()
	if err != nil {
		return res, err
	}
	s := setup{workers: 1, wrkThreads: 1}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	p, err := t.start(pctx, e, s, listen)
	cancel()
	if p != nil {
		defer p.Stop()
	}
	if err != nil {
		return res, err
	}
	if _, err := runWrk(ctx, "", 1, 50, time.Second, "http://"+listen+"/1k"); err != nil {
		return res, err
	}
	// Let the warm-up connections close and the proxy settle before the baseline.
	if err := sleep(ctx, c.idleSettle); err != nil {
		return res, err
	}
	res.baseKB = procutil.StatusKB(p.PID(), "VmRSS")

	cctx, ccancel := context.WithTimeout(ctx, 5*time.Minute)
	defer ccancel()
	cmd := exec.CommandContext(cctx, e.self, "-idle-client", listen,
		"-idle-conns", strconv.Itoa(c.idleConns), "-idle-rate", strconv.Itoa(c.idleRate))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return res, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	if err := cmd.Start(); err != nil {
		return res, err
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return res, fmt.Errorf("idle client: %w", err)
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "ready" {
		return res, fmt.Errorf("idle client said %q", line)
	}
	res.conns, _ = strconv.Atoi(f[1])
	res.failed, _ = strconv.Atoi(f[2])
	t0 := time.Now()
	for _, off := range c.idleAfter {
		if err := sleep(ctx, time.Until(t0.Add(off))); err != nil {
			return res, err
		}
		if p.Exited() {
			return res, fmt.Errorf("%s exited during the idle test", t.name)
		}
		res.samples = append(res.samples, idleSample{after: off, rssKB: procutil.StatusKB(p.PID(), "VmRSS"), fds: procutil.OpenFDs(p.PID())})
	}
	return res, nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
