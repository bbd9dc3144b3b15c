// Package disk is a cache.Storage keeping one file per entry in a directory, bounded in total
// bytes.
//
// An entry is written to a temporary file, synced, and renamed into place only when complete,
// so a crash at any point leaves either the old entry, the new one, or nothing — never a torn
// file under an entry's name. The file holds the body, then the encoded Meta, then a trailer
// with both lengths, a checksum of the meta and a magic number; on start the index is rebuilt
// by scanning the directory, and any file that does not check out is deleted along with the
// temporary files a crash left. Readers of an entry being written follow the writer through
// the temporary file.
package disk

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pingora-go/pingora/cache"
	"github.com/pingora-go/pingora/cache/eviction"
	"github.com/pingora-go/pingora/cache/internal/fill"
	"github.com/pingora-go/pingora/cache/internal/index"
	"github.com/pingora-go/pingora/perr"
)

const (
	trailerLen = 24
	magic      = "PGCACHE1"
	// maxMetaLen bounds the encoded meta read back from a file.
	maxMetaLen = 4 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Config configures a Storage.
type Config struct {
	// Dir is the directory of the cache; it is created if missing. Two storages must not share
	// it.
	Dir string
	// MaxBytes bounds the total size of the files; required.
	MaxBytes int64
	// Shards is the number of LRU shards; 0 means 16.
	Shards int
	// FillTimeout is how long a reader following a write in progress waits for progress; 0
	// means 30 seconds.
	FillTimeout time.Duration
}

// Storage is the disk storage. Create it with Open.
type Storage struct {
	objects     string
	tmp         string
	fillTimeout time.Duration

	mu      sync.Mutex // guards the fields below, and the files under objects
	idx     *index.Index[*entry]
	filling map[cache.Key]*pending
}

// entry is a finished file.
type entry struct {
	meta    *cache.Meta
	bodyLen int64
	path    string
}

// pending is an entry being written to its temporary file.
type pending struct {
	meta *cache.Meta
	tmp  string
	prog *fill.Progress
}

// Open opens (or creates) the storage in c.Dir and rebuilds its index from the files there.
func Open(c Config) (*Storage, error) {
	shards := c.Shards
	if shards <= 0 {
		shards = 16
	}
	ft := c.FillTimeout
	if ft <= 0 {
		ft = 30 * time.Second
	}
	s := &Storage{
		objects:     filepath.Join(c.Dir, "objects"),
		tmp:         filepath.Join(c.Dir, "tmp"),
		fillTimeout: ft,
		idx:         index.New[*entry](eviction.New(c.MaxBytes, shards)),
		filling:     make(map[cache.Key]*pending),
	}
	for _, d := range []string{s.objects, s.tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, perr.Because(perr.FileCreateError, "cache directory", err).AsIn()
		}
	}
	// Whatever is in tmp was being written when the last process stopped.
	olds, err := os.ReadDir(s.tmp)
	if err != nil {
		return nil, perr.Because(perr.FileReadError, "cache directory", err).AsIn()
	}
	for _, o := range olds {
		_ = os.RemoveAll(filepath.Join(s.tmp, o.Name()))
	}
	if err := s.scan(); err != nil {
		return nil, err
	}
	return s, nil
}

// scan indexes every valid file under objects and deletes the others.
func (s *Storage) scan() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return filepath.WalkDir(s.objects, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return perr.Because(perr.FileReadError, "cache directory", err).AsIn()
		}
		if d.IsDir() {
			return nil
		}
		key, ok := parseName(d.Name())
		if !ok || s.objectPath(key) != path {
			_ = os.Remove(path)
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return nil
		}
		meta, bodyLen, size, err := readFooter(f)
		f.Close()
		if err != nil {
			_ = os.Remove(path)
			return nil
		}
		e := &entry{meta: meta, bodyLen: bodyLen, path: path}
		s.dispose(s.idx.Put(key, e, meta.Tags, size, nil), e)
		return nil
	})
}

// readFooter reads and checks the trailer and meta of an entry file, returning the meta, the
// body length and the file size.
func readFooter(f *os.File) (*cache.Meta, int64, int64, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, 0, 0, err
	}
	size := st.Size()
	if size < trailerLen {
		return nil, 0, 0, errCorrupt
	}
	var tr [trailerLen]byte
	if _, err := f.ReadAt(tr[:], size-trailerLen); err != nil {
		return nil, 0, 0, err
	}
	if string(tr[16:]) != magic {
		return nil, 0, 0, errCorrupt
	}
	bodyLen := int64(binary.LittleEndian.Uint64(tr[0:8]))
	metaLen := int64(binary.LittleEndian.Uint32(tr[8:12]))
	sum := binary.LittleEndian.Uint32(tr[12:16])
	if metaLen > maxMetaLen || bodyLen < 0 || bodyLen+metaLen+trailerLen != size {
		return nil, 0, 0, errCorrupt
	}
	buf := make([]byte, metaLen)
	if _, err := f.ReadAt(buf, bodyLen); err != nil {
		return nil, 0, 0, err
	}
	if crc32.Checksum(buf, castagnoli) != sum {
		return nil, 0, 0, errCorrupt
	}
	m := new(cache.Meta)
	if err := m.UnmarshalBinary(buf); err != nil || m.BodySize != bodyLen {
		return nil, 0, 0, errCorrupt
	}
	return m, bodyLen, size, nil
}

var errCorrupt = errors.New("cache/disk: corrupt entry file")

// objectPath is where the file of key lives: objects/<first byte>/<key>.
func (s *Storage) objectPath(k cache.Key) string {
	name := k.String()
	return filepath.Join(s.objects, name[:2], name)
}

func parseName(name string) (cache.Key, bool) {
	var k cache.Key
	p, v, hasV := strings.Cut(name, "-")
	var ok bool
	if k.Primary, ok = cache.ParseHash(p); !ok {
		return k, false
	}
	if hasV {
		if k.Variance, ok = cache.ParseHash(v); !ok || k.Variance.IsZero() {
			return k, false
		}
	}
	return k, true
}

// dispose deletes the files of removed entries, except a file that keep (the entry just put)
// has taken over by being renamed onto the same path. Called with mu held.
func (s *Storage) dispose(removed []index.Removed[*entry], keep *entry) {
	for _, r := range removed {
		if r.Value != keep && keep != nil && r.Value.path == keep.path {
			continue
		}
		_ = os.Remove(r.Value.path)
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
	for attempt := 0; attempt < 3; attempt++ {
		s.mu.Lock()
		if p, ok := s.filling[key]; ok {
			// Opened under the lock: the writer renames the file under it too.
			f, err := os.Open(p.tmp)
			s.mu.Unlock()
			if err != nil {
				return nil, nil, perr.Because(perr.FileOpenError, "cache entry", err).AsIn()
			}
			return p.meta, &reader{s: s, f: f, prog: p.prog, size: -1, Cursor: fill.Cursor{End: -1}}, nil
		}
		e, ok := s.idx.Get(key)
		s.mu.Unlock()
		if !ok {
			return nil, nil, nil
		}
		f, err := os.Open(e.path)
		if errors.Is(err, fs.ErrNotExist) {
			// Evicted or replaced in the meantime: look again.
			continue
		}
		if err != nil {
			return nil, nil, perr.Because(perr.FileOpenError, "cache entry", err).AsIn()
		}
		return e.meta, &reader{s: s, f: f, size: e.bodyLen, Cursor: fill.Cursor{End: -1}}, nil
	}
	return nil, nil, nil
}

// Create starts writing an entry into a temporary file; it is visible to Lookup at once.
func (s *Storage) Create(_ context.Context, key cache.Key, meta *cache.Meta) (cache.BodyWriter, error) {
	f, err := os.CreateTemp(s.tmp, "w-*")
	if err != nil {
		return nil, perr.Because(perr.FileCreateError, "cache entry", err).AsIn()
	}
	p := &pending{meta: meta, tmp: f.Name(), prog: fill.New()}
	s.mu.Lock()
	s.filling[key] = p
	s.mu.Unlock()
	return &writer{s: s, key: key, p: p, f: f}, nil
}

// footer returns the encoded meta followed by the trailer.
func footer(m *cache.Meta, bodyLen int64) ([]byte, error) {
	b, err := m.MarshalBinary()
	if err != nil {
		return nil, err
	}
	metaLen := len(b)
	if metaLen > maxMetaLen {
		return nil, errCorrupt
	}
	sum := crc32.Checksum(b, castagnoli)
	b = binary.LittleEndian.AppendUint64(b, uint64(bodyLen))
	b = binary.LittleEndian.AppendUint32(b, uint32(metaLen))
	b = binary.LittleEndian.AppendUint32(b, sum)
	return append(b, magic...), nil
}

// install renames a synced temporary file to key's path if check still holds, indexes it and
// reports whether it did; otherwise the temporary file is removed.
func (s *Storage) install(key cache.Key, tmp string, e *entry, size int64, check func() bool) (bool, error) {
	dir := filepath.Dir(e.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		_ = os.Remove(tmp)
		return false, perr.Because(perr.FileCreateError, "cache directory", err).AsIn()
	}
	s.mu.Lock()
	if !check() {
		s.mu.Unlock()
		_ = os.Remove(tmp)
		return false, nil
	}
	if err := os.Rename(tmp, e.path); err != nil {
		s.mu.Unlock()
		_ = os.Remove(tmp)
		return false, perr.Because(perr.FileWriteError, "cache entry", err).AsIn()
	}
	if size >= 0 {
		s.dispose(s.idx.Put(key, e, e.meta.Tags, size, nil), e)
	} else {
		s.idx.Update(key, e, e.meta.Tags)
	}
	s.mu.Unlock()
	syncDir(dir)
	return true, nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// UpdateMeta rewrites the file of a finished entry with a new meta: the body is copied to a new
// temporary file (in the kernel where possible) which then replaces the old one.
func (s *Storage) UpdateMeta(_ context.Context, key cache.Key, meta *cache.Meta) (bool, error) {
	s.mu.Lock()
	old, ok := s.idx.Peek(key)
	s.mu.Unlock()
	if !ok {
		return false, nil
	}
	src, err := os.Open(old.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, perr.Because(perr.FileOpenError, "cache entry", err).AsIn()
	}
	defer src.Close()
	f, err := os.CreateTemp(s.tmp, "m-*")
	if err != nil {
		return false, perr.Because(perr.FileCreateError, "cache entry", err).AsIn()
	}
	m := *meta
	m.BodySize = old.bodyLen
	e := &entry{meta: &m, bodyLen: old.bodyLen, path: old.path}
	if err := writeMetaCopy(f, src, &m, old.bodyLen); err != nil {
		f.Close()
		_ = os.Remove(f.Name())
		return false, perr.Because(perr.FileWriteError, "cache entry", err).AsIn()
	}
	return s.install(key, f.Name(), e, -1, func() bool {
		cur, ok := s.idx.Peek(key)
		return ok && cur == old
	})
}

func writeMetaCopy(f, src *os.File, m *cache.Meta, bodyLen int64) error {
	if _, err := f.ReadFrom(io.LimitReader(src, bodyLen)); err != nil {
		return err
	}
	ft, err := footer(m, bodyLen)
	if err != nil {
		return err
	}
	if _, err := f.Write(ft); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// Purge removes the entry under key (every variant for a key without variance) and stops a
// write in progress from being installed.
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
	removed := s.idx.Delete(key, nil)
	s.dispose(removed, nil)
	return n+len(removed) > 0, nil
}

// PurgeTag removes every entry tagged tag and stops writes in progress so tagged.
func (s *Storage) PurgeTag(_ context.Context, tag string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, p := range s.filling {
		for _, t := range p.meta.Tags {
			if t == tag {
				delete(s.filling, k)
				n++
				break
			}
		}
	}
	removed := s.idx.DeleteTag(tag, nil)
	s.dispose(removed, nil)
	return n + len(removed), nil
}

// writer streams a body into its temporary file.
type writer struct {
	s    *Storage
	key  cache.Key
	p    *pending
	f    *os.File
	n    int64
	done bool
}

func (w *writer) Write(_ context.Context, b []byte) error {
	if w.done {
		return cache.ErrClosed
	}
	if len(b) == 0 {
		return nil
	}
	if _, err := w.f.Write(b); err != nil {
		w.Abort()
		return perr.Because(perr.FileWriteError, "cache entry", err).AsIn()
	}
	w.n += int64(len(b))
	w.p.prog.Advance(w.n)
	return nil
}

func (w *writer) Finish(_ context.Context) (int64, error) {
	if w.done {
		return 0, cache.ErrClosed
	}
	m := *w.p.meta
	m.BodySize = w.n
	ft, err := footer(&m, w.n)
	if err == nil {
		_, err = w.f.Write(ft)
	}
	if err == nil {
		err = w.f.Sync()
	}
	if err == nil {
		err = w.f.Close()
	}
	if err != nil {
		w.Abort()
		return 0, perr.Because(perr.FileWriteError, "cache entry", err).AsIn()
	}
	w.done = true
	size := w.n + int64(len(ft))
	e := &entry{meta: &m, bodyLen: w.n, path: w.s.objectPath(w.key)}
	s := w.s
	_, err = s.install(w.key, w.p.tmp, e, size, func() bool {
		// A purge or a newer write since Create means this entry is not to be kept.
		if s.filling[w.key] != w.p {
			return false
		}
		delete(s.filling, w.key)
		return true
	})
	// Readers following the write have the temporary file open and read the whole body.
	w.p.prog.Finish(w.n)
	if err != nil {
		return 0, err
	}
	return size, nil
}

func (w *writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	s := w.s
	s.mu.Lock()
	if s.filling[w.key] == w.p {
		delete(s.filling, w.key)
	}
	_ = os.Remove(w.p.tmp)
	s.mu.Unlock()
	w.p.prog.Abort(cache.ErrAborted)
}

// reader reads an entry's body from its file, following the writer when there is one.
type reader struct {
	s    *Storage
	f    *os.File
	prog *fill.Progress // nil for a finished entry
	size int64          // body length, -1 while unknown
	fill.Cursor
}

func (r *reader) Read(ctx context.Context, p []byte) (int, error) {
	if r.f == nil {
		return 0, cache.ErrClosed
	}
	avail := r.size
	if avail < 0 {
		written, done, err := r.prog.State()
		if written <= r.Pos && !done && err == nil {
			written, done, err = r.prog.Wait(ctx, r.Pos, r.s.fillTimeout, cache.ErrFillTimeout)
		}
		if done {
			r.size = written
		}
		if written <= r.Pos && !done {
			return 0, err
		}
		avail = written
	}
	avail = r.Limit(avail)
	if r.Pos >= avail {
		return 0, io.EOF
	}
	want := min(int64(len(p)), avail-r.Pos)
	n, err := r.f.ReadAt(p[:want], r.Pos)
	r.Pos += int64(n)
	if err != nil && !(err == io.EOF && int64(n) == want) {
		return n, perr.Because(perr.FileReadError, "cache entry", err).AsIn()
	}
	return n, nil
}

func (r *reader) SetRange(start, end int64) error {
	if !r.Cursor.SetRange(start, end, r.Size()) {
		return cache.ErrRange
	}
	return nil
}

func (r *reader) Size() int64 {
	if r.size < 0 && r.prog != nil {
		if written, done, _ := r.prog.State(); done {
			r.size = written
		}
	}
	return r.size
}

func (r *reader) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
