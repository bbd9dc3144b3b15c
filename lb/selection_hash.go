package lb

import (
	"fmt"

	"github.com/pingora-go/pingora/ketama"
)

// Ketama maps a key to a backend on a ketama ring that gives exactly the
// choices of nginx's `hash $key consistent` for the same addresses and
// weights (see package ketama). Adding or removing a backend moves only the
// keys that land on it or leave it. Fallbacks walk the ring clockwise, so a
// backend can come up more than once and use up an iteration.
func Ketama(backends []Backend) (Selector, error) {
	buckets := make([]ketama.Bucket, len(backends))
	for i, b := range backends {
		buckets[i] = ketama.Bucket{Addr: b.Addr, Weight: b.Weight}
	}
	ring, err := ketama.New(buckets)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	return ketamaSelector{ring}, nil
}

type ketamaSelector struct{ ring *ketama.Continuum }

func (k ketamaSelector) First(key []byte) (int, uint64) {
	if k.ring.Len() == 0 {
		return -1, 0
	}
	p := k.ring.Point(ketama.Hash(key))
	return k.ring.At(p), uint64(p)
}

func (k ketamaSelector) Next(pos uint64) (int, uint64) {
	p := (pos + 1) % uint64(k.ring.Len())
	return k.ring.At(int(p)), p
}

// DefaultMaglevSize is Maglev's lookup table size, the prime Envoy uses by
// default. Backends get equal table shares to within one entry. A change of one
// backend remaps about 1.1 times the minimal share of keys for up to about
// 20 backends, rising to 1.5–1.7 times at 100; larger sets should use
// MaglevSize with a larger prime (1,048,583 gives 1.15 times at 100).
const DefaultMaglevSize = 65537

// Maglev maps a key to a backend through a Maglev lookup table (Eisenbud et
// al., NSDI 2016) of DefaultMaglevSize entries, filled so that each backend
// owns its weight's share of the entries to within one entry. Compared with
// Ketama, whose shares stray 10–30% from the weights, it balances keys as
// evenly as the keys' hashes allow, at a disruption close to the minimum for
// table sizes of a few thousand entries per backend (see DefaultMaglevSize).
// Fallbacks walk the table from the key's entry, so a backend can come up
// more than once.
func Maglev(backends []Backend) (Selector, error) {
	return buildMaglev(backends, DefaultMaglevSize)
}

// MaglevSize returns the Maglev algorithm with a table of size entries,
// which must be a prime above the number of backends; a larger table
// balances more evenly and takes longer to build.
func MaglevSize(size int) Algorithm {
	return func(backends []Backend) (Selector, error) {
		return buildMaglev(backends, size)
	}
}

// maxMaglevSize bounds MaglevSize.
const maxMaglevSize = 1 << 24

func buildMaglev(backends []Backend, size int) (Selector, error) {
	if size < 2 || size > maxMaglevSize || !isPrime(size) {
		return nil, fmt.Errorf("lb: Maglev table size %d is not a prime in [2, %d]", size, maxMaglevSize)
	}
	n := len(backends)
	if n > size {
		return nil, fmt.Errorf("%w: %d backends for a Maglev table of %d", ErrTooLarge, n, size)
	}
	if n == 0 {
		return &maglev{}, nil
	}
	m := &maglev{table: make([]uint32, size)}
	const empty = ^uint32(0)
	for i := range m.table {
		m.table[i] = empty
	}
	// Backend i visits table slots offset, offset+skip, offset+2·skip, ...
	// (mod size) and takes the first free one on each of its turns. size is
	// prime, so every skip visits every slot.
	slot := make([]uint64, n)
	skip := make([]uint64, n)
	maxWeight := uint64(0)
	for i, b := range backends {
		h := fnvString(fnvOffset, b.Addr)
		slot[i] = mix(h) % uint64(size)
		skip[i] = mix(h^0x9e3779b97f4a7c15)%uint64(size-1) + 1
		maxWeight = max(maxWeight, uint64(b.Weight))
	}
	// Turns: every round each backend earns its weight in credit and takes
	// one slot per maxWeight of credit, so slots are shared by weight while
	// the permutations stay interleaved as in the unweighted algorithm.
	credit := make([]uint64, n)
	for filled := 0; filled < size; {
		for i, b := range backends {
			credit[i] += uint64(b.Weight)
			for ; credit[i] >= maxWeight && filled < size; credit[i] -= maxWeight {
				for m.table[slot[i]] != empty {
					// slot, skip < size: one subtraction replaces the modulo.
					if slot[i] += skip[i]; slot[i] >= uint64(size) {
						slot[i] -= uint64(size)
					}
				}
				m.table[slot[i]] = uint32(i)
				filled++
			}
		}
	}
	return m, nil
}

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

type maglev struct{ table []uint32 }

func (m *maglev) First(key []byte) (int, uint64) {
	if len(m.table) == 0 {
		return -1, 0
	}
	p := mix(fnvBytes(fnvOffset, key)) % uint64(len(m.table))
	return int(m.table[p]), p
}

func (m *maglev) Next(pos uint64) (int, uint64) {
	p := (pos + 1) % uint64(len(m.table))
	return int(m.table[p]), p
}
