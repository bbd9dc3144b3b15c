package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pingora-go/pingora/cache"
)

// cacheCollector exports a cache.Cache's Stats, read at each scrape.
type cacheCollector struct {
	c *cache.Cache

	hits, misses, stale, revalidations, lockWaits, lockTimeouts *prometheus.Desc
	stored, storedBytes, tooLarge, invalidations, purges        *prometheus.Desc
	items, bytes, evictedItems, evictedBytes                    *prometheus.Desc
}

// WatchCache registers, on reg, the metrics of the HTTP cache c, labelled cache=name so that
// several caches can be watched on one registry: hits, misses, stale responses served,
// revalidations by result ("304" refreshed, "200" replaced), lock waits and timeouts,
// responses and bytes stored, responses too large to store, invalidations, purges, and the
// storage's items, bytes and evictions.
func WatchCache(reg prometheus.Registerer, name string, c *cache.Cache) error {
	l := prometheus.Labels{"cache": name}
	d := func(n, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_cache_"+n, help, labels, l)
	}
	return reg.Register(&cacheCollector{
		c:             c,
		hits:          d("hits_total", "Responses served from the cache without going upstream, stale ones included."),
		misses:        d("misses_total", "Lookups that found nothing usable stored."),
		stale:         d("stale_served_total", "Stale responses served (stale-while-revalidate, max-stale, stale-if-error)."),
		revalidations: d("revalidations_total", "Revalidations of stored responses by the upstream's answer: 304 (refreshed) or 200 (replaced).", "result"),
		lockWaits:     d("lock_waits_total", "Requests that waited for another request filling the same key."),
		lockTimeouts:  d("lock_timeouts_total", "Requests whose wait for another request's fill timed out."),
		stored:        d("stored_total", "Responses written to the storage."),
		storedBytes:   d("stored_bytes_total", "Bytes of the responses written to the storage (head and body)."),
		tooLarge:      d("too_large_total", "Responses not stored because they outgrew the maximum object size."),
		invalidations: d("invalidations_total", "Stored responses invalidated by unsafe requests."),
		purges:        d("purges_total", "Purges that removed something."),
		items:         d("items", "Entries in the storage."),
		bytes:         d("bytes", "Bytes in the storage (heads and bodies)."),
		evictedItems:  d("evicted_items_total", "Entries evicted to keep the storage within its size."),
		evictedBytes:  d("evicted_bytes_total", "Bytes evicted to keep the storage within its size."),
	})
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hits, c.misses, c.stale, c.revalidations, c.lockWaits, c.lockTimeouts,
		c.stored, c.storedBytes, c.tooLarge, c.invalidations, c.purges, c.items, c.bytes, c.evictedItems, c.evictedBytes} {
		ch <- d
	}
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.c.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.hits, s.Hits)
	counter(c.misses, s.Misses)
	counter(c.stale, s.StaleServed)
	counter(c.revalidations, s.Revalidated304, "304")
	counter(c.revalidations, s.Revalidated200, "200")
	counter(c.lockWaits, s.LockWaits)
	counter(c.lockTimeouts, s.LockTimeouts)
	counter(c.stored, s.Stored)
	counter(c.storedBytes, s.BytesStored)
	counter(c.tooLarge, s.TooLarge)
	counter(c.invalidations, s.Invalidations)
	counter(c.purges, s.Purges)
	ch <- prometheus.MustNewConstMetric(c.items, prometheus.GaugeValue, float64(s.Usage.Items))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(s.Usage.Bytes))
	counter(c.evictedItems, s.Usage.EvictedItems)
	counter(c.evictedBytes, s.Usage.EvictedBytes)
}
