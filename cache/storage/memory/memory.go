// Package memory is an in-memory cache.Storage bounded in bytes: bodies are kept as byte
// slices, an LRU weighted by size (package eviction) removes the least recently used entries
// beyond the limit, and readers of an entry being written follow the writer.
package memory

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pingora-go/pingora/cache"
	"github.com/pingora-go/pingora/cache/eviction"
	"github.com/pingora-go/pingora/cache/internal/fill"
	"github.com/pingora-go/pingora/cache/internal/index"
)

// maxPrealloc bounds the body buffer allocated up front from a Content-Length.
const maxPrealloc = 16 << 20

// Config configures a Storage.
type Config struct {
	// MaxBytes bounds the total size of the stored entries (meta and body); required.
	MaxBytes int64
	// Shards is the number of LRU shards; 0 means 16.
	Shards int
	// FillTimeout is how long a reader following a write in progress waits for the writer to
	// make progress before it gives up with cache.ErrFillTimeout; 0 means 30 seconds.
	FillTimeout time.Duration
}

// Storage is the in-memory storage. Create it with New.
type Storage struct {
	fillTimeout time.Duration

	mu      sync.Mutex // guards the fields below
	idx     *index.Index[*entry]
	filling map[cache.Key]*entry
}

// entry is one stored response. meta is immutable. body grows while the entry is being
// written: the writer appends under mu and publishes the new slice; bytes below a published
// length never change, so readers copy from their snapshot without holding mu.
type entry struct {
	meta     *cache.Meta
	complete atomic.Bool // body is final and prog need not be consulted
	prog     *fill.Progress

	mu   sync.Mutex // guards body while the entry is being written
	body []byte
}

// New returns an empty storage.
func New(c Config) *Storage {
	shards := c.Shards
	if shards <= 0 {
		shards = 16
	}
	ft := c.FillTimeout
	if ft <= 0 {
		ft = 30 * time.Second
	}
	return &Storage{
		fillTimeout: ft,
		idx:         index.New[*entry](eviction.New(c.MaxBytes, shards)),
		filling:     make(map[cache.Key]*entry),
	}
}

// Streaming reports true: readers follow a write in progress.
func (s *Storage) Streaming() bool { return true }

// Usage returns the occupancy of the storage.
func (s *Storage) Usage() cache.Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.idx.Usage()
}

// Lookup returns the entry being written under key if there is one, else the finished one.
func (s *Storage) Lookup(_ context.Context, key cache.Key) (*cache.Meta, cache.BodyReader, error) {
	s.mu.Lock()
	e, ok := s.filling[key]
	if !ok {
		e, ok = s.idx.Get(key)
	}
	s.mu.Unlock()
	if !ok {
		return nil, nil, nil
	}
	r := readerPool.Get().(*reader)
	*r = reader{s: s, e: e, Cursor: fill.Cursor{End: -1}}
	return e.meta, r, nil
}

// readerPool recycles readers: a hit then allocates nothing in the storage.
var readerPool = sync.Pool{New: func() any { return new(reader) }}

// Create starts writing an entry; it is visible to Lookup at once.
func (s *Storage) Create(_ context.Context, key cache.Key, meta *cache.Meta) (cache.BodyWriter, error) {
	e := &entry{meta: meta, prog: fill.New()}
	if n := cache.ContentLength(&meta.Header); n > 0 {
		// A known length sizes the buffer once (up to a bound: the field may lie).
		e.body = make([]byte, 0, min(n, maxPrealloc))
	}
	s.mu.Lock()
	s.filling[key] = e
	s.mu.Unlock()
	return &writer{s: s, key: key, e: e}, nil
}

// UpdateMeta replaces the meta of a finished entry, sharing its body.
func (s *Storage) UpdateMeta(_ context.Context, key cache.Key, meta *cache.Meta) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.idx.Peek(key)
	if !ok {
		return false, nil
	}
	m := *meta
	m.BodySize = old.meta.BodySize
	e := &entry{meta: &m, body: old.body, prog: old.prog}
	e.complete.Store(true)
	s.idx.Update(key, e, m.Tags)
	return true, nil
}

// Purge removes the entry under key (every variant for a key without variance), and stops
// a write in progress from being stored.
func (s *Storage) Purge(_ context.Context, key cache.Key) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k := range s.filling {
		if k == key || (key.Variance.IsZero() && k.Primary == key.Primary) {
			delete(s.filling, k)
			n++
		}
	}
	return n+len(s.idx.Delete(key, nil)) > 0, nil
}

// PurgeTag removes every entry tagged tag, and stops writes in progress so tagged.
func (s *Storage) PurgeTag(_ context.Context, tag string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, e := range s.filling {
		for _, t := range e.meta.Tags {
			if t == tag {
				delete(s.filling, k)
				n++
				break
			}
		}
	}
	return n + len(s.idx.DeleteTag(tag, nil)), nil
}

// writer appends to an entry being written.
type writer struct {
	s    *Storage
	key  cache.Key
	e    *entry
	done bool
}

func (w *writer) Write(_ context.Context, p []byte) error {
	if w.done {
		return cache.ErrClosed
	}
	if len(p) == 0 {
		return nil
	}
	e := w.e
	e.mu.Lock()
	e.body = append(e.body, p...)
	n := len(e.body)
	e.mu.Unlock()
	e.prog.Advance(int64(n))
	return nil
}

func (w *writer) Finish(_ context.Context) (int64, error) {
	if w.done {
		return 0, cache.ErrClosed
	}
	w.done = true
	e := w.e
	e.mu.Lock()
	n := int64(len(e.body))
	e.mu.Unlock()
	m := *e.meta
	m.BodySize = n
	final := &entry{meta: &m, body: e.body[:n:n], prog: e.prog}
	final.complete.Store(true)
	size := n + int64(m.HeaderSize())

	s := w.s
	s.mu.Lock()
	// A purge or a newer write for the key since Create means this entry is not to be kept;
	// its readers still get the whole body.
	if s.filling[w.key] == e {
		delete(s.filling, w.key)
		s.idx.Put(w.key, final, m.Tags, size, nil)
	}
	s.mu.Unlock()
	e.prog.Finish(n)
	return size, nil
}

func (w *writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	s := w.s
	s.mu.Lock()
	if s.filling[w.key] == w.e {
		delete(s.filling, w.key)
	}
	s.mu.Unlock()
	w.e.prog.Abort(cache.ErrAborted)
}

// reader reads an entry's body, waiting for its writer when it is ahead of it.
type reader struct {
	s *Storage
	e *entry
	fill.Cursor
}

// snapshot returns the body written so far and whether it is final.
func (r *reader) snapshot(ctx context.Context) ([]byte, bool, error) {
	e := r.e
	if e.complete.Load() {
		return e.body, true, nil
	}
	for {
		written, done, err := e.prog.State()
		if written <= r.Pos && !done && err == nil {
			written, done, err = e.prog.Wait(ctx, r.Pos, r.s.fillTimeout, cache.ErrFillTimeout)
		}
		e.mu.Lock()
		body := e.body[:written]
		e.mu.Unlock()
		if int64(len(body)) > r.Pos || done {
			return body, done, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
}

func (r *reader) Read(ctx context.Context, p []byte) (int, error) {
	if r.e == nil {
		return 0, cache.ErrClosed
	}
	body, done, err := r.snapshot(ctx)
	if err != nil {
		return 0, err
	}
	limit := r.Limit(int64(len(body)))
	if r.Pos >= limit {
		if done || r.End >= 0 {
			return 0, io.EOF
		}
	}
	n := copy(p, body[r.Pos:limit])
	r.Pos += int64(n)
	return n, nil
}

func (r *reader) SetRange(start, end int64) error {
	if !r.Cursor.SetRange(start, end, r.Size()) {
		return cache.ErrRange
	}
	return nil
}

func (r *reader) Size() int64 {
	if r.e.complete.Load() {
		return int64(len(r.e.body))
	}
	written, done, _ := r.e.prog.State()
	if done {
		return written
	}
	return -1
}

// Close releases the reader for reuse; it must not be used, or closed again, afterwards.
func (r *reader) Close() error {
	if r.e == nil {
		return cache.ErrClosed
	}
	*r = reader{}
	readerPool.Put(r)
	return nil
}
