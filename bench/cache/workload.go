package main

import (
	"math"
	"math/rand/v2"
	"sort"
)

// zipf draws ranks 0..n-1 with P(rank k) ∝ 1/(k+1)^s by inverse CDF, for
// any s > 0 (math/rand/v2's Zipf needs s > 1).
type zipf struct {
	cdf []float64
	r   *rand.Rand
}

func newZipf(s float64, n int, seed uint64) *zipf {
	cdf := make([]float64, n)
	sum := 0.0
	for k := range cdf {
		sum += 1 / math.Pow(float64(k+1), s)
		cdf[k] = sum
	}
	for k := range cdf {
		cdf[k] /= sum
	}
	return &zipf{cdf: cdf, r: rand.New(rand.NewPCG(seed, seed^0x5eed))}
}

func (z *zipf) next() int { return sort.SearchFloat64s(z.cdf, z.r.Float64()) }

// keyOf scatters ranks over the key space, so that popular keys are not
// small consecutive integers.
func keyOf(rank int) uint64 {
	x := uint64(rank) + 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// zipfTrace returns length keys drawn from Zipf(s) over n keys.
func zipfTrace(s float64, n, length int, seed uint64) []uint64 {
	z := newZipf(s, n, seed)
	t := make([]uint64, length)
	for i := range t {
		t[i] = keyOf(z.next())
	}
	return t
}

// scanTrace is Zipf(s) traffic over n keys polluted by scans: after every
// run of zipfRun requests comes a scan of scanRun keys never seen before, as
// a crawler or a batch job would send.
func scanTrace(s float64, n, length, zipfRun, scanRun int, seed uint64) []uint64 {
	z := newZipf(s, n, seed)
	t := make([]uint64, 0, length)
	fresh := n
	for len(t) < length {
		for range min(zipfRun, length-len(t)) {
			t = append(t, keyOf(z.next()))
		}
		for range min(scanRun, length-len(t)) {
			t = append(t, keyOf(fresh))
			fresh++
		}
	}
	return t
}

// shiftTrace is Zipf(s) traffic over n keys whose popular keys change every
// phase requests: each phase maps ranks onto the key space shifted by n/7,
// so the favourites of one phase are cold in the next.
func shiftTrace(s float64, n, length, phase int, seed uint64) []uint64 {
	z := newZipf(s, n, seed)
	t := make([]uint64, length)
	for i := range t {
		shift := (i / phase) * (n / 7)
		t[i] = keyOf((z.next() + shift) % n)
	}
	return t
}
