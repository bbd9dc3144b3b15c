package h2

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"golang.org/x/net/http2"

	"github.com/pingora-go/pingora/perr"
)

// goAwayState is what a ClientConn learned of a GOAWAY from the server.
type goAwayState struct {
	seen bool
	code http2.ErrCode
}

// clientError turns an error of x/net's client into a *perr.Error with source Upstream and
// the reference's retry semantics: a refused stream, a stream the server never processed
// because of a GOAWAY with NO_ERROR, and a connection the peer or this side found to break the
// protocol are safe to retry; HTTP_1_1_REQUIRED asks for a retry over HTTP/1.1; a failing
// connection before the response head is ReusedOnly; anything else is final.
func clientError(err error, ga goAwayState, beforeHead bool, what string) *perr.Error {
	if pe, ok := perr.As(err); ok {
		return pe
	}
	var se http2.StreamError
	var ge http2.GoAwayError
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &se):
		return codeError(se.Code, err, what, false)
	case errors.As(err, &ge):
		return codeError(ge.ErrCode, err, what, true)
	case errors.As(err, &ce):
		e := codeError(http2.ErrCode(ce), err, what, true)
		if http2.ErrCode(ce) == http2.ErrCodeProtocol {
			e.Retry = perr.Retry(true)
		}
		return e
	case strings.Contains(err.Error(), "client conn not usable"):
		// x/net's answer when the connection closed while the request waited for a stream
		// slot: the request was never sent (its error value is not exported).
		return perr.Because(perr.H2Error, what, err).AsUp().SetRetry(true)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return perr.Because(perr.ReadTimedout, what, err).AsUp()
	case ga.seen:
		return codeError(ga.code, err, what, true)
	}
	var ne net.Error
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) ||
		errors.Is(err, net.ErrClosed) {
		t := perr.ReadError
		if errors.As(err, &ne) && ne.Timeout() {
			t = perr.ReadTimedout
		}
		e := perr.Because(t, what, err).AsUp()
		if beforeHead {
			e.Retry = perr.ReusedOnly
		}
		return e
	}
	return perr.Because(perr.H2Error, what, err).AsUp()
}

// codeError maps an HTTP/2 error code of a RST_STREAM (goAway false) or GOAWAY (goAway true).
func codeError(code http2.ErrCode, err error, what string, goAway bool) *perr.Error {
	switch {
	case code == http2.ErrCodeHTTP11Required:
		return perr.Because(perr.H2Downgrade, what, err).AsUp().SetRetry(true)
	case code == http2.ErrCodeRefusedStream:
		return perr.Because(perr.H2Error, what, err).AsUp().SetRetry(true)
	case goAway && code == http2.ErrCodeNo:
		return perr.Because(perr.H2Error, what, err).AsUp().SetRetry(true)
	case goAway && code == http2.ErrCodeProtocol:
		return perr.Because(perr.InvalidH2, what, err).AsUp().SetRetry(true)
	}
	return perr.Because(perr.H2Error, what, err).AsUp()
}
