package lock

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestOneWriterManyReaders(t *testing.T) {
	tab := New[string](time.Minute)
	p, l := tab.Acquire("k")
	if p == nil || l != nil {
		t.Fatal("first acquire must write")
	}
	var wg sync.WaitGroup
	var done atomic.Int32
	for i := 0; i < 50; i++ {
		p2, l2 := tab.Acquire("k")
		if p2 != nil {
			t.Fatal("second writer")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s := l2.Wait(context.Background(), 5*time.Second); s == Done {
				done.Add(1)
			}
		}()
	}
	if p3, _ := tab.Acquire("other"); p3 == nil {
		t.Fatal("another key must be independent")
	} else {
		p3.Release(Done)
	}
	time.Sleep(10 * time.Millisecond)
	p.Release(Done)
	p.Release(GiveUp) // second release does nothing
	wg.Wait()
	if done.Load() != 50 || tab.Len() != 0 {
		t.Fatalf("%d readers saw Done, %d keys held", done.Load(), tab.Len())
	}
	if p4, _ := tab.Acquire("k"); p4 == nil {
		t.Fatal("released key must be free")
	}
}

func TestStatuses(t *testing.T) {
	for _, s := range []Status{GiveUp, TransientError} {
		tab := New[int](time.Minute)
		p, _ := tab.Acquire(1)
		_, l := tab.Acquire(1)
		go p.Release(s)
		if got := l.Wait(context.Background(), time.Second); got != s {
			t.Fatalf("got %v, want %v", got, s)
		}
	}
}

func TestWaitTimeout(t *testing.T) {
	tab := New[int](time.Minute)
	p, _ := tab.Acquire(1)
	defer p.Release(Done)
	_, l := tab.Acquire(1)
	start := time.Now()
	if s := l.Wait(context.Background(), 30*time.Millisecond); s != WaitTimeout {
		t.Fatalf("got %v", s)
	}
	if d := time.Since(start); d < 25*time.Millisecond || d > 2*time.Second {
		t.Fatalf("waited %v", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if s := l.Wait(ctx, time.Second); s != Canceled {
		t.Fatalf("canceled: %v", s)
	}
}

func TestAgeTimeout(t *testing.T) {
	tab := New[int](40 * time.Millisecond)
	p, _ := tab.Acquire(1)
	_, l := tab.Acquire(1)
	if s := l.Wait(context.Background(), time.Second); s != AgeTimeout {
		t.Fatalf("reader of an old writer: %v", s)
	}
	p2, old := tab.Acquire(1)
	if p2 == nil || old != nil {
		t.Fatal("an aged hold must be taken over")
	}
	p.Release(Done) // the old writer's late release must not free the new hold
	if _, l := tab.Acquire(1); l == nil {
		t.Fatal("the new hold was released by the old writer")
	}
	p2.Release(Done)
}
