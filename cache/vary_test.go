package cache

import (
	"slices"
	"testing"
)

// TestVaryNames covers RFC 9110 §12.5.5: names combined over lines, case-folded, sorted and
// deduplicated; "*" detected.
func TestVaryNames(t *testing.T) {
	names, star, ok := VaryNames(respOf(200, "Vary: Accept-Encoding, accept", "Vary: ACCEPT-ENCODING,, User-Agent"))
	if !ok || star || !slices.Equal(names, []string{"accept", "accept-encoding", "user-agent"}) {
		t.Fatalf("%q %v %v", names, star, ok)
	}
	if _, star, _ := VaryNames(respOf(200, "Vary: Accept", "Vary: *")); !star {
		t.Fatal("* not seen")
	}
	if _, _, ok := VaryNames(respOf(200, "Vary: a(b)")); ok {
		t.Fatal("non-token accepted")
	}
}

// TestVariance covers secondary keys (RFC 9111 §4.1): normalised values select the same
// variant, different values different ones.
func TestVariance(t *testing.T) {
	names := []string{"accept-encoding", "accept-language"}
	v := func(lines ...string) Hash { return Variance(names, reqOf("GET", "/", lines...)) }
	base := v("Accept-Encoding: gzip, br", "Accept-Language: en")
	same := [][]string{
		{"accept-encoding: gzip,br", "ACCEPT-LANGUAGE: en"},
		{"Accept-Encoding: gzip", "Accept-Encoding: br", "Accept-Language: en"},
		{"Accept-Encoding:   gzip ,  br  ", "Accept-Language: en"},
		{"Accept-Language: en", "Accept-Encoding: gzip, br", "X-Other: 1"},
	}
	for _, s := range same {
		if got := v(s...); got != base {
			t.Errorf("%q should select the same variant", s)
		}
	}
	different := [][]string{
		{"Accept-Encoding: br, gzip", "Accept-Language: en"},
		{"Accept-Encoding: gzip", "Accept-Language: en"},
		{"Accept-Encoding: gzip, br"},
		{"Accept-Encoding: gzip, br", "Accept-Language: "},
		{"Accept-Encoding: gzip, br", "Accept-Language: EN"},
	}
	seen := map[Hash]bool{base: true}
	for _, d := range different {
		got := v(d...)
		if seen[got] {
			t.Errorf("%q should select another variant", d)
		}
		seen[got] = true
	}
	if v("Accept-Language: a  b") != v("Accept-Language: a \t b") {
		t.Error("inner whitespace runs must collapse")
	}
	if !Variance(nil, reqOf("GET", "/")).IsZero() || base.IsZero() {
		t.Error("zero variance means no Vary only")
	}
}
