package perr

import (
	"errors"
	"syscall"
)

// FromDialError classifies an error from dialing an upstream (net.Dial,
// net.Dialer.DialContext, or a TLS dial before the handshake) into an
// Upstream *Error with err as its cause and Retry(false), following the
// reference's OS error mapping:
//
//	ECONNREFUSED                           ConnectRefused
//	a timeout (Timeout() true, ETIMEDOUT)  ConnectTimedout
//	EADDRNOTAVAIL                          BindError
//	EPERM, EADDRINUSE                      InternalError
//	ENETUNREACH, EHOSTUNREACH              ConnectNoRoute
//	anything else                          ConnectError
//
// Connect errors are not retryable unless the caller marks them so. It
// returns nil for a nil err; do not return that nil *Error as an error.
func FromDialError(err error) *Error {
	if err == nil {
		return nil
	}
	return &Error{Type: dialErrorType(err), Source: Upstream, Cause: err}
}

func dialErrorType(err error) ErrorType {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return ConnectRefused
	case isTimeout(err):
		return ConnectTimedout
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return BindError
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EADDRINUSE):
		return InternalError
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return ConnectNoRoute
	}
	return ConnectError
}

// isTimeout reports whether any error in err's chain says it is a timeout;
// this covers net.Error, os.ErrDeadlineExceeded, context.DeadlineExceeded and
// the ETIMEDOUT errno.
func isTimeout(err error) bool {
	for err != nil {
		if t, ok := err.(interface{ Timeout() bool }); ok && t.Timeout() {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if isTimeout(e) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}
