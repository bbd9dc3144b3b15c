package lb

import (
	"math/rand/v2"
	"slices"
	"sync/atomic"
)

// weights maps a number in [0, total) to a backend, each backend owning a
// run of Weight numbers: the compact form of Pingora's weighted index array.
type weights struct {
	cum     []uint64 // cum[i] = sum of the weights of backends 0..i
	total   uint64
	uniform bool // all weights equal: pick is a plain modulo
}

func newWeights(backends []Backend) weights {
	w := weights{cum: make([]uint64, len(backends)), uniform: true}
	for i := range backends {
		w.total += uint64(backends[i].Weight)
		w.cum[i] = w.total
		w.uniform = w.uniform && backends[i].Weight == backends[0].Weight
	}
	return w
}

// pick returns the backend owning x modulo the total weight.
func (w *weights) pick(x uint64) int {
	if w.uniform {
		return int(x % uint64(len(w.cum)))
	}
	i, _ := slices.BinarySearch(w.cum, x%w.total+1)
	return i
}

// nextIndex is the fallback order of the non-hash algorithms: the backends
// after the previous candidate, in list order, wrapping around.
func nextIndex(pos uint64, n int) (int, uint64) {
	i := (pos + 1) % uint64(n)
	return int(i), i
}

// RoundRobin cycles through the backends, each one Weight times in a row
// (Pingora's RoundRobin). The cycle restarts when the set changes. The key is
// ignored. Fallbacks follow list order.
func RoundRobin(backends []Backend) (Selector, error) {
	return &roundRobin{w: newWeights(backends)}, nil
}

type roundRobin struct {
	w       weights
	counter atomic.Uint64
}

func (r *roundRobin) First([]byte) (int, uint64) {
	if r.w.total == 0 {
		return -1, 0
	}
	i := r.w.pick(r.counter.Add(1) - 1)
	return i, uint64(i)
}

func (r *roundRobin) Next(pos uint64) (int, uint64) {
	return nextIndex(pos, len(r.w.cum))
}

// maxSequence bounds the table SmoothWeightedRoundRobin precomputes, and
// maxSequenceWork the steps (table length × backends) spent computing it.
const (
	maxSequence     = 1 << 20
	maxSequenceWork = 1 << 28
)

// SmoothWeightedRoundRobin is nginx's weighted round robin: over every
// sum-of-weights picks each backend is chosen Weight times, spread out
// rather than in runs (weights 5, 1, 1 give a a b a c a a). Ties go to the
// backend earlier in Addr order, as nginx gives them to the earlier server
// line. The key is ignored; fallbacks follow list order.
//
// Unlike nginx, the order does not adapt to unhealthy backends: their turns
// fall through to the fallback order. The sequence is precomputed so that
// selection is lock-free; it returns ErrTooLarge if the weights, divided by
// their greatest common divisor, sum to more than 1<<20, or to more than
// 1<<28 divided by the number of backends (building costs one step per
// backend per table entry).
func SmoothWeightedRoundRobin(backends []Backend) (Selector, error) {
	var g, total uint64
	for _, b := range backends {
		g = gcd(g, uint64(b.Weight))
	}
	for _, b := range backends {
		total += uint64(b.Weight) / g
	}
	if total > maxSequence || total*uint64(len(backends)) > maxSequenceWork {
		return nil, ErrTooLarge
	}
	s := &smoothRoundRobin{seq: make([]uint32, total), n: len(backends)}
	current := make([]int64, len(backends))
	for k := range s.seq {
		best := -1
		for i, b := range backends {
			current[i] += int64(uint64(b.Weight) / g)
			if best < 0 || current[i] > current[best] {
				best = i
			}
		}
		current[best] -= int64(total)
		s.seq[k] = uint32(best)
	}
	return s, nil
}

type smoothRoundRobin struct {
	seq     []uint32
	n       int
	counter atomic.Uint64
}

func (s *smoothRoundRobin) First([]byte) (int, uint64) {
	if len(s.seq) == 0 {
		return -1, 0
	}
	i := s.seq[(s.counter.Add(1)-1)%uint64(len(s.seq))]
	return int(i), uint64(i)
}

func (s *smoothRoundRobin) Next(pos uint64) (int, uint64) {
	return nextIndex(pos, s.n)
}

// Random picks a backend uniformly at random, ignoring weights and the key.
// Fallbacks follow list order from the random pick.
func Random(backends []Backend) (Selector, error) {
	return random{n: len(backends)}, nil
}

type random struct{ n int }

func (r random) First([]byte) (int, uint64) {
	if r.n == 0 {
		return -1, 0
	}
	i := rand.IntN(r.n)
	return i, uint64(i)
}

func (r random) Next(pos uint64) (int, uint64) {
	return nextIndex(pos, r.n)
}

// WeightedRandom picks a backend at random with probability proportional to
// its weight, ignoring the key. Fallbacks follow list order from the pick.
func WeightedRandom(backends []Backend) (Selector, error) {
	return &weightedRandom{w: newWeights(backends)}, nil
}

type weightedRandom struct{ w weights }

func (r *weightedRandom) First([]byte) (int, uint64) {
	if r.w.total == 0 {
		return -1, 0
	}
	i := r.w.pick(rand.Uint64N(r.w.total))
	return i, uint64(i)
}

func (r *weightedRandom) Next(pos uint64) (int, uint64) {
	return nextIndex(pos, len(r.w.cum))
}

// FNVHash maps a key to a backend by the key's 64-bit FNV-1a hash, each
// backend owning a share of hash values proportional to its weight
// (Pingora's FNVHash). It is not consistent: changing the set remaps most
// keys; use Ketama or Maglev when that matters. Fallbacks follow list order.
func FNVHash(backends []Backend) (Selector, error) {
	return &fnvHash{w: newWeights(backends)}, nil
}

type fnvHash struct{ w weights }

func (f *fnvHash) First(key []byte) (int, uint64) {
	if f.w.total == 0 {
		return -1, 0
	}
	i := f.w.pick(fnvBytes(fnvOffset, key))
	return i, uint64(i)
}

func (f *fnvHash) Next(pos uint64) (int, uint64) {
	return nextIndex(pos, len(f.w.cum))
}

// LeastInFlight picks the ready backend with the fewest in-flight requests
// per unit of weight, counting the Leases of LoadBalancer.Acquire; requests
// chosen with Select are not counted. Ties rotate among the tied backends.
// The key is ignored; fallbacks follow list order. Each pick scans the whole
// set, which suits sets of up to a few hundred backends.
func LeastInFlight(backends []Backend) (Selector, error) {
	w := make([]int64, len(backends))
	for i, b := range backends {
		w[i] = int64(b.Weight)
	}
	return &leastInFlight{weight: w}, nil
}

type leastInFlight struct {
	weight []int64
	status []*status // bound by the LoadBalancer before first use
	start  atomic.Uint64
}

func (l *leastInFlight) bindStatus(s []*status) {
	l.status = s
}

func (l *leastInFlight) First([]byte) (int, uint64) {
	n := len(l.weight)
	if n == 0 || l.status == nil {
		return -1, 0
	}
	start := int((l.start.Add(1) - 1) % uint64(n))
	best, bestLoad := start, int64(-1)
	for k := range n {
		i := start + k
		if i >= n {
			i -= n
		}
		st := l.status[i]
		if !st.ready() {
			continue
		}
		// load_i/w_i < load_best/w_best without division.
		load := st.inflight.Load()
		if bestLoad < 0 || load*l.weight[best] < bestLoad*l.weight[i] {
			best, bestLoad = i, load
		}
	}
	return best, uint64(best)
}

func (l *leastInFlight) Next(pos uint64) (int, uint64) {
	return nextIndex(pos, len(l.weight))
}
