package cache

import "sync/atomic"

// counters are the cache's running totals; each is updated with one atomic add.
type counters struct {
	hits           atomic.Uint64
	misses         atomic.Uint64
	staleServed    atomic.Uint64
	revalidated304 atomic.Uint64
	revalidated200 atomic.Uint64
	lockWaits      atomic.Uint64
	lockTimeouts   atomic.Uint64
	stored         atomic.Uint64
	bytesStored    atomic.Uint64
	tooLarge       atomic.Uint64
	invalidations  atomic.Uint64
	purges         atomic.Uint64
}

// Stats is a snapshot of a Cache's counters and of its storage's occupancy.
type Stats struct {
	// Hits counts responses served from the cache without going upstream, stale ones included.
	Hits uint64
	// Misses counts lookups that found nothing usable.
	Misses uint64
	// StaleServed counts stale responses served (stale-while-revalidate, max-stale,
	// stale-if-error).
	StaleServed uint64
	// Revalidated304 and Revalidated200 count validations the origin answered with 304 (the
	// stored response was freshened) and with a new full response.
	Revalidated304 uint64
	Revalidated200 uint64
	// LockWaits counts requests that waited for another request's fill; LockTimeouts those
	// whose wait timed out.
	LockWaits    uint64
	LockTimeouts uint64
	// Stored counts responses written to the storage, BytesStored their sizes.
	Stored      uint64
	BytesStored uint64
	// TooLarge counts responses not stored because they outgrew the maximum object size.
	TooLarge uint64
	// Invalidations counts entries invalidated by unsafe requests; Purges, purge calls that
	// removed something.
	Invalidations uint64
	Purges        uint64
	// Usage is the storage's occupancy and eviction counts.
	Usage Usage
}

func (c *counters) snapshot() Stats {
	return Stats{
		Hits:           c.hits.Load(),
		Misses:         c.misses.Load(),
		StaleServed:    c.staleServed.Load(),
		Revalidated304: c.revalidated304.Load(),
		Revalidated200: c.revalidated200.Load(),
		LockWaits:      c.lockWaits.Load(),
		LockTimeouts:   c.lockTimeouts.Load(),
		Stored:         c.stored.Load(),
		BytesStored:    c.bytesStored.Load(),
		TooLarge:       c.tooLarge.Load(),
		Invalidations:  c.invalidations.Load(),
		Purges:         c.purges.Load(),
	}
}
