package main

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// table holds the runs of one configuration (workers × response size), by target name.
type table struct {
	workers int
	size    string
	runs    map[string][]run
}

// median returns the median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianOf returns the median of f over runs.
func medianOf(runs []run, f func(run) float64) float64 {
	xs := make([]float64, len(runs))
	for i, r := range runs {
		xs[i] = f(r)
	}
	return median(xs)
}

// print writes the table as Markdown: medians over the rounds, with the range of requests/s.
// CPU per request comes three ways: the median; the lowest, since on a shared machine a
// neighbour's load only ever adds to a run's CPU time (cache misses, a busy sibling
// hyperthread), so the lowest figure is the one least disturbed; and as a ratio to nginx's
// in the same round (pairedRatio).
func (tb table) print(w io.Writer, ts []target) {
	fmt.Fprintf(w, "%s responses, %d worker(s):\n\n", tb.size, tb.workers)
	fmt.Fprintln(w, "| proxy      | req/s (median) | req/s (min–max)   | p50 ms | p99 ms | CPU µs/req | CPU µs/req (min) | CPU / nginx's | peak RSS MiB | errors |")
	fmt.Fprintln(w, "|------------|---------------:|-------------------|-------:|-------:|-----------:|-----------------:|--------------:|-------------:|-------:|")
	for _, t := range ts {
		runs := tb.runs[t.name]
		if len(runs) == 0 {
			continue
		}
		rps := func(r run) float64 { return r.rps }
		lo := slices.MinFunc(runs, func(a, b run) int { return cmpFloat(a.rps, b.rps) }).rps
		hi := slices.MaxFunc(runs, func(a, b run) int { return cmpFloat(a.rps, b.rps) }).rps
		ms := func(f func(run) time.Duration) float64 {
			return medianOf(runs, func(r run) float64 { return float64(f(r)) / float64(time.Millisecond) })
		}
		var errs int64
		for _, r := range runs {
			errs += r.errors
		}
		cpu, cpuMin, vsNginx, rss := "–", "–", "–", "–"
		if t.start != nil {
			cpu = fmt.Sprintf("%.1f", medianOf(runs, func(r run) float64 { return r.cpuPerReq }))
			cpuMin = fmt.Sprintf("%.1f", slices.MinFunc(runs, func(a, b run) int { return cmpFloat(a.cpuPerReq, b.cpuPerReq) }).cpuPerReq)
			if r, ok := pairedRatio(runs, tb.runs["nginx"]); ok {
				vsNginx = fmt.Sprintf("%.2f", r)
			}
			rss = fmt.Sprintf("%.1f", medianOf(runs, func(r run) float64 { return float64(r.hwmKB) / 1024 }))
		}
		fmt.Fprintf(w, "| %-10s | %14.0f | %7.0f–%-9.0f | %6.2f | %6.2f | %10s | %16s | %13s | %12s | %6d |\n",
			t.name, medianOf(runs, rps), lo, hi,
			ms(func(r run) time.Duration { return r.p50 }), ms(func(r run) time.Duration { return r.p99 }),
			cpu, cpuMin, vsNginx, rss, errs)
	}
	fmt.Fprintln(w)
}

// pairedRatio returns the median over the rounds of the CPU per request of runs over that of
// nginx in the same round: the machine's speed drifts from one round to the next, and a
// ratio within a round leaves out much of that drift.
func pairedRatio(runs, nginx []run) (float64, bool) {
	if len(runs) == 0 || len(runs) != len(nginx) {
		return 0, false
	}
	xs := make([]float64, 0, len(runs))
	for i, r := range runs {
		if nginx[i].cpuPerReq > 0 {
			xs = append(xs, r.cpuPerReq/nginx[i].cpuPerReq)
		}
	}
	if len(xs) == 0 {
		return 0, false
	}
	return median(xs), true
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// printIdle writes the idle-connection table: RSS growth per connection at each sample time.
func printIdle(w io.Writer, rs []idleResult, conns, rate int) {
	pace := "as fast as the client can"
	if rate > 0 {
		pace = fmt.Sprintf("%d per second", rate)
	}
	fmt.Fprintf(w, "Idle keep-alive connections: %d per proxy opened %s, one request each; RSS growth over the baseline / open connections:\n\n", conns, pace)
	fmt.Fprint(w, "| proxy      | open  | failed | base RSS MiB |")
	for _, s := range rs[0].samples {
		fmt.Fprintf(w, " KiB/conn after %v |", s.after)
	}
	fmt.Fprint(w, " fds at last sample |\n|------------|------:|-------:|-------------:|")
	for range rs[0].samples {
		fmt.Fprint(w, "---------------:|")
	}
	fmt.Fprintln(w, "-------------------:|")
	for _, r := range rs {
		fmt.Fprintf(w, "| %-10s | %5d | %6d | %12.1f |", r.name, r.conns, r.failed, float64(r.baseKB)/1024)
		fds := 0
		for _, s := range r.samples {
			per := 0.0
			if r.conns > 0 {
				per = float64(s.rssKB-r.baseKB) / float64(r.conns)
			}
			fmt.Fprintf(w, " %15.2f |", per)
			fds = s.fds
		}
		fmt.Fprintf(w, " %18d |\n", fds)
	}
	fmt.Fprintln(w)
}
