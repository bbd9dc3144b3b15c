package tinyufo

import (
	"math"
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
	q.weight += int64(e.weight)
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
			q.weight -= int64(e.weight)
			return e
		}
	}
	return nil
}

// shard is an independent TinyUFO over part of the key space: a lock-free
// table for readers and, under mu, the S3-FIFO queues and the weights.
type shard[V any] struct {
	table atomic.Pointer[table[V]]

	mu          sync.Mutex // guards the fields below and table writes
	small, main queue[V]
	sketch      *sketch // shared by all shards; lock-free
	limit       int64
	smallLimit  int64
	maxLoad     float64
	adapt       *adapter // shared by all shards
	handDebt    float64  // main clock steps owed at the recency level

	weight atomic.Int64 // copies of the totals, for readers
	length atomic.Int64

	_ [64]byte // keeps the next shard's lock off these cache lines
}

func (sh *shard[V]) init(limit int64, size int, maxLoad float64, sk *sketch, ad *adapter, tomb *entry[V]) {
	sh.adapt = ad
	sh.limit = limit
	sh.smallLimit = limit/10 + 1
	sh.maxLoad = maxLoad
	sh.sketch = sk
	sh.table.Store(newTable(int(float64(max(size, 1))/maxLoad)+1, maxLoad, tomb))
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
	return e.value, true
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
	sh.queueOf(e).weight -= int64(e.weight)
	e.setFlags(gone, 0)
}

func (sh *shard[V]) total() int64 { return sh.small.weight + sh.main.weight }

func (sh *shard[V]) publishTotals() {
	sh.weight.Store(sh.total())
	sh.length.Store(int64(sh.table.Load().live))
}

// put does Put and ForcePut. It appends what left the cache to *dst,
// unless dst is nil.
func (sh *shard[V]) put(dst *[]Item[V], h uint64, value V, weight int, force bool) {
	weight = max(weight, 1)
	ne := &entry[V]{hash: h, value: value, weight: uint32(weight)}
	// The sketch is lock-free: count outside the lock to keep it short.
	freq := sh.sketch.increment(h)
	sh.sketch.maybeAge()
	sh.adapt.maybeDecide(sh.sketch)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	t := sh.table.Load()
	if int64(weight) > sh.limit || weight > math.MaxUint32 {
		// Could never fit: refuse it, and drop any older value of the key.
		if i, old := t.find(h); old != nil {
			t.delete(i)
			sh.drop(old)
			report(dst, old)
			sh.publishTotals()
		}
		report(dst, ne)
		return
	}
	if i, old := t.find(h); old != nil {
		// Update: the new entry keeps the old one's queue and uses, plus a
		// use; it goes to the back of that queue.
		s := old.state.Load()
		ne.state.Store(s&inMain | min(s&usesMask+1, maxUses))
		t.replace(i, ne)
		sh.drop(old)
		sh.queueOf(ne).push(ne)
		report(dst, old)
		sh.evictToLimit(dst)
		sh.publishTotals()
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
		if !force && sh.sketch.estimate(first.hash) > freq {
			// The victim is more popular: it stays, back in small with
			// its uses reset, and the newcomer is refused.
			first.state.Store(0)
			sh.small.push(first)
			sh.publishTotals()
			report(dst, ne)
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
	if freq >= mainFreq {
		// Seen often lately: the sketch stands in for S3-FIFO's ghost
		// queue, whose hits go straight to main.
		ne.state.Store(inMain)
		sh.main.push(ne)
	} else {
		sh.small.push(ne)
	}
	sh.publishTotals()
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
	report(dst, v)
}

// evictOne pops the next victim, S3-FIFO style: from small while it holds
// at least its share of the limit, else from main. Small entries used more
// than once, or frequent in the sketch, move to main; main entries with uses
// left lose one and go round again. The victim returned is off its queue but
// still in the table.
//
// After a shift in popularity (see adapter) each eviction first advances
// main's hand by up to one step, level/maxLevel on average, and an entry it
// finds unused is the victim: main then loses what is no longer used even
// while small holds its share.
func (sh *shard[V]) evictOne() *entry[V] {
	if l := sh.adapt.level.Load(); l > 0 {
		if v := sh.stepMain(float64(l) / maxLevel); v != nil {
			return v
		}
	}
	if sh.small.weight >= sh.smallLimit {
		if v := sh.evictSmall(); v != nil {
			return v
		}
	}
	if v := sh.evictMain(); v != nil {
		return v
	}
	// Main is empty, so small holds everything; it may move all of it to
	// main, which then has the victim.
	if v := sh.evictSmall(); v != nil {
		return v
	}
	return sh.evictMain()
}

// stepMain moves main's hand rate steps on average: an entry with uses
// left loses one and goes round again, one without is returned.
func (sh *shard[V]) stepMain(rate float64) *entry[V] {
	sh.handDebt = min(sh.handDebt+rate, 1)
	if sh.handDebt < 1 {
		return nil
	}
	sh.handDebt--
	e := sh.main.pop()
	if e == nil {
		return nil
	}
	s := e.state.Load()
	if s&usesMask == 0 {
		return e
	}
	// A reader's racing use may be lost: uses are best effort.
	e.state.CompareAndSwap(s, s-1)
	sh.main.push(e)
	return nil
}

func (sh *shard[V]) evictSmall() *entry[V] {
	for {
		e := sh.small.pop()
		if e == nil {
			return nil
		}
		if e.state.Load()&usesMask > 1 || sh.sketch.estimate(e.hash) >= mainFreq {
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

// report appends e to *dst, unless dst is nil.
func report[V any](dst *[]Item[V], e *entry[V]) {
	if dst != nil {
		*dst = append(*dst, Item[V]{Hash: e.hash, Value: e.value, Weight: int(e.weight)})
	}
}
