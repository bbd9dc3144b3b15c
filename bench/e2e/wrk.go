package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what the harness takes from one wrk run.
type wrkResult struct {
	requests int64
	rps      float64
	p50, p99 time.Duration
	errors   int64 // socket errors plus non-2xx/3xx responses
}

// runWrk runs wrk against url for d with the given threads and connections, pinned to cpus.
func runWrk(ctx context.Context, cpus string, threads, conns int, d time.Duration, url string) (wrkResult, error) {
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	argv := []string{"wrk", "--latency", "--timeout", "5s",
		"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", int(d.Seconds())), url}
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w: %s", err, out)
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return r, fmt.Errorf("%w in:\n%s", err, out)
	}
	return r, nil
}

// parseWrk reads the summary wrk prints with --latency.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	var haveReq, haveRPS, have50, have99 bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		var err error
		switch {
		case len(f) == 2 && f[0] == "50%":
			r.p50, err = parseWrkDuration(f[1])
			have50 = err == nil
		case len(f) == 2 && f[0] == "99%":
			r.p99, err = parseWrkDuration(f[1])
			have99 = err == nil
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			r.requests, err = strconv.ParseInt(f[0], 10, 64)
			haveReq = err == nil
		case len(f) == 2 && f[0] == "Requests/sec:":
			r.rps, err = strconv.ParseFloat(f[1], 64)
			haveRPS = err == nil
		case len(f) == 5 && f[0] == "Non-2xx":
			var n int64
			n, err = strconv.ParseInt(f[4], 10, 64)
			r.errors += n
		case len(f) > 2 && f[0] == "Socket" && f[1] == "errors:":
			// Socket errors: connect 0, read 0, write 0, timeout 0
			for i := 3; i < len(f); i += 2 {
				n, perr := strconv.ParseInt(strings.TrimSuffix(f[i], ","), 10, 64)
				if perr != nil {
					err = perr
					break
				}
				r.errors += n
			}
		}
		if err != nil {
			return r, fmt.Errorf("wrk output %q: %w", sc.Text(), err)
		}
	}
	if !haveReq || !haveRPS || !have50 || !have99 {
		return r, errors.New("wrk output lacks the summary or the latency distribution")
	}
	return r, nil
}

// parseWrkDuration parses wrk's latency figures: "812.00us", "1.25ms", "2.01s", "1.00m".
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"m", time.Minute}, {"s", time.Second}}
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 {
				return 0, fmt.Errorf("bad duration %q", s)
			}
			return time.Duration(math.Round(f * float64(u.unit))), nil
		}
	}
	return 0, fmt.Errorf("bad duration %q", s)
}
