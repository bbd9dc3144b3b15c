package ws

import (
	"bufio"
	"errors"
	"io"
	"slices"
	"unicode/utf8"
)

// Config configures a Reader and a Writer. The zero value uses the defaults.
type Config struct {
	// MaxFrameSize is the longest frame payload a Reader accepts (default
	// DefaultMaxMessageSize); a longer one fails the connection with 1009.
	MaxFrameSize int64
	// MaxMessageSize is the longest message a Reader assembles, compressed and once
	// decompressed (default DefaultMaxMessageSize); a longer one fails with 1009.
	MaxMessageSize int64
	// FragmentSize makes a Writer split messages into frames of at most this many payload
	// bytes; 0 sends every message as one frame.
	FragmentSize int
	// CompressionLevel is the DEFLATE level of a Writer, 1 to 9 (default
	// DefaultCompressionLevel).
	CompressionLevel int
	// Deflate holds the negotiated permessage-deflate parameters; nil when compression was
	// not negotiated (frames with RSV1 set are then rejected).
	Deflate *DeflateParams
}

// DefaultMaxMessageSize is the default of Config.MaxMessageSize and MaxFrameSize.
const DefaultMaxMessageSize = 32 << 20

// maxKeptBuffer is the largest message buffer a Reader keeps between messages: a buffer grown
// for a bigger message is dropped, so that an idle connection does not hold it.
const maxKeptBuffer = 1 << 20

func (c *Config) maxFrame() int64 {
	if c == nil || c.MaxFrameSize <= 0 {
		return DefaultMaxMessageSize
	}
	return c.MaxFrameSize
}

func (c *Config) maxMessage() int64 {
	if c == nil || c.MaxMessageSize <= 0 {
		return DefaultMaxMessageSize
	}
	return c.MaxMessageSize
}

// Reader reads messages from one peer: it checks every rule of RFC 6455 on the frames,
// reassembles fragmented messages, validates text as UTF-8 (as the fragments arrive), and
// inflates compressed messages. Control frames that arrive between the fragments of a message
// are returned as they come. A Reader is not safe for concurrent use.
type Reader struct {
	br      *bufio.Reader
	role    Role
	maxF    int64
	maxM    int64
	inflate *decompressor

	// The message being assembled.
	inMessage  bool
	op         Opcode
	compressed bool
	buf        []byte
	validated  int // bytes of buf known to be valid UTF-8 (uncompressed text)

	out    []byte // decompressed payload
	ctl    [MaxControlPayload]byte
	msg    Message
	closed bool
}

// NewReader returns a Reader of the frames src sends to an endpoint of role (a ServerSide
// reader expects masked frames).
func NewReader(src io.Reader, role Role, c *Config) *Reader {
	r := &Reader{br: bufio.NewReaderSize(src, 4096), role: role, maxF: c.maxFrame(), maxM: c.maxMessage()}
	if c != nil && c.Deflate != nil {
		// The peer compresses with its own role's parameters.
		peer := ClientSide
		if role == ClientSide {
			peer = ServerSide
		}
		r.inflate = &decompressor{noContext: c.Deflate.noContext(peer)}
	}
	return r
}

// ReadMessage returns the next control frame or whole data message. The message and its
// payload are valid until the next call. After a close frame it returns io.EOF. Errors that
// the peer caused are *Error, carrying the close code to fail the connection with; io.EOF
// means the connection ended between frames, io.ErrUnexpectedEOF inside one.
func (r *Reader) ReadMessage() (*Message, error) {
	if r.closed {
		return nil, io.EOF
	}
	if !r.inMessage {
		if cap(r.buf) > maxKeptBuffer {
			r.buf = nil
		}
		if cap(r.out) > maxKeptBuffer {
			r.out = nil
		}
		r.buf = r.buf[:0]
	}
	for {
		h, err := r.readHeader()
		if err != nil {
			return nil, err
		}
		if h.Opcode.IsControl() {
			return r.control(h)
		}
		done, err := r.data(h)
		if err != nil {
			return nil, err
		}
		if done {
			return r.finish()
		}
	}
}

// readHeader reads a frame head and checks it against the connection's state.
func (r *Reader) readHeader() (Header, error) {
	b, err := r.br.Peek(2)
	if err != nil {
		if len(b) == 0 && err == io.EOF && !r.inMessage {
			return Header{}, io.EOF
		}
		return Header{}, unexpected(err)
	}
	n := headerSize(b[1])
	if b, err = r.br.Peek(n); err != nil {
		return Header{}, unexpected(err)
	}
	h, _, err := ParseHeader(b)
	r.br.Discard(n)
	if err != nil {
		return h, err
	}
	return h, r.check(h)
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// check applies the rules of RFC 6455 §5 that depend on the connection.
func (r *Reader) check(h Header) error {
	if h.Masked != (r.role == ServerSide) {
		if r.role == ServerSide {
			return protoErr("client frame not masked")
		}
		return protoErr("server frame masked")
	}
	if h.RSV2 || h.RSV3 {
		return protoErr("reserved bit set")
	}
	switch h.Opcode {
	case OpClose, OpPing, OpPong:
		if !h.Fin {
			return protoErr("fragmented control frame")
		}
		if h.Length > MaxControlPayload {
			return protoErr("control frame longer than 125 bytes")
		}
		if h.RSV1 {
			return protoErr("RSV1 set on a control frame")
		}
		return nil
	case OpText, OpBinary:
		if r.inMessage {
			return protoErr("new data frame inside a fragmented message")
		}
		if h.RSV1 && r.inflate == nil {
			return protoErr("RSV1 set without permessage-deflate")
		}
	case OpContinuation:
		if !r.inMessage {
			return protoErr("continuation frame without a message")
		}
		if h.RSV1 {
			return protoErr("RSV1 set on a continuation frame")
		}
	default:
		return protoErr("reserved opcode " + h.Opcode.String())
	}
	if h.Length > r.maxF {
		return ErrFrameTooBig
	}
	if int64(len(r.buf))+h.Length > r.maxM {
		return ErrMessageTooBig
	}
	return nil
}

// payload reads the frame's payload into dst, which has room for it, and unmasks it.
func (r *Reader) payload(h Header, dst []byte) error {
	if _, err := io.ReadFull(r.br, dst); err != nil {
		return unexpected(err)
	}
	if h.Masked {
		Mask(h.Mask, 0, dst)
	}
	return nil
}

func (r *Reader) control(h Header) (*Message, error) {
	p := r.ctl[:h.Length]
	if err := r.payload(h, p); err != nil {
		return nil, err
	}
	if h.Opcode == OpClose {
		if err := checkClosePayload(p); err != nil {
			return nil, err
		}
		r.closed = true
	}
	r.msg = Message{Opcode: h.Opcode, Payload: p}
	return &r.msg, nil
}

// checkClosePayload checks a close frame's body: empty, or a code that may be sent followed
// by a UTF-8 reason.
func checkClosePayload(p []byte) error {
	switch {
	case len(p) == 0:
		return nil
	case len(p) == 1:
		return protoErr("close frame with a 1-byte payload")
	}
	if c := CloseCode(p[0])<<8 | CloseCode(p[1]); !c.ValidOnWire() {
		return protoErr("invalid close code")
	}
	if !utf8.Valid(p[2:]) {
		return &Error{Code: CloseInvalidPayload, Reason: "invalid UTF-8 in a close reason"}
	}
	return nil
}

// data reads a data frame's payload into the message and reports whether it ended the
// message.
func (r *Reader) data(h Header) (bool, error) {
	if !r.inMessage {
		r.inMessage, r.op, r.compressed, r.validated = true, h.Opcode, h.RSV1, 0
	}
	n := len(r.buf)
	r.buf = slices.Grow(r.buf, int(h.Length))[:n+int(h.Length)]
	if err := r.payload(h, r.buf[n:]); err != nil {
		return false, err
	}
	if r.op == OpText && !r.compressed {
		ok, tail := validUTF8Prefix(r.buf[r.validated:])
		if !ok || h.Fin && tail > 0 {
			return false, ErrInvalidUTF8
		}
		r.validated = len(r.buf) - tail
	}
	return h.Fin, nil
}

// finish completes the message just assembled.
func (r *Reader) finish() (*Message, error) {
	r.inMessage = false
	p := r.buf
	if r.compressed {
		var err error
		r.out, err = r.inflate.decompress(r.out, r.buf, r.maxM)
		if err != nil {
			return nil, err
		}
		p = r.out
		if r.op == OpText && !utf8.Valid(p) {
			return nil, ErrInvalidUTF8
		}
	}
	r.msg = Message{Opcode: r.op, Payload: p, Compressed: r.compressed}
	return &r.msg, nil
}

// IsCloseError reports whether err came from the peer's violation of the protocol or a limit,
// and with which close code the connection should be failed.
func IsCloseError(err error) (CloseCode, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, true
	}
	return 0, false
}
