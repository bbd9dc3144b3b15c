package metrics

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pingora-go/pingora/cache"
	"github.com/pingora-go/pingora/cache/storage/memory"
	"github.com/pingora-go/pingora/header"
)

// storeOne stores a response for target in c and looks it up once (a hit).
func storeOne(t *testing.T, c *cache.Cache, target string) {
	t.Helper()
	ctx := context.Background()
	req := header.NewRequest("GET", target)
	req.Append("Host", "example.test")
	e, err := c.Get(ctx, c.Key("http", req), req)
	if err != nil {
		t.Fatal(err)
	}
	resp := header.NewResponse(200)
	resp.Append("Cache-Control", "max-age=60")
	up := header.NewRequest("GET", target)
	now := time.Now()
	w, _, err := c.Store(ctx, e, req, up, resp, now, now)
	if err != nil || w == nil {
		t.Fatalf("store: %v", err)
	}
	if err := w.Write(ctx, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	e.Close()
	e, err = c.Get(ctx, c.Key("http", req), req)
	if err != nil {
		t.Fatal(err)
	}
	var head header.ResponseHeader
	var plan cache.RangePlan
	c.ServeHit(&head, e, req, &plan, false)
	e.Close()
}

func TestWatchCache(t *testing.T) {
	reg := prometheus.NewRegistry()
	var caches []*cache.Cache
	for _, name := range []string{"edge", "disk"} {
		c, err := cache.New(cache.Config{Storage: memory.New(memory.Config{MaxBytes: 1 << 20})})
		if err != nil {
			t.Fatal(err)
		}
		if err := WatchCache(reg, name, c); err != nil {
			t.Fatal(err)
		}
		caches = append(caches, c)
	}
	storeOne(t, caches[0], "/a")
	storeOne(t, caches[0], "/b")
	storeOne(t, caches[1], "/c")

	want := map[string]float64{ // for cache="edge"
		"pingora_cache_hits_total":   2,
		"pingora_cache_misses_total": 2,
		"pingora_cache_stored_total": 2,
		"pingora_cache_items":        2,
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["cache"] != "edge" {
				continue
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			if w, ok := want[mf.GetName()]; ok {
				seen[mf.GetName()] = true
				if v != w {
					t.Errorf("%s = %v, want %v", mf.GetName(), v, w)
				}
			}
			if mf.GetName() == "pingora_cache_revalidations_total" && labels["result"] != "304" && labels["result"] != "200" {
				t.Errorf("revalidation result label %q", labels["result"])
			}
			if mf.GetName() == "pingora_cache_bytes" && v <= 0 {
				t.Errorf("bytes = %v", v)
			}
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("metrics found: %v", seen)
	}
	// The same name twice collides.
	if err := WatchCache(reg, "edge", caches[0]); err == nil {
		t.Fatal("a second collector for the same cache name was accepted")
	}
}
