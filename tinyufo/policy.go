package tinyufo

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// queue is a FIFO of entries linked through entry.next. Entries marked gone
// stay linked until popped; weight counts only the others.
type queue[V any] struct {
	head, tail *entry[V]
	weight     int64
}

func (q *queue[V]) push(e *entry[V]) {
	e.next = nil
	if q.tail == nil {
		q.head = e
	} else {
		q.tail.next = e
	}
	q.tail = e
	q.weight += int64(e.weight.Load())
}

// pop returns the oldest entry that is not gone, or nil.
func (q *queue[V]) pop() *entry[V] {
	for q.head != nil {
		e := q.head
		q.head = e.next
		if q.head == nil {
			q.tail = nil
		}
		e.next = nil
		if e.state.Load()&gone == 0 {
			q.weight -= int64(e.weight.Load())
			return e
		}
	}
	return nil
}

// shard is an independent TinyUFO over part of the key space: a lock-free
// table for readers and, under mu, the S3-FIFO queues and the weights.
type shard[V any] struct {
	// Every Get loads table; writers lock mu and change the fields after
	// it on every put. A cache line of its own keeps readers on other
	// cores from missing on it after each put.
	table atomic.Pointer[table[V]]
	_     [56]byte

	mu          sync.Mutex // guards the fields below and table writes
	small, main queue[V]
	sketch      *sketch // shared by all shards; lock-free
	limit       int64
	smallLimit  int64 // small's share at recency level 0
	maxLoad     float64
	adapt       *adapter // shared by all shards
	epoch       uint32   // adapter's epoch when uses were last reset
	vk          valueKind
	puts        uint32 // puts so far, for decideEvery

	weight atomic.Int64 // copies of the totals, for readers
	length atomic.Int64

	_ [64]byte // keeps the next shard's lock off these cache lines
}

func (sh *shard[V]) init(limit int64, size int, maxLoad float64, sk *sketch, ad *adapter, vk valueKind) {
	sh.adapt = ad
	sh.vk = vk
	sh.limit = limit
	sh.smallLimit = limit/10 + 1
	sh.maxLoad = maxLoad
	sh.sketch = sk
	sh.table.Store(newTable[V](int(float64(max(size, 1))/maxLoad)+1, maxLoad))
}

// remove takes h's entry out and returns its value.
func (sh *shard[V]) remove(h uint64) (V, bool) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.table.Load()
	i, e := t.find(h)
	if e == nil {
		var zero V
		return zero, false
	}
	t.delete(i)
	sh.drop(e)
	sh.publishTotals()
	return e.load(sh.vk), true
}

func (sh *shard[V]) queueOf(e *entry[V]) *queue[V] {
	if e.state.Load()&inMain != 0 {
		return &sh.main
	}
	return &sh.small
}

// drop marks e gone and takes its weight off its queue. Callers hold sh.mu
// and have taken e out of the table.
func (sh *shard[V]) drop(e *entry[V]) {
	sh.queueOf(e).weight -= int64(e.weight.Load())
	e.setFlags(gone, 0)
}

func (sh *shard[V]) total() int64 { return sh.small.weight + sh.main.weight }

// publishTotals copies the totals for readers. It stores only what
// changed: an update in place leaves them as they were, and their cache
// line then stays shared with the other cores that put to this shard.
func (sh *shard[V]) publishTotals() {
	if w := sh.total(); sh.weight.Load() != w {
		sh.weight.Store(w)
	}
	if n := int64(sh.table.Load().live); sh.length.Load() != n {
		sh.length.Store(n)
	}
}

// refusesFirstSight reports whether admission refuses a new key of
// frequency freq and the given weight into a shard holding total weight
// without looking for a victim: a key first seen in this aging period, into
// a full shard at recency level 0. A victim would have to be less popular
// than once, and a tie keeps it (see putLocked). That skips the victim's
// pops and its trip back to small, the costliest part of a put, for most
// one-hit keys. Measured on bench/cache: hit ratios moved by -0.11 to +0.17
// points, and up to 2.3 points up for NewCompact, whose small sketch ties
// often.
func (sh *shard[V]) refusesFirstSight(freq uint8, weight int, force bool, total int64) bool {
	return !force && freq <= 1 && total+int64(weight) > sh.limit && sh.adapt.level.Load() == 0
}

// decideEvery is how many puts to a shard go between two looks at the
// adapter's sample (see putLocked).
const decideEvery = 16

// put does Put and ForcePut. It appends what left the cache to *dst,
// unless dst is nil.
func (sh *shard[V]) put(dst *[]Item[V], h uint64, value V, weight int, force bool) {
	weight = max(weight, 1)
	// Start the cache misses this put takes, on the key's sketch block, its
	// table slot and its entry, together: the sketch's touch and a
	// lock-free probe (as readers do) before any atomic write, which would
	// wait for each in turn. The probe under the lock then hits.
	sh.sketch.touch(h)
	_, old := sh.table.Load().find(h)
	// The sketch is lock-free: count outside the lock to keep it short.
	freq, due := sh.sketch.increment(h)
	if due {
		sh.sketch.maybeAge()
	}
	if old != nil && dst == nil && sh.vk != valueBoxed && weight <= math.MaxUint32 &&
		old.weight.Load() == uint32(weight) {
		// An update in place that changes no weight needs no lock: the
		// store and the use are atomic, as readers' loads. Racing with an
		// eviction or a removal of the entry, the put comes first and
		// its value leaves with the entry. Only Put and ForcePut take this
		// path: they report nothing, so no value goes unreported.
		old.store(sh.vk, value)
		old.addUse()
		return
	}
	if old == nil && sh.refusesFirstSight(freq, weight, force, sh.weight.Load()) {
		// The common refusal, without the lock (see refusesFirstSight),
		// against the totals as last published. As no locked put counts
		// it, one in decideEvery looks at the adapter's sample instead.
		if dst != nil {
			*dst = append(*dst, Item[V]{Hash: h, Value: value, Weight: weight})
		}
		if rand.Uint32()%decideEvery == 0 {
			sh.adapt.maybeDecide(sh.sketch)
		}
		return
	}
	if sh.putLocked(dst, h, value, weight, force, freq) {
		sh.adapt.maybeDecide(sh.sketch)
	}
}

// putLocked is put under the shard's lock, given the key's frequency. It
// reports whether to see if the adapter has a sample to judge: one put in
// decideEvery per shard does, as the count of a sample is on cache lines
// that readers on every core write.
func (sh *shard[V]) putLocked(dst *[]Item[V], h uint64, value V, weight int, force bool, freq uint8) (decide bool) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.puts++
	decide = sh.puts%decideEvery == 0
	t := sh.table.Load()
	i, old := t.find(h)
	if old != nil && sh.vk != valueBoxed && int64(weight) <= sh.limit && weight <= math.MaxUint32 {
		// Update in place: the entry keeps its queue position and age,
		// plus a use.
		sh.report(dst, old)
		old.store(sh.vk, value)
		sh.queueOf(old).weight += int64(weight) - int64(old.weight.Load())
		old.weight.Store(uint32(weight))
		old.addUse()
		sh.evictToLimit(dst)
		sh.publishTotals()
		return
	}
	ne := &entry[V]{hash: h, value: value}
	ne.weight.Store(uint32(weight))
	if int64(weight) > sh.limit || weight > math.MaxUint32 {
		// Could never fit: refuse it, and drop any older value of the key.
		if old != nil {
			t.delete(i)
			sh.drop(old)
			sh.report(dst, old)
			sh.publishTotals()
		}
		sh.report(dst, ne)
		return
	}
	if old != nil {
		// Update: the new entry keeps the old one's queue, age (for the
		// adapter) and uses, plus a use; it goes to the back of that queue.
		s := old.state.Load()
		ne.state.Store(s&^(usesMask|gone) | min(s&usesMask+1, maxUses))
		t.replace(i, ne)
		sh.drop(old)
		sh.queueOf(ne).push(ne)
		sh.report(dst, old)
		sh.evictToLimit(dst)
		sh.publishTotals()
		return
	}
	if sh.refusesFirstSight(freq, weight, force, sh.total()) {
		sh.report(dst, ne)
		return
	}
	// New key: find victims first, then let admission pick between a single
	// victim and the newcomer. Victims stay in the table (readers still hit
	// them) until the decision.
	var first *entry[V]
	n := 0
	for sh.total()+int64(weight) > sh.limit {
		v := sh.evictOne()
		if v == nil {
			break
		}
		if n++; n == 1 {
			first = v
			continue
		}
		if n == 2 {
			sh.evict(dst, first)
		}
		sh.evict(dst, v)
	}
	if n == 1 {
		// A tie keeps the victim, as in Caffeine, unless the cache is
		// turned to recency after a shift (see adapter). Measured on
		// bench/cache: 0.02 to 0.3 points more hits on the Zipf and
		// scan traces.
		vf := sh.sketch.estimate(first.hash)
		if !force && (vf > freq || vf == freq && sh.adapt.level.Load() == 0) {
			// The victim is at least as popular: it stays, back in small
			// with its uses reset, and the newcomer is refused.
			first.state.Store(first.state.Load() &^ (1<<genShift - 1))
			sh.small.push(first)
			sh.publishTotals()
			sh.report(dst, ne)
			return
		}
		sh.evict(dst, first)
	}
	if t.full() {
		// Room for half as many again: tombstones fill it before the next
		// rebuild, which then costs a few slot copies per insert.
		t = t.rebuilt(t.live+t.live/2, sh.maxLoad)
		sh.table.Store(t)
	}
	t.insert(ne)
	gen := sh.adapt.gen.Load() << genShift
	if freq >= mainFreq {
		// Seen often lately: the sketch stands in for S3-FIFO's ghost
		// queue, whose hits go straight to main.
		ne.state.Store(gen | inMain)
		sh.main.push(ne)
	} else {
		ne.state.Store(gen)
		sh.small.push(ne)
	}
	sh.publishTotals()
	return decide
}

// evictToLimit evicts until the total weight fits the limit.
func (sh *shard[V]) evictToLimit(dst *[]Item[V]) {
	for sh.total() > sh.limit {
		v := sh.evictOne()
		if v == nil {
			break
		}
		sh.evict(dst, v)
	}
}

// evict takes victim v, already popped from its queue, out of the table.
func (sh *shard[V]) evict(dst *[]Item[V], v *entry[V]) {
	sh.table.Load().deleteEntry(v)
	v.setFlags(gone, 0)
	sh.report(dst, v)
}

// evictOne pops the next victim, S3-FIFO style: from small while it holds
// at least its share of the limit, else from main. Small entries used more
// than once (once, at a recency level above 0), or frequent in the sketch,
// move to main; main entries with uses left lose one and go round again.
// The victim returned is off its queue but still in the table.
//
// Small's share grows with the adapter's recency level, and the first
// eviction after a shift in popularity resets every entry's uses (see
// adapter).
func (sh *shard[V]) evictOne() *entry[V] {
	if ep := sh.adapt.epoch.Load(); ep != sh.epoch {
		sh.epoch = ep
		sh.resetUses()
	}
	level := sh.adapt.level.Load()
	if sh.small.weight >= sh.smallShare(level) {
		if v := sh.evictSmall(level); v != nil {
			return v
		}
	}
	if v := sh.evictMain(); v != nil {
		return v
	}
	// Main is empty, so small holds everything; it may move all of it to
	// main, which then has the victim.
	if v := sh.evictSmall(level); v != nil {
		return v
	}
	return sh.evictMain()
}

// smallShare returns small's share of the limit at a recency level: from
// smallLimit at level 0 to recencyShare of the limit at maxLevel.
func (sh *shard[V]) smallShare(level int32) int64 {
	if level <= 0 {
		return sh.smallLimit
	}
	top := max(int64(recencyShare*float64(sh.limit)), sh.smallLimit)
	return sh.smallLimit + (top-sh.smallLimit)*int64(min(level, maxLevel))/maxLevel
}

// resetUses sets the use counter of every queued entry to 0: after a shift
// in popularity, uses from before it tell nothing. One pass over the queues,
// once per shift.
func (sh *shard[V]) resetUses() {
	for _, q := range [...]*queue[V]{&sh.main, &sh.small} {
		for e := q.head; e != nil; e = e.next {
			for {
				s := e.state.Load()
				if s&usesMask == 0 || e.state.CompareAndSwap(s, s&^usesMask) {
					break
				}
			}
		}
	}
}

func (sh *shard[V]) evictSmall(level int32) *entry[V] {
	uses := uint32(1) // more than this goes to main
	if level > 0 {
		uses = 0
	}
	for {
		e := sh.small.pop()
		if e == nil {
			return nil
		}
		if e.state.Load()&usesMask > uses || sh.sketch.estimate(e.hash) >= mainFreq {
			e.setFlags(inMain, 0)
			sh.main.push(e)
			continue
		}
		return e
	}
}

func (sh *shard[V]) evictMain() *entry[V] {
	for {
		e := sh.main.pop()
		if e == nil {
			return nil
		}
		for {
			s := e.state.Load()
			if s&usesMask == 0 {
				return e
			}
			if e.state.CompareAndSwap(s, s-1) {
				break
			}
		}
		sh.main.push(e)
	}
}

// report appends e to *dst, unless dst is nil. The value is loaded as
// readers load it: a Put may be storing one in place without the lock.
func (sh *shard[V]) report(dst *[]Item[V], e *entry[V]) {
	if dst != nil {
		*dst = append(*dst, Item[V]{Hash: e.hash, Value: e.load(sh.vk), Weight: int(e.weight.Load())})
	}
}
