package tinyufo

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestValueKinds(t *testing.T) {
	type wordStruct struct{ a, b int32 }
	type ptrStruct struct{ p *int }
	cases := []struct {
		name string
		got  valueKind
		want valueKind
	}{
		{"uint64", valueKindOf[uint64](), valueWord},
		{"int", valueKindOf[int](), valueWord},
		{"float64", valueKindOf[float64](), valueWord},
		{"[2]int32", valueKindOf[[2]int32](), valueWord},
		{"struct{a, b int32}", valueKindOf[wordStruct](), valueWord},
		{"*int", valueKindOf[*int](), valuePointer},
		{"map", valueKindOf[map[string]int](), valuePointer},
		{"func", valueKindOf[func()](), valuePointer},
		{"chan", valueKindOf[chan int](), valuePointer},
		{"struct{p *int}", valueKindOf[ptrStruct](), valuePointer},
		{"int32", valueKindOf[int32](), valueBoxed},
		{"string", valueKindOf[string](), valueBoxed},
		{"[]byte", valueKindOf[[]byte](), valueBoxed},
		{"any", valueKindOf[any](), valueBoxed},
		{"[16]byte", valueKindOf[[16]byte](), valueBoxed},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: kind %d, want %d", c.name, c.got, c.want)
		}
	}
}

// TestUpdateInPlace: an update of a one-word value keeps the entry, takes
// the new weight into the totals and reports the value it replaced; a boxed
// value gets a new entry. Both read back the new value.
func TestUpdateInPlace(t *testing.T) {
	c := New[string, uint64](100, 100)
	c.Put("k", 1, 3)
	h := c.Hash("k")
	_, before := c.shard(h).table.Load().find(h)
	out := c.PutAppend(nil, "k", 2, 5)
	_, after := c.shard(h).table.Load().find(h)
	if before != after {
		t.Fatal("an update of a uint64 value replaced the entry")
	}
	if v, ok := c.Get("k"); !ok || v != 2 {
		t.Fatalf("Get = %d, %v; want 2", v, ok)
	}
	if len(out) != 1 || out[0].Value != 1 || out[0].Weight != 3 {
		t.Fatalf("PutAppend reported %+v, want the replaced value 1 of weight 3", out)
	}
	if c.Weight() != 5 || c.Len() != 1 {
		t.Fatalf("weight %d, len %d; want 5 and 1", c.Weight(), c.Len())
	}

	b := New[string, string](100, 100)
	b.Put("k", "one", 1)
	hb := b.Hash("k")
	_, before2 := b.shard(hb).table.Load().find(hb)
	b.Put("k", "two", 1)
	_, after2 := b.shard(hb).table.Load().find(hb)
	if before2 == after2 {
		t.Fatal("an update of a string value kept the entry")
	}
	if v, _ := b.Get("k"); v != "two" {
		t.Fatalf("Get = %q, want two", v)
	}

	// An update that makes the shard too heavy evicts, possibly the key
	// itself, and reports what left.
	w := New[int, uint64](10, 10)
	for k := range 10 {
		w.Put(k, uint64(k), 1)
	}
	out = w.PutAppend(nil, 3, 33, 5)
	if w.Weight() > 10 {
		t.Fatalf("weight %d over the limit 10", w.Weight())
	}
	if len(out) < 2 {
		t.Fatalf("PutAppend reported %d items, want the replaced value and evictions", len(out))
	}
}

// TestConcurrentInPlace has readers Get keys whose values writers replace
// in place, for word and pointer values: every value read is one that was
// written for that key (run with -race).
func TestConcurrentInPlace(t *testing.T) {
	const keys = 64
	words := New[int, uint64](keys, keys)
	ptrs := New[int, *[2]int](keys, keys)
	for k := range keys {
		words.Put(k, uint64(k)<<32, 1)
		ptrs.Put(k, &[2]int{k, 0}, 1)
	}
	var stop atomic.Bool
	var bad atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				k := n % keys
				if v, ok := words.Get(k); ok && v>>32 != uint64(k) {
					bad.Add(1)
				}
				if p, ok := ptrs.Get(k); ok && (p == nil || p[0] != k) {
					bad.Add(1)
				}
			}
		}()
	}
	// Newcomers force evictions (and PutAppend reports) while updates
	// without the lock go on.
	wg.Add(1)
	go func() {
		defer wg.Done()
		var out []Item[uint64]
		for n := 0; !stop.Load(); n++ {
			k := keys + n%(4*keys)
			out = words.ForcePutAppend(out[:0], k, uint64(k)<<32, 1)
			for _, it := range out {
				if it.Weight != 1 {
					bad.Add(1)
				}
			}
			words.Remove(n % keys)
			ptrs.ForcePut(k, &[2]int{k, 0}, 1)
		}
	}()
	for i := range 20_000 {
		k := i % keys
		words.Put(k, uint64(k)<<32|uint64(i), 1)
		ptrs.Put(k, &[2]int{k, i}, 1)
	}
	stop.Store(true)
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d reads returned a value never written for their key", n)
	}
}
