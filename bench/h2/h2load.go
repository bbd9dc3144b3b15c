package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// h2loadResult is what the benchmark reads from h2load's report.
type h2loadResult struct {
	requests int64   // succeeded
	failed   int64   // failed, errored, or answered other than 2xx
	rps      float64 // succeeded requests per second
	meanMs   float64 // mean time per request
	elapsed  time.Duration
}

var (
	finishedRE = regexp.MustCompile(`finished in ([0-9.]+[a-zµ]+), ([0-9.]+) req/s`)
	requestsRE = regexp.MustCompile(`requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed`)
	statusRE   = regexp.MustCompile(`status codes: (\d+) 2xx`)
	timeRE     = regexp.MustCompile(`time for request:\s+(\S+)\s+(\S+)\s+(\S+)`)
)

// parseH2load reads h2load's report.
func parseH2load(out []byte) (h2loadResult, error) {
	var r h2loadResult
	fin := finishedRE.FindSubmatch(out)
	req := requestsRE.FindSubmatch(out)
	st := statusRE.FindSubmatch(out)
	tm := timeRE.FindSubmatch(out)
	if fin == nil || req == nil || st == nil || tm == nil {
		return r, errors.New("h2load: no report in its output")
	}
	elapsed, err := time.ParseDuration(string(fin[1]))
	if err != nil {
		return r, fmt.Errorf("h2load: run time: %w", err)
	}
	r.requests, _ = strconv.ParseInt(string(req[3]), 10, 64)
	// h2load's failed requests include the errored ones and those answered 4xx or 5xx; its
	// succeeded ones include 3xx, which this benchmark does not expect either.
	failed, _ := strconv.ParseInt(string(req[4]), 10, 64)
	ok2xx, _ := strconv.ParseInt(string(st[1]), 10, 64)
	r.failed = failed + r.requests - ok2xx
	mean, err := time.ParseDuration(string(tm[3]))
	if err != nil {
		return r, fmt.Errorf("h2load: mean time for request: %w", err)
	}
	r.meanMs = float64(mean.Microseconds()) / 1000
	if elapsed > 0 {
		r.rps = float64(r.requests) / elapsed.Seconds()
		r.elapsed = elapsed
	}
	return r, nil
}

// warmUp loads url with l for about d and returns the rate it reached. It sends a fixed
// number of requests, more until a run lasts d: a timed h2load run (-D) stops with every
// client's streams in flight, and the burst of resets that follows is a load of its own.
func warmUp(ctx context.Context, l load, d time.Duration, url string) (float64, error) {
	n := int64(max(5*l.clients*l.streams, 1000))
	for {
		r, err := runH2load(ctx, l, n, d, url)
		if err != nil {
			return 0, err
		}
		if r.elapsed >= d*9/10 || r.rps <= 0 {
			return r.rps, nil
		}
		n = max(n*2, int64(r.rps*d.Seconds()*1.1))
	}
}

// runH2load sends n requests to url with load l (h2load -n), and fails if any of them did.
// d, about how long it should take, bounds it.
func runH2load(ctx context.Context, l load, n int64, d time.Duration, url string) (h2loadResult, error) {
	r, err := h2load(ctx, d, url, "-c", strconv.Itoa(l.clients), "-m", strconv.Itoa(l.streams), "-n", strconv.FormatInt(n, 10))
	if err == nil && r.failed > 0 {
		err = fmt.Errorf("h2load: %d requests failed", r.failed)
	}
	return r, err
}

// h2load runs h2load with args on url from one thread on clientCPU, bounded by three times d
// plus a minute.
func h2load(ctx context.Context, d time.Duration, url string, args ...string) (h2loadResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*d+time.Minute)
	defer cancel()
	argv := append([]string{"-c", clientCPU, "h2load", "-t", "1"}, args...)
	out, err := exec.CommandContext(ctx, "taskset", append(argv, url)...).CombinedOutput()
	if err != nil {
		return h2loadResult{}, fmt.Errorf("h2load %v: %w\n%s", args, err, out)
	}
	r, err := parseH2load(out)
	if err != nil {
		return r, fmt.Errorf("%w:\n%s", err, out)
	}
	return r, nil
}
