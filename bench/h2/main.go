// Command h2 measures HTTP/2 reverse proxying: the pingora binary and nginx, each with an
// HTTP/2 listener (cleartext with prior knowledge, or TLS with ALPN h2 under -tls) in front of
// the same HTTP/1.1 nginx origin kept alive, with h2load as the client, in one run; and the
// pingora binary speaking HTTP/2 to the origin (--upstream-h2), where many client streams
// share a few upstream connections.
//
// For each load (-loads, h2load -c clients -m streams per client) and each target (-targets),
// in a different order each round, it warms the target up, then measures one h2load run of as
// many requests as the warm-up's rate gives in -duration, and prints the medians over the
// rounds of requests/s, the mean time per request, the proxy's CPU time per request
// (utime+stime of the proxy process from /proc/PID/stat, before and after the measured run,
// divided by the requests h2load completed) and the upstream connections: those the proxy held
// at the start and at the end of the measured run (its established sockets to the origin, from
// /proc/PID/fd and /proc/PID/net/tcp) and those it opened during the run (the origin's
// stub_status accepts counter, before and after). Every response is 1 KiB and every measured
// request must succeed. Runs send fixed numbers of requests (h2load -n), never timed ones: a
// timed run stops with all its streams in flight and resets them, which disturbs what follows.
// The proxy runs alone on CPU 1 (one nginx worker, GOMAXPROCS=1); h2load and the origin share
// CPU 0.
//
// Run it from the bench module (it needs nginx with http_v2 and stub_status, h2load, taskset
// and the Go toolchain to build cmd/pingora):
//
//	cd bench && go run ./h2                            # 3 rounds of 10 s: about 5 minutes
//	cd bench && go run ./h2 -tls -duration 5s          # TLS 1.3 with ALPN h2 downstream
//	cd bench && go run ./h2 -rounds 1 -duration 2s     # smoke test
//
// Results go to stdout as a Markdown table, progress to stderr. Every process it starts is
// stopped by its PID, also when the command is interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pingora-go/pingora/bench/internal/procutil"
	"github.com/pingora-go/pingora/internal/nginxtest"
	"github.com/pingora-go/pingora/internal/testpki"
)

// bodySize is the size of every response.
const bodySize = 1 << 10

// load is one h2load shape: clients connections with streams concurrent streams each.
type load struct{ clients, streams int }

func (l load) String() string { return fmt.Sprintf("-c %d -m %d", l.clients, l.streams) }

// config is the command line.
type config struct {
	rounds   int
	duration time.Duration
	warmup   time.Duration
	loads    []load
	targets  []target
	tls      bool
	keep     bool
}

func main() {
	var c config
	var loads, targetList string
	flag.IntVar(&c.rounds, "rounds", 3, "rounds: each target runs once per round and load")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "length of each measured h2load run (whole seconds)")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "length of the unmeasured h2load run before each measured one (whole seconds)")
	flag.StringVar(&loads, "loads", "10x10,100x10", "h2load loads, clients x streams per client, comma separated")
	flag.StringVar(&targetList, "targets", "pingora-h1,nginx,pingora-h2", "targets: pingora-h1 (HTTP/1.1 upstream), nginx, pingora-h2 (HTTP/2 upstream)")
	flag.BoolVar(&c.tls, "tls", false, "serve HTTP/2 over TLS (ALPN h2) instead of cleartext with prior knowledge")
	flag.BoolVar(&c.keep, "keep", false, "keep the temp dir (configs and logs)")
	flag.Parse()
	err := c.parseLists(loads, targetList)
	if err == nil {
		err = runAll(c)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/h2:", err)
		os.Exit(1)
	}
}

func (c *config) parseLists(loads, targetList string) error {
	for _, id := range strings.Split(targetList, ",") {
		i := slices.IndexFunc(targets, func(t target) bool { return t.id == id })
		if i < 0 {
			return fmt.Errorf("unknown target %q", id)
		}
		c.targets = append(c.targets, targets[i])
	}
	for _, f := range strings.Split(loads, ",") {
		cs, ms, ok := strings.Cut(f, "x")
		cl, err1 := strconv.Atoi(cs)
		st, err2 := strconv.Atoi(ms)
		if !ok || err1 != nil || err2 != nil || cl < 1 || st < 1 {
			return fmt.Errorf("load %q is not clients x streams, such as 10x10", f)
		}
		c.loads = append(c.loads, load{cl, st})
	}
	if c.duration < time.Second || c.warmup < time.Second || c.rounds < 1 {
		return errors.New("-duration and -warmup are at least 1s, -rounds at least 1")
	}
	return nil
}

// env is what the targets share during a run.
type env struct {
	dir      string
	nginx    string
	pingora  string
	origin   *origin
	certFile string // with -tls: the proxies' certificate and key
	keyFile  string
}

// target is a proxy under test.
type target struct {
	id   string // for -targets
	name string
	h2up bool // the proxy speaks HTTP/2 to the origin
	// upstream says how the proxy reaches the origin, for the table.
	upstream string
	start    func(ctx context.Context, e *env, listen string) (*procutil.Proc, error)
}

var targets = []target{
	{"pingora-h1", "pingora-go", false, "HTTP/1.1", startPingora(false)},
	{"nginx", "nginx", false, "HTTP/1.1", startNginxProxy},
	{"pingora-h2", "pingora-go", true, "HTTP/2 (h2c)", startPingora(true)},
}

func runAll(c config) error {
	if err := procutil.NeedTools("Debian: apt-get install -y nghttp2-client util-linux", "h2load", "taskset"); err != nil {
		return err
	}
	sess, err := procutil.NewSession("bench-h2-", c.keep)
	if err != nil {
		return err
	}
	defer sess.Close()
	ctx, dir := sess.Ctx, sess.Dir
	e := &env{dir: dir}
	if e.nginx, err = nginxtest.Find(); err != nil {
		return err
	}
	if c.tls {
		if err := e.writeCert(); err != nil {
			return err
		}
	}
	fmt.Fprintln(os.Stderr, "building ./cmd/pingora")
	if e.pingora, err = procutil.BuildPingora(ctx, dir); err != nil {
		return err
	}
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	e.origin, err = startOrigin(octx, e)
	cancel()
	if err != nil {
		return err
	}

	began := time.Now()
	load0 := procutil.LoadAvg()
	results := map[string][]result{}
	for r := range c.rounds {
		for _, l := range c.loads {
			for i := range c.targets {
				t := c.targets[(i+r)%len(c.targets)]
				res, err := measure(ctx, e, c, t, l)
				if err != nil {
					return fmt.Errorf("%s (%s upstream), %v, round %d: %w", t.name, t.upstream, l, r+1, err)
				}
				fmt.Fprintf(os.Stderr, "round %d %-10s %-13s %-13v %9.0f req/s %8.2f ms/req cpu %6.1f µs/req upstream conns: %d open, %d opened, %d open after\n",
					r+1, t.name, t.upstream, l, res.rps, res.meanMs, res.cpuPerReq, res.upBefore, res.upOpened, res.upAfter)
				k := key(t, l)
				results[k] = append(results[k], res)
			}
		}
	}

	scheme := "cleartext HTTP/2 with prior knowledge (h2c)"
	if c.tls {
		scheme = "HTTP/2 over TLS 1.3 (ALPN h2)"
	}
	fmt.Printf("Run of %s, %s; %d round(s) × %v per target and load, h2load -t 1, %s downstream, 1 KiB responses; load average before %s, after %s.\n\n",
		began.UTC().Format("2006-01-02 15:04 MST"), time.Since(began).Round(time.Second), c.rounds, c.duration, scheme, load0, procutil.LoadAvg())
	fmt.Println("| load | proxy | upstream | requests/s | mean ms/request | CPU µs/request | upstream conns open at start / opened / open at end | requests per upstream conn |")
	fmt.Println("|---|---|---|---:|---:|---:|---:|---:|")
	for _, l := range c.loads {
		for _, t := range c.targets {
			m := medianResult(results[key(t, l)])
			fmt.Printf("| %v | %s | %s | %.0f | %.2f | %.1f | %d / %d / %d | %.0f |\n",
				l, t.name, t.upstream, m.rps, m.meanMs, m.cpuPerReq, m.upBefore, m.upOpened, m.upAfter, m.perConn)
		}
	}
	return nil
}

func key(t target, l load) string { return t.id + "|" + l.String() }

// result is one measured h2load run through one proxy.
type result struct {
	h2loadResult
	cpuPerReq float64 // µs of proxy CPU per completed request
	upOpened  int64   // upstream connections the origin accepted during the run
	upBefore  int64   // upstream connections the proxy held when the run started
	upAfter   int64   // and when it ended
	perConn   float64 // set on medians only
}

// reqsPerConn is the number of requests per upstream connection that was open during the run:
// those open at its start and those opened during it.
func (r result) reqsPerConn() float64 {
	if n := r.upBefore + r.upOpened; n > 0 {
		return float64(r.requests) / float64(n)
	}
	return 0
}

// measure starts t, warms it up, measures one h2load run and stops it.
func measure(ctx context.Context, e *env, c config, t target, l load) (result, error) {
	listen, err := procutil.FreeAddr()
	if err != nil {
		return result{}, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	p, err := t.start(pctx, e, listen)
	cancel()
	if p != nil {
		defer p.Stop()
	}
	if err != nil {
		return result{}, err
	}
	url := "http://" + listen + "/1k"
	if c.tls {
		url = "https://" + listen + "/1k"
	}
	rate, err := warmUp(ctx, l, c.warmup, url)
	if err != nil {
		return result{}, fmt.Errorf("warm-up: %w", err)
	}
	// As many requests as the warm-up's rate gives in c.duration, at least 10 per stream.
	n := max(int64(rate*c.duration.Seconds()), int64(10*l.clients*l.streams))
	upAddr := e.origin.h1
	if t.h2up {
		upAddr = e.origin.h2
	}
	open0, err := openConns(p.PID(), upAddr)
	if err != nil {
		return result{}, err
	}
	accepts0, err := e.origin.accepts(ctx)
	if err != nil {
		return result{}, err
	}
	cpu0 := procutil.CPUTime(p.PID())
	h, err := runH2load(ctx, l, n, c.duration, url)
	if err != nil {
		return result{}, err
	}
	cpu := procutil.CPUTime(p.PID()) - cpu0
	accepts1, err := e.origin.accepts(ctx)
	if err != nil {
		return result{}, err
	}
	open1, err := openConns(p.PID(), upAddr)
	if err != nil {
		return result{}, err
	}
	if p.Exited() {
		return result{}, fmt.Errorf("%s exited during the run: %v", t.name, p.Err())
	}
	r := result{h2loadResult: h,
		// -1: the first status request's own connection is counted by the second.
		upOpened: accepts1 - accepts0 - 1, upBefore: int64(open0), upAfter: int64(open1)}
	if h.requests > 0 {
		r.cpuPerReq = float64(cpu.Microseconds()) / float64(h.requests)
	}
	return r, nil
}

// medianResult returns, field by field, the median of rs.
func medianResult(rs []result) result {
	med := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	var m result
	m.rps = med(func(r result) float64 { return r.rps })
	m.meanMs = med(func(r result) float64 { return r.meanMs })
	m.cpuPerReq = med(func(r result) float64 { return r.cpuPerReq })
	m.upOpened = int64(med(func(r result) float64 { return float64(r.upOpened) }))
	m.upBefore = int64(med(func(r result) float64 { return float64(r.upBefore) }))
	m.upAfter = int64(med(func(r result) float64 { return float64(r.upAfter) }))
	m.perConn = med(func(r result) float64 { return r.reqsPerConn() })
	m.requests = int64(med(func(r result) float64 { return float64(r.requests) }))
	return m
}

// writeCert writes a certificate for 127.0.0.1 and localhost and its key for the proxies'
// TLS listeners (h2load does not verify it).
func (e *env) writeCert() error {
	ca, err := testpki.NewCA("bench h2 CA")
	if err != nil {
		return err
	}
	leaf, err := ca.Issue(testpki.LeafOptions{Names: []string{"localhost", "127.0.0.1"}})
	if err != nil {
		return err
	}
	e.certFile, e.keyFile, err = leaf.WriteFiles(e.dir, "server")
	return err
}
