package lb

import "sync/atomic"

// Selector is a selection algorithm built over one backend list. It yields
// indexes into that list in the algorithm's order for a key: First gives the
// preferred backend, and each Next call the fallback after the previous one.
// The LoadBalancer skips candidates it has already seen and candidates that
// are not ready, and stops after maxIterations candidates.
//
// A Selector must be safe for concurrent use; the list it was built from
// never changes.
type Selector interface {
	// First returns the preferred backend's index for key and a position
	// to pass to Next. An index outside the list means "no candidate".
	First(key []byte) (index int, pos uint64)
	// Next returns the candidate after the one at pos, and its position.
	Next(pos uint64) (index int, next uint64)
}

// Algorithm builds a Selector over backends, which are sorted by Addr, have
// weights from 1 to MaxWeight, and are never modified. The algorithms of this
// package (RoundRobin, Ketama, Maglev, ...) are Algorithm values; users may
// write their own.
type Algorithm func(backends []Backend) (Selector, error)

// LoadBalancer picks a ready backend per request with one Algorithm. All its
// methods are safe for concurrent use; selection never blocks, even while
// the set is being updated.
type LoadBalancer struct {
	backends *Backends
	algo     Algorithm
	state    atomic.Pointer[lbState]
}

// lbState pairs a backend set with the selector built over it, so that a
// reader always sees indexes that belong to the list it reads.
type lbState struct {
	set *set
	sel Selector
}

// New returns a LoadBalancer using algo over backends of weight 1 at addrs,
// the Go form of Pingora's `LoadBalancer::<RoundRobin>::try_from_iter`:
//
//	upstreams, err := lb.New(lb.RoundRobin, "1.1.1.1:443", "1.0.0.1:443")
func New(algo Algorithm, addrs ...string) (*LoadBalancer, error) {
	list := make([]Backend, len(addrs))
	for i, a := range addrs {
		list[i] = NewBackend(a)
	}
	b, err := NewBackends(list...)
	if err != nil {
		return nil, err
	}
	return NewFromBackends(algo, b)
}

// NewFromBackends returns a LoadBalancer using algo over b. Later updates of
// b rebuild the selector. A Backends drives at most one LoadBalancer; a
// second call with the same b returns ErrBound.
func NewFromBackends(algo Algorithm, b *Backends) (*LoadBalancer, error) {
	l := &LoadBalancer{backends: b, algo: algo}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rebuild != nil {
		return nil, ErrBound
	}
	if err := l.rebuild(b.load()); err != nil {
		return nil, err
	}
	b.rebuild = l.rebuild
	return l, nil
}

func (l *LoadBalancer) rebuild(s *set) error {
	sel, err := l.algo(s.list)
	if err != nil {
		return err
	}
	if a, ok := sel.(statusAware); ok {
		a.bindStatus(s.status)
	}
	l.state.Store(&lbState{set: s, sel: sel})
	return nil
}

// statusAware is implemented by selectors of this package that weigh
// backends by their live state (LeastInFlight).
type statusAware interface {
	bindStatus([]*status)
}

// Backends returns the set l selects from, for health checkers and service
// discovery to update.
func (l *LoadBalancer) Backends() *Backends {
	return l.backends
}

// Update replaces l's backends; see Backends.Update.
func (l *LoadBalancer) Update(backends []Backend) (changed bool, err error) {
	return l.backends.Update(backends)
}

// Select returns the first ready backend among the first maxIterations
// candidates the algorithm yields for key, or false if there is none.
// Candidates already yielded count toward maxIterations but are not
// returned twice, as in Pingora's UniqueIterator. Algorithms that ignore the
// key (round robin, random, least in-flight) accept nil.
func (l *LoadBalancer) Select(key []byte, maxIterations int) (Backend, bool) {
	return l.SelectWith(key, maxIterations, nil)
}

// SelectWith is Select with the readiness test replaced: it returns the
// first candidate for which accept(backend, ready) is true. accept must not
// modify the backend. A nil accept is Select.
func (l *LoadBalancer) SelectWith(key []byte, maxIterations int, accept func(b *Backend, ready bool) bool) (Backend, bool) {
	st := l.state.Load()
	i := st.pick(key, maxIterations, accept)
	if i < 0 {
		return Backend{}, false
	}
	return st.set.list[i], true
}

// Acquire is Select that also counts the request as in flight on the chosen
// backend until the returned Lease is released. LeastInFlight balances on
// these counts, so with it every request must go through Acquire.
func (l *LoadBalancer) Acquire(key []byte, maxIterations int) (Lease, bool) {
	st := l.state.Load()
	i := st.pick(key, maxIterations, nil)
	if i < 0 {
		return Lease{}, false
	}
	s := st.set.status[i]
	s.inflight.Add(1)
	return Lease{Backend: st.set.list[i], status: s}, true
}

// Lease is a backend chosen by Acquire, counted as in flight until Release.
type Lease struct {
	// Backend is the chosen backend.
	Backend Backend
	status  *status
}

// Release ends the request on the lease's backend. Call it exactly once per
// Lease; it is safe after the backend has left the set, and does nothing on
// the zero Lease.
func (l Lease) Release() {
	if l.status != nil {
		l.status.inflight.Add(-1)
	}
}

func (st *lbState) pick(key []byte, maxIterations int, accept func(*Backend, bool) bool) int {
	n := len(st.set.list)
	if n == 0 {
		return -1
	}
	var seen seenSet
	distinct, first := 0, -1
	i, pos := st.sel.First(key)
	for step := 0; step < maxIterations; step++ {
		if step > 0 {
			i, pos = st.sel.Next(pos)
		}
		if i < 0 || i >= n {
			return -1
		}
		// The first candidate is new by definition; the seen set (which
		// allocates for large sets) is filled only once there is a fallback.
		if step == 0 {
			first = i
		} else {
			if step == 1 {
				seen.add(first, n)
			}
			if !seen.add(i, n) {
				continue
			}
		}
		ok := st.set.status[i].ready()
		if accept != nil {
			ok = accept(&st.set.list[i], ok)
		}
		if ok {
			return i
		}
		if distinct++; distinct == n {
			return -1
		}
	}
	return -1
}

// seenSet remembers which backend indexes a pick has yielded. The first 256
// indexes live on the stack, so failover over small sets does not allocate.
type seenSet struct {
	small [4]uint64
	large []uint64
}

// add marks i (of n) as seen and reports whether it was new.
func (s *seenSet) add(i, n int) bool {
	words := s.small[:]
	if n > 64*len(s.small) {
		if s.large == nil {
			s.large = make([]uint64, (n+63)/64)
		}
		words = s.large
	}
	w, bit := i/64, uint64(1)<<(i%64)
	if words[w]&bit != 0 {
		return false
	}
	words[w] |= bit
	return true
}

// mix is the splitmix64 finaliser: it spreads FNV's weak high-to-low bit
// diffusion before a hash is reduced modulo a table size.
func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}

// gcd returns the greatest common divisor of a and b.
func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
