package cache

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/pingora-go/pingora/header"
)

// metaVersion is the version byte of the binary form of a Meta.
const metaVersion = 1

// Limits on a decoded Meta, so that a corrupt or hostile file cannot make the decoder allocate
// without bound.
const (
	maxEncodedFields = 1024
	maxEncodedString = 1 << 20
)

var errBadMeta = errors.New("cache: malformed stored meta")

const (
	flagHeuristic = 1 << iota
	flagMustRevalidate
	flagNoCache
	flagVaryIndex
	flagReason
)

// MarshalBinary encodes m for storage on disk. The encoding is versioned; UnmarshalBinary
// reads it back.
func (m *Meta) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, 256+m.HeaderSize()))
}

// AppendBinary appends the binary form of m to b.
func (m *Meta) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, metaVersion)
	var flags byte
	if m.Heuristic {
		flags |= flagHeuristic
	}
	if m.MustRevalidate {
		flags |= flagMustRevalidate
	}
	if m.NoCache {
		flags |= flagNoCache
	}
	if m.VaryIndex {
		flags |= flagVaryIndex
	}
	if m.Header.Reason() != nil && string(m.Header.Reason()) != header.StatusText(m.Header.Status) {
		flags |= flagReason
	}
	b = append(b, flags)
	for _, t := range [...]time.Time{m.Created, m.RequestTime, m.ResponseTime} {
		b = binary.AppendVarint(b, timeNanos(t))
	}
	for _, d := range [...]time.Duration{m.InitialAge, m.Lifetime, m.StaleWhileRevalidate, m.StaleIfError} {
		b = binary.AppendVarint(b, int64(d))
	}
	b = binary.AppendVarint(b, m.BodySize)
	b = binary.AppendUvarint(b, uint64(m.Header.Status))
	b = append(b, byte(m.Header.Version))
	if flags&flagReason != 0 {
		b = appendBytes(b, m.Header.Reason())
	}
	b = binary.AppendUvarint(b, uint64(m.Header.Len()))
	for _, f := range m.Header.All() {
		b = appendBytes(b, f.Name)
		b = appendBytes(b, f.Value)
	}
	for _, list := range [...][]string{m.Vary, m.Tags} {
		b = binary.AppendUvarint(b, uint64(len(list)))
		for _, s := range list {
			b = appendBytes(b, []byte(s))
		}
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary produced into m.
func (m *Meta) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	if d.byte() != metaVersion {
		return errBadMeta
	}
	flags := d.byte()
	*m = Meta{}
	m.Heuristic = flags&flagHeuristic != 0
	m.MustRevalidate = flags&flagMustRevalidate != 0
	m.NoCache = flags&flagNoCache != 0
	m.VaryIndex = flags&flagVaryIndex != 0
	m.Created = nanosTime(d.varint())
	m.RequestTime = nanosTime(d.varint())
	m.ResponseTime = nanosTime(d.varint())
	m.InitialAge = time.Duration(d.varint())
	m.Lifetime = time.Duration(d.varint())
	m.StaleWhileRevalidate = time.Duration(d.varint())
	m.StaleIfError = time.Duration(d.varint())
	m.BodySize = d.varint()
	status := d.uvarint()
	version := d.byte()
	if status > 999 {
		return errBadMeta
	}
	m.Header.Status, m.Header.Version = int(status), header.Version(version)
	if flags&flagReason != 0 {
		m.Header.SetReason(string(d.bytes()))
	}
	n := d.uvarint()
	if n > maxEncodedFields {
		return errBadMeta
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		name := d.bytes()
		value := d.bytes()
		m.Header.AppendBytes(name, value)
	}
	for _, list := range [...]*[]string{&m.Vary, &m.Tags} {
		n := d.uvarint()
		if n > maxEncodedFields {
			return errBadMeta
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			*list = append(*list, string(d.bytes()))
		}
	}
	if d.err != nil || len(d.b) != 0 {
		return errBadMeta
	}
	return nil
}

// HeaderSize estimates the bytes the stored head takes, for size accounting.
func (m *Meta) HeaderSize() int {
	n := 64
	for _, f := range m.Header.All() {
		n += len(f.Name) + len(f.Value) + 4
	}
	return n
}

func timeNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func nanosTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads the binary form, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err, d.b = errBadMeta, nil }

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > maxEncodedString || n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}
