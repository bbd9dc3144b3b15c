package h1

import (
	"bytes"
	"io"
	"strconv"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
)

// BodyKind says how a message body is delimited on the wire.
type BodyKind uint8

// The ways an HTTP/1 body is delimited.
const (
	// BodyNone: the message has no body.
	BodyNone BodyKind = iota
	// BodyLength: exactly Content-Length bytes.
	BodyLength
	// BodyChunked: chunked transfer coding, ending with a zero-size chunk and trailers.
	BodyChunked
	// BodyUntilClose: everything until the sender closes the connection (responses only).
	BodyUntilClose
	// BodyRaw: an upgraded (101) or tunneled (CONNECT) connection: opaque bytes both ways
	// until either side closes.
	BodyRaw
)

// String names the kind.
func (k BodyKind) String() string {
	switch k {
	case BodyNone:
		return "none"
	case BodyLength:
		return "content-length"
	case BodyChunked:
		return "chunked"
	case BodyUntilClose:
		return "until-close"
	case BodyRaw:
		return "raw"
	}
	return "unknown"
}

// Framing is the outcome of reading a message's framing fields.
type Framing struct {
	// Kind says how the body is delimited.
	Kind BodyKind
	// Length is the body length when Kind is BodyLength.
	Length int64
}

// parseContentLength parses a Content-Length value: 1*DIGIT, fitting in an int64.
func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// headScan is what one pass over a message's fields found of those that frame its body and
// manage its connection. A head is looked at for several of them (Host, Content-Length,
// Transfer-Encoding, Connection, Date), each of which a lookup of its own would find with a
// pass over all the fields: one pass, with the names told apart by length first, finds them all.
type headScan struct {
	// Content-Length: clSeen when a field is present; clCount valid values (list elements
	// counted), all equal to cl; clErr the first problem found (clInvalid, clConflict).
	cl      int64
	clCount uint8
	clErr   uint8
	clSeen  bool

	hosts uint8 // Host fields
	date  bool  // a Date field
	conn  bool  // a Connection field
	// close and keepAlive: a Connection field lists close, keep-alive.
	close, keepAlive bool

	// Transfer-Encoding: te when a field is present; teCodings codings listed, teChunked of
	// them chunked, teLast when the last one is chunked.
	te        bool
	teLast    bool
	teCodings uint8
	teChunked uint8
	// The counts stop at 255, which the checks on them (none, one, more than one) tell apart
	// from every smaller count as well as the exact count would: the scan is 24 bytes, small
	// enough for the frames of the functions that keep it.
}

// Content-Length problems, headScan.clErr.
const (
	clInvalid = 1 + iota
	clConflict
)

// inc8 is n+1, stopping at 255.
func inc8(n uint8) uint8 {
	if n < 255 {
		n++
	}
	return n
}

// scanHead makes one pass over f. It is a function of its own, not inlined, so that the pass's
// stack space is not in the frames of the session methods that call it on every message.
//
//go:noinline
func scanHead(f *header.Fields) (h headScan) {
	for _, fl := range f.All() {
		switch len(fl.Name) {
		case 4:
			if header.EqualFold(fl.Name, "Host") {
				h.hosts = inc8(h.hosts)
			} else if header.EqualFold(fl.Name, "Date") {
				h.date = true
			}
		case 10:
			if header.EqualFold(fl.Name, "Connection") {
				h.conn = true
				t := header.ConnectionTokens(fl.Value)
				h.close = h.close || t&header.TokenClose != 0
				h.keepAlive = h.keepAlive || t&header.TokenKeepAlive != 0
			}
		case 14:
			if header.EqualFold(fl.Name, "Content-Length") {
				h.clSeen = true
				if h.clErr == 0 {
					h.contentLength(fl.Value)
				}
			}
		case 17:
			if header.EqualFold(fl.Name, "Transfer-Encoding") {
				h.te = true
				h.transferCoding(fl.Value)
			}
		}
	}
	return h
}

// contentLength takes in a Content-Length value. Several field lines, or a list value, are
// accepted only when every value is the same (RFC 9110 §8.6); every list element must be a
// valid length: an empty value or element is an error.
func (h *headScan) contentLength(v []byte) {
	for more := true; more; {
		item := v
		i := bytes.IndexByte(v, ',')
		if more = i >= 0; more {
			item, v = v[:i], v[i+1:]
		}
		m, valid := parseContentLength(header.TrimOWS(item))
		if !valid {
			h.clErr = clInvalid
			return
		}
		if h.clCount > 0 && m != h.cl {
			h.clErr = clConflict
			return
		}
		h.cl = m
		h.clCount = inc8(h.clCount)
	}
}

// transferCoding takes in a Transfer-Encoding value.
func (h *headScan) transferCoding(v []byte) {
	for len(v) > 0 {
		var item []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			item, v = header.TrimOWS(v[:i]), v[i+1:]
		} else {
			item, v = header.TrimOWS(v), nil
		}
		if len(item) == 0 {
			continue
		}
		h.teCodings = inc8(h.teCodings)
		h.teLast = header.EqualFold(item, "chunked")
		if h.teLast {
			h.teChunked = inc8(h.teChunked)
		}
	}
}

// onlyChunked reports whether the transfer codings are exactly chunked, once.
func (h *headScan) onlyChunked() bool { return h.teCodings == 1 && h.teLast }

// contentLengthOf returns the Content-Length scanned from f: ok is false when there is none, err
// set when it is invalid. Equal duplicates are removed from f.
func (h *headScan) contentLengthOf(f *header.Fields) (n int64, ok bool, err string) {
	switch h.clErr {
	case clInvalid:
		return 0, false, "invalid Content-Length"
	case clConflict:
		return 0, false, "conflicting Content-Length values"
	}
	if h.clCount == 0 {
		return 0, false, ""
	}
	if h.clCount > 1 {
		f.Set("Content-Length", strconv.FormatInt(h.cl, 10))
		h.clCount = 1
	}
	return h.cl, true, ""
}

// RequestFraming validates the framing fields of a parsed request and returns how its body is
// delimited. It rejects what RFC 9112 §6 makes ambiguous: Transfer-Encoding with
// Content-Length, Transfer-Encoding on HTTP/1.0, a final coding other than chunked, codings
// other than chunked (501), differing or malformed Content-Length values, and a missing or
// repeated Host on HTTP/1.1.
func RequestFraming(req *header.RequestHeader) (Framing, error) {
	h := scanHead(&req.Fields)
	return requestFraming(req, &h)
}

// requestFraming is RequestFraming with req's fields scanned into h.
func requestFraming(req *header.RequestHeader, h *headScan) (Framing, error) {
	if h.hosts > 1 {
		return Framing{}, badRequest("repeated Host field")
	}
	if h.hosts == 0 && req.Version == header.HTTP11 {
		return Framing{}, badRequest("missing Host field")
	}
	if h.hosts == 1 {
		for _, c := range req.Host() {
			if !isHostByte[c] {
				return Framing{}, badRequest("invalid Host field")
			}
		}
	}
	if h.te {
		if req.Version == header.HTTP10 {
			return Framing{}, badRequest("Transfer-Encoding in an HTTP/1.0 request")
		}
		if h.clSeen {
			return Framing{}, badRequest("both Transfer-Encoding and Content-Length")
		}
		if !h.teLast {
			return Framing{}, badRequest("final transfer coding is not chunked")
		}
		if h.teChunked > 1 {
			// RFC 9112 §7.1: chunked is applied once at most.
			return Framing{}, badRequest("chunked applied more than once")
		}
		if !h.onlyChunked() {
			return Framing{}, statusError(501, "transfer coding not implemented")
		}
		return Framing{Kind: BodyChunked}, nil
	}
	n, ok, bad := h.contentLengthOf(&req.Fields)
	if bad != "" {
		return Framing{}, badRequest(bad)
	}
	if !ok || n == 0 {
		return Framing{Kind: BodyNone}, nil
	}
	return Framing{Kind: BodyLength, Length: n}, nil
}

var isHostByte [256]bool

func init() {
	for c := 0; c < 256; c++ {
		b := byte(c)
		isHostByte[c] = 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
			bytes.IndexByte([]byte("-._~!$&'()*+;=:[]%"), b) >= 0
	}
}

// ResponseFraming returns how the body of resp is delimited, given the request method it
// answers (RFC 9112 §6.3). allowBadLength treats an invalid Content-Length as read-until-close
// instead of an error. When Transfer-Encoding and Content-Length are both present the
// Content-Length is removed; reuse reports whether the framing leaves the connection reusable.
func ResponseFraming(resp *header.ResponseHeader, headRequest, connectRequest, allowBadLength bool) (f Framing, reuse bool, err error) {
	h := scanHead(&resp.Fields)
	return responseFraming(resp, &h, headRequest, connectRequest, allowBadLength)
}

// responseFraming is ResponseFraming with resp's fields scanned into h.
func responseFraming(resp *header.ResponseHeader, h *headScan, headRequest, connectRequest, allowBadLength bool) (f Framing, reuse bool, err error) {
	switch {
	case resp.Status == 101:
		return Framing{Kind: BodyRaw}, false, nil
	case resp.Status >= 100 && resp.Status < 200:
		return Framing{Kind: BodyNone}, true, nil
	case connectRequest && resp.Status >= 200 && resp.Status < 300:
		return Framing{Kind: BodyRaw}, false, nil
	case headRequest || resp.Status == 204 || resp.Status == 304:
		return Framing{Kind: BodyNone}, true, nil
	}
	if h.te {
		reuse = true
		if h.clSeen && resp.Remove("Content-Length") > 0 {
			reuse = false
		}
		if !h.teLast {
			return Framing{Kind: BodyUntilClose}, false, nil
		}
		return Framing{Kind: BodyChunked}, reuse, nil
	}
	n, ok, bad := h.contentLengthOf(&resp.Fields)
	if bad != "" {
		if allowBadLength {
			resp.Remove("Content-Length")
			return Framing{Kind: BodyUntilClose}, false, nil
		}
		return Framing{}, false, badResponse(bad)
	}
	if !ok {
		return Framing{Kind: BodyUntilClose}, false, nil
	}
	if n == 0 {
		return Framing{Kind: BodyNone}, true, nil
	}
	return Framing{Kind: BodyLength, Length: n}, true, nil
}

// Chunked decoder states.
const (
	chunkSize = iota
	chunkData
	chunkDataEnd
	chunkTrailers
	chunkDone
)

// bodyReader reads one message body from a reader.
type bodyReader struct {
	kind      BodyKind
	remaining int64 // bytes left: of the body (length) or of the current chunk (chunked)
	state     int
	done      bool
	read      int64 // body bytes handed out
	trailers  header.Fields
}

func (b *bodyReader) reset(f Framing) {
	b.kind = f.Kind
	b.remaining = f.Length
	b.state = chunkSize
	b.done = f.Kind == BodyNone
	b.read = 0
	b.trailers.Reset()
}

// next returns the next piece of body, valid until the following call, or io.EOF at the end.
func (b *bodyReader) next(rd *reader, lim *Limits) ([]byte, error) {
	if b.done {
		return nil, io.EOF
	}
	switch b.kind {
	case BodyLength:
		if rd.buffered() == 0 {
			if err := rd.refill(); err != nil {
				return nil, truncated(err, rd.source)
			}
		}
		p := b.take(rd)
		if b.remaining == 0 {
			b.done = true
		}
		return p, nil
	case BodyUntilClose, BodyRaw:
		if rd.buffered() == 0 {
			if err := rd.refill(); err != nil {
				if err == io.EOF {
					b.done = true
				}
				return nil, err
			}
		}
		p := rd.buf[rd.r:rd.w]
		rd.r = rd.w
		b.read += int64(len(p))
		return p, nil
	case BodyChunked:
		return b.nextChunk(rd, lim)
	}
	b.done = true
	return nil, io.EOF
}

// take hands out the buffered bytes of the body, up to what remains of it (of the body, or of
// the current chunk).
func (b *bodyReader) take(rd *reader) []byte {
	n := int64(rd.buffered())
	if n > b.remaining {
		n = b.remaining
	}
	p := rd.buf[rd.r : rd.r+int(n)]
	rd.r += int(n)
	b.remaining -= n
	b.read += n
	return p
}

func truncated(err error, src perr.Source) error {
	if err == io.EOF {
		e := perr.Explain(perr.ConnectionClosed, "body ended before its declared length")
		e.Source = src
		return e
	}
	return err
}

// minBodyRoom is the least free space after a pinned head that body reads go into.
const minBodyRoom = BufferSize / 8

// refill reads more body bytes into the space after the pinned head, once the unread bytes are
// consumed. A head that (nearly) fills the buffer would leave no room, or only a few bytes per
// read: then the head moves to a larger buffer. The old one is not pooled, because the parsed
// head still refers to it.
func (rd *reader) refill() error {
	rd.r, rd.w = rd.pin, rd.pin
	if len(rd.buf)-rd.pin < minBodyRoom {
		nb := make([]byte, rd.pin+BufferSize)
		copy(nb, rd.buf[:rd.pin])
		rd.buf = nb
	}
	return rd.fill()
}

// need makes at least n unread bytes available, reading as needed.
func (rd *reader) need(n int) error {
	for rd.buffered() < n {
		if rd.buffered() == 0 {
			rd.r, rd.w = rd.pin, rd.pin
		}
		if !rd.makeRoom(n) {
			return perr.Explain(perr.InternalError, "framing line does not fit the buffer")
		}
		if err := rd.fill(); err != nil {
			return err
		}
	}
	return nil
}

// line returns the next line (without its CRLF) once it is complete in the buffer, reading as
// needed; max bounds its length.
func (rd *reader) line(max int) ([]byte, error) {
	scanned := 0
	for {
		if i := bytes.IndexByte(rd.buf[rd.r+scanned:rd.w], '\n'); i >= 0 {
			end := rd.r + scanned + i
			if end-rd.r > max {
				return nil, errLineTooLong
			}
			if end == rd.r || rd.buf[end-1] != '\r' {
				return nil, errBareLF
			}
			l := rd.buf[rd.r : end-1]
			rd.r = end + 1
			return l, nil
		}
		scanned = rd.buffered()
		if scanned > max {
			return nil, errLineTooLong
		}
		if err := rd.need(scanned + 1); err != nil {
			return nil, err
		}
	}
}

var (
	errLineTooLong = perr.Explain(perr.InvalidHTTPHeader, "chunk line too long")
	errBareLF      = perr.Explain(perr.InvalidHTTPHeader, "chunk line not terminated by CRLF")
	errChunkExt    = perr.Explain(perr.InvalidHTTPHeader, "invalid chunk extension")
)

func (b *bodyReader) framingErr(rd *reader, err error) error {
	if err == io.EOF {
		return truncated(err, rd.source)
	}
	if pe, ok := perr.As(err); ok && pe.Type == perr.InvalidHTTPHeader {
		e := perr.Because(perr.InvalidHTTPHeader, "invalid chunked body", err)
		e.Source = rd.source
		return e
	}
	return err
}

func (b *bodyReader) nextChunk(rd *reader, lim *Limits) ([]byte, error) {
	for {
		switch b.state {
		case chunkSize:
			l, err := rd.line(lim.chunkLine())
			if err != nil {
				return nil, b.framingErr(rd, err)
			}
			size, err := parseChunkSize(l)
			if err != nil {
				return nil, b.framingErr(rd, err)
			}
			if size == 0 {
				b.state = chunkTrailers
				continue
			}
			b.remaining = size
			b.state = chunkData
		case chunkData:
			if rd.buffered() == 0 {
				if err := rd.refill(); err != nil {
					return nil, b.framingErr(rd, err)
				}
			}
			p := b.take(rd)
			if b.remaining == 0 {
				b.state = chunkDataEnd
			}
			return p, nil
		case chunkDataEnd:
			if err := rd.need(2); err != nil {
				return nil, b.framingErr(rd, err)
			}
			if rd.buf[rd.r] != '\r' || rd.buf[rd.r+1] != '\n' {
				return nil, b.framingErr(rd, perr.Explain(perr.InvalidHTTPHeader, "chunk data not followed by CRLF"))
			}
			rd.r += 2
			b.state = chunkSize
		case chunkTrailers:
			if err := b.readTrailers(rd, lim); err != nil {
				return nil, b.framingErr(rd, err)
			}
			b.state = chunkDone
			b.done = true
			return nil, io.EOF
		default:
			return nil, io.EOF
		}
	}
}

// readTrailers reads the trailer section after the last chunk into b.trailers (copied, so
// they outlive the buffer).
func (b *bodyReader) readTrailers(rd *reader, lim *Limits) error {
	total := 0
	for {
		l, err := rd.line(lim.trailerSize())
		if err != nil {
			return err
		}
		if len(l) == 0 {
			return nil
		}
		total += len(l) + 2
		if total > lim.trailerSize() || b.trailers.Len() >= lim.headers() {
			return perr.Explain(perr.InvalidHTTPHeader, "trailer section too large")
		}
		name, value, err := parseFieldLine(l)
		if err != nil {
			return err
		}
		b.trailers.AppendBytes(name, value)
	}
}

// parseChunkSize parses "chunk-size [ chunk-ext ]" (RFC 9112 §7.1.1).
func parseChunkSize(l []byte) (int64, error) {
	i := 0
	var n int64
	for i < len(l) {
		d := unhex(l[i])
		if d < 0 {
			break
		}
		if n > (1<<62)>>4 {
			return 0, perr.Explain(perr.InvalidHTTPHeader, "chunk size overflows")
		}
		n = n<<4 | int64(d)
		i++
	}
	if i == 0 {
		return 0, perr.Explain(perr.InvalidHTTPHeader, "invalid chunk size")
	}
	if err := checkChunkExt(l[i:]); err != nil {
		return 0, err
	}
	return n, nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// checkChunkExt validates chunk extensions:
// *( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] ).
func checkChunkExt(b []byte) error {
	bad := errChunkExt
	i := 0
	ws := func() {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
			i++
		}
	}
	token := func() bool {
		s := i
		for i < len(b) && isToken[b[i]] {
			i++
		}
		return i > s
	}
	for {
		ws()
		if i == len(b) {
			return nil
		}
		if b[i] != ';' {
			return bad
		}
		i++
		ws()
		if !token() {
			return bad
		}
		ws()
		if i == len(b) || b[i] != '=' {
			continue
		}
		i++
		ws()
		if i < len(b) && b[i] == '"' {
			i++
			for {
				if i == len(b) {
					return bad
				}
				c := b[i]
				if c == '"' {
					i++
					break
				}
				if c == '\\' {
					i++
					if i == len(b) || !isValueByte[b[i]] {
						return bad
					}
				} else if !isValueByte[c] {
					return bad
				}
				i++
			}
		} else if !token() {
			return bad
		}
	}
}

// bodyWriter frames an outgoing body.
type bodyWriter struct {
	kind      BodyKind
	remaining int64
	written   int64
	finished  bool
	scratch   [24]byte
}

func (b *bodyWriter) reset(f Framing) {
	b.kind = f.Kind
	b.remaining = f.Length
	b.written = 0
	b.finished = false
}

// write frames p onto wr.
func (b *bodyWriter) write(wr *writer, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if b.finished {
		return perr.Explain(perr.InternalError, "body write after the body was finished")
	}
	switch b.kind {
	case BodyNone:
		return nil
	case BodyLength:
		if int64(len(p)) > b.remaining {
			e := perr.Explain(perr.InternalError, "body longer than its Content-Length")
			return e
		}
		b.remaining -= int64(len(p))
		b.written += int64(len(p))
		return wr.write(p)
	case BodyChunked:
		h := strconv.AppendInt(b.scratch[:0], int64(len(p)), 16)
		h = append(h, '\r', '\n')
		if err := wr.write(h); err != nil {
			return err
		}
		if err := wr.write(p); err != nil {
			return err
		}
		b.written += int64(len(p))
		return wr.write(crlf)
	default:
		b.written += int64(len(p))
		return wr.write(p)
	}
}

var (
	crlf      = []byte("\r\n")
	lastChunk = []byte("0\r\n")
)

// finish ends the body: the last chunk and trailers for chunked. It reports an error when a
// Content-Length body is short.
func (b *bodyWriter) finish(wr *writer, trailers *header.Fields) error {
	if b.finished {
		return nil
	}
	b.finished = true
	switch b.kind {
	case BodyLength:
		if b.remaining > 0 {
			return perr.Explain(perr.InternalError, "body shorter than its Content-Length")
		}
	case BodyChunked:
		if err := wr.write(lastChunk); err != nil {
			return err
		}
		if trailers != nil && trailers.Len() > 0 {
			wr.ensureBuf()
			if len(wr.buf) > 0 {
				if err := wr.flush(); err != nil {
					return err
				}
			}
			wr.buf = trailers.AppendH1(wr.buf)
		}
		return wr.write(crlf)
	}
	return nil
}
