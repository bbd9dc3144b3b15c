// Command e2e is the end-to-end benchmark harness: it measures pingora-go's proxy binary,
// nginx, HAProxy and Go's httputil.ReverseProxy as HTTP/1.1 reverse proxies in front of the
// same nginx origin, with wrk as the client, all on 127.0.0.1.
//
// Run it from the bench module (it needs nginx, haproxy, wrk and taskset on the PATH):
//
//	cd bench && go run ./e2e            # full run: about 17 minutes
//	cd bench && go run ./e2e -quick     # smoke test: under a minute
//
// For each number of workers (1: GOMAXPROCS=1, nginx worker_processes 1, haproxy nbthread 1;
// 2: two of each) and each response size, it runs every proxy in turn for -duration, in a
// different order each round, and prints per proxy the medians over the rounds of requests/s,
// p50 and p99 latency (wrk --latency), the proxy's CPU time per request (utime+stime from
// /proc/PID/stat of the proxy and its children, before and after, divided by the requests
// wrk completed) and its peak RSS (VmHWM). With one worker the proxy is pinned to CPU 1 and
// wrk and the origin to CPU 0. It then measures the memory each proxy holds per idle
// keep-alive downstream connection. Results go to stdout as Markdown tables, progress to
// stderr. Every process it starts is stopped by PID, also on SIGINT.
//
// With -shared (one worker), the proxies of a round run at the same time, all pinned to CPU 1,
// each loaded by its own wrk: the machine's speed, which drifts by a third between runs on a
// shared host, is then the same for all of them, and their CPU per request compares within
// a few per cent where runs one after the other scatter by fifteen:
//
//	cd bench && go run ./e2e -shared -workers 1 -sizes 1k -rounds 9 -duration 3s -idle-conns 0 -targets pingora-go,nginx
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pingora-go/pingora/bench/internal/procutil"
)

// sizes are the origin's static files, by URL path name.
// The c sizes are cacheable (max-age one hour), for the cache targets' hit path.
var sizes = map[string]int{"1k": 1 << 10, "16k": 16 << 10, "c1k": 1 << 10, "c64k": 64 << 10, "c1m": 1 << 20}

// config is the command line.
type config struct {
	rounds     int
	duration   time.Duration
	warmup     time.Duration
	conns      int
	sizes      []string
	workers    []int
	targets    []string
	idleConns  int
	idleRate   int
	idleAfter  []time.Duration
	idleSettle time.Duration
	pingora    string
	repo       string
	keep       bool
	shared     bool
}

func main() {
	var (
		quick                               bool
		serveHTTPUtilAddr, upstream         string
		idleClientAddr, idlePath            string
		sizesFlag, workersFlag, targetsFlag string
		idleAfterFlag                       string
		c                                   config
	)
	flag.BoolVar(&quick, "quick", false, "smoke test in under a minute: 1 round of 2 s, 1 KiB, one worker, 1,000 idle connections")
	flag.IntVar(&c.rounds, "rounds", 3, "rounds: each proxy runs once per round and configuration")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "length of each measured wrk run (whole seconds)")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "unmeasured wrk run before each measured one (whole seconds)")
	flag.IntVar(&c.conns, "c", 50, "wrk connections")
	flag.StringVar(&sizesFlag, "sizes", "1k,16k", "response sizes: 1k, 16k; c1k, c64k, c1m are cacheable, for the cache targets")
	flag.StringVar(&workersFlag, "workers", "1,2", "worker counts to measure: 1, 2; empty runs only the idle test")
	flag.StringVar(&targetsFlag, "targets", "pingora-go,nginx,haproxy,httputil,direct", "what to measure; direct is wrk straight to the origin")
	flag.IntVar(&c.idleConns, "idle-conns", 10000, "idle keep-alive connections per proxy; 0 skips the idle test")
	flag.IntVar(&c.idleRate, "idle-rate", 0, "connections per second the idle client opens; 0 opens them as fast as it can (64 at a time)")
	flag.StringVar(&idleAfterFlag, "idle-after", "5s,20s,50s", "when to sample RSS after the last idle connection got its response")
	flag.DurationVar(&c.idleSettle, "idle-settle", 3*time.Second, "pause after the warm-up before the idle test's baseline RSS")
	flag.StringVar(&c.pingora, "pingora", "", "pingora binary; empty builds ./cmd/pingora of -repo into the temp dir")
	flag.StringVar(&c.repo, "repo", "..", "root of the pingora-go module, for building the binary")
	flag.BoolVar(&c.keep, "keep", false, "keep the temp dir (configs and logs)")
	flag.BoolVar(&c.shared, "shared", false, "run the proxies of a round at the same time, on the proxy's CPU, each loaded by its own wrk: they see the machine at the same moment (one worker only)")
	flag.StringVar(&serveHTTPUtilAddr, "serve-httputil", "", "internal: run the httputil.ReverseProxy on this address")
	flag.StringVar(&upstream, "upstream", "", "internal: origin address for -serve-httputil")
	flag.StringVar(&idleClientAddr, "idle-client", "", "internal: run the idle client against this address")
	flag.StringVar(&idlePath, "idle-path", "/1k", "internal: path the idle client requests")
	flag.Parse()

	var err error
	switch {
	case serveHTTPUtilAddr != "":
		err = serveHTTPUtil(serveHTTPUtilAddr, upstream)
	case idleClientAddr != "":
		err = runIdleClient(idleClientAddr, idlePath, c.idleConns, c.idleRate)
	default:
		if quick {
			c.rounds, c.duration, c.warmup, c.idleSettle = 1, 2*time.Second, time.Second, time.Second
			sizesFlag, workersFlag, idleAfterFlag = "1k", "1", "3s"
			c.idleConns = 1000
		}
		if err = c.parseLists(sizesFlag, workersFlag, targetsFlag, idleAfterFlag); err == nil {
			err = runAll(c)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
}

func (c *config) parseLists(sizesFlag, workersFlag, targetsFlag, idleAfterFlag string) error {
	for _, s := range strings.Split(sizesFlag, ",") {
		if _, ok := sizes[s]; !ok {
			return fmt.Errorf("unknown size %q", s)
		}
		c.sizes = append(c.sizes, s)
	}
	for _, s := range strings.FieldsFunc(workersFlag, func(r rune) bool { return r == ',' }) {
		n, err := strconv.Atoi(s)
		if _, ok := setups[n]; err != nil || !ok {
			return fmt.Errorf("workers must be 1 or 2, not %q", s)
		}
		c.workers = append(c.workers, n)
	}
	for _, s := range strings.Split(targetsFlag, ",") {
		if !slices.ContainsFunc(targets, func(t target) bool { return t.name == s }) {
			return fmt.Errorf("unknown target %q", s)
		}
		c.targets = append(c.targets, s)
	}
	for _, s := range strings.Split(idleAfterFlag, ",") {
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		c.idleAfter = append(c.idleAfter, d)
	}
	if c.duration < time.Second || c.warmup < time.Second || c.rounds < 1 {
		return errors.New("-duration and -warmup are at least 1s, -rounds at least 1")
	}
	if c.shared && !slices.Equal(c.workers, []int{1}) {
		return errors.New("-shared needs -workers 1: with two workers nothing is pinned")
	}
	return nil
}

// runAll runs the whole plan and prints the tables.
func runAll(c config) error {
	if err := procutil.NeedTools("Debian: apt-get install -y nginx-light haproxy wrk util-linux", "nginx", "haproxy", "wrk", "taskset"); err != nil {
		return err
	}
	sess, err := procutil.NewSession("pingora-e2e-", c.keep)
	if err != nil {
		return err
	}
	defer sess.Close()
	ctx, dir := sess.Ctx, sess.Dir
	e := &env{dir: dir, pingora: c.pingora}
	if e.self, err = os.Executable(); err != nil {
		return err
	}
	if e.pingora == "" {
		e.pingora = filepath.Join(dir, "pingora")
		fmt.Fprintln(os.Stderr, "building ./cmd/pingora in", c.repo)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", e.pingora, "./cmd/pingora")
		cmd.Dir, cmd.Stdout, cmd.Stderr = c.repo, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build pingora: %w", err)
		}
	}
	var ts []target
	for _, t := range targets {
		if slices.Contains(c.targets, t.name) {
			ts = append(ts, t)
		}
	}

	began := time.Now()
	load0 := procutil.LoadAvg()
	var tables []table
	for _, w := range c.workers {
		s := setups[w]
		if e.origin, err = procutil.FreeAddr(); err != nil {
			return err
		}
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		origin, err := startOrigin(octx, e, s)
		cancel()
		if err != nil {
			return err
		}
		for _, size := range c.sizes {
			tb := table{workers: w, size: size, runs: map[string][]run{}}
			for r := range c.rounds {
				if c.shared {
					res, err := measureShared(ctx, e, c, s, ts, size)
					if err != nil {
						origin.Stop()
						return fmt.Errorf("shared, %d worker(s), %s, round %d: %w", w, size, r+1, err)
					}
					for _, t := range ts {
						fmt.Fprintf(os.Stderr, "workers=%d size=%s round=%d %-10s %9.0f req/s p50 %-9v p99 %-9v cpu %6.1f µs/req (shared)\n",
							w, size, r+1, t.name, res[t.name].rps, res[t.name].p50, res[t.name].p99, res[t.name].cpuPerReq)
						tb.runs[t.name] = append(tb.runs[t.name], res[t.name])
					}
					continue
				}
				for i := range ts {
					t := ts[(i+r)%len(ts)]
					res, err := measure(ctx, e, c, s, t, size)
					if err != nil {
						origin.Stop()
						return fmt.Errorf("%s, %d worker(s), %s, round %d: %w", t.name, w, size, r+1, err)
					}
					fmt.Fprintf(os.Stderr, "workers=%d size=%s round=%d %-10s %9.0f req/s p50 %-9v p99 %-9v cpu %6.1f µs/req hwm %6.1f MiB errors %d\n",
						w, size, r+1, t.name, res.rps, res.p50, res.p99, res.cpuPerReq, float64(res.hwmKB)/1024, res.errors)
					tb.runs[t.name] = append(tb.runs[t.name], res)
				}
			}
			tables = append(tables, tb)
		}
		origin.Stop()
	}

	var idle []idleResult
	if c.idleConns > 0 {
		if e.origin, err = procutil.FreeAddr(); err != nil {
			return err
		}
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		origin, err := startOrigin(octx, e, setup{workers: 1})
		cancel()
		if err != nil {
			return err
		}
		defer origin.Stop()
		for _, t := range ts {
			if t.start == nil {
				continue
			}
			r, err := measureIdle(ctx, e, t, c)
			if err != nil {
				return fmt.Errorf("idle %s: %w", t.name, err)
			}
			fmt.Fprintf(os.Stderr, "idle %-10s %d open, %d failed, base %d kB, samples %v\n", t.name, r.conns, r.failed, r.baseKB, r.samples)
			idle = append(idle, r)
		}
	}

	fmt.Printf("Run of %s, %s; %d round(s) × %v per proxy and configuration, wrk -c %d; load average before %s, after %s.\n\n",
		began.UTC().Format("2006-01-02 15:04 MST"), time.Since(began).Round(time.Second), c.rounds, c.duration, c.conns, load0, procutil.LoadAvg())
	if c.shared {
		fmt.Printf("Shared: in each round the proxies ran at the same time on one CPU, each loaded by its own wrk.\n\n")
	}
	for _, tb := range tables {
		tb.print(os.Stdout, ts)
	}
	if len(idle) > 0 {
		printIdle(os.Stdout, idle, c.idleConns, c.idleRate)
	}
	return nil
}

// measureShared starts every target of ts, warms them up and measures them at the same time:
// each proxy pinned to the proxy's CPU, each loaded by its own wrk on the client's. They share
// the CPU and see the machine in the same state, so the ratio of their CPU per request holds
// still where runs one after the other move with the machine's speed. The direct baseline
// has no place here.
func measureShared(ctx context.Context, e *env, c config, s setup, ts []target, size string) (map[string]run, error) {
	urls := make([]string, len(ts))
	procs := make([]*procutil.Proc, len(ts))
	defer func() {
		for _, p := range procs {
			if p != nil {
				p.Stop()
			}
		}
	}()
	for i, t := range ts {
		if t.start == nil {
			return nil, fmt.Errorf("%s cannot be measured in -shared mode", t.name)
		}
		listen, err := procutil.FreeAddr()
		if err != nil {
			return nil, err
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		procs[i], err = t.start(pctx, e, s, listen)
		cancel()
		if err != nil {
			return nil, err
		}
		urls[i] = "http://" + listen + "/" + size
	}
	all := func(d time.Duration) ([]wrkResult, error) {
		res := make([]wrkResult, len(ts))
		errs := make([]error, len(ts))
		var wg sync.WaitGroup
		for i := range ts {
			wg.Go(func() { res[i], errs[i] = runWrk(ctx, s.clientCPUs, s.wrkThreads, c.conns, d, urls[i]) })
		}
		wg.Wait()
		return res, errors.Join(errs...)
	}
	if _, err := all(c.warmup); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	cpu0 := make([]time.Duration, len(ts))
	for i, p := range procs {
		cpu0[i] = procutil.CPUTime(p.PID())
	}
	ws, err := all(c.duration)
	if err != nil {
		return nil, err
	}
	out := map[string]run{}
	for i, t := range ts {
		p := procs[i]
		if p.Exited() {
			return nil, fmt.Errorf("%s exited during the run: %v", t.name, p.Err())
		}
		r := run{wrkResult: ws[i], hwmKB: procutil.StatusKB(p.PID(), "VmHWM")}
		if ws[i].requests > 0 {
			r.cpuPerReq = float64((procutil.CPUTime(p.PID()) - cpu0[i]).Microseconds()) / float64(ws[i].requests)
		}
		out[t.name] = r
	}
	return out, nil
}

// run is one measured wrk run through one proxy.
type run struct {
	wrkResult
	cpuPerReq float64 // µs of proxy CPU per request; 0 for the direct baseline
	hwmKB     int64   // the proxy's VmHWM, summed over its processes
}

// measure starts t (unless it is the direct baseline), warms it up, measures one wrk run and
// stops it.
func measure(ctx context.Context, e *env, c config, s setup, t target, size string) (run, error) {
	url := "http://" + e.origin + "/" + size
	var p *procutil.Proc
	if t.start != nil {
		listen, err := procutil.FreeAddr()
		if err != nil {
			return run{}, err
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		p, err = t.start(pctx, e, s, listen)
		cancel()
		if p != nil {
			defer p.Stop()
		}
		if err != nil {
			return run{}, err
		}
		url = "http://" + listen + "/" + size
	}
	if _, err := runWrk(ctx, s.clientCPUs, s.wrkThreads, c.conns, c.warmup, url); err != nil {
		return run{}, fmt.Errorf("warm-up: %w", err)
	}
	var cpu0 time.Duration
	if p != nil {
		cpu0 = procutil.CPUTime(p.PID())
	}
	w, err := runWrk(ctx, s.clientCPUs, s.wrkThreads, c.conns, c.duration, url)
	if err != nil {
		return run{}, err
	}
	r := run{wrkResult: w}
	if p != nil {
		if p.Exited() {
			return r, fmt.Errorf("%s exited during the run: %v", t.name, p.Err())
		}
		cpu := procutil.CPUTime(p.PID()) - cpu0
		if w.requests > 0 {
			r.cpuPerReq = float64(cpu.Microseconds()) / float64(w.requests)
		}
		r.hwmKB = procutil.StatusKB(p.PID(), "VmHWM")
	}
	return r, nil
}
