package cache

import (
	"testing"
	"time"
)

// TestParseHTTPDate covers the three HTTP-date formats of RFC 9110 §5.6.7.
func TestParseHTTPDate(t *testing.T) {
	want := time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC)
	tests := []struct {
		in string
		ok bool
	}{
		{"Sun, 06 Nov 1994 08:49:37 GMT", true},
		{"Sunday, 06-Nov-94 08:49:37 GMT", true},
		{"Sun Nov  6 08:49:37 1994", true},
		{"  Sun, 06 Nov 1994 08:49:37 GMT ", true},
		{"Sun, 06 Nov 1994 08:49:37 UTC", false},
		{"Sun, 06 Nov 1994 08:49 GMT", false},
		{"Sun, 31 Feb 1994 08:49:37 GMT", false},
		{"Sun, 06 Foo 1994 08:49:37 GMT", false},
		{"Xyz, 06 Nov 1994 08:49:37 GMT", false},
		{"Sun, 06 Nov 1994 25:49:37 GMT", false},
		{"0", false},
		{"", false},
		{"-1", false},
		{"Sunday, 06-Nov-1994 08:49:37 GMT", false},
	}
	for _, tt := range tests {
		got, ok := ParseHTTPDate([]byte(tt.in))
		if ok != tt.ok || (ok && !got.Equal(want)) {
			t.Errorf("%q: got %v %v, want ok=%v", tt.in, got, ok, tt.ok)
		}
	}
	// Two-digit years: never more than 50 years in the future.
	y := time.Now().UTC().Year()
	future := (y + 10) % 100
	got, ok := ParseHTTPDate([]byte("Monday, 01-Jan-" + twoDigits(future) + " 00:00:00 GMT"))
	if !ok || got.Year() != y+10 {
		t.Errorf("two-digit year 10 years ahead: %v %v", got, ok)
	}
	past := (y + 60) % 100
	got, ok = ParseHTTPDate([]byte("Monday, 01-Jan-" + twoDigits(past) + " 00:00:00 GMT"))
	if !ok || got.Year() != y+60-100 {
		t.Errorf("two-digit year 60 years ahead must be in the past: %v %v", got, ok)
	}
	if s := httpDate(want); s != "Sun, 06 Nov 1994 08:49:37 GMT" {
		t.Errorf("AppendHTTPDate = %q", s)
	}
}

func twoDigits(n int) string { return string([]byte{byte('0' + n/10), byte('0' + n%10)}) }

func TestParseHTTPDateAllocs(t *testing.T) {
	b := []byte("Sun, 06 Nov 1994 08:49:37 GMT")
	if n := testing.AllocsPerRun(100, func() { ParseHTTPDate(b) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
