// Package ketama is a consistent-hash ring that maps keys to servers exactly
// as nginx's `hash $key consistent` upstream directive does.
//
// Each server contributes 160 points per unit of weight. A point is the CRC-32
// (IEEE) of the server text split as nginx splits it — host, one NUL byte,
// port — followed by the previous point's hash in little-endian byte order.
// The points are sorted, points with equal hashes collapse to the first
// server that produced them, and a key goes to the first point whose hash is
// at least crc32(key), wrapping to the start of the ring.
//
// nginx hashes the server address as written in its `server` line, so the
// ring must be built from the same text ("10.0.0.1:80", not a resolved or
// canonicalised form) to reproduce its choices.
package ketama

import (
	"errors"
	"hash/crc32"
	"slices"
	"strings"
)

// PointsPerWeight is how many ring points one unit of server weight adds,
// the constant nginx uses.
const PointsPerWeight = 160

// ErrWeight is returned by New for a bucket whose weight is less than 1.
var ErrWeight = errors.New("ketama: bucket weight must be at least 1")

// ErrTooManyPoints is returned by New when the ring would have more than
// MaxPoints points.
var ErrTooManyPoints = errors.New("ketama: ring would exceed MaxPoints")

// MaxPoints bounds the size of a ring (sum of weights × PointsPerWeight), so
// that a misconfigured weight cannot exhaust memory.
const MaxPoints = 1 << 26

// Bucket is one server on the ring.
type Bucket struct {
	// Addr is the server text hashed onto the ring, as nginx would see it in
	// a `server` line: "host:port", "unix:/path", or a bare host.
	Addr string
	// Weight scales the server's share of keys; it must be at least 1.
	Weight int
}

// Continuum is an immutable ketama ring. It is safe for concurrent use.
// The zero value is an empty ring.
type Continuum struct {
	// hashes and nodes are parallel: point i has hash hashes[i] and belongs
	// to bucket nodes[i]. Keeping hashes apart makes the lookup's binary
	// search touch only 4 bytes per probe.
	hashes []uint32
	nodes  []uint32
}

// New builds the ring for buckets. A bucket's index in buckets is the value
// Node and Iter report for it. New returns an empty ring for no buckets.
func New(buckets []Bucket) (*Continuum, error) {
	total := 0
	for _, b := range buckets {
		if b.Weight < 1 {
			return nil, ErrWeight
		}
		if b.Weight > MaxPoints/PointsPerWeight || total+b.Weight*PointsPerWeight > MaxPoints {
			return nil, ErrTooManyPoints
		}
		total += b.Weight * PointsPerWeight
	}
	// A point packs hash<<32 | bucket index. Points are made in bucket
	// order and sorted stably by hash, so among equal hashes the earliest
	// configured server comes first and the dedup below keeps it, which is
	// what nginx's stable qsort (glibc merge sort) followed by its dedup
	// keeps.
	points := make([]uint64, 0, total)
	for i, b := range buckets {
		base := serverHash(b.Addr)
		prev := uint32(0)
		for range b.Weight * PointsPerWeight {
			prev = chain(base, prev)
			points = append(points, uint64(prev)<<32|uint64(i))
		}
	}
	sortByHash(points)
	c := &Continuum{
		hashes: make([]uint32, 0, len(points)),
		nodes:  make([]uint32, 0, len(points)),
	}
	for i, p := range points {
		h := uint32(p >> 32)
		if i > 0 && h == c.hashes[len(c.hashes)-1] {
			continue
		}
		c.hashes = append(c.hashes, h)
		c.nodes = append(c.nodes, uint32(p))
	}
	return c, nil
}

// sortByHash sorts points stably by their high 32 bits, the hash: a
// least-significant-digit radix sort, one byte of the hash per pass. For a
// ring of 1,000 servers (160,000 points) it takes a fraction of what a
// comparison sort does.
func sortByHash(points []uint64) {
	if len(points) < 2 {
		return
	}
	src, dst := points, make([]uint64, len(points))
	for shift := 32; shift < 64; shift += 8 {
		var start [256]int
		for _, p := range src {
			start[byte(p>>shift)]++
		}
		sum := 0
		for i, n := range start {
			start[i] = sum
			sum += n
		}
		for _, p := range src {
			b := byte(p >> shift)
			dst[start[b]] = p
			start[b]++
		}
		src, dst = dst, src
	}
	// Four passes: the sorted points are back in points.
}

// serverHash returns the CRC-32 of host, NUL, port, where host and port are
// split from addr by nginx's rule: a "unix:" prefix is stripped and there is
// no port; otherwise the port is the run of digits after the last colon, if
// that run reaches the colon; otherwise the whole text is the host.
func serverHash(addr string) uint32 {
	host, port := addr, ""
	if len(addr) >= 5 && strings.EqualFold(addr[:5], "unix:") {
		host = addr[5:]
	} else {
		for j := len(addr) - 1; j >= 0; j-- {
			c := addr[j]
			if c == ':' {
				host, port = addr[:j], addr[j+1:]
				break
			}
			if c < '0' || c > '9' {
				break
			}
		}
	}
	crc := updateString(0, host)
	crc = updateString(crc, "\x00")
	return updateString(crc, port)
}

// updateString is crc32.Update(crc, IEEETable, []byte(s)) without
// converting s to a slice, which would allocate.
func updateString(crc uint32, s string) uint32 {
	crc = ^crc
	for i := range len(s) {
		crc = crc32.IEEETable[byte(crc)^s[i]] ^ crc>>8
	}
	return ^crc
}

// chain continues the CRC-32 base over the 4 little-endian bytes of prev.
// It is crc32.Update(base, IEEETable, le(prev)) without building a slice.
func chain(base, prev uint32) uint32 {
	crc := ^base
	for range 4 {
		crc = crc32.IEEETable[byte(crc)^byte(prev)] ^ crc>>8
		prev >>= 8
	}
	return ^crc
}

// Hash returns the ring position of key: its CRC-32 (IEEE).
func Hash(key []byte) uint32 {
	return crc32.ChecksumIEEE(key)
}

// Len returns the number of points on the ring.
func (c *Continuum) Len() int {
	return len(c.hashes)
}

// Node returns the index of the bucket key maps to, or -1 if the ring is
// empty.
func (c *Continuum) Node(key []byte) int {
	if len(c.hashes) == 0 {
		return -1
	}
	return int(c.nodes[c.Point(Hash(key))])
}

// Point returns the index of the first ring point whose hash is at least h,
// wrapping to 0 past the last point. The ring must not be empty.
func (c *Continuum) Point(h uint32) int {
	i, _ := slices.BinarySearch(c.hashes, h)
	if i == len(c.hashes) {
		return 0
	}
	return i
}

// At returns the bucket index of ring point i modulo Len, so that callers can
// walk the ring clockwise from Point. The ring must not be empty.
func (c *Continuum) At(i int) int {
	return int(c.nodes[i%len(c.nodes)])
}

// Iter returns an iterator over the ring clockwise from key's point: first
// the bucket Node reports, then the buckets of the following points. Like
// nginx's failover walk, it may report a bucket more than once.
func (c *Continuum) Iter(key []byte) Iter {
	if len(c.hashes) == 0 {
		return Iter{}
	}
	return Iter{c: c, pos: c.Point(Hash(key))}
}

// Iter walks a Continuum's points in ring order. The zero Iter is exhausted.
type Iter struct {
	c    *Continuum
	pos  int
	seen int
}

// Next returns the bucket of the next point, or ok == false once every point
// of the ring has been visited.
func (it *Iter) Next() (bucket int, ok bool) {
	if it.c == nil || it.seen == len(it.c.nodes) {
		return -1, false
	}
	bucket = it.c.At(it.pos)
	it.pos = (it.pos + 1) % len(it.c.nodes)
	it.seen++
	return bucket, true
}
