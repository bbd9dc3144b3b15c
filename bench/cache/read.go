package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// The read-throughput workload: Zipf(1.0) keys over readKeys, in a trace of
// traceMask+1 requests, into a cache of readSize entries.
const (
	readKeys  = 1_000_000
	readSize  = 100_000
	traceMask = 1<<20 - 1
)

var readTrace = sync.OnceValue(func() []uint64 { return zipfTrace(1.0, readKeys, traceMask+1, 42) })

// readThroughput is BenchmarkRead's workload (Zipf 1.0 keys over 1M, a
// cache of 100k entries warmed on the trace, Get, and at 90 % reads a Set on
// every tenth request), run as alternating slices: every round gives each
// cache one slice of ops requests, in a random order, with procs
// goroutines. On a shared machine whose speed drifts from second to second,
// the ratio of two caches' times within a round is steadier than either
// time; the table gives each cache's median ns/op and, against the first
// cache, the median and the range of those ratios.
func readThroughput(rounds, ops int) {
	trace := readTrace()
	fmt.Printf("Read throughput, ns/op (Zipf 1.0 over %d keys, %d entries; %d rounds of %d ops each, interleaved)\n\n", readKeys, readSize, rounds, ops)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', tabwriter.Debug)
	header := []string{"reads", "GOMAXPROCS"}
	for i, im := range impls {
		header = append(header, im.name)
		if i > 0 {
			header = append(header, fmt.Sprintf("%s/%s per round", im.name, impls[0].name))
		}
	}
	fmt.Fprintln(w, strings.Join(header, "\t")+"\t")
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, reads := range []int{100, 90} {
		for _, procs := range []int{1, 2} {
			runtime.GOMAXPROCS(procs)
			row := []string{fmt.Sprintf("%d %%", reads), fmt.Sprint(procs)}
			times := interleave(trace, reads, procs, rounds, ops)
			for i := range impls {
				row = append(row, fmt.Sprintf("%.1f", median(times[i])))
				if i == 0 {
					continue
				}
				var ratios []float64
				for r := range times[i] {
					ratios = append(ratios, times[i][r]/times[0][r])
				}
				slices.Sort(ratios)
				row = append(row, fmt.Sprintf("%.2f (%.2f–%.2f)", median(ratios), ratios[0], ratios[len(ratios)-1]))
			}
			fmt.Fprintln(w, strings.Join(row, "\t")+"\t")
		}
	}
	w.Flush()
	fmt.Println()
}

// interleave returns, per cache, the ns/op of each round's slice.
func interleave(trace []uint64, reads, procs, rounds, ops int) [][]float64 {
	caches := make([]cache, len(impls))
	for i, im := range impls {
		c := im.new(readSize, true)
		defer c.Close()
		for _, k := range trace {
			if !c.Get(k) {
				c.Set(k)
			}
		}
		caches[i] = c
	}
	times := make([][]float64, len(impls))
	order := make([]int, len(impls))
	for i := range order {
		order[i] = i
	}
	seed := uint64(0)
	for range rounds {
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, i := range order {
			c := caches[i]
			var wg sync.WaitGroup
			start := time.Now()
			for range procs {
				seed++
				wg.Add(1)
				go func(seed uint64) {
					defer wg.Done()
					k := rand.New(rand.NewPCG(seed, 0)).Uint64()
					for range ops / procs {
						key := trace[k&traceMask]
						if reads == 90 && k%10 == 0 {
							c.Set(key)
						} else {
							c.Get(key)
						}
						k++
					}
				}(seed)
			}
			wg.Wait()
			times[i] = append(times[i], float64(time.Since(start).Nanoseconds())/float64(ops))
		}
	}
	return times
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return math.NaN()
	}
	return s[len(s)/2]
}
