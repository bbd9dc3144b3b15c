package h2

import (
	"errors"
	"io"
	"net"
	"time"

	"golang.org/x/net/http2"
)

// ClientPreface is the connection preface an HTTP/2 client sends before anything else
// (RFC 9113 section 3.4). A cleartext client with prior knowledge starts with it.
const ClientPreface = http2.ClientPreface

// MatchPreface reports whether b could be the start of the client preface (prefix true) and
// whether it holds the whole preface (full true). Bytes after the preface are ignored.
func MatchPreface(b []byte) (prefix, full bool) {
	n := min(len(b), len(ClientPreface))
	if string(b[:n]) != ClientPreface[:n] {
		return false, false
	}
	return true, n == len(ClientPreface)
}

// DetectPreface reads from a cleartext connection until it can tell whether the client speaks
// HTTP/2 with prior knowledge: it stops at the first byte that differs from the preface, so an
// HTTP/1 request is never waited on for more bytes than it sent. It returns the bytes it read;
// hand them back with PrefixConn so that the session that serves the connection, HTTP/1 or
// HTTP/2, reads them again. Reading stops at deadline (the zero time means none), and the
// connection's read deadline is cleared before returning. An error is returned with whatever
// was read; a client that closes before sending a byte yields io.EOF and no bytes.
func DetectPreface(conn net.Conn, deadline time.Time) (isH2 bool, peeked []byte, err error) {
	if err := conn.SetReadDeadline(deadline); err != nil {
		return false, nil, err
	}
	defer conn.SetReadDeadline(time.Time{})
	buf := make([]byte, len(ClientPreface))
	n := 0
	for n < len(buf) {
		m, rerr := conn.Read(buf[n:])
		n += m
		prefix, full := MatchPreface(buf[:n])
		if !prefix {
			return false, buf[:n], nil
		}
		if full {
			return true, buf[:n], nil
		}
		if rerr != nil {
			if rerr == io.EOF && n > 0 {
				rerr = io.ErrUnexpectedEOF
			}
			return false, buf[:n], rerr
		}
	}
	return true, buf, nil
}

// PrefixConn returns a connection whose reads return peeked first and then read from conn;
// everything else is conn's. It is how bytes read by DetectPreface are given back.
func PrefixConn(conn net.Conn, peeked []byte) net.Conn {
	if len(peeked) == 0 {
		return conn
	}
	return &prefixConn{Conn: conn, rest: peeked}
}

type prefixConn struct {
	net.Conn
	rest []byte // peeked bytes not read yet; only the reading goroutine touches it
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.rest) > 0 {
		n := copy(p, c.rest)
		c.rest = c.rest[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite closes the writing side of the underlying connection when it can do that.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
