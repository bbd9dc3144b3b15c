package tinyufo

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

func (c *Cache[K, V]) queueOf(e *entry[V]) *queue[V] {
	if e.state.Load()&inMain != 0 {
		return &c.main
	}
	return &c.small
}

// drop marks e gone and takes its weight off its queue. Callers hold c.mu
// and have taken e out of the table.
func (c *Cache[K, V]) drop(e *entry[V]) {
	c.queueOf(e).weight -= int64(e.weight)
	e.setFlags(gone, 0)
}

func (c *Cache[K, V]) total() int64 { return c.small.weight + c.main.weight }

func (c *Cache[K, V]) publishTotals() {
	c.weight.Store(c.total())
	c.length.Store(int64(c.table.Load().live))
}

// put is Put under c.mu. It appends what left the cache to dst.
func (c *Cache[K, V]) put(dst []Item[V], h uint64, value V, weight int, force bool) []Item[V] {
	weight = max(weight, 1)
	ne := &entry[V]{hash: h, value: value, weight: uint32(weight)}
	c.mu.Lock()
	defer c.mu.Unlock()
	freq := c.sketch.increment(h)
	t := c.table.Load()
	if int64(weight) > c.limit {
		// Could never fit: refuse it, and drop any older value of the key.
		if i, old := t.find(h); old != nil {
			t.delete(i)
			c.drop(old)
			dst = append(dst, item(old))
			c.publishTotals()
		}
		return append(dst, item(ne))
	}
	if i, old := t.find(h); old != nil {
		// Update: the new entry keeps the old one's queue and uses, plus a
		// use; it goes to the back of that queue.
		s := old.state.Load()
		ne.state.Store(s&inMain | min(s&usesMask+1, maxUses))
		t.replace(i, ne)
		c.drop(old)
		c.queueOf(ne).push(ne)
		dst = append(dst, item(old))
		dst = c.evictToLimit(dst, 0)
		c.publishTotals()
		return dst
	}
	// New key: find victims first, then let admission pick between a single
	// victim and the newcomer. Victims stay in the table (readers still hit
	// them) until the decision.
	var first *entry[V]
	n := 0
	for c.total()+int64(weight) > c.limit {
		v := c.evictOne()
		if v == nil {
			break
		}
		if n++; n == 1 {
			first = v
			continue
		}
		if n == 2 {
			dst = c.evict(dst, first)
		}
		dst = c.evict(dst, v)
	}
	if n == 1 {
		if !force && c.sketch.estimate(first.hash) > freq {
			// The victim is more popular: it stays, back in small with
			// its uses reset, and the newcomer is refused.
			first.state.Store(0)
			c.small.push(first)
			c.publishTotals()
			return append(dst, item(ne))
		}
		dst = c.evict(dst, first)
	}
	if t.full() {
		t = t.rebuilt(2*t.live, c.maxLoad)
		c.table.Store(t)
	}
	t.insert(ne)
	c.small.push(ne)
	c.publishTotals()
	return dst
}

// evictToLimit evicts until the total weight plus extra fits the limit.
func (c *Cache[K, V]) evictToLimit(dst []Item[V], extra int64) []Item[V] {
	for c.total()+extra > c.limit {
		v := c.evictOne()
		if v == nil {
			break
		}
		dst = c.evict(dst, v)
	}
	return dst
}

// evict takes victim v, already popped from its queue, out of the table.
func (c *Cache[K, V]) evict(dst []Item[V], v *entry[V]) []Item[V] {
	t := c.table.Load()
	if i, e := t.find(v.hash); e == v {
		t.delete(i)
	}
	v.setFlags(gone, 0)
	return append(dst, item(v))
}

// evictOne pops the next victim, S3-FIFO style: from small while it holds
// at least its share of the limit, else from main. Small entries used more
// than once move to main; main entries with uses left lose one and go round
// again. The victim returned is off its queue but still in the table.
func (c *Cache[K, V]) evictOne() *entry[V] {
	if c.small.weight >= c.smallLimit {
		if v := c.evictSmall(); v != nil {
			return v
		}
	}
	if v := c.evictMain(); v != nil {
		return v
	}
	// Main is empty, so small holds everything; it may move all of it to
	// main, which then has the victim.
	if v := c.evictSmall(); v != nil {
		return v
	}
	return c.evictMain()
}

func (c *Cache[K, V]) evictSmall() *entry[V] {
	for {
		e := c.small.pop()
		if e == nil {
			return nil
		}
		if e.state.Load()&usesMask > 1 {
			e.setFlags(inMain, 0)
			c.main.push(e)
			continue
		}
		return e
	}
}

func (c *Cache[K, V]) evictMain() *entry[V] {
	for {
		e := c.main.pop()
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
		c.main.push(e)
	}
}

func item[V any](e *entry[V]) Item[V] {
	return Item[V]{Hash: e.hash, Value: e.value, Weight: int(e.weight)}
}
