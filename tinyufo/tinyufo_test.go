package tinyufo

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

type modelEntry struct {
	value, weight int
}

// TestAgainstModel runs random operations and keeps a model of what the cache
// holds from what it reports: every Put's value is in the cache unless
// PutAppend said it left, and every Remove takes it out. The cache must
// agree with the model on every key and never pass its weight limit.
func TestAgainstModel(t *testing.T) {
	tests := []struct {
		name      string
		limit     int
		keys      int
		maxWeight int
		compact   bool
		force     bool
	}{
		{"unit weights", 100, 400, 1, false, false},
		{"weighted", 200, 300, 20, false, false},
		{"tiny limit", 5, 50, 3, false, false},
		{"force", 80, 300, 4, false, true},
		{"compact", 150, 1000, 5, true, false},
		{"heavier than limit", 30, 100, 40, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(tt.limit), uint64(tt.keys)))
			c := New[int, int](tt.limit, 16)
			if tt.compact {
				c = NewCompact[int, int](tt.limit, 16)
			}
			model := map[uint64]modelEntry{}
			byHash := map[uint64]int{}
			var out []Item[int]
			for step := range 30000 {
				k := int(r.ExpFloat64() * float64(tt.keys) / 4)
				h := c.Hash(k)
				byHash[h] = k
				switch op := r.IntN(10); {
				case op < 5:
					got, ok := c.Get(k)
					want, in := model[h]
					if ok != in || ok && got != want.value {
						t.Fatalf("step %d: Get(%d) = %d, %v; model %v, %v", step, k, got, ok, want, in)
					}
				case op < 6:
					// Put (no report) of a cached key at its weight: the update in
					// place without the lock, which can evict nothing.
					m, in := model[h]
					if !in {
						continue
					}
					put := c.Put
					if tt.force {
						put = c.ForcePut
					}
					put(k, step, m.weight)
					model[h] = modelEntry{step, m.weight}
				case op < 9:
					w := 1 + r.IntN(tt.maxWeight)
					put := c.PutAppend
					if tt.force {
						put = c.ForcePutAppend
					}
					out = put(out[:0], k, step, w)
					model[h] = modelEntry{step, w}
					for _, it := range out {
						m, in := model[it.Hash]
						if !in {
							t.Fatalf("step %d: reported %+v, not in the model", step, it)
						}
						if m.value == it.Value {
							delete(model, it.Hash)
						}
					}
				default:
					got, ok := c.Remove(k)
					want, in := model[h]
					if ok != in || ok && got != want.value {
						t.Fatalf("step %d: Remove(%d) = %d, %v; model %v, %v", step, k, got, ok, want, in)
					}
					delete(model, h)
				}
				total := 0
				for _, m := range model {
					total += m.weight
				}
				if c.Weight() != total || c.Len() != len(model) {
					t.Fatalf("step %d: weight/len %d/%d, model %d/%d", step, c.Weight(), c.Len(), total, len(model))
				}
				if total > tt.limit {
					t.Fatalf("step %d: weight %d over limit %d", step, total, tt.limit)
				}
			}
			for h, k := range byHash {
				if _, in := model[h]; c.Contains(k) != in {
					t.Fatalf("Contains(%d) = %v, model %v", k, !in, in)
				}
			}
		})
	}
}

// TestScanResistance checks the S3-FIFO behaviour that matters most: keys in
// use survive a scan of keys seen once.
func TestScanResistance(t *testing.T) {
	tests := []struct {
		name string
		hot  int
		scan int
	}{
		{"short scan", 50, 1000},
		{"long scan", 80, 100000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New[string, int](100, 100)
			for round := range 4 {
				for i := range tt.hot {
					k := fmt.Sprint("hot", i)
					if _, ok := c.Get(k); !ok {
						c.Put(k, round, 1)
					}
				}
			}
			for i := range tt.scan {
				c.Put(fmt.Sprint("scan", i), i, 1)
			}
			for i := range tt.hot {
				if !c.Contains(fmt.Sprint("hot", i)) {
					t.Fatalf("hot key %d evicted by the scan", i)
				}
			}
		})
	}
}

func TestAdmissionRefusesColdNewcomer(t *testing.T) {
	c := New[int, int](10, 10)
	var out []Item[int]
	// Fill with keys put several times, so the sketch knows them.
	for range 3 {
		for k := range 10 {
			c.Put(k, k, 1)
		}
	}
	out = c.PutAppend(out, 1000, 1, 1)
	if len(out) != 1 || out[0].Hash != c.Hash(1000) {
		t.Fatalf("cold newcomer: PutAppend reported %+v, want the newcomer refused", out)
	}
	out = c.ForcePutAppend(out[:0], 1000, 1, 1)
	if !c.Contains(1000) || len(out) != 1 || out[0].Hash == c.Hash(1000) {
		t.Fatalf("ForcePut: contains %v, reported %+v", c.Contains(1000), out)
	}
}

func TestGetAllocs(t *testing.T) {
	tests := []struct {
		name string
		get  func() bool
	}{
		{"string keys", func() func() bool {
			c := New[string, []byte](100, 100)
			c.Put("key", []byte("v"), 1)
			return func() bool { _, ok := c.Get("key"); return ok }
		}()},
		{"int keys", func() func() bool {
			c := New[uint64, int](100, 100)
			c.Put(7, 1, 1)
			return func() bool { _, ok := c.Get(7); return ok }
		}()},
		{"struct keys", func() func() bool {
			type key struct {
				host string
				port int
			}
			c := New[key, string](100, 100)
			c.Put(key{"a", 1}, "v", 1)
			return func() bool { _, ok := c.Get(key{"a", 1}); return ok }
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.get() {
				t.Fatal("miss")
			}
			if a := testing.AllocsPerRun(1000, func() { tt.get() }); a != 0 {
				t.Fatalf("Get allocates %v times", a)
			}
		})
	}
}

func TestTableGrowsPastEstimate(t *testing.T) {
	c := New[int, int](100000, 10)
	for k := range 5000 {
		c.Put(k, k, 1)
	}
	for k := range 5000 {
		if v, ok := c.Get(k); !ok || v != k {
			t.Fatalf("Get(%d) = %d, %v", k, v, ok)
		}
	}
	if c.Len() != 5000 {
		t.Fatalf("Len = %d, want 5000", c.Len())
	}
}

func TestConcurrent(t *testing.T) {
	tests := []struct {
		name    string
		compact bool
	}{{"fast", false}, {"compact", true}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New[int, int](500, 100)
			if tt.compact {
				c = NewCompact[int, int](500, 100)
			}
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					r := rand.New(rand.NewPCG(uint64(g), 2))
					for i := range 20000 {
						k := r.IntN(2000)
						switch i % 8 {
						case 0, 1:
							c.Put(k, k*10, 1+r.IntN(3))
						case 2:
							c.Remove(k)
						default:
							if v, ok := c.Get(k); ok && v != k*10 {
								t.Errorf("Get(%d) = %d", k, v)
								return
							}
						}
					}
				})
			}
			wg.Wait()
			if c.Weight() > 500 {
				t.Fatalf("weight %d over limit", c.Weight())
			}
		})
	}
}

func TestShardsAndMaxWeight(t *testing.T) {
	tests := []struct {
		limit, size  int
		shards, maxW int
	}{
		{100, 10, 1, 100},
		{1 << 20, 20000, 2, 1 << 19},
		{1000, 1 << 20, 16, 62},
		{1003, 1 << 20, 16, 62},
	}
	for _, tt := range tests {
		c := New[int, int](tt.limit, tt.size)
		if len(c.shards) != tt.shards || c.MaxWeight() != tt.maxW {
			t.Errorf("New(%d, %d): %d shards, MaxWeight %d; want %d, %d", tt.limit, tt.size, len(c.shards), c.MaxWeight(), tt.shards, tt.maxW)
		}
		total := 0
		for i := range c.shards {
			total += int(c.shards[i].limit)
		}
		if total != tt.limit {
			t.Errorf("New(%d, %d): shard limits sum to %d", tt.limit, tt.size, total)
		}
		out := c.PutAppend(nil, 1, 1, tt.maxW)
		if !c.Contains(1) || len(out) != 0 {
			t.Errorf("New(%d, %d): entry of MaxWeight refused", tt.limit, tt.size)
		}
		out = c.PutAppend(out[:0], 2, 2, tt.limit+1)
		if c.Contains(2) || len(out) != 1 || out[0].Value != 2 {
			t.Errorf("New(%d, %d): entry over the limit: contains %v, reported %+v", tt.limit, tt.size, c.Contains(2), out)
		}
	}
}
