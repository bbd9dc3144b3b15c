package proxy

import (
	"io"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/protocols/h1"
)

// MaxInterimResponses is how many interim (1xx) responses other than 100 Continue an upstream
// may send before its final one; past it the attempt fails with a 502 (an upstream could
// otherwise hold the request forever with a stream of 103s).
const MaxInterimResponses = 32

// upstreamRequest makes the request head to send upstream from the client's and runs
// UpstreamRequestFilter on it; it reports whether a body follows, whether the request is an
// extended CONNECT to an HTTP/2 upstream, and whether it asks for a protocol switch. It is a
// function of its own, not inlined, so that its stack space is not in proxyExchange's frame:
// the space is used again by what proxyExchange calls next, and a request touches fewer cache
// lines of its goroutine's stack.
//
//go:noinline
func (p *Proxy[C]) upstreamRequest(st *conn[C], up upstreamSession, h1cs *h1.ClientSession, ctx *C) (req *header.RequestHeader, hasBody, extConnect, upgrade bool, err error) {
	s := &st.sess
	req = &st.upReq
	req.CopyFrom(s.req)
	upgrade = st.isUpgrade()
	teTrailers := h1cs == nil && s.req.HasToken("TE", "trailers")
	stripHopByHop(&req.Fields, upgrade)
	var chunked bool
	if st.ds != nil {
		framing := st.ds.RequestFraming().Kind
		hasBody, chunked = framing != h1.BodyNone, framing == h1.BodyChunked
	} else {
		// The stream of an extended CONNECT carries the tunnel, not a body.
		hasBody = st.h2s.HasBody() && st.wsKey == ""
		chunked = hasBody && !req.Has("Content-Length")
	}
	if h1cs != nil {
		if chunked {
			req.Append("Transfer-Encoding", "chunked")
		}
		req.Version = header.HTTP11
	} else {
		if teTrailers {
			req.Append("te", "trailers")
		}
		req.Version = header.HTTP2
	}
	// A WebSocket over HTTP/2 going to an HTTP/2 upstream stays an extended CONNECT.
	extConnect = h1cs == nil && st.wsKey != ""
	if extConnect {
		toExtendedConnect(req, up)
	}
	if req.Has("Expect") {
		// The proxy answers 100-continue itself when it starts reading the body.
		req.Remove("Expect")
	}
	if s.cache.entry != nil {
		s.cache.upstreamRequest(req)
	}
	err = p.app.UpstreamRequestFilter(s, req, ctx)
	return req, hasBody, extConnect, upgrade, err
}

// proxyExchange runs one attempt over an upstream session, HTTP/1 (h1cs is that session) or
// HTTP/2 (h1cs is nil): send the request head, stream the request body (in its own goroutine,
// so the response can arrive while it is still being sent), and stream the response back. The
// request is translated between the versions: connection-specific fields removed, chunked
// framing added for an HTTP/1 upstream when an HTTP/2 body has no length, "te: trailers" kept
// for an HTTP/2 upstream (gRPC needs it).
func (p *Proxy[C]) proxyExchange(st *conn[C], up upstreamSession, h1cs *h1.ClientSession, ctx *C) error {
	s := &st.sess
	req, hasBody, extConnect, upgrade, err := p.upstreamRequest(st, up, h1cs, ctx)
	if err != nil {
		return err
	}

	replay := s.attempts > 1 && len(s.retryBuf) > 0
	pumping := hasBody || replay
	if err := up.writeHead(req, !pumping && !extConnect); err != nil {
		return reusedOnly(err)
	}
	if st.h2s == nil && !pumping {
		// Nothing to watch or join: no deferred calls on the common path.
		return p.exchangeResponse(st, up, h1cs, nil, upgrade, extConnect, ctx)
	}
	return p.exchangeWatched(st, up, h1cs, pumping, replay, upgrade, extConnect, ctx)
}

// exchangeWatched is the rest of proxyExchange for an exchange that streams a request body
// from its own goroutine or serves an HTTP/2 stream: the deferred calls that watch the client's
// reset and join the body's goroutine are here, out of the common path, where they would run
// through the runtime's general defer handling (proxyExchange has too many returns for the
// compiler's inline defers).
func (p *Proxy[C]) exchangeWatched(st *conn[C], up upstreamSession, h1cs *h1.ClientSession, pumping, replay, upgrade, extConnect bool, ctx *C) (err error) {
	ds := st.sess.down
	if st.h2s != nil {
		// A client that resets its stream (or leaves) cancels the upstream exchange at once,
		// even while it waits for the response head; the request then fails as the client's
		// doing, not the upstream's.
		defer st.watchReset(up)()
		defer func() {
			if err != nil && st.h2s.Context().Err() != nil {
				err = perr.Because(perr.ConnectionClosed, "the client reset its stream", err).AsDown()
			}
		}()
	}
	if pumping {
		if st.ds != nil {
			if err := st.ds.WriteContinue(); err != nil {
				return err
			}
		}
		go p.runPump(st, up, ctx, replay)
	}
	defer func() {
		if pumping {
			// A response that completed before the client finished its body: stop reading it.
			if perr := p.joinPump(st, up, err != nil || !ds.BodyDone()); perr != nil && err == nil {
				// The response is complete, but the request body was not: neither connection
				// can be reused.
				up.markBroken()
				if st.ds != nil {
					st.ds.SetKeepAlive(false)
				}
			}
		}
	}()
	return p.exchangeResponse(st, up, h1cs, &pumping, upgrade, extConnect, ctx)
}

// exchangeResponse reads the response head, passing interim responses on, and forwards the
// response. *pumping (nil: false) reports a request body streamed by its own goroutine; a
// failure to read the head joins that goroutine and clears *pumping.
func (p *Proxy[C]) exchangeResponse(st *conn[C], up upstreamSession, h1cs *h1.ClientSession, pumping *bool, upgrade, extConnect bool, ctx *C) error {
	s := &st.sess
	pump := pumping != nil && *pumping
	resp := up.response()
	interim := 0
	for {
		if err := up.ReadResponseHeader(); err != nil {
			if pump {
				// A failure of the client or of a body phase (an error, a panic) aborted the
				// exchange: it, not the upstream's broken response, is the request's error.
				*pumping = false
				if derr := p.joinPump(st, up, true); derr != nil && (isDownstream(derr) || isInternal(derr)) {
					return derr
				}
			}
			return err
		}
		if resp.Status >= 200 || resp.Status == 101 {
			break
		}
		if resp.Status == 100 {
			// The proxy already answered 100-continue itself.
			continue
		}
		if interim++; interim > MaxInterimResponses {
			return perr.Explain(perr.InvalidHTTPHeader, "upstream sent more than "+strconv.Itoa(MaxInterimResponses)+
				" interim (1xx) responses").AsUp()
		}
		if err := p.forwardInterim(st, resp, pump); err != nil {
			return err
		}
	}
	s.Timings.UpstreamHead = nowSince(s.Timings.Start)
	s.upstreamResp = resp
	switchProto := resp.Status == 101
	if switchProto && !upgrade {
		return perr.Explain(perr.InvalidHTTPHeader, "upstream switched protocols without an Upgrade request").AsUp()
	}
	stripHopByHop(&resp.Fields, switchProto)
	if switchProto && st.h2s != nil {
		if err := h2WebSocketAccepted(resp, st.wsKey); err != nil {
			return err
		}
	}
	tunnelUp := extConnect && resp.Status >= 200 && resp.Status < 300

	if s.cache.entry != nil && !switchProto {
		if done, err := p.cacheUpstreamHead(st, up, resp, pump, ctx); done || err != nil {
			return err
		}
	}
	return p.forwardResponse(st, up, h1cs, resp, pump, switchProto, tunnelUp, ctx)
}

// forwardInterim sends an interim (1xx) response other than 100 Continue down, through the
// modules' response header phase. It is a function of its own, not inlined, so that its stack
// space is not in proxyExchange's frame, which lies on every request's path.
//
//go:noinline
func (p *Proxy[C]) forwardInterim(st *conn[C], resp *header.ResponseHeader, pumping bool) error {
	s := &st.sess
	stripHopByHop(&resp.Fields, false)
	if err := st.phases(pumping, func() error { return s.modulesResponseHeader(resp, false) }); err != nil {
		return err
	}
	return s.writeHeader(resp, false)
}

// forwardResponse runs the response phases on the final response head and sends the response
// down: the head, then the body piece by piece through the body phases, or the tunnel of a
// protocol switch. It is proxyExchange's second half, a function of its own so that the
// stack space of its phases and body loop is not in proxyExchange's frame, which lies under
// the wait for the response head.
func (p *Proxy[C]) forwardResponse(st *conn[C], up upstreamSession, h1cs *h1.ClientSession, resp *header.ResponseHeader,
	pumping, switchProto, tunnelUp bool, ctx *C) error {
	s := &st.sess
	err := st.phases(pumping, func() error {
		if err := p.app.UpstreamResponseFilter(s, resp, ctx); err != nil {
			return err
		}
		if s.cache.entry != nil && !switchProto {
			if err := p.cacheAdmit(st, resp, ctx); err != nil {
				return err
			}
		}
		if err := p.app.ResponseFilter(s, resp, ctx); err != nil {
			return err
		}
		return s.modulesResponseHeader(resp, false)
	})
	if err != nil {
		return err
	}
	if err := s.writeHeader(resp, false); err != nil {
		return err
	}
	if tunnelUp {
		return p.tunnelH2H2(st, up.(*h2Up).cs(), ctx)
	}
	if switchProto {
		if h1cs == nil {
			return perr.Explain(perr.InvalidHTTPHeader, "switching protocols over HTTP/2").AsUp()
		}
		if st.h2s != nil {
			return p.tunnelH2(st, h1cs, ctx)
		}
		return p.tunnel(st, h1cs, ctx)
	}

	// The filters take *[]byte: a field of the connection state, so that passing its address
	// through the interface does not allocate a new variable per piece.
	body := &st.respPiece
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
		var d1, d2 time.Duration
		var trailers *header.Fields
		ferr := st.phases(pumping, func() (err error) {
			if d1, err = p.app.UpstreamResponseBodyFilter(s, body, eos, ctx); err != nil {
				return err
			}
			if s.cache.entry != nil {
				p.cacheBody(st, body, eos)
			}
			if d2, err = p.app.ResponseBodyFilter(s, body, eos, ctx); err != nil {
				return err
			}
			if eos {
				if trailers, err = p.responseTrailers(s, up, ctx, body); err != nil {
					return err
				}
			}
			return s.modulesResponseBody(body, eos)
		})
		if ferr != nil {
			return ferr
		}
		if d := d1 + d2; d > 0 {
			time.Sleep(d)
		}
		if err := s.writeDown(*body, eos, trailers); err != nil {
			return err
		}
		if eos {
			*body = nil
			return nil
		}
	}
}

// responseTrailers runs the trailer phases on the upstream response's trailers. Bytes that
// ResponseTrailerFilter returns replace the trailers: they are appended to *body.
func (p *Proxy[C]) responseTrailers(s *Session, up upstreamSession, ctx *C, body *[]byte) (*header.Fields, error) {
	trailers := up.Trailers()
	if trailers.Len() == 0 {
		return nil, nil
	}
	if err := p.app.UpstreamResponseTrailerFilter(s, trailers, ctx); err != nil {
		return nil, err
	}
	extra, err := p.app.ResponseTrailerFilter(s, trailers, ctx)
	if err != nil || extra == nil {
		return trailers, err
	}
	*body = append(append([]byte(nil), *body...), extra...)
	return nil, nil
}

// runPump runs pumpBody on its own goroutine and reports its result, turning a panic in a
// body filter into an error of the request instead of a crash of the process.
func (p *Proxy[C]) runPump(st *conn[C], up upstreamSession, ctx *C, replay bool) {
	var err error
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("panic in a request body phase", "panic", r, "stack", string(debug.Stack()))
			up.abort()
			err = perr.Explain(perr.InternalError, "panic in a request body phase").AsIn()
		}
		st.pumpErr <- err
	}()
	err = p.pumpBody(st, up, ctx, replay)
}

// pumpBody streams the downstream request body upstream, replaying the retry buffer first on a
// retry. It runs on its own goroutine; phases it calls hold st.phaseMu.
func (p *Proxy[C]) pumpBody(st *conn[C], cs upstreamSession, ctx *C, replay bool) error {
	s := &st.sess
	ds := s.down
	if replay {
		// A retry happens only when the whole body was read and fits the retry buffer.
		if err := cs.WriteBody(s.retryBuf); err != nil {
			return err
		}
		return cs.FinishRequest(ds.Trailers())
	}
	body := &st.reqPiece
	for {
		var err error
		*body, err = ds.ReadBody()
		if err != nil && err != io.EOF {
			cs.abort() // wake the response reader: the exchange cannot complete
			return err
		}
		eos := err == io.EOF || ds.BodyDone()
		if len(*body) > 0 || eos {
			ferr := st.phases(true, func() error {
				if err := s.modulesRequestBody(body, eos); err != nil {
					return err
				}
				return p.app.RequestBodyFilter(s, body, eos, ctx)
			})
			if ferr != nil {
				cs.abort()
				return perrOf(ferr, perr.Internal)
			}
			if !s.retryTrunc {
				if len(s.retryBuf)+len(*body) <= RetryBufferLimit {
					s.retryBuf = append(s.retryBuf, *body...)
				} else {
					s.retryTrunc = true
				}
			}
			if err := cs.WriteBody(*body); err != nil {
				return err
			}
			if !eos {
				if err := cs.Flush(); err != nil {
					return err
				}
			}
		}
		if eos {
			break
		}
	}
	return cs.FinishRequest(ds.Trailers())
}

// joinPump waits for the body goroutine. With interrupt it first stops it: the downstream
// read and the upstream write fail at once. A body cut short that way leaves an HTTP/1
// downstream connection unusable and the request impossible to replay; a body that had been
// read entirely keeps both possible.
func (p *Proxy[C]) joinPump(st *conn[C], up upstreamSession, interrupt bool) error {
	select {
	case err := <-st.pumpErr:
		return err
	default:
	}
	if interrupt {
		// The downstream read is cut only while the body is still being read. A session whose
		// read was interrupted serves no further request, and a body read whole needs no
		// cutting: the pump is then past its reads, and stopRequest cuts its upstream writes.
		// (A body that ends just after this check costs the connection, nothing more.)
		if !st.sess.down.BodyDone() {
			if st.ds != nil {
				st.ds.InterruptRead()
			} else {
				st.h2s.AbortBody()
			}
		}
		up.stopRequest()
		err := <-st.pumpErr
		if !st.sess.down.BodyDone() {
			// The body was cut short: it can neither be replayed nor drained.
			st.sess.retryTrunc = true
			if st.ds != nil {
				st.ds.SetKeepAlive(false)
			}
		}
		return err
	}
	return <-st.pumpErr
}

func isDownstream(err error) bool {
	e, ok := perr.As(err)
	return ok && e.Source == perr.Downstream
}

func isInternal(err error) bool {
	e, ok := perr.As(err)
	return ok && e.Source == perr.Internal
}

// reusedOnly marks a failure to write on a connection as retryable when it was a reused one:
// the server may have closed it while it sat in the pool.
func reusedOnly(err error) error {
	if e, ok := perr.As(err); ok && (e.Type == perr.WriteError || e.Type == perr.ConnectionClosed) {
		e.Retry = perr.ReusedOnly
	}
	return err
}

func ioErr(err error, src perr.Source) error {
	e := perr.Because(perr.WriteError, "", err)
	e.Source = src
	return e
}
