// Package lb picks upstream servers: a concurrently updatable set of
// backends with per-backend readiness, the algorithms that choose one of
// them per request (round robin, smooth weighted round robin, random,
// weighted random, least in-flight, FNV hash, ketama and Maglev), and a
// Service that keeps the set current with discovery (static, DNS, custom),
// active health checks (TCP, TLS, HTTP) and passive health.
package lb

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// MaxWeight is the largest Backend weight accepted.
const MaxWeight = 1 << 16

// Errors returned when building a backend set or a selector.
var (
	// ErrAddr reports a backend address that is neither "host:port" nor
	// "unix:/path".
	ErrAddr = errors.New("lb: backend address must be host:port or unix:path")
	// ErrWeight reports a backend weight below 0 or above MaxWeight.
	ErrWeight = errors.New("lb: backend weight out of range")
	// ErrDuplicate reports two backends with the same address in one set.
	ErrDuplicate = errors.New("lb: duplicate backend address")
	// ErrBound reports a Backends already driving another LoadBalancer.
	ErrBound = errors.New("lb: backends already bound to a load balancer")
	// ErrTooLarge reports weights whose selector table would be too large.
	ErrTooLarge = errors.New("lb: weights too large for the selection table")
)

// Backend is one upstream server. Two backends are the same server when
// their Addr and Weight are equal; Ext is not compared.
type Backend struct {
	// Addr is "host:port" or "unix:/path/to/socket". The ketama algorithm
	// hashes this text as nginx hashes the text of a `server` line.
	Addr string
	// Weight is the backend's relative share of traffic, 1 to MaxWeight.
	// Zero means 1.
	Weight int
	// Ext carries user data (a TLS server name, a region, a peer template)
	// alongside the backend. The load balancer never reads or copies it
	// beyond the map reference.
	Ext map[string]any
}

// NewBackend returns a Backend of weight 1 for addr.
func NewBackend(addr string) Backend {
	return Backend{Addr: addr, Weight: 1}
}

// Hash returns a hash of the backend's address and weight that is stable
// across processes and releases (64-bit FNV-1a), suitable as a map or pool
// key. Ext does not contribute.
func (b *Backend) Hash() uint64 {
	h := fnvString(fnvOffset, b.Addr)
	h = fnvByte(h, 0)
	w := uint64(b.weight())
	for range 8 {
		h = fnvByte(h, byte(w))
		w >>= 8
	}
	return h
}

// weight returns Weight with the zero value read as 1.
func (b *Backend) weight() int {
	if b.Weight == 0 {
		return 1
	}
	return b.Weight
}

func (b *Backend) validate() error {
	if b.Weight < 0 || b.Weight > MaxWeight {
		return fmt.Errorf("%w: %q weight %d", ErrWeight, b.Addr, b.Weight)
	}
	if path, ok := strings.CutPrefix(b.Addr, "unix:"); ok {
		if path == "" {
			return fmt.Errorf("%w: %q", ErrAddr, b.Addr)
		}
		return nil
	}
	host, port, err := net.SplitHostPort(b.Addr)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("%w: %q", ErrAddr, b.Addr)
	}
	return nil
}

// status is the mutable per-backend state. One status lives as long as its
// address stays in the set: Backends.Update hands the same pointer to the
// new set, so health and in-flight counts survive unrelated changes, and a
// Lease taken before an update releases the counter the new set reads.
type status struct {
	// down and disabled are inverted so that a new backend starts ready.
	down     atomic.Bool
	disabled atomic.Bool
	inflight atomic.Int64
	// ejected is set by passive health (outlier detection) while the
	// backend sits out its back-off; fails counts its consecutive failed
	// proxied requests.
	ejected atomic.Bool
	fails   atomic.Int32
}

func (s *status) ready() bool {
	return !s.down.Load() && !s.disabled.Load() && !s.ejected.Load()
}

// set is one immutable version of a Backends.
type set struct {
	list   []Backend // sorted by Addr, weights normalised to at least 1
	status []*status // status[i] belongs to list[i]
	index  map[string]int
}

func (s *set) lookup(addr string) *status {
	if i, ok := s.index[addr]; ok {
		return s.status[i]
	}
	return nil
}

// Backends is a set of backends with a readiness flag per backend. Readers
// (selection, Ready, All) never block: each Update publishes a new immutable
// version through an atomic pointer. Updates are serialised among themselves.
// The zero Backends is an empty set ready to use.
type Backends struct {
	cur atomic.Pointer[set]

	mu sync.Mutex // guards following fields and serialises Update
	// rebuild, when a LoadBalancer is bound, builds its selector for a new
	// version before that version is published; an error aborts the update.
	rebuild func(*set) error
}

// NewBackends returns a set holding backends. See Update for the rules.
func NewBackends(backends ...Backend) (*Backends, error) {
	b := &Backends{}
	if _, err := b.Update(backends); err != nil {
		return nil, err
	}
	return b, nil
}

var emptySet set

// load returns the current version; before the first Update, an empty one.
func (b *Backends) load() *set {
	if s := b.cur.Load(); s != nil {
		return s
	}
	return &emptySet
}

// Update replaces the set with backends, which must have distinct valid
// addresses and weights in range. It reports whether the set changed: a list
// with the same addresses and weights as the current one (in any order, Ext
// ignored) changes nothing. Backends that stay keep their health, enabled
// flag and in-flight count; new backends start healthy and enabled.
//
// If a LoadBalancer uses this set, Update also rebuilds its selector, and a
// selector that cannot be built (ErrTooLarge) leaves the old set in place.
func (b *Backends) Update(backends []Backend) (changed bool, err error) {
	list := make([]Backend, len(backends))
	for i, be := range backends {
		if err := be.validate(); err != nil {
			return false, err
		}
		be.Weight = be.weight()
		list[i] = be
	}
	slices.SortFunc(list, func(x, y Backend) int { return cmp.Compare(x.Addr, y.Addr) })
	for i := 1; i < len(list); i++ {
		if list[i].Addr == list[i-1].Addr {
			return false, fmt.Errorf("%w: %q", ErrDuplicate, list[i].Addr)
		}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.load()
	if sameServers(old.list, list) {
		return false, nil
	}
	next := &set{list: list, status: make([]*status, len(list)), index: make(map[string]int, len(list))}
	for i, be := range list {
		next.index[be.Addr] = i
		if st := old.lookup(be.Addr); st != nil {
			next.status[i] = st
		} else {
			next.status[i] = new(status)
		}
	}
	if b.rebuild != nil {
		if err := b.rebuild(next); err != nil {
			return false, err
		}
	}
	b.cur.Store(next)
	return true, nil
}

func sameServers(a, b []Backend) bool {
	return slices.EqualFunc(a, b, func(x, y Backend) bool { return x.Addr == y.Addr && x.Weight == y.Weight })
}

// All returns a copy of the current backends, sorted by Addr, with zero
// weights shown as 1.
func (b *Backends) All() []Backend {
	return slices.Clone(b.load().list)
}

// Len returns the number of backends in the current set.
func (b *Backends) Len() int {
	return len(b.load().list)
}

// SetHealthy records the health of the backend at addr, as a health checker
// sees it. It reports false if addr is not in the set.
func (b *Backends) SetHealthy(addr string, healthy bool) bool {
	st := b.load().lookup(addr)
	if st == nil {
		return false
	}
	st.down.Store(!healthy)
	return true
}

// SetEnabled administratively enables or disables the backend at addr
// without touching its health. It reports false if addr is not in the set.
func (b *Backends) SetEnabled(addr string, enabled bool) bool {
	st := b.load().lookup(addr)
	if st == nil {
		return false
	}
	st.disabled.Store(!enabled)
	return true
}

// Ready reports whether the backend at addr may receive traffic: it is in
// the set, healthy and enabled.
func (b *Backends) Ready(addr string) bool {
	st := b.load().lookup(addr)
	return st != nil && st.ready()
}

// InFlight returns the number of Leases on the backend at addr that are not
// released yet, or 0 if addr is not in the set.
func (b *Backends) InFlight(addr string) int64 {
	if st := b.load().lookup(addr); st != nil {
		return st.inflight.Load()
	}
	return 0
}

// 64-bit FNV-1a, written out so that hashing a key neither allocates nor
// goes through the hash.Hash interface.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvByte(h uint64, c byte) uint64 {
	return (h ^ uint64(c)) * fnvPrime
}

func fnvString(h uint64, s string) uint64 {
	for i := range len(s) {
		h = fnvByte(h, s[i])
	}
	return h
}

func fnvBytes(h uint64, p []byte) uint64 {
	for _, c := range p {
		h = fnvByte(h, c)
	}
	return h
}
