package header

import (
	"bytes"
	"strconv"
)

// Version is an HTTP protocol version.
type Version uint8

// The protocol versions a head can carry.
const (
	// VersionUnknown is the zero value: no version set yet. It is written as HTTP/1.1.
	VersionUnknown Version = 0
	// HTTP10 is HTTP/1.0.
	HTTP10 Version = 10
	// HTTP11 is HTTP/1.1.
	HTTP11 Version = 11
	// HTTP2 is HTTP/2; an HTTP/1 serialization writes it as HTTP/1.1.
	HTTP2 Version = 20
)

// String returns the version as written on an HTTP/1 start line ("HTTP/1.1"), or "HTTP/2".
func (v Version) String() string {
	switch v {
	case HTTP10:
		return "HTTP/1.0"
	case HTTP11:
		return "HTTP/1.1"
	case HTTP2:
		return "HTTP/2"
	}
	return "HTTP/?"
}

// wire returns the version for an HTTP/1 start line: anything but 1.0 is written as 1.1,
// because that is the only other version an HTTP/1 peer can receive.
func (v Version) wire() string {
	if v == HTTP10 {
		return "HTTP/1.0"
	}
	return "HTTP/1.1"
}

// RequestHeader is a request head: method, request-target, version and fields. The zero value
// is an empty head; set at least the method and target before serializing it.
type RequestHeader struct {
	Fields
	// Version is the protocol version the request arrived with or will be sent as.
	Version Version

	method []byte
	target []byte
}

// Method returns the request method exactly as received (methods are case-sensitive).
func (r *RequestHeader) Method() []byte { return r.method }

// IsMethod reports whether the method is m, compared case-sensitively as RFC 9110 requires.
func (r *RequestHeader) IsMethod(m string) bool { return string(r.method) == m }

// SetMethod replaces the method.
func (r *RequestHeader) SetMethod(m string) { r.method = r.store(m) }

// Target returns the raw request-target: origin-form path and query ("/a?b"), absolute-form,
// authority-form (CONNECT) or "*".
func (r *RequestHeader) Target() []byte { return r.target }

// SetTarget replaces the request-target as raw bytes; it is not validated here.
func (r *RequestHeader) SetTarget(t string) { r.target = r.store(t) }

// Path returns the request-target without its query.
func (r *RequestHeader) Path() []byte {
	if i := bytes.IndexByte(r.target, '?'); i >= 0 {
		return r.target[:i]
	}
	return r.target
}

// Query returns the part of the request-target after the first '?', without it; nil if there
// is none.
func (r *RequestHeader) Query() []byte {
	if i := bytes.IndexByte(r.target, '?'); i >= 0 {
		return r.target[i+1:]
	}
	return nil
}

// Host returns the value of the first Host field, or nil.
func (r *RequestHeader) Host() []byte {
	v, _ := r.Get("Host")
	return v
}

// SetStartLine sets method, target and version to the given slices without copying them; the
// HTTP/1 parser uses it to refer into its read buffer.
func (r *RequestHeader) SetStartLine(method, target []byte, v Version) {
	r.method, r.target, r.Version = method, target, v
}

// Reset empties the head for reuse.
func (r *RequestHeader) Reset() {
	r.Fields.Reset()
	r.method, r.target, r.Version = nil, nil, VersionUnknown
}

// CopyFrom makes r an independent deep copy of src.
func (r *RequestHeader) CopyFrom(src *RequestHeader) {
	r.Fields.CopyFrom(&src.Fields)
	r.method = r.storeBytes(src.method)
	r.target = r.storeBytes(src.target)
	r.Version = src.Version
}

// AppendH1 appends the head in HTTP/1 wire form, including the empty line that ends it.
// A version other than 1.0 is written as HTTP/1.1.
func (r *RequestHeader) AppendH1(dst []byte) []byte {
	dst = append(dst, r.method...)
	dst = append(dst, ' ')
	dst = append(dst, r.target...)
	dst = append(dst, ' ')
	dst = append(dst, r.Version.wire()...)
	dst = append(dst, '\r', '\n')
	dst = r.Fields.AppendH1(dst)
	return append(dst, '\r', '\n')
}

// String returns the head in HTTP/1 wire form, for logs and tests.
func (r *RequestHeader) String() string { return string(r.AppendH1(nil)) }

// ResponseHeader is a response head: status, reason phrase, version and fields.
type ResponseHeader struct {
	Fields
	// Status is the status code.
	Status int
	// Version is the protocol version the response arrived with or will be sent as.
	Version Version

	reason []byte
}

// Reason returns the reason phrase as received or set, or the standard phrase for the status
// when there is none.
func (r *ResponseHeader) Reason() []byte {
	if r.reason != nil {
		return r.reason
	}
	return []byte(StatusText(r.Status))
}

// SetReason replaces the reason phrase.
func (r *ResponseHeader) SetReason(s string) { r.reason = r.store(s) }

// SetStatus sets the status code and clears a custom reason phrase, so that the standard one
// for code is used.
func (r *ResponseHeader) SetStatus(code int) {
	r.Status = code
	r.reason = nil
}

// SetStatusLine sets the status, reason and version, referring to reason without copying; the
// HTTP/1 parser uses it.
func (r *ResponseHeader) SetStatusLine(code int, reason []byte, v Version) {
	r.Status, r.reason, r.Version = code, reason, v
}

// Reset empties the head for reuse.
func (r *ResponseHeader) Reset() {
	r.Fields.Reset()
	r.Status, r.reason, r.Version = 0, nil, VersionUnknown
}

// CopyFrom makes r an independent deep copy of src.
func (r *ResponseHeader) CopyFrom(src *ResponseHeader) {
	r.Fields.CopyFrom(&src.Fields)
	r.Status, r.Version = src.Status, src.Version
	r.reason = nil
	if src.reason != nil {
		r.reason = r.storeBytes(src.reason)
	}
}

// AppendH1 appends the head in HTTP/1 wire form, including the empty line that ends it.
func (r *ResponseHeader) AppendH1(dst []byte) []byte {
	dst = append(dst, r.Version.wire()...)
	if c := r.Status; c >= 100 && c <= 999 {
		// Every status a head can carry in HTTP/1 has three digits: written without
		// strconv's general path, whose frames were the deepest a proxied request reached.
		dst = append(dst, ' ', byte('0'+c/100), byte('0'+c/10%10), byte('0'+c%10), ' ')
	} else {
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, int64(r.Status), 10)
		dst = append(dst, ' ')
	}
	if r.reason != nil {
		dst = append(dst, r.reason...)
	} else {
		dst = append(dst, StatusText(r.Status)...)
	}
	dst = append(dst, '\r', '\n')
	dst = r.Fields.AppendH1(dst)
	return append(dst, '\r', '\n')
}

// String returns the head in HTTP/1 wire form, for logs and tests.
func (r *ResponseHeader) String() string { return string(r.AppendH1(nil)) }

// NewResponse returns a response head with the given status, HTTP/1.1 and no fields.
func NewResponse(status int) *ResponseHeader {
	return &ResponseHeader{Status: status, Version: HTTP11}
}

// NewRequest returns a request head with the given method and target, HTTP/1.1 and no fields.
func NewRequest(method, target string) *RequestHeader {
	r := &RequestHeader{Version: HTTP11}
	r.SetMethod(method)
	r.SetTarget(target)
	return r
}

// StatusText returns the standard reason phrase for an HTTP status code (RFC 9110 and the
// IANA registry), or "" for an unknown code.
func StatusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 101:
		return "Switching Protocols"
	case 102:
		return "Processing"
	case 103:
		return "Early Hints"
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 202:
		return "Accepted"
	case 203:
		return "Non-Authoritative Information"
	case 204:
		return "No Content"
	case 205:
		return "Reset Content"
	case 206:
		return "Partial Content"
	case 207:
		return "Multi-Status"
	case 300:
		return "Multiple Choices"
	case 301:
		return "Moved Permanently"
	case 302:
		return "Found"
	case 303:
		return "See Other"
	case 304:
		return "Not Modified"
	case 307:
		return "Temporary Redirect"
	case 308:
		return "Permanent Redirect"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 402:
		return "Payment Required"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 406:
		return "Not Acceptable"
	case 407:
		return "Proxy Authentication Required"
	case 408:
		return "Request Timeout"
	case 409:
		return "Conflict"
	case 410:
		return "Gone"
	case 411:
		return "Length Required"
	case 412:
		return "Precondition Failed"
	case 413:
		return "Content Too Large"
	case 414:
		return "URI Too Long"
	case 415:
		return "Unsupported Media Type"
	case 416:
		return "Range Not Satisfiable"
	case 417:
		return "Expectation Failed"
	case 421:
		return "Misdirected Request"
	case 422:
		return "Unprocessable Content"
	case 425:
		return "Too Early"
	case 426:
		return "Upgrade Required"
	case 428:
		return "Precondition Required"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 451:
		return "Unavailable For Legal Reasons"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	case 507:
		return "Insufficient Storage"
	case 511:
		return "Network Authentication Required"
	}
	return ""
}
