// Package storagetest is the conformance suite every cache.Storage passes: lookups, streaming
// writes and readers following them, aborts, meta updates, purges by key and by tag, and the
// byte bound.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pingora-go/pingora/cache"
	"github.com/pingora-go/pingora/header"
)

// Open returns a new, empty storage bounded to maxBytes whose readers wait at most fillTimeout
// for a writer.
type Open func(t *testing.T, maxBytes int64, fillTimeout time.Duration) cache.Storage

// Run runs the suite.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, Open)
	}{
		{"MissAndHit", testMissAndHit},
		{"Ranges", testRanges},
		{"FollowWriter", testFollowWriter},
		{"AbortKeepsOld", testAbortKeepsOld},
		{"FillTimeout", testFillTimeout},
		{"Cancel", testCancel},
		{"UpdateMeta", testUpdateMeta},
		{"PurgeVariants", testPurgeVariants},
		{"PurgeDuringFill", testPurgeDuringFill},
		{"PurgeTag", testPurgeTag},
		{"Eviction", testEviction},
		{"Concurrent", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

// Key returns a test key.
func Key(name string) cache.Key {
	return cache.PrimaryKey("http", []byte("test"), []byte("/"+name))
}

// Meta returns a test meta with a Surrogate-Key of tags.
func Meta(tags ...string) *cache.Meta {
	m := &cache.Meta{BodySize: -1, StaleWhileRevalidate: -1, StaleIfError: -1, Lifetime: time.Minute,
		Created: time.Now(), RequestTime: time.Now(), ResponseTime: time.Now(), Tags: tags}
	m.Header.Status = 200
	m.Header.Version = header.HTTP11
	m.Header.Append("Content-Type", "text/plain")
	if len(tags) > 0 {
		m.Header.Append("Surrogate-Key", strings.Join(tags, " "))
	}
	return m
}

// Put stores body under key in one go.
func Put(t testing.TB, s cache.Storage, key cache.Key, m *cache.Meta, body []byte) {
	t.Helper()
	if err := put(s, key, m, body); err != nil {
		t.Fatal(err)
	}
}

func put(s cache.Storage, key cache.Key, m *cache.Meta, body []byte) error {
	ctx := context.Background()
	w, err := s.Create(ctx, key, m)
	if err != nil {
		return err
	}
	for len(body) > 0 {
		n := min(len(body), 1000)
		if err := w.Write(ctx, body[:n]); err != nil {
			return err
		}
		body = body[n:]
	}
	_, err = w.Finish(ctx)
	return err
}

// Get returns the meta and whole body under key, or nil meta.
func Get(t testing.TB, s cache.Storage, key cache.Key) (*cache.Meta, []byte, error) {
	t.Helper()
	ctx := context.Background()
	m, r, err := s.Lookup(ctx, key)
	if err != nil || m == nil {
		return m, nil, err
	}
	defer r.Close()
	b, err := ReadAll(ctx, r)
	return m, b, err
}

// ReadAll reads r to its end.
func ReadAll(ctx context.Context, r cache.BodyReader) ([]byte, error) {
	var out bytes.Buffer
	buf := make([]byte, 777)
	for {
		n, err := r.Read(ctx, buf)
		out.Write(buf[:n])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}

// Body returns a deterministic body of n bytes for seed.
func Body(seed string, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed[i%len(seed)] + byte(i/len(seed)%7)
	}
	return b
}

func testMissAndHit(t *testing.T, open Open) {
	s := open(t, 1<<20, time.Second)
	if m, _, err := Get(t, s, Key("a")); m != nil || err != nil {
		t.Fatalf("empty storage: %v %v", m, err)
	}
	body := Body("abc", 5000)
	Put(t, s, Key("a"), Meta(), body)
	m, got, err := Get(t, s, Key("a"))
	if err != nil || m == nil || !bytes.Equal(got, body) {
		t.Fatalf("hit: %v %v %d bytes", m, err, len(got))
	}
	if m.BodySize != int64(len(body)) || m.Header.Value("Content-Type") != "text/plain" {
		t.Fatalf("meta: size %d, header %s", m.BodySize, m.Header.String())
	}
	Put(t, s, Key("empty"), Meta(), nil)
	if m, got, err := Get(t, s, Key("empty")); m == nil || len(got) != 0 || err != nil || m.BodySize != 0 {
		t.Fatalf("empty body: %v %q %v", m, got, err)
	}
	if u := s.Usage(); u.Items != 2 || u.Bytes < int64(len(body)) {
		t.Fatalf("usage %+v", u)
	}
}

func testRanges(t *testing.T, open Open) {
	s := open(t, 1<<20, time.Second)
	body := Body("xyz", 3000)
	Put(t, s, Key("r"), Meta(), body)
	ctx := context.Background()
	_, r, err := s.Lookup(ctx, Key("r"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Size() != 3000 {
		t.Fatalf("Size %d", r.Size())
	}
	for _, rg := range [][2]int64{{0, 0}, {10, 2000}, {2999, 2999}, {5, 9}} {
		if err := r.SetRange(rg[0], rg[1]); err != nil {
			t.Fatal(err)
		}
		got, err := ReadAll(ctx, r)
		if err != nil || !bytes.Equal(got, body[rg[0]:rg[1]+1]) {
			t.Fatalf("range %v: %v, %d bytes", rg, err, len(got))
		}
	}
	if err := r.SetRange(10, 3000); !errors.Is(err, cache.ErrRange) {
		t.Fatalf("range past the end: %v", err)
	}
}

func testFollowWriter(t *testing.T, open Open) {
	s := open(t, 1<<20, 5*time.Second)
	ctx := context.Background()
	w, err := s.Create(ctx, Key("f"), Meta())
	if err != nil {
		t.Fatal(err)
	}
	m, r, err := s.Lookup(ctx, Key("f"))
	if err != nil || m == nil {
		t.Fatalf("an entry being written must be visible: %v", err)
	}
	if r.Size() != -1 || m.BodySize != -1 {
		t.Fatalf("size of an entry being written: %d %d", r.Size(), m.BodySize)
	}
	body := Body("follow", 20000)
	errc := make(chan error, 1)
	go func() {
		for i := 0; i < len(body); i += 2000 {
			if err := w.Write(ctx, body[i:i+2000]); err != nil {
				errc <- err
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		_, err := w.Finish(ctx)
		errc <- err
	}()
	got, err := ReadAll(ctx, r)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("follower: %v, %d bytes", err, len(got))
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if r.Size() != int64(len(body)) {
		t.Fatalf("size after finish %d", r.Size())
	}
	r.Close()
	if m, got, _ := Get(t, s, Key("f")); m == nil || m.BodySize != int64(len(body)) || !bytes.Equal(got, body) {
		t.Fatal("finished entry")
	}
}

func testAbortKeepsOld(t *testing.T, open Open) {
	s := open(t, 1<<20, 5*time.Second)
	ctx := context.Background()
	old := Body("old", 100)
	Put(t, s, Key("k"), Meta(), old)
	w, err := s.Create(ctx, Key("k"), Meta())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, []byte("partial")); err != nil {
		t.Fatal(err)
	}
	_, r, err := s.Lookup(ctx, Key("k"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := ReadAll(ctx, r)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	w.Abort()
	if err := <-done; !errors.Is(err, cache.ErrAborted) {
		t.Fatalf("follower of an aborted write: %v", err)
	}
	r.Close()
	if _, got, _ := Get(t, s, Key("k")); !bytes.Equal(got, old) {
		t.Fatalf("after an aborted replacement: %q", got)
	}
	w.Abort() // twice is harmless
	if _, err := w.Finish(ctx); err == nil {
		t.Fatal("finish after abort")
	}
}

func testFillTimeout(t *testing.T, open Open) {
	s := open(t, 1<<20, 50*time.Millisecond)
	ctx := context.Background()
	w, _ := s.Create(ctx, Key("slow"), Meta())
	defer w.Abort()
	_, r, _ := s.Lookup(ctx, Key("slow"))
	defer r.Close()
	start := time.Now()
	_, err := r.Read(ctx, make([]byte, 10))
	if !errors.Is(err, cache.ErrFillTimeout) || time.Since(start) > 2*time.Second {
		t.Fatalf("stalled writer: %v after %v", err, time.Since(start))
	}
}

func testCancel(t *testing.T, open Open) {
	s := open(t, 1<<20, time.Minute)
	w, _ := s.Create(context.Background(), Key("c"), Meta())
	defer w.Abort()
	_, r, _ := s.Lookup(context.Background(), Key("c"))
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := r.Read(ctx, make([]byte, 10)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("canceled read: %v", err)
	}
}

func testUpdateMeta(t *testing.T, open Open) {
	s := open(t, 1<<20, time.Second)
	ctx := context.Background()
	body := Body("u", 4000)
	Put(t, s, Key("u"), Meta("t1"), body)
	m := Meta("t2")
	m.Header.Append("X-Updated", "yes")
	ok, err := s.UpdateMeta(ctx, Key("u"), m)
	if !ok || err != nil {
		t.Fatalf("update: %v %v", ok, err)
	}
	got, b, _ := Get(t, s, Key("u"))
	if got.Header.Value("X-Updated") != "yes" || got.BodySize != int64(len(body)) || !bytes.Equal(b, body) {
		t.Fatalf("updated entry: %s %d", got.Header.String(), len(b))
	}
	if n, _ := s.PurgeTag(ctx, "t1"); n != 0 {
		t.Fatal("old tag still indexed")
	}
	if n, _ := s.PurgeTag(ctx, "t2"); n != 1 {
		t.Fatal("new tag not indexed")
	}
	if ok, _ := s.UpdateMeta(ctx, Key("missing"), Meta()); ok {
		t.Fatal("update of a missing entry")
	}
}

func testPurgeVariants(t *testing.T, open Open) {
	s := open(t, 1<<20, time.Second)
	ctx := context.Background()
	p := Key("v")
	v1, v2 := p, p
	v1.Variance[0], v2.Variance[0] = 1, 2
	Put(t, s, p, Meta(), []byte("index"))
	Put(t, s, v1, Meta(), []byte("one"))
	Put(t, s, v2, Meta(), []byte("two"))
	Put(t, s, Key("other"), Meta(), []byte("x"))
	if ok, _ := s.Purge(ctx, v1); !ok {
		t.Fatal("purge of one variant")
	}
	if m, _, _ := Get(t, s, v1); m != nil {
		t.Fatal("variant still there")
	}
	if m, _, _ := Get(t, s, v2); m == nil {
		t.Fatal("purging one variant removed another")
	}
	if ok, _ := s.Purge(ctx, p); !ok {
		t.Fatal("purge of the primary key")
	}
	for _, k := range []cache.Key{p, v2} {
		if m, _, _ := Get(t, s, k); m != nil {
			t.Fatal("purge of the primary key must remove every variant")
		}
	}
	if m, _, _ := Get(t, s, Key("other")); m == nil {
		t.Fatal("unrelated entry purged")
	}
	if ok, _ := s.Purge(ctx, p); ok {
		t.Fatal("second purge found something")
	}
}

func testPurgeDuringFill(t *testing.T, open Open) {
	s := open(t, 1<<20, time.Second)
	ctx := context.Background()
	w, _ := s.Create(ctx, Key("p"), Meta())
	_ = w.Write(ctx, []byte("abc"))
	if ok, _ := s.Purge(ctx, Key("p")); !ok {
		t.Fatal("purge of an entry being written")
	}
	if _, err := w.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if m, _, _ := Get(t, s, Key("p")); m != nil {
		t.Fatal("an entry purged while being written was installed")
	}
}

func testPurgeTag(t *testing.T, open Open) {
	s := open(t, 1<<20, time.Second)
	ctx := context.Background()
	Put(t, s, Key("a"), Meta("red", "big"), []byte("a"))
	Put(t, s, Key("b"), Meta("red"), []byte("b"))
	Put(t, s, Key("c"), Meta("blue"), []byte("c"))
	if n, err := s.PurgeTag(ctx, "red"); n != 2 || err != nil {
		t.Fatalf("purge tag: %d %v", n, err)
	}
	for k, want := range map[string]bool{"a": false, "b": false, "c": true} {
		if m, _, _ := Get(t, s, Key(k)); (m != nil) != want {
			t.Fatalf("%s present=%v", k, m != nil)
		}
	}
	if n, _ := s.PurgeTag(ctx, "big"); n != 0 {
		t.Fatal("tag of a purged entry still indexed")
	}
}

func testEviction(t *testing.T, open Open) {
	const limit = 64 << 10
	s := open(t, limit, time.Second)
	for i := 0; i < 40; i++ {
		Put(t, s, Key(fmt.Sprint("e", i)), Meta(), Body("e", 4000))
	}
	u := s.Usage()
	if u.Bytes > limit || u.EvictedItems == 0 || u.EvictedBytes == 0 || u.Items >= 40 {
		t.Fatalf("usage %+v", u)
	}
	present := 0
	for i := 0; i < 40; i++ {
		if m, _, _ := Get(t, s, Key(fmt.Sprint("e", i))); m != nil {
			present++
		}
	}
	if int64(present) != u.Items {
		t.Fatalf("%d entries readable, %d accounted", present, u.Items)
	}
	if m, _, _ := Get(t, s, Key("e39")); m == nil {
		t.Fatal("the newest entry was evicted")
	}
	Put(t, s, Key("huge"), Meta(), Body("h", limit*2))
	if m, _, _ := Get(t, s, Key("huge")); m != nil {
		t.Fatal("an entry over the whole limit stayed")
	}
	if u := s.Usage(); u.Bytes > limit {
		t.Fatalf("over the limit: %+v", u)
	}
}

func testConcurrent(t *testing.T, open Open) {
	s := open(t, 256<<10, 5*time.Second)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				k := Key(fmt.Sprint("c", (g+i)%10))
				want := Body(fmt.Sprint("c", (g+i)%10), 3000)
				switch i % 3 {
				case 0:
					if err := put(s, k, Meta(), want); err != nil {
						errs <- err
					}
				case 1:
					m, r, err := s.Lookup(ctx, k)
					if err != nil {
						errs <- err
						continue
					}
					if m == nil {
						continue
					}
					got, err := ReadAll(ctx, r)
					r.Close()
					if err != nil || !bytes.Equal(got, want) {
						errs <- fmt.Errorf("read %v: %v, %d bytes", k, err, len(got))
					}
				case 2:
					if _, err := s.Purge(ctx, k); err != nil {
						errs <- err
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
