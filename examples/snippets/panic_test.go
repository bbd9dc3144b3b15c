package snippets_test

import (
	"bytes"
	"testing"

	"github.com/pingora-go/pingora/examples/internal/exampletest"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/upstream"
)

// buggy panics in RequestFilter for one path: a stand-in for a bug in a phase.
type buggy struct {
	proxy.Defaults[struct{}]
	origin *upstream.Peer
}

func (b *buggy) NewCtx() struct{} { return struct{}{} }

func (b *buggy) UpstreamPeer(*proxy.Session, *struct{}) (*upstream.Peer, error) {
	return b.origin, nil
}

func (b *buggy) RequestFilter(s *proxy.Session, _ *struct{}) (bool, error) {
	if bytes.Equal(s.Req().Path(), []byte("/panic")) {
		var m map[string]int
		m["boom"]++ // assignment to a nil map panics
	}
	return false, nil
}

func TestPanicIsContained(t *testing.T) {
	origin, err := upstream.NewPeer(exampletest.NamedOrigin(t, "ok", nil), false, "")
	if err != nil {
		t.Fatal(err)
	}
	addr := exampletest.Serve(t, &buggy{origin: origin})
	c := exampletest.Client(t)

	tests := []struct {
		path       string
		wantStatus int
	}{
		{"/", 200},
		{"/panic", 500},
		{"/", 200}, // the proxy still serves
		{"/panic", 500},
		{"/after", 200},
	}
	for _, tt := range tests {
		resp, _ := exampletest.Get(t, c, addr, tt.path, nil)
		if resp.StatusCode != tt.wantStatus {
			t.Fatalf("%s: status %d, want %d", tt.path, resp.StatusCode, tt.wantStatus)
		}
	}
}
