// Package limits provides lock-free counting primitives for rate limiting:
// a count-min sketch Estimator, a two-window Rate estimator and an Inflight
// counter whose Guard gives back what it took.
package limits

import (
	"hash/maphash"
	"math/bits"
	"sync/atomic"
)

// Estimator is a count-min sketch of signed counters: a fixed grid of
// hashes×slots atomic counters that approximates a per-key sum in memory that
// does not grow with the number of keys. Estimates never undercount while all
// increments are positive; they overcount when keys collide in every row.
//
// An Estimator is safe for concurrent use. The zero value is not usable; call
// NewEstimator.
type Estimator struct {
	seed  maphash.Seed
	rows  int
	mask  uint64         // slots per row minus one; slots is a power of two
	cells []atomic.Int64 // rows × slots, row-major
}

// NewEstimator returns an Estimator with the given number of hash rows and
// slots per row. Slots is rounded up to a power of two; both are at least 1.
// Memory is 8 × hashes × slots bytes.
func NewEstimator(hashes, slots int) *Estimator {
	hashes = max(hashes, 1)
	slots = max(slots, 1)
	n := 1 << bits.Len(uint(slots-1))
	return &Estimator{
		seed:  maphash.MakeSeed(),
		rows:  hashes,
		mask:  uint64(n - 1),
		cells: make([]atomic.Int64, hashes*n),
	}
}

// Hash returns the hash of key under this Estimator's seed, for the *Hash
// methods. Hashing once lets a caller touch several counters of one key, or a
// []byte key, without hashing again.
func (e *Estimator) Hash(key string) uint64 { return maphash.String(e.seed, key) }

// HashBytes is Hash for a []byte key; it does not allocate.
func (e *Estimator) HashBytes(key []byte) uint64 { return maphash.Bytes(e.seed, key) }

// Incr adds v to key's counters and returns the new estimate.
func (e *Estimator) Incr(key string, v int64) int64 { return e.IncrHash(e.Hash(key), v) }

// Decr subtracts v from key's counters.
func (e *Estimator) Decr(key string, v int64) { e.IncrHash(e.Hash(key), -v) }

// Get returns the current estimate for key.
func (e *Estimator) Get(key string) int64 { return e.GetHash(e.Hash(key)) }

// IncrHash adds v to the counters of the key with hash h (from Hash or
// HashBytes) and returns the new estimate: the minimum across rows.
func (e *Estimator) IncrHash(h uint64, v int64) int64 {
	est := int64(0)
	for i := range e.rows {
		n := e.cell(i, h).Add(v)
		if i == 0 || n < est {
			est = n
		}
	}
	return est
}

// GetHash returns the estimate of the key with hash h.
func (e *Estimator) GetHash(h uint64) int64 {
	est := int64(0)
	for i := range e.rows {
		n := e.cell(i, h).Load()
		if i == 0 || n < est {
			est = n
		}
	}
	return est
}

// Reset sets every counter to zero. Increments racing with Reset may survive it.
func (e *Estimator) Reset() {
	for i := range e.cells {
		e.cells[i].Store(0)
	}
}

// cell returns row i's counter for hash h. Each row derives its own index by
// remixing h with a per-row constant, so rows collide independently.
func (e *Estimator) cell(i int, h uint64) *atomic.Int64 {
	x := h + uint64(i+1)*0x9e3779b97f4a7c15
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return &e.cells[uint64(i)*(e.mask+1)+x&e.mask]
}
