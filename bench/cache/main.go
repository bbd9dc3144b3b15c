// Command cache compares pingora-go's TinyUFO with otter, theine, ristretto
// and hashicorp's golang-lru in one process: hit ratios on Zipf, scan-polluted
// and shifting-popularity traces, and heap bytes per entry at 1M entries; and the HTTP cache
// (package cache) on Zipf traces of objects, bounded in bytes.
// Read throughput is in the Go benchmarks beside it (go test -bench) and,
// interleaved so that the machine's drift cancels out, in -table read.
//
// Usage:
//
//	go run . [-keys 1000000] [-len 3000000] [-table hit|mem|http|read|all] [-only otter,tinyufo] [-rounds 15] [-ops 1000000]
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
)

func main() {
	keys := flag.Int("keys", 1_000_000, "key space")
	length := flag.Int("len", 3_000_000, "requests per trace")
	which := flag.String("table", "all", "hit, mem, http, read or all")
	only := flag.String("only", "", "comma-separated cache names to run (default all)")
	rounds := flag.Int("rounds", 15, "read table: rounds")
	ops := flag.Int("ops", 1_000_000, "read table: requests per cache per round")
	flag.Parse()
	if *only != "" {
		var keep []impl
		for _, im := range impls {
			if strings.Contains(","+*only+",", ","+im.name+",") {
				keep = append(keep, im)
			}
		}
		impls = keep
	}
	if *which == "hit" || *which == "all" {
		hitRatios(*keys, *length)
	}
	if *which == "mem" || *which == "all" {
		memory(1_000_000)
	}
	if *which == "http" || *which == "all" {
		httpCacheTable(20_000, 400_000)
	}
	if *which == "read" || *which == "all" {
		readThroughput(*rounds, *ops)
	}
}

type workload struct {
	name  string
	trace func() []uint64
	sizes []float64 // cache sizes as fractions of the key space
}

func hitRatios(n, length int) {
	all := []float64{0.001, 0.01, 0.1}
	var ws []workload
	for i, s := range []float64{0.7, 0.9, 1.0, 1.2} {
		ws = append(ws, workload{fmt.Sprintf("zipf s=%.1f", s),
			func() []uint64 { return zipfTrace(s, n, length, uint64(i+1)) }, all})
	}
	ws = append(ws,
		workload{"scan (zipf 0.9 + scans)",
			func() []uint64 { return scanTrace(0.9, n, length, 20_000, 10_000, 7) }, all},
		workload{"shifting zipf 1.0",
			func() []uint64 { return shiftTrace(1.0, n, length, length/6, 8) }, all})

	fmt.Printf("Hit ratio %% (keys %d, %d requests per trace; get, and set on miss)\n\n", n, length)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', tabwriter.Debug)
	header := []string{"workload", "cache size"}
	for _, im := range impls {
		header = append(header, im.name)
	}
	fmt.Fprintln(w, strings.Join(header, "\t")+"\t")
	for _, wl := range ws {
		trace := wl.trace()
		for _, frac := range wl.sizes {
			size := int(frac * float64(n))
			row := []string{wl.name, fmt.Sprintf("%g%% (%d)", frac*100, size)}
			for _, im := range impls {
				row = append(row, fmt.Sprintf("%.2f", 100*hitRatio(im, size, trace)))
			}
			fmt.Fprintln(w, strings.Join(row, "\t")+"\t")
		}
	}
	w.Flush()
	fmt.Println()
}

func hitRatio(im impl, size int, trace []uint64) float64 {
	c := im.new(size, true)
	defer c.Close()
	hits := 0
	for _, k := range trace {
		if c.Get(k) {
			hits++
		} else {
			c.Set(k)
		}
	}
	return float64(hits) / float64(len(trace))
}

// memory fills each cache with n entries (uint64 key and value, 16 bytes of
// payload) and reports the live heap it added per entry, after GC.
func memory(n int) {
	fmt.Printf("Heap bytes per entry, %d entries of uint64→uint64 (payload 16 B)\n\n", n)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(w, "cache\tentries held\tbytes/entry\toverhead/entry\t")
	for _, im := range impls {
		before := liveHeap()
		c := im.new(n, true)
		for i := range n {
			c.Set(keyOf(i))
		}
		after := liveHeap()
		held := 0
		for i := range n {
			if c.Get(keyOf(i)) {
				held++
			}
		}
		per := float64(after-before) / float64(n)
		fmt.Fprintf(w, "%s\t%d\t%.1f\t%.1f\t\n", im.name, held, per, per-16)
		c.Close()
		runtime.KeepAlive(c)
	}
	w.Flush()
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
