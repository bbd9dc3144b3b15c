// Package index is the in-memory index the cache storages share: finished entries by key,
// variants by primary key, keys by surrogate tag, and the byte-bounded eviction of them.
package index

import (
	"github.com/pingora-go/pingora/cache"
	"github.com/pingora-go/pingora/cache/eviction"
)

// Removed is an entry the index dropped (evicted, replaced or purged) whose resources the
// storage must release.
type Removed[E any] struct {
	Key   cache.Key
	Value E
}

type item[E any] struct {
	v    E
	tags []string
}

// Index maps keys to entries of type E. It is not safe for concurrent use: the storage guards
// it with its own lock.
type Index[E any] struct {
	entries  map[cache.Key]*item[E]
	variants map[cache.Hash]map[cache.Hash]struct{}
	tags     map[string]map[cache.Key]struct{}
	ev       *eviction.Manager
}

// New returns an empty index evicting through ev.
func New[E any](ev *eviction.Manager) *Index[E] {
	return &Index[E]{
		entries:  make(map[cache.Key]*item[E]),
		variants: make(map[cache.Hash]map[cache.Hash]struct{}),
		tags:     make(map[string]map[cache.Key]struct{}),
		ev:       ev,
	}
}

// Len returns the number of entries.
func (x *Index[E]) Len() int { return len(x.entries) }

// Get returns the entry under k and marks it used.
func (x *Index[E]) Get(k cache.Key) (E, bool) {
	it, ok := x.entries[k]
	if !ok {
		var zero E
		return zero, false
	}
	x.ev.Access(k)
	return it.v, true
}

// Peek returns the entry under k without marking it used.
func (x *Index[E]) Peek(k cache.Key) (E, bool) {
	it, ok := x.entries[k]
	if !ok {
		var zero E
		return zero, false
	}
	return it.v, true
}

// Put stores v under k with its tags and size, and returns what it displaced: the previous
// entry under k and the entries evicted to make room (possibly v itself, when it alone is over
// the limit).
func (x *Index[E]) Put(k cache.Key, v E, tags []string, size int64, out []Removed[E]) []Removed[E] {
	if old, ok := x.remove(k); ok {
		out = append(out, Removed[E]{k, old})
	}
	x.entries[k] = &item[E]{v: v, tags: tags}
	vs := x.variants[k.Primary]
	if vs == nil {
		vs = make(map[cache.Hash]struct{}, 1)
		x.variants[k.Primary] = vs
	}
	vs[k.Variance] = struct{}{}
	for _, t := range tags {
		ks := x.tags[t]
		if ks == nil {
			ks = make(map[cache.Key]struct{}, 1)
			x.tags[t] = ks
		}
		ks[k] = struct{}{}
	}
	for _, ek := range x.ev.Admit(k, size) {
		if old, ok := x.remove(ek); ok {
			out = append(out, Removed[E]{ek, old})
		}
	}
	return out
}

// Update replaces the value and tags under k, keeping its place and size accounting. It
// returns the previous value and false when k is absent.
func (x *Index[E]) Update(k cache.Key, v E, tags []string) (E, bool) {
	it, ok := x.entries[k]
	if !ok {
		var zero E
		return zero, false
	}
	old := it.v
	x.untag(k, it.tags)
	it.v, it.tags = v, tags
	for _, t := range tags {
		ks := x.tags[t]
		if ks == nil {
			ks = make(map[cache.Key]struct{}, 1)
			x.tags[t] = ks
		}
		ks[k] = struct{}{}
	}
	return old, true
}

// Delete removes the entry under k, and with a zero variance every variant of k.Primary, and
// appends what it removed to out.
func (x *Index[E]) Delete(k cache.Key, out []Removed[E]) []Removed[E] {
	if !k.Variance.IsZero() {
		if v, ok := x.remove(k); ok {
			out = append(out, Removed[E]{k, v})
		}
		return out
	}
	for variance := range x.variants[k.Primary] {
		vk := cache.Key{Primary: k.Primary, Variance: variance}
		if v, ok := x.remove(vk); ok {
			out = append(out, Removed[E]{vk, v})
		}
	}
	return out
}

// DeleteTag removes every entry tagged t and appends them to out.
func (x *Index[E]) DeleteTag(t string, out []Removed[E]) []Removed[E] {
	for k := range x.tags[t] {
		if v, ok := x.remove(k); ok {
			out = append(out, Removed[E]{k, v})
		}
	}
	return out
}

// remove drops k from every map and from the eviction accounting.
func (x *Index[E]) remove(k cache.Key) (E, bool) {
	it, ok := x.entries[k]
	if !ok {
		var zero E
		return zero, false
	}
	delete(x.entries, k)
	if vs := x.variants[k.Primary]; vs != nil {
		delete(vs, k.Variance)
		if len(vs) == 0 {
			delete(x.variants, k.Primary)
		}
	}
	x.untag(k, it.tags)
	x.ev.Remove(k)
	return it.v, true
}

func (x *Index[E]) untag(k cache.Key, tags []string) {
	for _, t := range tags {
		if ks := x.tags[t]; ks != nil {
			delete(ks, k)
			if len(ks) == 0 {
				delete(x.tags, t)
			}
		}
	}
}

// Usage returns the eviction manager's accounting.
func (x *Index[E]) Usage() cache.Usage { return x.ev.Usage() }
