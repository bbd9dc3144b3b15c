package proxy

import (
	"testing"
	"time"
)

// TestHotUntil: a busy connection's direct wait lasts between hotWait and twice that, and its
// requests within one hotWait share one deadline, so that the socket's is set once per hotWait.
func TestHotUntil(t *testing.T) {
	base := time.Now()
	changes := 0
	prev := hotUntil(base)
	const step = time.Millisecond
	for d := time.Duration(0); d < 10*hotWait; d += step {
		start := base.Add(d)
		until := hotUntil(start)
		if wait := until.Sub(start); wait <= hotWait || wait > 2*hotWait {
			t.Fatalf("a wait starting at +%v lasts %v", d, wait)
		}
		if !until.Equal(prev) {
			changes++
			prev = until
		}
	}
	if changes > 11 {
		t.Fatalf("the deadline changed %d times in %v", changes, 10*hotWait)
	}
}
