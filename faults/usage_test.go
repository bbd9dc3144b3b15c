package faults_test

import (
	"testing"

	"github.com/pingora-go/pingora/faults"
	"github.com/pingora-go/pingora/upstream"
)

// The test docs/user_guide/resilience.md shows.
func TestTruncatedUpstream(t *testing.T) {
	up := faults.NewUpstream(t, faults.TruncateBody(1000, 10))
	peer, _ := upstream.NewPeer(up.Addr(), false, "")
	p := faults.StartProxy(t, myProxy{peer: peer}, faults.ProxyOptions{})
	if o := p.Client().Fetch(faults.Get("/")); o.Complete {
		t.Fatalf("a cut response looked complete: %v", o)
	}
}
