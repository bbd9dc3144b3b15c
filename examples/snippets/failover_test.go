package snippets_test

import (
	"testing"
	"time"

	"github.com/pingora-go/pingora/examples/internal/exampletest"
	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/upstream"
)

// failover first tries an address that never answers, with a short connect timeout, then
// fails over to the real origin: the pattern of the reference's failover guide.
type failover struct {
	proxy.Defaults[failCtx]
	blackhole, origin *upstream.Peer
}

// failCtx remembers, per request, whether the first peer already failed.
type failCtx struct {
	failed bool
}

func newFailover(origin string) (*failover, error) {
	bh, err := upstream.NewPeer("192.0.2.1:80", false, "") // TEST-NET-1: nothing answers
	if err != nil {
		return nil, err
	}
	bh.Options.ConnectTimeout = 100 * time.Millisecond
	o, err := upstream.NewPeer(origin, false, "")
	if err != nil {
		return nil, err
	}
	return &failover{blackhole: bh, origin: o}, nil
}

func (f *failover) NewCtx() failCtx { return failCtx{} }

func (f *failover) UpstreamPeer(_ *proxy.Session, ctx *failCtx) (*upstream.Peer, error) {
	if ctx.failed {
		return f.origin, nil
	}
	return f.blackhole, nil
}

func (f *failover) FailToConnect(_ *proxy.Session, _ *upstream.Peer, ctx *failCtx, err *perr.Error) *perr.Error {
	if ctx.failed {
		return err // the origin failed too: give up
	}
	ctx.failed = true
	return err.SetRetry(true)
}

func TestFailover(t *testing.T) {
	app, err := newFailover(exampletest.NamedOrigin(t, "origin", nil))
	if err != nil {
		t.Fatal(err)
	}
	addr := exampletest.Serve(t, app)
	resp, body := exampletest.Get(t, exampletest.Client(t), addr, "/", nil)
	if resp.StatusCode != 200 || body != "origin" {
		t.Fatalf("got %d %q, want 200 \"origin\"", resp.StatusCode, body)
	}
}

func TestFailoverGivesUp(t *testing.T) {
	app, err := newFailover(exampletest.DeadAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := exampletest.Serve(t, app)
	resp, _ := exampletest.Get(t, exampletest.Client(t), addr, "/", nil)
	if resp.StatusCode != 502 {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
}
