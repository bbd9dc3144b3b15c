package proxy

import (
	"context"
	"io"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/pingora-go/pingora/cache"
	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/upstream"
)

// BackgroundRevalidationTimeout bounds a background revalidation (stale-while-revalidate) from
// its first upstream attempt to the end of the stored body.
const BackgroundRevalidationTimeout = 60 * time.Second

// noDownstream is the downstream of a background revalidation: there is no client, so a
// response written to it goes nowhere.
type noDownstream struct{}

func (noDownstream) ReadBody() ([]byte, error)                        { return nil, io.EOF }
func (noDownstream) BodyDone() bool                                   { return true }
func (noDownstream) BodyBytesRead() int64                             { return 0 }
func (noDownstream) Trailers() *header.Fields                         { return &header.Fields{} }
func (noDownstream) WriteResponseHeader(*header.ResponseHeader) error { return nil }
func (noDownstream) WriteBody([]byte) error                           { return nil }
func (noDownstream) Flush() error                                     { return nil }
func (noDownstream) FinishResponse(*header.Fields) error              { return nil }
func (noDownstream) SetKeepAlive(bool)                                {}

// revalidateInBackground starts the revalidation of a stale response served to src while it
// was within stale-while-revalidate (bg holds its key, see cache.Entry.Background). It runs on
// its own goroutine as a request of its own without a client, with a copy of src's request
// head and a new context: EarlyRequestFilter and RequestFilter (which may call it off by
// answering), then the upstream phases (UpstreamPeer, ConnectedToUpstream,
// UpstreamRequestFilter, UpstreamResponseFilter, ResponseCacheFilter,
// UpstreamResponseBodyFilter, with FailToConnect and ErrorWhileProxy deciding retries), and
// Logging; Session.Cache().Background() is true for it. BackgroundRevalidationTimeout bounds
// the upstream exchange.
func (p *Proxy[C]) revalidateInBackground(src *Session, bg *cache.Entry) {
	s := &Session{sessionState: sessionState{down: noDownstream{}, netConn: src.netConn,
		clientAddr: src.clientAddr, shutdown: src.shutdown, keepAlive: false}}
	req := &header.RequestHeader{}
	req.CopyFrom(src.req)
	s.req = req
	h := &s.cache
	h.c, h.key, h.entry = src.cache.c, src.cache.key, bg
	h.phase, h.background, h.used = CacheExpired, true, true
	go p.runBackground(s)
}

// runBackground runs a background revalidation to its end.
func (p *Proxy[C]) runBackground(s *Session) {
	ctx := new(C)
	h := &s.cache
	var err error
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("panic in a background revalidation", "panic", r, "stack", string(debug.Stack()))
			err = perr.Explain(perr.InternalError, "panic in a background revalidation").AsIn()
		}
		h.done()
		s.err = err
		s.Timings.End = time.Now()
		p.backgroundLogging(s, err, ctx)
	}()
	s.Timings.Start = time.Now()
	*ctx = p.app.NewCtx()
	h.hooks, h.sess, h.ctx = p, s, ctx
	h.entry.Vary = (*varier)(h)
	if err = p.app.EarlyRequestFilter(s, ctx); err != nil {
		return
	}
	var handled bool
	if handled, err = p.app.RequestFilter(s, ctx); err != nil || handled {
		return
	}
	err = p.backgroundAttempts(s, ctx)
	if err != nil && !p.app.SuppressErrorLog(s, ctx, err) {
		p.log.Warn("background revalidation failed", "request", p.app.RequestSummary(s, ctx), "error", err.Error(),
			"attempts", s.attempts)
	}
}

func (p *Proxy[C]) backgroundLogging(s *Session, err error, ctx *C) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("panic in Logging", "panic", r)
		}
	}()
	p.app.Logging(s, err, ctx)
}

// backgroundAttempts is proxyToUpstream for a background revalidation.
func (p *Proxy[C]) backgroundAttempts(s *Session, ctx *C) error {
	var last *perr.Error
	var again *upstream.Peer
	restarts := 0
	for again != nil || s.attempts < p.opts.MaxRetries {
		a, e, err := p.connect(s, nil, ctx, again)
		again = nil
		if err != nil {
			return err
		}
		peer, reused := a.peer, a.reused
		if e != nil {
			if retry, decided := e.Retry.Decided(); decided && retry {
				last = e
				continue
			}
			return e
		}
		s.Timings.Connected = time.Now()
		err = p.exchangeOn(s, nil, &a, ctx)
		if err == nil {
			return nil
		}
		if a.stale && restarts < maxStaleRestarts {
			// As proxyToUpstream: the request was not sent; send it on another connection.
			again = peer
			restarts++
			continue
		}
		e = perrOf(err, perr.Internal)
		e = p.app.ErrorWhileProxy(peer, s, e, ctx, reused)
		if retry, decided := e.Retry.Decided(); !decided || !retry {
			return e
		}
		last = e
	}
	if last == nil {
		last = perr.Explain(perr.InternalError, "no attempt made").AsIn()
	}
	return last.MoreContext("gave up after max retries")
}

// backgroundExchange sends the conditional request upstream and refreshes or replaces the
// stored response with the answer. A 5xx leaves the stale response in place.
func (p *Proxy[C]) backgroundExchange(s *Session, up upstreamSession, isH2 bool, ctx *C) error {
	h := &s.cache
	c, e := h.c, h.entry
	rctx := context.Background()
	req := &header.RequestHeader{}
	req.CopyFrom(s.req)
	stripHopByHop(&req.Fields, false)
	for _, n := range [...]string{"Expect", "Content-Length"} {
		req.Remove(n)
	}
	req.Version = header.HTTP11
	if isH2 {
		req.Version = header.HTTP2
	}
	h.upstreamRequest(req)
	if err := p.app.UpstreamRequestFilter(s, req, ctx); err != nil {
		return err
	}
	timer := time.AfterFunc(BackgroundRevalidationTimeout, up.abort)
	defer timer.Stop()
	if err := up.writeHead(req, true); err != nil {
		return reusedOnly(err)
	}
	resp := up.response()
	for interim := 0; ; interim++ {
		if err := up.ReadResponseHeader(); err != nil {
			return err
		}
		if resp.Status >= 200 {
			break
		}
		if resp.Status == 101 || interim >= MaxInterimResponses {
			return perr.Explain(perr.InvalidHTTPHeader, "upstream answered a revalidation with "+strconv.Itoa(resp.Status)).AsUp()
		}
	}
	s.Timings.UpstreamHead = time.Now()
	s.upstreamResp = resp
	stripHopByHop(&resp.Fields, false)
	if err := p.app.UpstreamResponseFilter(s, resp, ctx); err != nil {
		return err
	}
	h.respTime = c.Now()
	if resp.Status == 304 && h.conditional {
		ok, err := c.Revalidated(rctx, e, req, resp, h.reqTime, h.respTime)
		if !ok && err == nil {
			_, err = c.Purge(rctx, h.key)
		}
		if ok {
			h.phase = CacheRevalidated
		}
		return err
	}
	if resp.Status >= 500 {
		up.markBroken()
		return nil
	}
	decision, err := p.app.ResponseCacheFilter(s, resp, ctx)
	if err != nil {
		up.markBroken()
		return err
	}
	if decision != StoreByRules {
		up.markBroken()
		// The stored response no longer stands for the origin's.
		_, err = c.Purge(rctx, h.key)
		return err
	}
	w, reason, err := c.Store(rctx, e, s.req, req, resp, h.reqTime, h.respTime)
	h.writer, h.stored, h.reason = w, w != nil, reason
	if w == nil {
		up.markBroken()
		if err == nil {
			_, err = c.Purge(rctx, h.key)
		}
		return err
	}
	body := &[]byte{}
	for {
		var rerr error
		*body, rerr = up.ReadBody()
		if rerr != nil && rerr != io.EOF {
			return rerr
		}
		eos := rerr == io.EOF || up.BodyDone()
		if len(*body) == 0 && !eos {
			continue
		}
		if _, err := p.app.UpstreamResponseBodyFilter(s, body, eos, ctx); err != nil {
			return err
		}
		if len(*body) > 0 {
			if err := w.Write(rctx, *body); err != nil {
				h.writer, h.stored = nil, false
				up.markBroken()
				return nil
			}
		}
		if eos {
			h.writer = nil
			return w.Finish(rctx)
		}
	}
}
