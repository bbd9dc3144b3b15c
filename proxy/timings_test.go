package proxy

import (
	"testing"
	"time"
)

// TestNowSince: the time since a monotonic reading, taken from that reading, is the current
// time; a zero start gives the current time too.
func TestNowSince(t *testing.T) {
	start := time.Now()
	time.Sleep(2 * time.Millisecond)
	before := time.Now()
	got := nowSince(start)
	after := time.Now()
	if got.Before(before) || got.After(after) {
		t.Fatalf("nowSince = %v, not between %v and %v", got, before, after)
	}
	if z := nowSince(time.Time{}); z.Before(after) || time.Since(z) > time.Second {
		t.Fatalf("nowSince(zero) = %v", z)
	}
}
