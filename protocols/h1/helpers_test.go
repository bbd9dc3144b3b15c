package h1

import (
	"bytes"
	"io"
	"net"
	"time"
)

// memConn is a net.Conn that reads a fixed script, at most step bytes per Read (all of it when
// step is 0), and records what is written. Deadlines are accepted and ignored.
type memConn struct {
	in   []byte
	step int
	out  bytes.Buffer
}

func (c *memConn) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n := len(c.in)
	if c.step > 0 && n > c.step {
		n = c.step
	}
	n = copy(p, c.in[:n])
	c.in = c.in[n:]
	return n, nil
}

func (c *memConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// readAllBody reads a whole body with the given framing from in, delivered step bytes at a
// time, and returns the body, the reader (for its trailers) and the error that ended it (nil
// at a clean end).
func readAllBody(in []byte, step int, f Framing, lim *Limits) ([]byte, *bodyReader, error) {
	rd := &reader{conn: &memConn{in: in, step: step}}
	rd.startMessage()
	var br bodyReader
	br.reset(f)
	if lim == nil {
		lim = &defaultLimits
	}
	var body []byte
	for {
		p, err := br.next(rd, lim)
		body = append(body, p...)
		if err == io.EOF {
			return body, &br, nil
		}
		if err != nil {
			return body, &br, err
		}
	}
}
