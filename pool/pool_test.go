package pool

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeConn is an io.Closer that counts its Close calls and whether a
// goroutine holds it.
type fakeConn struct {
	name   string
	closes atomic.Int32
	inUse  atomic.Bool
	dead   atomic.Bool
}

func (c *fakeConn) Close() error {
	c.closes.Add(1)
	return nil
}

func (c *fakeConn) closed() bool { return c.closes.Load() > 0 }

func fakeAlive(c *fakeConn) bool { return !c.dead.Load() }

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func conns(names ...string) map[string]*fakeConn {
	m := make(map[string]*fakeConn, len(names))
	for _, n := range names {
		m[n] = &fakeConn{name: n}
	}
	return m
}

func TestGetOrder(t *testing.T) {
	p := New(Options[*fakeConn]{})
	defer p.Close()
	c := conns("a", "b", "c")
	p.Put(1, c["a"], 0)
	p.Put(2, c["b"], 0)
	p.Put(1, c["c"], 0)

	for _, want := range []string{"c", "a"} {
		got, ok := p.Get(1)
		if !ok || got.name != want {
			t.Fatalf("Get(1) = %v, %v; want %s", got, ok, want)
		}
	}
	if got, ok := p.Get(1); ok {
		t.Fatalf("Get(1) on an empty key = %s, want a miss", got.name)
	}
	if got, ok := p.Get(2); !ok || got.name != "b" {
		t.Fatalf("Get(2) = %v, %v; want b", got, ok)
	}
	st := p.Stats()
	if st.Hits != 3 || st.Misses != 1 || st.Idle != 0 {
		t.Fatalf("Stats = %+v, want 3 hits, 1 miss, 0 idle", st)
	}
	for n, fc := range c {
		if fc.closed() {
			t.Errorf("%s closed, want open", n)
		}
	}
}

func TestEviction(t *testing.T) {
	type put struct {
		key  uint64
		conn string
	}
	tests := []struct {
		name      string
		opts      Options[*fakeConn]
		puts      []put
		gets      []uint64 // taken out (and put back to the same key) after puts
		then      put      // released last
		wantClose string
	}{
		{
			name:      "capacity evicts least recently released",
			opts:      Options[*fakeConn]{Capacity: 3},
			puts:      []put{{1, "a"}, {2, "b"}, {1, "c"}},
			then:      put{3, "d"},
			wantClose: "a",
		},
		{
			name:      "release again refreshes",
			opts:      Options[*fakeConn]{Capacity: 3},
			puts:      []put{{1, "a"}, {2, "b"}, {3, "c"}},
			gets:      []uint64{1},
			then:      put{4, "d"},
			wantClose: "b",
		},
		{
			name:      "per-key cap evicts that key's oldest",
			opts:      Options[*fakeConn]{Capacity: 10, MaxPerKey: 2},
			puts:      []put{{2, "a"}, {1, "b"}, {1, "c"}},
			then:      put{1, "d"},
			wantClose: "b",
		},
		{
			name:      "per-key cap leaves other keys alone",
			opts:      Options[*fakeConn]{Capacity: 10, MaxPerKey: 1},
			puts:      []put{{1, "a"}, {2, "b"}, {3, "c"}},
			then:      put{4, "d"},
			wantClose: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(tt.opts)
			defer p.Close()
			c := conns("a", "b", "c", "d")
			for _, pu := range tt.puts {
				p.Put(pu.key, c[pu.conn], 0)
			}
			for _, k := range tt.gets {
				got, ok := p.Get(k)
				if !ok {
					t.Fatalf("Get(%d) missed", k)
				}
				p.Put(k, got, 0)
			}
			p.Put(tt.then.key, c[tt.then.conn], 0)

			for n, fc := range c {
				if want := n == tt.wantClose; fc.closed() != want {
					t.Errorf("%s closed = %v, want %v", n, fc.closed(), want)
				}
			}
			wantEvictions := uint64(0)
			if tt.wantClose != "" {
				wantEvictions = 1
			}
			if st := p.Stats(); st.Evictions != wantEvictions || st.Idle != len(tt.puts)+1-int(wantEvictions) {
				t.Errorf("Stats = %+v, want %d evictions", st, wantEvictions)
			}
			if tt.wantClose == "" {
				return
			}
			for k := uint64(0); k < 5; k++ {
				for {
					got, ok := p.Get(k)
					if !ok {
						break
					}
					if got.name == tt.wantClose {
						t.Errorf("Get(%d) returned evicted %s", k, got.name)
					}
				}
			}
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	tests := []struct {
		name      string
		timeout   time.Duration
		wait      bool // wait until the timeout has passed before Get
		wantHit   bool
		wantClose bool
	}{
		{name: "zero keeps", timeout: 0, wantHit: true},
		{name: "not yet expired", timeout: time.Hour, wantHit: true},
		{name: "expired", timeout: 10 * time.Millisecond, wait: true, wantClose: true},
		{name: "do not keep", timeout: DoNotKeep, wantClose: true},
		{name: "any negative", timeout: -time.Second, wantClose: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(Options[*fakeConn]{SweepInterval: time.Hour})
			defer p.Close()
			c := &fakeConn{name: "a"}
			putAt := time.Now()
			p.Put(7, c, tt.timeout)
			if tt.wait {
				waitFor(t, "the idle timeout", func() bool { return time.Since(putAt) > tt.timeout })
			}
			got, ok := p.Get(7)
			if ok != tt.wantHit || (ok && got != c) {
				t.Fatalf("Get = %v, %v; want hit %v", got, ok, tt.wantHit)
			}
			if c.closed() != tt.wantClose {
				t.Fatalf("closed = %v, want %v", c.closed(), tt.wantClose)
			}
			wantExpired := uint64(0)
			if tt.wait {
				wantExpired = 1
			}
			if st := p.Stats(); st.Expired != wantExpired {
				t.Fatalf("Stats = %+v, want %d expired", st, wantExpired)
			}
		})
	}
}

func TestSweeper(t *testing.T) {
	p := New(Options[*fakeConn]{SweepInterval: time.Millisecond, Alive: fakeAlive})
	defer p.Close()
	c := conns("expiring", "dying", "kept")
	p.Put(1, c["expiring"], 5*time.Millisecond)
	p.Put(1, c["dying"], 0)
	p.Put(2, c["kept"], 0)
	c["dying"].dead.Store(true)

	waitFor(t, "the sweeper", func() bool {
		return c["expiring"].closed() && c["dying"].closed()
	})
	st := p.Stats()
	if st.Expired != 1 || st.DeadIdle != 1 || st.Idle != 1 {
		t.Fatalf("Stats = %+v, want 1 expired, 1 dead idle, 1 idle", st)
	}
	if c["kept"].closed() {
		t.Fatal("kept closed by the sweeper")
	}
	if got, ok := p.Get(2); !ok || got != c["kept"] {
		t.Fatalf("Get(2) = %v, %v; want kept", got, ok)
	}
}

func TestGetSkipsDead(t *testing.T) {
	p := New(Options[*fakeConn]{Alive: fakeAlive, SweepInterval: time.Hour})
	defer p.Close()
	c := conns("old", "dead")
	p.Put(1, c["old"], 0)
	p.Put(1, c["dead"], 0)
	c["dead"].dead.Store(true)

	got, ok := p.Get(1)
	if !ok || got != c["old"] {
		t.Fatalf("Get = %v, %v; want old", got, ok)
	}
	if !c["dead"].closed() {
		t.Fatal("dead connection not closed")
	}
	if st := p.Stats(); st.DeadOnCheckout != 1 || st.Hits != 1 {
		t.Fatalf("Stats = %+v, want 1 dead on checkout, 1 hit", st)
	}
}

func TestClose(t *testing.T) {
	p := New(Options[*fakeConn]{})
	c := conns("a", "b", "late")
	p.Put(1, c["a"], 0)
	p.Put(2, c["b"], time.Hour)
	if err := p.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if !c["a"].closed() || !c["b"].closed() {
		t.Fatal("Close left idle connections open")
	}
	p.Put(1, c["late"], 0)
	if !c["late"].closed() {
		t.Fatal("Put after Close kept the connection")
	}
	if _, ok := p.Get(1); ok {
		t.Fatal("Get after Close hit")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	for n, fc := range c {
		if got := fc.closes.Load(); got != 1 {
			t.Errorf("%s closed %d times, want 1", n, got)
		}
	}
}

func TestCloseWithoutPut(t *testing.T) {
	p := New(Options[*fakeConn]{})
	if err := p.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	const (
		workers = 8
		rounds  = 2000
		keys    = 4
	)
	p := New(Options[*fakeConn]{Capacity: 16, MaxPerKey: 6, Alive: fakeAlive, SweepInterval: time.Millisecond})
	var (
		mu  sync.Mutex
		all []*fakeConn
		wg  sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			var held []*fakeConn
			for i := range rounds {
				key := uint64((w + i) % keys)
				c, ok := p.Get(key)
				if !ok {
					c = &fakeConn{name: fmt.Sprint(w, "/", i)}
					mu.Lock()
					all = append(all, c)
					mu.Unlock()
				}
				if !c.inUse.CompareAndSwap(false, true) {
					t.Errorf("%s handed out twice", c.name)
				}
				if c.closed() {
					t.Errorf("%s handed out closed", c.name)
				}
				if i%97 == 0 {
					c.dead.Store(true)
				}
				c.inUse.Store(false)
				timeout := time.Duration(0)
				if i%5 == 0 {
					timeout = time.Microsecond
				}
				if i%11 == 0 {
					held = append(held, c)
					continue
				}
				p.Put(key, c, timeout)
			}
			for _, c := range held {
				p.Put(0, c, 0)
			}
		})
	}
	wg.Wait()
	p.Close()
	for _, c := range all {
		if got := c.closes.Load(); got > 1 {
			t.Errorf("%s closed %d times", c.name, got)
		}
	}
	if st := p.Stats(); st.Hits+st.Misses != workers*rounds {
		t.Errorf("Stats = %+v: hits+misses != %d", st, workers*rounds)
	}
}

func BenchmarkPutGet(b *testing.B) {
	p := New(Options[*fakeConn]{SweepInterval: time.Hour})
	defer p.Close()
	c := &fakeConn{}
	b.ReportAllocs()
	for b.Loop() {
		p.Put(1, c, time.Minute)
		if _, ok := p.Get(1); !ok {
			b.Fatal("miss")
		}
	}
}

func BenchmarkPutGetParallel(b *testing.B) {
	p := New(Options[*fakeConn]{SweepInterval: time.Hour})
	defer p.Close()
	var next atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		key := next.Add(1)
		c := &fakeConn{}
		for pb.Next() {
			p.Put(key, c, time.Minute)
			if _, ok := p.Get(key); !ok {
				b.Fatal("miss")
			}
		}
	})
}

func TestPutGetDoNotAllocate(t *testing.T) {
	p := New(Options[*fakeConn]{SweepInterval: time.Hour})
	defer p.Close()
	c := &fakeConn{}
	p.Put(1, c, time.Minute) // warm up: the first entry and map slot
	p.Get(1)
	allocs := testing.AllocsPerRun(100, func() {
		p.Put(1, c, time.Minute)
		p.Get(1)
	})
	if allocs != 0 {
		t.Fatalf("Put+Get allocated %v times per run, want 0", allocs)
	}
}

// Get checks only connections released at least AliveAfter ago.
func TestAliveAfter(t *testing.T) {
	var checks atomic.Int32
	alive := func(c *fakeConn) bool { checks.Add(1); return !c.dead.Load() }
	p := New(Options[*fakeConn]{Alive: alive, SweepInterval: time.Hour, AliveAfter: 50 * time.Millisecond})
	defer p.Close()
	c := conns("fresh", "stale")
	p.Put(1, c["fresh"], 0)
	c["fresh"].dead.Store(true) // dead, but too fresh to be checked
	if got, ok := p.Get(1); !ok || got != c["fresh"] || checks.Load() != 0 {
		t.Fatalf("fresh: Get = %v, %v after %d checks; want it unchecked", got, ok, checks.Load())
	}
	p.Put(1, c["stale"], 0)
	c["stale"].dead.Store(true)
	time.Sleep(60 * time.Millisecond) // the idle time is what is tested
	if got, ok := p.Get(1); ok || checks.Load() != 1 || !c["stale"].closed() {
		t.Fatalf("stale: Get = %v, %v after %d checks; want it checked and closed", got, ok, checks.Load())
	}
}
