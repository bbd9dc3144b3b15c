// Package header holds HTTP request and response heads whose fields keep the case and order
// the sender used.
//
// A head parsed by the HTTP/1 codec refers to the bytes of the connection's read buffer: names
// and values are slices into it, so parsing copies nothing. Values set or appended later are
// stored in an arena owned by the head. Either way the bytes are valid until the head is Reset,
// which the codec does when the connection moves on to its next message: a caller that keeps a
// name or value longer must copy it.
//
// HTTP/1 serialization (AppendH1) gives back the bytes a head was parsed from when that head is
// in canonical form: the start line with single spaces, every field line written as
// "Name: value" and ended by CRLF. The spelling and order of the names, repeated fields, the
// values, the method, target, status and reason phrase are always kept exactly. What is
// normalized is only what RFC 9112 lets a recipient drop: optional whitespace around a value
// (written as one space after the colon), empty lines before a request line, and in response
// heads the bare-LF line endings the codec accepts (written as CRLF) and a missing space before
// an empty reason phrase. The reference normalizes the same way. VisitLower gives the HTTP/2 view, with lower-case names.
package header

import (
	"bytes"
	"math/bits"
	"sync"
)

// Field is one header field line: the name as the sender spelled it and the value with
// surrounding whitespace removed.
type Field struct {
	// Name is the field name, spelled as the sender wrote it.
	Name []byte
	// Value is the field value without leading and trailing spaces and tabs.
	Value []byte
}

// Fields is an ordered list of header fields. Names are compared case-insensitively (ASCII),
// repeated names are kept as separate entries in their original order, and the original
// spelling of every name is preserved for HTTP/1 serialization. The zero value is empty and
// ready to use.
type Fields struct {
	list  []Field
	arena []byte // storage for names and values added through the API
}

// Len returns the number of field lines.
func (f *Fields) Len() int { return len(f.list) }

// At returns the i-th field line in order.
func (f *Fields) At(i int) Field { return f.list[i] }

// All returns the field lines in order. The slice is the head's own storage: callers must not
// modify it, and it is invalidated by any change to the fields.
func (f *Fields) All() []Field { return f.list }

// Reset empties the fields, keeping their storage for reuse.
func (f *Fields) Reset() {
	clear(f.list)
	f.list = f.list[:0]
	f.arena = f.arena[:0]
}

// Get returns the value of the first field named name (case-insensitively), and whether there
// was one.
func (f *Fields) Get(name string) ([]byte, bool) {
	for i := range f.list {
		if EqualFold(f.list[i].Name, name) {
			return f.list[i].Value, true
		}
	}
	return nil, false
}

// Value returns the value of the first field named name as a string, or "" when there is none.
// It copies; Get does not.
func (f *Fields) Value(name string) string {
	v, _ := f.Get(name)
	return string(v)
}

// Has reports whether a field named name is present.
func (f *Fields) Has(name string) bool {
	_, ok := f.Get(name)
	return ok
}

// Count returns how many field lines are named name.
func (f *Fields) Count(name string) int {
	n := 0
	for i := range f.list {
		if EqualFold(f.list[i].Name, name) {
			n++
		}
	}
	return n
}

// Values calls fn for the value of every field named name, in order, until fn returns false.
func (f *Fields) Values(name string, fn func(value []byte) bool) {
	for i := range f.list {
		if EqualFold(f.list[i].Name, name) && !fn(f.list[i].Value) {
			return
		}
	}
}

// Append adds a field line at the end, keeping name's spelling. Existing fields of the same
// name stay.
func (f *Fields) Append(name, value string) {
	f.list = append(f.list, Field{Name: f.store(name), Value: f.store(value)})
}

// AppendBytes is Append for byte slices; name and value are copied.
func (f *Fields) AppendBytes(name, value []byte) {
	f.list = append(f.list, Field{Name: f.storeBytes(name), Value: f.storeBytes(value)})
}

// AppendRef adds a field line whose name and value are used as given, without copying: the
// caller keeps them unchanged for as long as the fields are in use. The HTTP/1 parser uses it
// to refer into its read buffer.
func (f *Fields) AppendRef(name, value []byte) {
	f.list = append(f.list, Field{Name: name, Value: value})
}

// Set replaces every field named name with one field line holding value. The new line takes
// the place of the first one it replaces, keeping that line's spelling of the name; when there
// was none it is appended with name spelled as given.
func (f *Fields) Set(name, value string) {
	v := f.store(value)
	idx := -1
	out := f.list[:0]
	for _, fl := range f.list {
		if EqualFold(fl.Name, name) {
			if idx >= 0 {
				continue
			}
			idx = len(out)
			fl.Value = v
		}
		out = append(out, fl)
	}
	clear(f.list[len(out):])
	f.list = out
	if idx < 0 {
		f.list = append(f.list, Field{Name: f.store(name), Value: v})
	}
}

// Remove deletes every field named name and reports how many were removed.
func (f *Fields) Remove(name string) int {
	// Most removals find nothing: look first, and write only from the
	// first match on.
	for i, fl := range f.list {
		if EqualFold(fl.Name, name) {
			out := f.list[:i]
			for _, fl := range f.list[i+1:] {
				if !EqualFold(fl.Name, name) {
					out = append(out, fl)
				}
			}
			n := len(f.list) - len(out)
			clear(f.list[len(out):])
			f.list = out
			return n
		}
	}
	return 0
}

// RemoveMask deletes field i for every bit i set in mask (so only among the first 64 fields)
// and reports how many were removed. The others keep their order. It is RemoveFunc for a
// caller that has decided in a loop of its own, without a call per field.
func (f *Fields) RemoveMask(mask uint64) int {
	if len(f.list) < 64 {
		mask &= 1<<uint(len(f.list)) - 1
	}
	if mask == 0 {
		return 0
	}
	i := bits.TrailingZeros64(mask)
	out := f.list[:i]
	for j := i + 1; j < len(f.list); j++ {
		if j >= 64 || mask&(1<<uint(j)) == 0 {
			out = append(out, f.list[j])
		}
	}
	n := len(f.list) - len(out)
	clear(f.list[len(out):])
	f.list = out
	return n
}

// RemoveFunc deletes every field for which drop returns true and reports how many were removed.
func (f *Fields) RemoveFunc(drop func(Field) bool) int {
	for i, fl := range f.list {
		if drop(fl) {
			out := f.list[:i]
			for _, fl := range f.list[i+1:] {
				if !drop(fl) {
					out = append(out, fl)
				}
			}
			n := len(f.list) - len(out)
			clear(f.list[len(out):])
			f.list = out
			return n
		}
	}
	return 0
}

// CopyFrom makes f an independent copy of src: every name and value is copied into f's own
// storage, so src may be reset afterwards.
func (f *Fields) CopyFrom(src *Fields) {
	f.Reset()
	for _, fl := range src.list {
		f.AppendBytes(fl.Name, fl.Value)
	}
}

// AppendH1 appends the fields in HTTP/1 wire form ("Name: value\r\n" each, names as spelled)
// to dst and returns the extended slice.
func (f *Fields) AppendH1(dst []byte) []byte {
	for _, fl := range f.list {
		dst = append(dst, fl.Name...)
		dst = append(dst, ':', ' ')
		dst = append(dst, fl.Value...)
		dst = append(dst, '\r', '\n')
	}
	return dst
}

// VisitLower calls fn for every field in order with the name lower-cased, as HTTP/2 and
// HTTP/3 require. The name slice passed to fn is only valid during the call. Like the other
// read-only methods it may run concurrently with itself on the same fields.
func (f *Fields) VisitLower(fn func(name, value []byte)) {
	var scratch *[]byte // from lowerPool once a name needs lower-casing
	for _, fl := range f.list {
		name := fl.Name
		if hasUpper(name) {
			if scratch == nil {
				scratch = lowerPool.Get().(*[]byte)
			}
			buf := (*scratch)[:0]
			for _, c := range name {
				buf = append(buf, lower(c))
			}
			*scratch = buf
			name = buf
		}
		fn(name, fl.Value)
	}
	if scratch != nil {
		lowerPool.Put(scratch)
	}
}

// lowerPool holds VisitLower's scratch buffers: a name handed to an unknown function escapes,
// so a stack buffer would be a heap allocation on every call.
var lowerPool = sync.Pool{New: func() any { b := make([]byte, 0, 64); return &b }}

// HasToken reports whether any field named name carries token in its comma-separated list
// (case-insensitively), as used for Connection, Transfer-Encoding and Upgrade.
func (f *Fields) HasToken(name, token string) bool {
	found := false
	f.Values(name, func(v []byte) bool {
		found = ListHasToken(v, token)
		return !found
	})
	return found
}

func (f *Fields) store(s string) []byte {
	start := len(f.arena)
	f.arena = append(f.arena, s...)
	return f.arena[start:len(f.arena):len(f.arena)]
}

func (f *Fields) storeBytes(b []byte) []byte {
	start := len(f.arena)
	f.arena = append(f.arena, b...)
	return f.arena[start:len(f.arena):len(f.arena)]
}

// Tokens of a Connection field's value, as ConnectionTokens reports them.
const (
	TokenClose     = 1 << iota // close
	TokenKeepAlive             // keep-alive
	TokenUpgrade               // upgrade
	TokenOther                 // any other token: the name of a field to remove
)

// ConnectionTokens reports which tokens the comma-separated list v holds, in one pass:
// close, keep-alive and upgrade (case-insensitively, surrounding whitespace ignored; empty
// elements skipped) and whether there is any other.
func ConnectionTokens(v []byte) int {
	// The values nearly every message carries, whole.
	switch {
	case EqualFold(v, "keep-alive"):
		return TokenKeepAlive
	case EqualFold(v, "close"):
		return TokenClose
	}
	t := 0
	for len(v) > 0 {
		item := v
		if i := bytes.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		item = TrimOWS(item)
		switch {
		case len(item) == 0:
		case EqualFold(item, "close"):
			t |= TokenClose
		case EqualFold(item, "keep-alive"):
			t |= TokenKeepAlive
		case EqualFold(item, "upgrade"):
			t |= TokenUpgrade
		default:
			t |= TokenOther
		}
	}
	return t
}

// ListHasToken reports whether the comma-separated list v contains token, compared
// case-insensitively with surrounding whitespace ignored.
func ListHasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var item []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			item, v = v, nil
		}
		if EqualFold(TrimOWS(item), token) {
			return true
		}
	}
	return false
}

// TrimOWS removes leading and trailing spaces and tabs.
func TrimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// EqualFold reports whether b and s are equal under ASCII case folding.
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if b[i] != s[i] && lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

func hasUpper(b []byte) bool {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return false
}
