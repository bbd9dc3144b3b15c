package proxyproto

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/pingora-go/pingora/internal/sock"
)

// DefaultTimeout bounds the wait for a connection's header unless Options says otherwise. A
// load balancer sends the header as soon as it has connected, so the wait is short.
const DefaultTimeout = 5 * time.Second

// Options are the settings of a listener that accepts the PROXY protocol.
type Options struct {
	// Timeout bounds the wait for the whole header; 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxV2Length bounds a version 2 header, TLVs included; 0 means DefaultMaxV2Length.
	MaxV2Length int
	// Allow, when not empty, lists the networks the load balancers connect from: a connection
	// from any other address is refused before anything is read from it.
	Allow []netip.Prefix
}

// ErrNotAllowed is returned for a connection from an address outside Options.Allow.
var ErrNotAllowed = errors.New("proxyproto: connection from an address not allowed to send a PROXY header")

// Conn is a connection whose PROXY header has been read: RemoteAddr is the client's address
// the header carries (the socket's peer when it carries none). Read and Write go to the
// socket; nothing that followed the header was consumed.
type Conn struct {
	net.Conn
	hdr *Header
}

// Header returns the header the connection started with.
func (c *Conn) Header() *Header { return c.hdr }

// NetConn returns the socket underneath.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// RemoteAddr returns the client's address as the header gives it, or the socket's peer
// address for a header without addresses (a Local command, UNKNOWN).
func (c *Conn) RemoteAddr() net.Addr {
	if c.hdr.Source != nil {
		return c.hdr.Source
	}
	return c.Conn.RemoteAddr()
}

// sysConn is a Conn over a socket with a file descriptor: it passes SyscallConn on, so that a
// server can wait for readability on the descriptor (idle connections parked without a
// goroutine). Read never buffers, so the descriptor's readability tells the truth.
type sysConn struct {
	*Conn
	sc syscall.Conn
}

// SyscallConn returns the raw connection of the socket underneath.
func (c *sysConn) SyscallConn() (syscall.RawConn, error) { return c.sc.SyscallConn() }

// ReadFrom passes the copy to the socket underneath, which uses sendfile(2) for a file (a TCP
// socket's ReadFrom), when it has ReadFrom.
func (c *sysConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// HeaderOf returns the PROXY header c started with, looking through a *tls.Conn, or nil when
// c did not come from a listener that reads one.
func HeaderOf(c net.Conn) *Header {
	for range 4 {
		switch v := c.(type) {
		case interface{ Header() *Header }:
			return v.Header()
		case *tls.Conn:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// Read reads the PROXY header at the start of c (version 1 or 2) and returns a connection that
// reports the client's address. It reads exactly the header's bytes: on a socket it peeks
// before it reads, so whatever follows (a TLS ClientHello, an HTTP request) stays in the
// socket. On an error c is not closed; the caller closes it.
func Read(c net.Conn, o Options) (net.Conn, *Header, error) {
	if len(o.Allow) > 0 && !allowed(c.RemoteAddr(), o.Allow) {
		return nil, nil, ErrNotAllowed
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, nil, err
	}
	h, err := readHeader(c, o.MaxV2Length)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("proxyproto: no complete header within %v: %w", timeout, err)
		}
		return nil, nil, err
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return nil, nil, err
	}
	pc := &Conn{Conn: c, hdr: h}
	if sc, ok := c.(syscall.Conn); ok {
		return &sysConn{Conn: pc, sc: sc}, h, nil
	}
	return pc, h, nil
}

// allowed reports whether a's IP address lies in one of the prefixes.
func allowed(a net.Addr, allow []netip.Prefix) bool {
	var ip netip.Addr
	switch v := a.(type) {
	case *net.TCPAddr:
		ip = v.AddrPort().Addr().Unmap()
	case *net.UnixAddr:
		return true // a local socket's peer has no address to check; file permissions guard it
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return false
		}
		ip = ap.Addr().Unmap()
	}
	for _, p := range allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// readHeader reads one header from c without reading past its end.
func readHeader(c net.Conn, maxV2 int) (*Header, error) {
	if maxV2 <= 0 {
		maxV2 = DefaultMaxV2Length
	}
	// Both versions' headers are at least 15 bytes (version 1 "PROXY UNKNOWN\r\n"), so the
	// first 15 can be read without reading past the header.
	var first [15]byte
	if _, err := io.ReadFull(c, first[:]); err != nil {
		return nil, noHeaderEOF(err)
	}
	switch first[0] {
	case '\r':
		return readV2(c, first[:], maxV2)
	case 'P':
		return readV1(c, first[:])
	}
	return nil, ErrNoHeader
}

// noHeaderEOF turns a clean end of stream before any header into a clearer error.
func noHeaderEOF(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("proxyproto: connection closed before a complete header: %w", err)
	}
	return err
}

func readV2(c net.Conn, first []byte, maxV2 int) (*Header, error) {
	var fixed [v2FixedLength]byte
	n := copy(fixed[:], first)
	if _, err := io.ReadFull(c, fixed[n:]); err != nil {
		return nil, noHeaderEOF(err)
	}
	// The fixed part alone says whether the signature, version and announced length are
	// acceptable, before anything more is read.
	if _, _, err := Parse(fixed[:], maxV2); err != nil && err != ErrIncomplete {
		return nil, err
	}
	buf := make([]byte, v2FixedLength+int(binary.BigEndian.Uint16(fixed[14:16])))
	copy(buf, fixed[:])
	if _, err := io.ReadFull(c, buf[v2FixedLength:]); err != nil {
		return nil, noHeaderEOF(err)
	}
	h, _, err := Parse(buf, maxV2)
	return h, err
}

func readV1(c net.Conn, first []byte) (*Header, error) {
	buf := make([]byte, MaxV1Length)
	n := copy(buf, first)
	// No version 1 header is shorter than the 15 bytes read: one that is complete ends there.
	if h, _, err := Parse(buf[:n], 0); err != ErrIncomplete {
		return h, err
	}
	sc, isSock := c.(syscall.Conn)
	if !isSock || !sock.Supported {
		// No descriptor to peek at: read a byte at a time (at most 92 reads).
		for {
			if _, err := io.ReadFull(c, buf[n:n+1]); err != nil {
				return nil, noHeaderEOF(err)
			}
			n++
			h, _, err := Parse(buf[:n], 0)
			if err != ErrIncomplete {
				return h, err
			}
		}
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	// Peek at what has arrived. Bytes that do not finish the line are all the header's, so
	// they are consumed and the next peek waits for more; once the line's end is there,
	// exactly the line is read.
	var peeked int
	var errno syscall.Errno
	for {
		err = rc.Read(func(fd uintptr) bool {
			peeked, errno = sock.PeekN(fd, buf[n:])
			return errno != syscall.EAGAIN
		})
		switch {
		case err != nil:
			return nil, err
		case errno != 0:
			return nil, errno
		case peeked == 0:
			return nil, noHeaderEOF(io.EOF)
		}
		h, end, perr := Parse(buf[:n+peeked], 0)
		if perr == ErrIncomplete {
			end = n + peeked
		} else if perr != nil {
			return nil, perr
		}
		if _, err := io.ReadFull(c, buf[n:end]); err != nil {
			return nil, noHeaderEOF(err)
		}
		if perr == nil {
			return h, nil
		}
		n = end
	}
}
