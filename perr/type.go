package perr

// ErrorType says what went wrong, independent of where: a connect timeout, a
// malformed header, an HTTP status a filter wants returned, or a type a user
// defined with NewType.
//
// ErrorType is comparable with ==; two values are equal when they are the same
// predefined type, the same HTTPStatus code, or custom types built with the
// same constructor, name and code. The zero value is UnknownError.
//
// ErrorType implements error only so that it can be the target of errors.Is:
// errors.Is(err, perr.ConnectTimedout) reports whether any *Error in err's
// chain has that Type. It is not meant to be returned as an error by itself.
type ErrorType struct {
	name string
	code uint16
	kind typeKind
}

type typeKind uint8

const (
	kindBuiltin typeKind = iota
	kindStatus
	kindCustom
	kindCustomCode
)

func builtin(name string) ErrorType { return ErrorType{name: name} }

// The predefined types, grouped as in the reference. Their names are their
// Go identifiers.
var (
	// ConnectTimedout means the TCP (or whole connect) deadline passed.
	ConnectTimedout = builtin("ConnectTimedout")
	// ConnectRefused means the peer answered the SYN with a reset (ECONNREFUSED).
	ConnectRefused = builtin("ConnectRefused")
	// ConnectNoRoute means no route to the peer (ENETUNREACH, EHOSTUNREACH) or no
	// peer could be chosen.
	ConnectNoRoute = builtin("ConnectNoRoute")
	// TLSWantX509Lookup means the TLS handshake paused for a certificate lookup.
	TLSWantX509Lookup = builtin("TLSWantX509Lookup")
	// TLSHandshakeFailure means the TLS handshake failed.
	TLSHandshakeFailure = builtin("TLSHandshakeFailure")
	// TLSHandshakeTimedout means the TLS handshake did not finish in time.
	TLSHandshakeTimedout = builtin("TLSHandshakeTimedout")
	// InvalidCert means the peer's certificate did not verify.
	InvalidCert = builtin("InvalidCert")
	// HandshakeError means any other handshake failure.
	HandshakeError = builtin("HandshakeError")
	// ConnectError means a connect failure no other type describes.
	ConnectError = builtin("ConnectError")
	// BindError means the local address could not be bound (EADDRNOTAVAIL).
	BindError = builtin("BindError")
	// AcceptError means accepting a downstream connection failed.
	AcceptError = builtin("AcceptError")
	// SocketError means creating or configuring a socket failed.
	SocketError = builtin("SocketError")
	// ConnectProxyFailure means the CONNECT proxy in front of the peer refused or failed.
	ConnectProxyFailure = builtin("ConnectProxyFailure")

	// InvalidHTTPHeader means a request or response head could not be parsed or is not allowed.
	InvalidHTTPHeader = builtin("InvalidHTTPHeader")
	// H1Error means an HTTP/1 protocol error no other type describes.
	H1Error = builtin("H1Error")
	// H2Error means an HTTP/2 protocol error no other type describes.
	H2Error = builtin("H2Error")
	// H2Downgrade means the HTTP/2 peer asked to retry the request over HTTP/1.1.
	H2Downgrade = builtin("H2Downgrade")
	// InvalidH2 means the peer sent invalid HTTP/2 frames.
	InvalidH2 = builtin("InvalidH2")

	// ReadError means reading from an established connection failed.
	ReadError = builtin("ReadError")
	// WriteError means writing to an established connection failed.
	WriteError = builtin("WriteError")
	// ReadTimedout means a read on an established connection timed out.
	ReadTimedout = builtin("ReadTimedout")
	// WriteTimedout means a write on an established connection timed out.
	WriteTimedout = builtin("WriteTimedout")
	// ConnectionClosed means the peer closed the connection while more was expected.
	ConnectionClosed = builtin("ConnectionClosed")

	// FileOpenError means opening a file failed.
	FileOpenError = builtin("FileOpenError")
	// FileCreateError means creating a file failed.
	FileCreateError = builtin("FileCreateError")
	// FileReadError means reading a file failed.
	FileReadError = builtin("FileReadError")
	// FileWriteError means writing a file failed.
	FileWriteError = builtin("FileWriteError")

	// InternalError means a bug or an internal failure of the proxy itself.
	InternalError = builtin("InternalError")
	// UnknownError is the catch-all, and the zero value of ErrorType.
	UnknownError = ErrorType{}
)

// HTTPStatus returns the type of an error that should be answered with the
// HTTP status code; see StatusFor. Its Name is "HTTPStatus" for every code.
func HTTPStatus(code uint16) ErrorType {
	return ErrorType{name: "HTTPStatus", code: code, kind: kindStatus}
}

// NewType returns a user-defined type (the reference's Custom). Types with the
// same name are equal; a custom type never equals a predefined one, even when
// the names match. Runtime detail belongs in the Error's Context, not in name.
func NewType(name string) ErrorType {
	return ErrorType{name: name, kind: kindCustom}
}

// NewTypeCode returns a user-defined type carrying a numeric code (the
// reference's CustomCode). The code is the user's own: StatusFor does not
// treat it as an HTTP status.
func NewTypeCode(name string, code uint16) ErrorType {
	return ErrorType{name: name, code: code, kind: kindCustomCode}
}

// Name returns the type's name as shown in error messages.
func (t ErrorType) Name() string {
	if t == UnknownError {
		return "UnknownError"
	}
	return t.name
}

// HTTPCode returns the code of an HTTPStatus or NewTypeCode type, else 0.
func (t ErrorType) HTTPCode() uint16 {
	if t.kind == kindStatus || t.kind == kindCustomCode {
		return t.code
	}
	return 0
}

// IsHTTPStatus reports whether t was made by HTTPStatus.
func (t ErrorType) IsHTTPStatus() bool { return t.kind == kindStatus }

// Error returns t.Name(). It exists so that t can be an errors.Is target.
func (t ErrorType) Error() string { return t.Name() }
