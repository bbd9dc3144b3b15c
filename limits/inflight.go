package limits

// Default sketch shape of an Inflight, as in the reference.
const (
	inflightHashes = 4
	inflightSlots  = 8192
)

// Inflight counts, per key, how many things are in progress: each Incr
// returns a Guard that gives the count back on Release. It is safe for
// concurrent use.
type Inflight struct {
	est *Estimator
}

// NewInflight returns an Inflight over a 4 × 8192 sketch (256 KiB).
func NewInflight() *Inflight {
	return &Inflight{est: NewEstimator(inflightHashes, inflightSlots)}
}

// Incr adds v to key's count and returns the Guard that takes it back and
// the count including v.
func (f *Inflight) Incr(key string, v int64) (Guard, int64) {
	return f.IncrHash(f.est.Hash(key), v)
}

// IncrBytes is Incr for a []byte key.
func (f *Inflight) IncrBytes(key []byte, v int64) (Guard, int64) {
	return f.IncrHash(f.est.HashBytes(key), v)
}

// IncrHash is Incr for a key already hashed with Hash or HashBytes.
func (f *Inflight) IncrHash(h uint64, v int64) (Guard, int64) {
	n := f.est.IncrHash(h, v)
	return Guard{est: f.est, hash: h, v: v}, n
}

// Hash returns the hash of key for IncrHash.
func (f *Inflight) Hash(key string) uint64 { return f.est.Hash(key) }

// Get returns key's current count.
func (f *Inflight) Get(key string) int64 { return f.est.Get(key) }

// Guard holds one Incr's share of a key's inflight count. It is a small value
// and does not allocate; Release it exactly once, typically with defer.
type Guard struct {
	est  *Estimator
	hash uint64
	v    int64
}

// Release gives the guard's share back. Calling Release again on the same
// Guard does nothing; releasing a copy of a released Guard counts twice.
func (g *Guard) Release() {
	if g.est == nil {
		return
	}
	g.est.IncrHash(g.hash, -g.v)
	g.est = nil
}

// Get returns the key's current count, 0 after Release.
func (g *Guard) Get() int64 {
	if g.est == nil {
		return 0
	}
	return g.est.GetHash(g.hash)
}
