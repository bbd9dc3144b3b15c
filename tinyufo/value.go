package tinyufo

import (
	"reflect"
	"sync/atomic"
	"unsafe"
)

// How an update of a cached key replaces its value. Values of one machine
// word are stored in place with an atomic store, which lock-free readers
// load atomically: an update then costs no allocation, keeps the entry (its
// queue position, age and uses) and writes one cache line that readers
// share, where a new entry would write the table slot, the old entry, the
// queue's tail and later cost a pop. Other values are immutable in their
// entry, and an update publishes a new entry.
type valueKind uint8

const (
	valueBoxed   valueKind = iota // replaced by a new entry
	valueWord                     // 8 bytes without pointers: atomic 64-bit load and store
	valuePointer                  // a single pointer: atomic pointer load and store
)

// valueKindOf returns how values of type V are replaced.
func valueKindOf[V any]() valueKind {
	t := reflect.TypeFor[V]()
	if t.Size() != 8 {
		return valueBoxed
	}
	if hasPointers(t) {
		// Eight bytes that hold a pointer hold only that pointer.
		return valuePointer
	}
	return valueWord
}

// hasPointers reports whether values of type t hold pointers the garbage
// collector follows.
func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.UnsafePointer, reflect.Map, reflect.Chan, reflect.Func,
		reflect.Interface, reflect.Slice, reflect.String:
		return true
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}

// load returns e's value as a lock-free reader must read it: atomically,
// when the value may be replaced in place (entry.value is 8-byte aligned:
// it follows two 8-byte fields).
func (e *entry[V]) load(k valueKind) V {
	switch k {
	case valueWord:
		w := (*atomic.Uint64)(unsafe.Pointer(&e.value)).Load()
		return *(*V)(unsafe.Pointer(&w))
	case valuePointer:
		p := atomic.LoadPointer((*unsafe.Pointer)(unsafe.Pointer(&e.value)))
		return *(*V)(unsafe.Pointer(&p))
	}
	return e.value
}

// store replaces e's value in place; k must not be valueBoxed. A value
// equal to the one there (bit for bit, or the same pointer) is not stored
// again: the entry's cache line, which readers on other cores share, then
// stays clean.
func (e *entry[V]) store(k valueKind, v V) {
	switch k {
	case valueWord:
		w := (*atomic.Uint64)(unsafe.Pointer(&e.value))
		if nw := *(*uint64)(unsafe.Pointer(&v)); w.Load() != nw {
			w.Store(nw)
		}
	case valuePointer:
		p := (*unsafe.Pointer)(unsafe.Pointer(&e.value))
		if np := *(*unsafe.Pointer)(unsafe.Pointer(&v)); atomic.LoadPointer(p) != np {
			atomic.StorePointer(p, np)
		}
	default:
		panic("tinyufo: in-place store of a boxed value")
	}
}
