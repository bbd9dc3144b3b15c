// Package h1 is the HTTP/1.x codec of pingora-go: a strict, allocation-free parser of request
// and response heads, body framing (Content-Length, chunked, read-until-close), and the server
// and client sessions that speak HTTP/1.1 over a connection.
//
// Parsing follows RFC 9112 and refuses anything a downstream or upstream peer could read
// differently: see the package's Limits and the errors it returns. Heads are parsed in place:
// the fields of a parsed head are slices of the session's read buffer.
//
// Line endings: requests must use CRLF everywhere (a bare LF or a bare CR is rejected with 400),
// because a proxy that accepts a line ending its upstream does not is a request-smuggling
// vector. Response heads from upstream servers may end their lines with a bare LF (RFC 9112
// §2.2 allows a recipient to accept it); the proxy re-serializes them with CRLF. Chunked framing
// lines must use CRLF in both directions.
package h1

import (
	"bytes"
	"encoding/binary"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
)

// Limits bounds what a parser accepts. The zero value of a field means its default.
type Limits struct {
	// MaxRequestLine is the longest request line or status line in bytes (default 8192).
	// A longer request line is answered 414.
	MaxRequestLine int
	// MaxHeaders is the most field lines in a head or in a trailer section (default 256).
	MaxHeaders int
	// MaxHeadSize is the largest head in bytes, start line and empty line included
	// (default 1,048,575). A larger request head is answered 431.
	MaxHeadSize int
	// MaxChunkLine is the longest chunk-size line, extensions included (default 4096).
	MaxChunkLine int
	// MaxTrailerSize is the largest trailer section in bytes (default 65536).
	MaxTrailerSize int
}

// The defaults of Limits, taken from the reference where it has one.
const (
	DefaultMaxRequestLine = 8192
	DefaultMaxHeaders     = 256
	DefaultMaxHeadSize    = 1048575
	DefaultMaxChunkLine   = 4096
	DefaultMaxTrailerSize = 65536
)

func (l *Limits) requestLine() int { return orDefault(l.MaxRequestLine, DefaultMaxRequestLine) }
func (l *Limits) headers() int     { return orDefault(l.MaxHeaders, DefaultMaxHeaders) }
func (l *Limits) headSize() int    { return orDefault(l.MaxHeadSize, DefaultMaxHeadSize) }
func (l *Limits) chunkLine() int   { return orDefault(l.MaxChunkLine, DefaultMaxChunkLine) }
func (l *Limits) trailerSize() int { return orDefault(l.MaxTrailerSize, DefaultMaxTrailerSize) }

func orDefault(v, d int) int {
	if v > 0 {
		return v
	}
	return d
}

var defaultLimits Limits

// Byte classes, as in RFC 9110 §5.6.2 (tchar) and §5.5 (field-vchar, obs-text).
var (
	isToken      [256]bool
	isValueByte  [256]bool // field-vchar, SP, HTAB and obs-text
	isTargetByte [256]bool // visible ASCII and obs-text: what a request-target may carry
)

func init() {
	for c := 0; c < 256; c++ {
		b := byte(c)
		isToken[c] = 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
			bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), b) >= 0
		isValueByte[c] = b == '\t' || b >= 0x20 && b != 0x7f
		isTargetByte[c] = b > 0x20 && b != 0x7f
	}
}

// errIncomplete says the buffer does not hold a whole head yet.
var errIncomplete = perr.Explain(perr.InvalidHTTPHeader, "incomplete head")

func badRequest(reason string) error {
	return perr.Explain(perr.InvalidHTTPHeader, reason).AsDown()
}

func statusError(code uint16, reason string) error {
	e := perr.Explain(perr.HTTPStatus(code), reason).AsDown()
	e.Cause = perr.Explain(perr.InvalidHTTPHeader, reason)
	return e
}

func badResponse(reason string) error {
	return perr.Explain(perr.InvalidHTTPHeader, reason).AsUp()
}

// findHeadEnd returns the length of the head at the start of buf (up to and including the empty
// line that ends it), or -1 if buf does not hold the end yet. The scan starts at from, a value a
// previous call on a prefix of buf returned through next, so a head that arrives in pieces is
// scanned once.
func findHeadEnd(buf []byte, from int) (end, next int) {
	i := from
	for {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return -1, len(buf)
		}
		i += j + 1
		if i < len(buf) && buf[i] == '\n' {
			return i + 1, i + 1
		}
		if i+1 < len(buf) && buf[i] == '\r' && buf[i+1] == '\n' {
			return i + 2, i + 2
		}
		if i >= len(buf)-1 {
			// Too few bytes after this LF to tell; look at them again next time.
			return -1, i - 1
		}
	}
}

// skipEmptyLines drops the empty lines (CRLF) that RFC 9112 §2.2 lets a client send before a
// request line. It returns how many bytes to skip.
func skipEmptyLines(buf []byte) int {
	n := 0
	for n+1 < len(buf) && buf[n] == '\r' && buf[n+1] == '\n' {
		n += 2
	}
	return n
}

// ParseRequest parses the request head at the start of buf into req, referring into buf. It
// returns the head's length, or an error: a *perr.Error of type InvalidHTTPHeader (or an
// HTTPStatus type for 414, 431 and 505 cases) with source Downstream. A buffer that holds only
// part of a head is an error too; sessions find the end of the head before parsing.
func ParseRequest(buf []byte, req *header.RequestHeader, lim *Limits) (int, error) {
	if lim == nil {
		lim = &defaultLimits
	}
	start := skipEmptyLines(buf)
	// One pass: each line is found and checked once, and the empty line ends the head.
	head := buf[start:]
	eol := bytes.IndexByte(head, '\n')
	if eol < 0 {
		return 0, incompleteRequest(head, lim)
	}
	if eol > lim.requestLine() {
		return 0, statusError(414, "request line too long")
	}
	req.Reset()
	if eol < 1 || head[eol-1] != '\r' {
		return 0, badRequest("request line not terminated by CRLF")
	}
	line := head[:eol-1]
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return 0, badRequest("malformed request line")
	}
	method := line[:sp1]
	for _, c := range method {
		if !isToken[c] {
			return 0, badRequest("invalid character in method")
		}
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return 0, badRequest("malformed request line")
	}
	target := rest[:sp2]
	if !allIn(target, &isTargetByte, 0x21) {
		return 0, badRequest("invalid character in request target")
	}
	v, err := parseVersion(rest[sp2+1:])
	if err != nil {
		return 0, err
	}
	req.SetStartLine(method, target, v)
	n, err := parseFields(head[eol+1:], &req.Fields, lim.headers(), lim.headSize()-eol-1, true)
	if err == errIncomplete {
		return 0, incompleteRequest(head, lim)
	}
	if err != nil {
		return 0, err
	}
	return start + eol + 1 + n, nil
}

// incompleteRequest is the verdict on a request head whose end is not in head yet: 414 or 431
// when what arrived already breaks a limit, else errIncomplete.
func incompleteRequest(head []byte, lim *Limits) error {
	if requestLineTooLong(head, lim.requestLine()) {
		return statusError(414, "request line too long")
	}
	if len(head) > lim.headSize() {
		return statusError(431, "request head too large")
	}
	return errIncomplete
}

// requestLineTooLong reports whether b, the start of a request head whose end has not arrived,
// already shows a request line longer than max: the same verdict ParseRequest gives once the
// line is complete, reached without waiting for the rest of it.
func requestLineTooLong(b []byte, max int) bool {
	return len(b) > max && bytes.IndexByte(b[:max+1], '\n') < 0
}

func parseVersion(b []byte) (header.Version, error) {
	if len(b) == 8 && string(b[:5]) == "HTTP/" && b[6] == '.' && isDigit(b[5]) && isDigit(b[7]) {
		switch {
		case b[5] == '1' && b[7] == '1':
			return header.HTTP11, nil
		case b[5] == '1' && b[7] == '0':
			return header.HTTP10, nil
		}
		return 0, statusError(505, "unsupported HTTP version "+string(b))
	}
	return 0, badRequest("invalid HTTP version")
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseFields parses the field lines at the start of b up to and including the empty line that
// ends them, and returns the length of that section: errIncomplete when b does not hold its
// end, 431 when it is longer than max bytes or has more than maxFields lines. strict refuses
// bare LF line endings.
func parseFields(b []byte, f *header.Fields, maxFields, max int, strict bool) (int, error) {
	n := 0
	for {
		eol := bytes.IndexByte(b[n:], '\n')
		if eol < 0 {
			return 0, errIncomplete
		}
		line := b[n : n+eol]
		n += eol + 1
		if n > max {
			return 0, statusError(431, "head too large")
		}
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		} else if strict {
			return 0, badRequest("bare LF in field section")
		}
		if len(line) == 0 {
			return n, nil
		}
		if f.Len() >= maxFields {
			return 0, statusError(431, "too many header fields")
		}
		name, value, err := parseFieldLine(line)
		if err != nil {
			return 0, err
		}
		f.AppendRef(name, value)
	}
}

// parseFieldLine splits "name: value" (line ending removed) and validates both parts.
func parseFieldLine(line []byte) (name, value []byte, err error) {
	i := 0
	for i < len(line) && isToken[line[i]] {
		i++
	}
	if i == len(line) || line[i] != ':' {
		switch {
		case i == 0 && (line[0] == ' ' || line[0] == '\t'):
			return nil, nil, badRequest("obsolete line folding")
		case i < len(line) && (line[i] == ' ' || line[i] == '\t'):
			return nil, nil, badRequest("whitespace between field name and colon")
		case i < len(line) && line[i] == 0:
			return nil, nil, badRequest("NUL in field name")
		}
		return nil, nil, badRequest("invalid character in field name")
	}
	if i == 0 {
		return nil, nil, badRequest("empty field name")
	}
	name = line[:i]
	v := line[i+1:]
	if !allIn(v, &isValueByte, 0x20) {
		if bytes.IndexByte(v, '\r') >= 0 {
			return nil, nil, badRequest("bare CR in field value")
		}
		return nil, nil, badRequest("control character in field value")
	}
	return name, header.TrimOWS(v), nil
}

// allIn reports whether every byte of b is in the class table. The class must hold every byte
// from lo to 0xff except DEL (0x7f), plus possibly some below lo (HTAB for field values): then
// eight bytes at a time can be checked for a byte below lo or a DEL, and only a word that has
// one is looked at byte by byte. Header values are long and such words rare.
func allIn(b []byte, class *[256]bool, lo byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	below, del := ones*uint64(lo), ones*uint64(0x7f)
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		y := x ^ del
		// Nonzero exactly when some byte is below lo (lo <= 0x80), or zero after y's xor.
		if ((x-below)&^x|(y-ones)&^y)&highs != 0 {
			for _, c := range b[:8] {
				if !class[c] {
					return false
				}
			}
		}
		b = b[8:]
	}
	for _, c := range b {
		if !class[c] {
			return false
		}
	}
	return true
}

// ParseResponse parses the response head at the start of buf into resp, referring into buf.
// It returns the head's length or an error with source Upstream. Bare LF line endings are
// accepted here (see the package comment).
func ParseResponse(buf []byte, resp *header.ResponseHeader, lim *Limits) (int, error) {
	if lim == nil {
		lim = &defaultLimits
	}
	eol := bytes.IndexByte(buf, '\n')
	if eol < 0 {
		return 0, incompleteResponse(buf, lim)
	}
	if eol > lim.requestLine() {
		return 0, badResponse("status line too long")
	}
	resp.Reset()
	line := buf[:eol]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	// status-line = HTTP-version SP status-code SP [ reason-phrase ]
	// A missing SP after the code (an empty reason) is tolerated: old servers send it.
	if len(line) < 12 || line[8] != ' ' || len(line) > 12 && line[12] != ' ' {
		return 0, badResponse("malformed status line")
	}
	var v header.Version
	switch string(line[:8]) {
	case "HTTP/1.1":
		v = header.HTTP11
	case "HTTP/1.0":
		v = header.HTTP10
	default:
		return 0, badResponse("invalid HTTP version in status line")
	}
	if !isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) || line[9] == '0' {
		return 0, badResponse("invalid status code")
	}
	code := int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	var reason []byte
	if len(line) > 13 {
		reason = line[13:]
		if !allIn(reason, &isValueByte, 0x20) {
			return 0, badResponse("control character in reason phrase")
		}
	} else {
		reason = line[len(line):]
	}
	resp.SetStatusLine(code, reason, v)
	n, err := parseFields(buf[eol+1:], &resp.Fields, lim.headers(), lim.headSize()-eol-1, false)
	if err == errIncomplete {
		return 0, incompleteResponse(buf, lim)
	}
	if err != nil {
		// A limit the upstream broke is a bad response (502), not a status for the client.
		return 0, perr.Because(perr.InvalidHTTPHeader, "invalid response field section", err).AsUp()
	}
	return eol + 1 + n, nil
}

// incompleteResponse is the verdict on a response head whose end is not in buf yet.
func incompleteResponse(buf []byte, lim *Limits) error {
	if requestLineTooLong(buf, lim.requestLine()) {
		return badResponse("status line too long")
	}
	if len(buf) > lim.headSize() {
		return badResponse("response head too large")
	}
	return errIncomplete
}
