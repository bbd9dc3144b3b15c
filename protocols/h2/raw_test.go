package h2

import (
	"bytes"
	"io"
	"net"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawConn is one side of an HTTP/2 connection driven frame by frame, to play a misbehaving
// peer.
type rawConn struct {
	net.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer
}

func newRawConn(c net.Conn) *rawConn {
	r := &rawConn{Conn: c, fr: http2.NewFramer(c, c)}
	r.enc = hpack.NewEncoder(&r.buf)
	return r
}

// dialRaw connects to an HTTP/2 server at addr as a client, sending the preface and empty
// settings.
func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitBound)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, ClientPreface); err != nil {
		t.Fatal(err)
	}
	r := newRawConn(c)
	if err := r.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return r
}

// block encodes fields (name, value pairs) as a header block.
func (r *rawConn) block(kv ...string) []byte {
	r.buf.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		r.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return append([]byte(nil), r.buf.Bytes()...)
}

// request is the header block of a minimal GET.
func (r *rawConn) request() []byte {
	return r.block(":method", "GET", ":scheme", "http", ":path", "/", ":authority", "raw.test")
}

// untilClosed reads frames until a GOAWAY or the end of the connection and returns the
// GOAWAY's code, or -1 when the connection ended without one.
func (r *rawConn) untilClosed() int {
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			return -1
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			return int(ga.ErrCode)
		}
	}
}
