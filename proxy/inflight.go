package proxy

import (
	"errors"
	"sync"
	"time"

	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/upstream"
)

// ErrPeerBusy is the cause of the error of a request shed because its peer had
// upstream.Options.MaxInflight requests in flight and no room in its queue, or because it
// waited QueueTimeout for a slot. The default FailToProxy answers it 503 with Retry-After.
var ErrPeerBusy = errors.New("proxy: peer at its in-flight limit")

// RetryAfterBusy is the Retry-After, in seconds, of the 503 answering a shed request.
const RetryAfterBusy = "1"

// inflight counts the requests in flight to peers with a MaxInflight, per reuse hash.
type inflight struct {
	mu    sync.Mutex
	peers map[uint64]*peerSlots
}

// peerSlots is one peer's count and its queue of waiters, first come first served.
type peerSlots struct {
	n       int
	waiters []chan struct{}
}

// acquire takes a slot for a request to peer, waiting in its queue when the peer is at its
// limit; release gives it back. Peers without MaxInflight cost nothing.
func (f *inflight) acquire(peer *upstream.Peer) (release func(), err error) {
	o := &peer.Options
	if o.MaxInflight <= 0 {
		return nil, nil
	}
	key := peer.ReuseHash()
	f.mu.Lock()
	if f.peers == nil {
		f.peers = make(map[uint64]*peerSlots)
	}
	ps := f.peers[key]
	if ps == nil {
		ps = &peerSlots{}
		f.peers[key] = ps
	}
	if ps.n < o.MaxInflight && len(ps.waiters) == 0 {
		ps.n++
		f.mu.Unlock()
		return func() { f.release(key, ps) }, nil
	}
	if len(ps.waiters) >= o.MaxQueued {
		f.mu.Unlock()
		return nil, busy(peer, "no room in its queue")
	}
	ch := make(chan struct{})
	ps.waiters = append(ps.waiters, ch)
	f.mu.Unlock()

	wait := o.QueueTimeout
	if wait <= 0 {
		wait = upstream.DefaultQueueTimeout
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ch:
		return func() { f.release(key, ps) }, nil
	case <-t.C:
	}
	f.mu.Lock()
	for i, w := range ps.waiters {
		if w == ch {
			ps.waiters = append(ps.waiters[:i], ps.waiters[i+1:]...)
			f.mu.Unlock()
			return nil, busy(peer, "no slot within its queue timeout")
		}
	}
	f.mu.Unlock()
	// The slot was handed over just as the wait ended: take it.
	<-ch
	return func() { f.release(key, ps) }, nil
}

// release hands the slot to the first waiter, or frees it.
func (f *inflight) release(key uint64, ps *peerSlots) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(ps.waiters) > 0 {
		ch := ps.waiters[0]
		ps.waiters[0] = nil
		ps.waiters = ps.waiters[1:]
		close(ch) // the slot passes to the waiter; n is unchanged
		return
	}
	ps.n--
	if ps.n == 0 && f.peers[key] == ps {
		delete(f.peers, key)
	}
}

func busy(peer *upstream.Peer, why string) *perr.Error {
	return perr.Because(perr.HTTPStatus(503), "shedding the request to "+peer.String()+": "+why, ErrPeerBusy).AsUp()
}

// Inflight returns how many requests are in flight to peer and how many wait for a slot,
// for peers with a MaxInflight (0, 0 for others).
func (p *Proxy[C]) Inflight(peer *upstream.Peer) (running, queued int) {
	f := &p.inflight
	f.mu.Lock()
	defer f.mu.Unlock()
	if ps := f.peers[peer.ReuseHash()]; ps != nil {
		return ps.n, len(ps.waiters)
	}
	return 0, 0
}
