package lru

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// model is a plain reference LRU per shard: a slice, most recent first.
type model struct {
	shards [][]Entry[int]
}

func newModel(n int) *model { return &model{shards: make([][]Entry[int], n)} }

func (m *model) list(key uint64) *[]Entry[int] { return &m.shards[key%uint64(len(m.shards))] }

func (m *model) find(key uint64) int {
	return slices.IndexFunc(*m.list(key), func(e Entry[int]) bool { return e.Key == key })
}

func (m *model) take(key uint64) (Entry[int], bool) {
	l := m.list(key)
	i := m.find(key)
	if i < 0 {
		return Entry[int]{}, false
	}
	e := (*l)[i]
	*l = slices.Delete(*l, i, i+1)
	return e, true
}

func (m *model) admit(key uint64, data, weight int) {
	m.take(key)
	l := m.list(key)
	*l = slices.Insert(*l, 0, Entry[int]{key, data, max(weight, 1)})
}

func (m *model) weight() (w, n int) {
	for _, l := range m.shards {
		for _, e := range l {
			w += e.Weight
			n++
		}
	}
	return w, n
}

// TestAgainstModel runs random operations on an LRU and on the model and
// compares every answer; victims of EvictToLimit must be the least recent
// entry of their shard in the model, and the limits must hold afterwards.
func TestAgainstModel(t *testing.T) {
	tests := []struct {
		shards, limit, watermark, keys int
	}{
		{1, 50, 0, 30},
		{4, 100, 0, 200},
		{8, 60, 10, 100},
		{3, 1000, 5, 40},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("shards=%d,limit=%d,wm=%d", tt.shards, tt.limit, tt.watermark), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(tt.shards), uint64(tt.limit)))
			l := New[int](Config{Shards: tt.shards, WeightLimit: tt.limit, LenWatermark: tt.watermark, Capacity: 8})
			m := newModel(tt.shards)
			var victims []Entry[int]
			for step := range 20000 {
				key := uint64(r.IntN(tt.keys))
				switch op := r.IntN(10); op {
				case 0, 1, 2:
					w := r.IntN(10)
					l.Admit(key, step, w)
					m.admit(key, step, w)
				case 3:
					got, ok := l.Peek(key)
					i := m.find(key)
					if ok != (i >= 0) || ok && got != (*m.list(key))[i].Data {
						t.Fatalf("step %d: Peek(%d) = %d, %v; model index %d", step, key, got, ok, i)
					}
				case 4:
					ok := l.Promote(key)
					if e, found := m.take(key); found {
						m.admit(e.Key, e.Data, e.Weight)
					} else if ok {
						t.Fatalf("step %d: Promote(%d) found a key the model lacks", step, key)
					}
				case 5:
					got, ok := l.Remove(key)
					want, found := m.take(key)
					if ok != found || got != want {
						t.Fatalf("step %d: Remove(%d) = %v, %v; want %v, %v", step, key, got, ok, want, found)
					}
				case 6:
					ok := l.InsertTail(key, step, 2)
					if found := m.find(key) >= 0; ok == found {
						t.Fatalf("step %d: InsertTail(%d) = %v with key present %v", step, key, ok, found)
					}
					if ok {
						lst := m.list(key)
						*lst = append(*lst, Entry[int]{key, step, 2})
					}
				case 7:
					d := r.IntN(5) - 1
					got := l.IncrementWeight(key, d, 12)
					e, found := m.take(key)
					want := 0
					if found && max(e.Weight+d, 1) <= 12 {
						want = max(e.Weight+d, 1)
						m.admit(key, e.Data, want)
					}
					if got != want {
						t.Fatalf("step %d: IncrementWeight(%d) = %d, want %d", step, key, got, want)
					}
				case 8:
					w, ok := l.PeekWeight(key)
					i := m.find(key)
					if ok != (i >= 0) || ok && w != (*m.list(key))[i].Weight {
						t.Fatalf("step %d: PeekWeight(%d) = %d, %v", step, key, w, ok)
					}
				case 9:
					victims = l.EvictToLimit(victims[:0])
					for _, v := range victims {
						lst := m.list(v.Key)
						if len(*lst) == 0 || (*lst)[len(*lst)-1] != v {
							t.Fatalf("step %d: evicted %v, not the least recent of its shard", step, v)
						}
						*lst = (*lst)[:len(*lst)-1]
					}
					if l.Weight() > tt.limit || tt.watermark > 0 && l.Len() > tt.watermark {
						t.Fatalf("step %d: after EvictToLimit weight %d len %d", step, l.Weight(), l.Len())
					}
				}
				w, n := m.weight()
				if l.Weight() != w || l.Len() != n {
					t.Fatalf("step %d: weight/len %d/%d, model %d/%d", step, l.Weight(), l.Len(), w, n)
				}
			}
			for i := range tt.shards {
				e, ok := l.PeekLRU(i)
				ms := m.shards[i]
				if ok != (len(ms) > 0) || ok && e != ms[len(ms)-1] {
					t.Fatalf("PeekLRU(%d) = %v, %v", i, e, ok)
				}
				sw := 0
				for _, e := range ms {
					sw += e.Weight
				}
				if l.ShardLen(i) != len(ms) || l.ShardWeight(i) != sw {
					t.Fatalf("shard %d: len/weight %d/%d, model %d/%d", i, l.ShardLen(i), l.ShardWeight(i), len(ms), sw)
				}
			}
		})
	}
}

func TestEvictionCounters(t *testing.T) {
	l := New[string](Config{Shards: 2, WeightLimit: 10})
	for k := range uint64(6) {
		l.Admit(k, "v", 3)
	}
	ev := l.EvictToLimit(nil)
	var w int
	for _, e := range ev {
		w += e.Weight
	}
	if l.Weight() > 10 || uint64(len(ev)) != l.EvictedLen() || uint64(w) != l.EvictedWeight() {
		t.Fatalf("weight %d, evicted %d (%d) counted %d (%d)", l.Weight(), len(ev), w, l.EvictedLen(), l.EvictedWeight())
	}
	if _, ok := l.Remove(ev[0].Key); ok {
		t.Fatal("Remove found an evicted key")
	}
}

func TestPromoteTopN(t *testing.T) {
	l := New[int](Config{Shards: 1, WeightLimit: 100})
	for k := range uint64(5) {
		l.Admit(k, int(k), 1)
	}
	// Order, most recent first: 4 3 2 1 0. Key 3 is in the top 2: no move.
	if !l.PromoteTopN(3, 2) {
		t.Fatal("PromoteTopN(3) missed a present key")
	}
	if e, _ := l.EvictShard(0); e.Key != 0 {
		t.Fatalf("evicted %d, want 0", e.Key)
	}
	// Key 1 is outside the top 2: it moves to the head, so 2 goes next.
	l.PromoteTopN(1, 2)
	if e, _ := l.EvictShard(0); e.Key != 2 {
		t.Fatalf("evicted %d, want 2", e.Key)
	}
	if l.PromoteTopN(99, 2) {
		t.Fatal("PromoteTopN found an absent key")
	}
}

func TestConcurrent(t *testing.T) {
	l := New[int](Config{Shards: 8, WeightLimit: 500, Capacity: 1000})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			var buf []Entry[int]
			for i := range 5000 {
				k := uint64(r.IntN(2000))
				switch i % 5 {
				case 0, 1:
					l.Admit(k, i, 1+r.IntN(4))
				case 2:
					l.Peek(k)
					l.Promote(k)
				case 3:
					l.Remove(k)
				case 4:
					buf = l.EvictToLimit(buf[:0])
				}
			}
		})
	}
	wg.Wait()
	l.EvictToLimit(nil)
	var w, n int
	for i := range l.Shards() {
		w += l.ShardWeight(i)
		n += l.ShardLen(i)
	}
	if w != l.Weight() || n != l.Len() || w > 500 {
		t.Fatalf("shards sum %d/%d, totals %d/%d, limit 500", w, n, l.Weight(), l.Len())
	}
}
