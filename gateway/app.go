package gateway

import (
	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/lb"
	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/ratelimit"
	"github.com/pingora-go/pingora/upstream"
)

// Ctx is the per-request context of the gateway's phases.
type Ctx struct {
	st       *state   // the configuration the request runs on, from RequestFilter to its end
	route    *route   // the route it took, nil when none matched
	backend  string   // address of the backend of the last attempt
	lease    lb.Lease // least_inflight's count of the request on its backend
	tried    []string // backends whose connection failed
	decision ratelimit.Decision
	limited  bool // decision is a rate limit's answer
	ws       wsSession
}

// app is the ProxyHTTP of one listener: it routes by the current configuration.
type app struct {
	proxy.Defaults[Ctx]
	g    *Gateway
	addr string // the listener's address, as listeners.Address.String() writes it
}

// NewCtx returns an empty context.
func (a *app) NewCtx() Ctx { return Ctx{} }

var unauthorizedBody = []byte("401 Unauthorized\n")

// RequestFilter takes the current configuration, finds the route and applies its policies
// in order: CIDR, basic authentication, WebSocket, rate limit, rewrite; then answers the
// direct actions (redirect, respond, files).
func (a *app) RequestFilter(s *proxy.Session, ctx *Ctx) (bool, error) {
	st := a.g.cur.Load()
	ctx.st = st
	req := s.Req()
	r := st.route(a.addr, req)
	if cm := a.g.compression.For(s); cm != nil {
		if r == nil || r.compression == nil {
			o := cm.Options()
			o.DisableCompression, o.DisableDecompression = true, true
		} else {
			*cm.Options() = *r.compression
		}
	}
	if r == nil {
		return true, s.RespondError(404)
	}
	ctx.route = r
	if r.cidrs != nil {
		if ip, ok := clientIP(s); !r.cidrs.admits(ip, ok) {
			return true, s.RespondError(403)
		}
	}
	if r.auth != nil && !r.auth.check(req) {
		var f header.Fields
		f.Set("WWW-Authenticate", r.auth.challenge)
		f.Set("Content-Type", "text/plain; charset=utf-8")
		return true, s.Respond(401, &f, unauthorizedBody)
	}
	if req.Has("Upgrade") && !r.ws.admits(req) {
		return true, s.RespondError(403)
	}
	if r.limit != nil {
		d, limited := r.limit.Check(s)
		if limited && !d.Allowed {
			return true, r.limit.Reject(s, &d)
		}
		ctx.decision, ctx.limited = d, limited
	}
	if r.rewrite != nil {
		r.rewrite.apply(req)
	}
	switch {
	case r.redirect != nil:
		return true, r.redirect.serve(s, r)
	case r.respond != nil:
		return true, r.respond.serve(s, r)
	case r.files != nil:
		return true, r.files.serve(s, r)
	}
	return false, nil
}

// RequestCacheFilter turns the route's cache on for the request.
func (a *app) RequestCacheFilter(s *proxy.Session, ctx *Ctx) error {
	if ctx.route != nil && ctx.route.cache != nil {
		s.EnableCache(ctx.route.cache)
	}
	return nil
}

// UpstreamPeer picks a backend of the route's pool, another one than those that failed to
// connect while there is one.
func (a *app) UpstreamPeer(s *proxy.Session, ctx *Ctx) (*upstream.Peer, error) {
	if ctx.route == nil || ctx.route.pool == nil {
		return nil, perr.Explain(perr.InternalError, "gateway: no upstream for the request").AsIn()
	}
	pl := ctx.route.pool
	ctx.lease.Release()
	b, lease, ok := pl.pick(s, ctx.tried)
	if !ok {
		ctx.lease = lb.Lease{}
		return nil, perr.Explain(NoBackend, "upstream "+pl.name+": no backend").AsUp()
	}
	ctx.lease, ctx.backend = lease, b.Addr
	p, err := pl.peer(b.Addr)
	if err != nil {
		return nil, perr.Because(perr.InternalError, "upstream "+pl.name, err).AsIn()
	}
	return p, nil
}

// FailToConnect retries on another backend while the pool's retries last.
func (a *app) FailToConnect(s *proxy.Session, _ *upstream.Peer, ctx *Ctx, err *perr.Error) *perr.Error {
	if ctx.route != nil && ctx.route.pool != nil && s.Attempts() <= ctx.route.pool.retries {
		ctx.tried = append(ctx.tried, ctx.backend)
		err.SetRetry(true)
	}
	return err
}

// UpstreamRequestFilter applies the route's request header edits.
func (a *app) UpstreamRequestFilter(s *proxy.Session, req *header.RequestHeader, ctx *Ctx) error {
	if ctx.route != nil {
		ctx.route.reqEdits.apply(&req.Fields, s)
	}
	return nil
}

// ResponseFilter applies the route's response header edits and advertises its rate limit.
func (a *app) ResponseFilter(s *proxy.Session, resp *header.ResponseHeader, ctx *Ctx) error {
	if ctx.route != nil {
		ctx.route.respEdits.apply(&resp.Fields, s)
	}
	if ctx.limited {
		ctx.decision.AppendHeaders(&resp.Fields)
	}
	return nil
}

// Logging ends the request's lease and writes its access log line.
func (a *app) Logging(s *proxy.Session, _ error, ctx *Ctx) {
	ctx.lease.Release()
	ctx.lease = lb.Lease{}
	if l := a.g.access; l != nil && (ctx.route == nil || ctx.route.accessLog) {
		l.RequestDone(s)
	}
}

// RequestSummary names the route in error log lines.
func (a *app) RequestSummary(s *proxy.Session, ctx *Ctx) string {
	sum := a.Defaults.RequestSummary(s, ctx)
	if ctx.route != nil {
		sum += ", route " + ctx.route.service + "/" + ctx.route.name
	}
	return sum
}
