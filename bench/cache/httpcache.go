package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"text/tabwriter"
	"time"

	httpcache "github.com/pingora-go/pingora/cache"
	memstore "github.com/pingora-go/pingora/cache/storage/memory"
	"github.com/pingora-go/pingora/header"
)

// httpCacheTable replays Zipf traces of GETs for objects of 1 to 64 KiB (the size a function
// of the key) against the HTTP cache of package cache, with its memory storage bounded in
// bytes, as the proxy drives it: Get; on a miss Store and write the body. It reports the hit
// ratio, the byte hit ratio, the bytes the storage holds against its bound, and the heap.
func httpCacheTable(objects, length int) {
	fmt.Printf("\nHTTP cache (package cache, memory storage): %d objects of 1-64 KiB, %d requests per trace\n\n", objects, length)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(w, "workload\tbound\thit %\tbyte hit %\tstored MiB\theap MiB\t")
	var total int64
	for k := range objects {
		total += objectSize(keyOf(k))
	}
	body := make([]byte, 64<<10)
	for _, s := range []float64{0.9, 1.0} {
		trace := zipfTrace(s, objects, length, 11)
		for _, frac := range []float64{0.01, 0.1} {
			bound := int64(frac * float64(total))
			hits, bytes, hitBytes, used, heap := replayHTTP(trace, bound, body)
			fmt.Fprintf(w, "zipf s=%.1f\t%g%% (%.1f MiB)\t%.2f\t%.2f\t%.1f\t%.1f\t\n", s, frac*100, float64(bound)/(1<<20),
				100*float64(hits)/float64(len(trace)), 100*float64(hitBytes)/float64(bytes),
				float64(used)/(1<<20), float64(heap)/(1<<20))
		}
	}
	w.Flush()
}

// objectSize is the body size of the object of key k: 1 to 64 KiB.
func objectSize(k uint64) int64 { return int64(1+(k>>7)%64) << 10 }

func replayHTTP(trace []uint64, bound int64, body []byte) (hits, bytes, hitBytes, used int64, heap uint64) {
	st := memstore.New(memstore.Config{MaxBytes: bound})
	c, err := httpcache.New(httpcache.Config{Storage: st})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	now := time.Now()
	var req header.RequestHeader
	var resp header.ResponseHeader
	for _, k := range trace {
		size := objectSize(k)
		bytes += size
		req.Reset()
		req.SetMethod("GET")
		req.SetTarget("/obj/" + strconv.FormatUint(k, 36))
		req.Version = header.HTTP11
		req.Append("Host", "bench.example")
		e, err := c.Get(ctx, c.Key("http", &req), &req)
		if err != nil {
			panic(err)
		}
		if e.Freshness.Servable() {
			hits++
			hitBytes += size
			e.Close()
			continue
		}
		resp.Reset()
		resp.SetStatus(200)
		resp.Version = header.HTTP11
		resp.Append("Cache-Control", "max-age=86400")
		resp.Append("Content-Length", strconv.FormatInt(size, 10))
		wr, _, err := c.Store(ctx, e, &req, &req, &resp, now, now)
		if err != nil {
			panic(err)
		}
		if wr != nil {
			if wr.Write(ctx, body[:size]) == nil {
				wr.Finish(ctx)
			}
		}
		e.Close()
	}
	used = st.Usage().Bytes
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	runtime.KeepAlive(c)
	runtime.KeepAlive(st)
	return hits, bytes, hitBytes, used, ms.HeapInuse
}
