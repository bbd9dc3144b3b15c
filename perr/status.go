package perr

// StatusFor returns the HTTP status the proxy answers with when a request
// fails with err before a response was sent (the reference's default
// fail_to_proxy), or 0 for "send nothing, just close". The first *Error in
// err's chain decides:
//
//   - Type HTTPStatus(code): code. Codes of NewTypeCode types are the user's
//     own and are not used as statuses.
//   - Source Upstream: 504 for the timeouts ConnectTimedout,
//     TLSHandshakeTimedout, ReadTimedout and WriteTimedout, else 502. The
//     reference answers 502 for all of them; 504 Gateway Timeout is what
//     RFC 9110 names for a proxy whose upstream did not answer in time.
//   - Source Downstream: 0 for ReadError, WriteError and ConnectionClosed
//     (the client is gone), 408 for ReadTimedout (the client was too slow
//     sending its head or body; the reference answers 400), else 400.
//   - Source Internal or Unset: 500.
//
// An err with no *Error in its chain gives 500; a nil err gives 0.
func StatusFor(err error) int {
	if err == nil {
		return 0
	}
	e, ok := As(err)
	if !ok {
		return 500
	}
	if e.Type.IsHTTPStatus() {
		return int(e.Type.HTTPCode())
	}
	switch e.Source {
	case Upstream:
		switch e.Type {
		case ConnectTimedout, TLSHandshakeTimedout, ReadTimedout, WriteTimedout:
			return 504
		}
		return 502
	case Downstream:
		switch e.Type {
		case ReadError, WriteError, ConnectionClosed:
			return 0
		case ReadTimedout:
			// The client was too slow sending its head or body (RFC 9110 §15.5.9).
			return 408
		}
		return 400
	}
	return 500
}
