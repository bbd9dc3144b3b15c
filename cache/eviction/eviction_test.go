package eviction

import (
	"testing"

	"github.com/pingora-go/pingora/cache"
)

func key(i byte) cache.Key {
	var k cache.Key
	k.Primary[0], k.Primary[15] = i, 1
	return k
}

func TestEvictsLeastRecentlyUsedBySize(t *testing.T) {
	m := New(100, 1)
	for i := byte(0); i < 4; i++ {
		if ev := m.Admit(key(i), 25); len(ev) != 0 {
			t.Fatalf("evicted under the limit: %v", ev)
		}
	}
	m.Access(key(0))
	ev := m.Admit(key(9), 30) // 130 bytes: the two least recent go (1, then 2)
	if len(ev) != 2 || ev[0] != key(1) || ev[1] != key(2) {
		t.Fatalf("evicted %v", ev)
	}
	u := m.Usage()
	if u.Bytes != 80 || u.Items != 3 || u.EvictedItems != 2 || u.EvictedBytes != 50 {
		t.Fatalf("usage %+v", u)
	}
	m.Remove(key(0))
	if u := m.Usage(); u.Items != 2 || u.EvictedItems != 2 {
		t.Fatalf("a removal is not an eviction: %+v", u)
	}
	if ev := m.Admit(key(7), 500); len(ev) == 0 || ev[len(ev)-1] != key(7) {
		t.Fatalf("an entry over the limit must evict itself: %v", ev)
	}
}

func TestHashCollision(t *testing.T) {
	m := New(1000, 1)
	a := key(1)
	b := a
	// Same 64 bits (Primary[:8] xor Variance[:8]), different key.
	b.Primary[0] ^= 0xff
	b.Variance[0] ^= 0xff
	if a.Uint64() != b.Uint64() || a == b {
		t.Fatal("test keys must collide")
	}
	m.Admit(a, 10)
	if ev := m.Admit(b, 10); len(ev) != 1 || ev[0] != a {
		t.Fatalf("a colliding key must be reported for removal: %v", ev)
	}
	m.Remove(a) // must not remove b
	if m.Usage().Items != 1 {
		t.Fatal("removing a collided key removed the other")
	}
}
