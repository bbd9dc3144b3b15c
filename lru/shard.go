package lru

import (
	"sync"
	"sync/atomic"
)

// none marks the end of a list in node links.
const none = -1

// node is one list element; free nodes are chained through next.
type node[T any] struct {
	key        uint64
	data       T
	weight     int
	prev, next int32
}

// shard is one independent LRU: a map from key to node index over a node
// array holding a doubly linked list, most recent at head. Removed nodes go
// on a free list and are reused; the array never shrinks.
type shard[T any] struct {
	mu         sync.RWMutex // guards the fields below it except the atomics
	index      map[uint64]int32
	nodes      []node[T]
	head, tail int32
	free       int32

	// Written under mu, read without it.
	length atomic.Int64
	weight atomic.Int64

	_ [64]byte // keeps neighbouring shards' locks off this cache line
}

func (s *shard[T]) init(capacity int) {
	s.index = make(map[uint64]int32, capacity)
	s.nodes = make([]node[T], 0, capacity)
	s.head, s.tail, s.free = none, none, none
}

// admit inserts or updates key at the head (or, for a new key with head
// false, at the tail). It returns the previous weight and whether key
// existed.
func (s *shard[T]) admit(key uint64, data T, weight int, head bool) (int, bool) {
	if i, ok := s.index[key]; ok {
		n := &s.nodes[i]
		old := n.weight
		n.data, n.weight = data, weight
		s.weight.Add(int64(weight - old))
		s.moveToHead(i)
		return old, true
	}
	var i int32
	if s.free != none {
		i = s.free
		s.free = s.nodes[i].next
	} else {
		i = int32(len(s.nodes))
		s.nodes = append(s.nodes, node[T]{})
	}
	s.nodes[i] = node[T]{key: key, data: data, weight: weight, prev: none, next: none}
	s.index[key] = i
	if head {
		s.pushHead(i)
	} else {
		s.pushTail(i)
	}
	s.length.Add(1)
	s.weight.Add(int64(weight))
	return 0, false
}

// remove unlinks node i, frees it and returns its entry.
func (s *shard[T]) remove(i int32) Entry[T] {
	n := &s.nodes[i]
	e := Entry[T]{Key: n.key, Data: n.data, Weight: n.weight}
	s.unlink(i)
	delete(s.index, n.key)
	*n = node[T]{prev: none, next: s.free}
	s.free = i
	s.length.Add(-1)
	s.weight.Add(-int64(e.Weight))
	return e
}

// inTop reports whether node i is among the first n from the head.
func (s *shard[T]) inTop(i int32, n int) bool {
	for j, k := s.head, 0; j != none && k < n; j, k = s.nodes[j].next, k+1 {
		if j == i {
			return true
		}
	}
	return false
}

func (s *shard[T]) moveToHead(i int32) {
	if s.head == i {
		return
	}
	s.unlink(i)
	s.pushHead(i)
}

func (s *shard[T]) pushHead(i int32) {
	n := &s.nodes[i]
	n.prev, n.next = none, s.head
	if s.head != none {
		s.nodes[s.head].prev = i
	} else {
		s.tail = i
	}
	s.head = i
}

func (s *shard[T]) pushTail(i int32) {
	n := &s.nodes[i]
	n.prev, n.next = s.tail, none
	if s.tail != none {
		s.nodes[s.tail].next = i
	} else {
		s.head = i
	}
	s.tail = i
}

func (s *shard[T]) unlink(i int32) {
	n := &s.nodes[i]
	if n.prev != none {
		s.nodes[n.prev].next = n.next
	} else {
		s.head = n.next
	}
	if n.next != none {
		s.nodes[n.next].prev = n.prev
	} else {
		s.tail = n.prev
	}
	n.prev, n.next = none, none
}
