// Package proxyproto reads and writes the PROXY protocol (versions 1 and 2) that load balancers
// such as HAProxy, AWS NLB and Google Cloud's TCP proxy put in front of a TCP connection to pass
// on the client's address. A listener that accepts it reads the header before anything else on
// each connection (before a TLS handshake) and then serves the connection as if it came from the
// client: RemoteAddr reports the client's address, so access logs, rate limits by client IP,
// CIDR rules and X-Forwarded-For see the real client.
//
// The header is required on such a listener: a connection that does not start with a valid
// header is closed, since anyone who can reach a listener that only optionally reads it can
// claim any address. Restrict who can connect with Options.Allow.
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"net/netip"
	"strconv"
)

// Command is what a header says of its connection.
type Command byte

// The commands of a header. Version 1 headers are always Proxy.
const (
	// Local is a connection the load balancer made on its own behalf (a health check): the
	// addresses of the socket itself apply.
	Local Command = 0x0
	// Proxy is a connection relayed for a client whose addresses the header carries.
	Proxy Command = 0x1
)

// Size limits of headers.
const (
	// MaxV1Length is the longest version 1 header, CRLF included, that the protocol allows.
	MaxV1Length = 107
	// v2FixedLength is the signature, version/command, family and length of a version 2 header.
	v2FixedLength = 16
	// DefaultMaxV2Length bounds a version 2 header, TLVs included, unless Options says otherwise.
	DefaultMaxV2Length = 4096
)

// v2Signature opens every version 2 header.
var v2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// v1Prefix opens every version 1 header.
var v1Prefix = []byte("PROXY ")

// TLV types of version 2 headers (registered in the protocol's specification).
const (
	TypeALPN      byte = 0x01
	TypeAuthority byte = 0x02
	TypeCRC32C    byte = 0x03
	TypeNoop      byte = 0x04
	TypeUniqueID  byte = 0x05
	TypeSSL       byte = 0x20
	TypeNetNS     byte = 0x30
)

// Sub-TLV types inside a TypeSSL TLV.
const (
	SubTypeSSLVersion byte = 0x21
	SubTypeSSLCN      byte = 0x22
	SubTypeSSLCipher  byte = 0x23
	SubTypeSSLSigAlg  byte = 0x24
	SubTypeSSLKeyAlg  byte = 0x25
)

// TLV is one type-length-value field of a version 2 header.
type TLV struct {
	Type  byte
	Value []byte
}

// Header is a parsed PROXY protocol header.
type Header struct {
	// Version is 1 or 2.
	Version int
	// Command is Proxy, or Local for a version 2 health check.
	Command Command
	// Source and Destination are the client's address and the address it connected to, as
	// *net.TCPAddr or *net.UnixAddr. Both are nil when the header carries none: a Local
	// command, a version 1 "UNKNOWN" or a version 2 unspecified family.
	Source, Destination net.Addr
	// TLVs are the version 2 header's extra fields in the order sent (CRC32C and NOOP
	// included); nil for version 1.
	TLVs []TLV
}

// TLV returns the value of the first TLV of type t and whether there is one.
func (h *Header) TLV(t byte) ([]byte, bool) {
	for _, f := range h.TLVs {
		if f.Type == t {
			return f.Value, true
		}
	}
	return nil, false
}

// ALPN returns the protocol the client negotiated with the load balancer, if it says.
func (h *Header) ALPN() string {
	v, _ := h.TLV(TypeALPN)
	return string(v)
}

// Authority returns the host name the client asked for (its TLS SNI), if the header says.
func (h *Header) Authority() string {
	v, _ := h.TLV(TypeAuthority)
	return string(v)
}

// UniqueID returns the connection's identifier given by the load balancer, if any.
func (h *Header) UniqueID() []byte {
	v, _ := h.TLV(TypeUniqueID)
	return v
}

// SSLInfo is the content of a TypeSSL TLV: what the load balancer knows of the client's TLS.
type SSLInfo struct {
	// Client holds the PP2_CLIENT_* bits: 0x01 the client connected over TLS, 0x02 it sent a
	// certificate on this connection, 0x04 on this TLS session.
	Client byte
	// Verify is 0 when the client's certificate was verified.
	Verify uint32
	// Version, CN, Cipher, SigAlg and KeyAlg are the sub-TLVs, empty when absent.
	Version, CN, Cipher, SigAlg, KeyAlg string
}

// SSL decodes the TypeSSL TLV; ok is false when there is none or it is malformed.
func (h *Header) SSL() (info SSLInfo, ok bool) {
	v, found := h.TLV(TypeSSL)
	if !found || len(v) < 5 {
		return SSLInfo{}, false
	}
	info.Client = v[0]
	info.Verify = binary.BigEndian.Uint32(v[1:5])
	subs, err := parseTLVs(v[5:])
	if err != nil {
		return SSLInfo{}, false
	}
	for _, s := range subs {
		switch s.Type {
		case SubTypeSSLVersion:
			info.Version = string(s.Value)
		case SubTypeSSLCN:
			info.CN = string(s.Value)
		case SubTypeSSLCipher:
			info.Cipher = string(s.Value)
		case SubTypeSSLSigAlg:
			info.SigAlg = string(s.Value)
		case SubTypeSSLKeyAlg:
			info.KeyAlg = string(s.Value)
		}
	}
	return info, true
}

// ErrIncomplete is returned by Parse when b holds the start of a header but not all of it.
var ErrIncomplete = errors.New("proxyproto: incomplete header")

// ErrNoHeader is returned when a connection does not start with a PROXY protocol signature.
var ErrNoHeader = errors.New("proxyproto: connection does not start with a PROXY protocol header")

// Parse reads the header at the start of b and returns it with its length in bytes. It returns
// ErrIncomplete when b is a proper prefix of a header that may still be valid, ErrNoHeader when
// b starts with neither signature, and another error for a malformed header. maxV2 bounds a
// version 2 header's total length; 0 means DefaultMaxV2Length.
func Parse(b []byte, maxV2 int) (*Header, int, error) {
	if maxV2 <= 0 {
		maxV2 = DefaultMaxV2Length
	}
	switch {
	case len(b) == 0:
		return nil, 0, ErrIncomplete
	case b[0] == 'P':
		return parseV1(b)
	case b[0] == '\r':
		return parseV2(b, maxV2)
	}
	return nil, 0, ErrNoHeader
}

// parseV1 parses "PROXY TCP4 src dst sport dport\r\n" and its TCP6 and UNKNOWN forms.
func parseV1(b []byte) (*Header, int, error) {
	n := min(len(b), len(v1Prefix))
	if !bytes.Equal(b[:n], v1Prefix[:n]) {
		return nil, 0, ErrNoHeader
	}
	end := bytes.IndexByte(b[:min(len(b), MaxV1Length)], '\n')
	if end < 0 {
		if len(b) >= MaxV1Length {
			return nil, 0, errors.New("proxyproto: version 1 header longer than 107 bytes")
		}
		return nil, 0, ErrIncomplete
	}
	if end == 0 || b[end-1] != '\r' {
		return nil, 0, errors.New("proxyproto: version 1 header does not end with CRLF")
	}
	line := b[len(v1Prefix) : end-1]
	h := &Header{Version: 1, Command: Proxy}
	proto, rest, _ := bytes.Cut(line, []byte(" "))
	switch string(proto) {
	case "UNKNOWN":
		// The rest of the line, whatever it holds, is to be ignored.
		return h, end + 1, nil
	case "TCP4", "TCP6":
	default:
		return nil, 0, fmt.Errorf("proxyproto: version 1 protocol %q is not TCP4, TCP6 or UNKNOWN", proto)
	}
	var fields [4][]byte
	for i := range fields {
		var f []byte
		if i < 3 {
			var ok bool
			f, rest, ok = bytes.Cut(rest, []byte(" "))
			if !ok {
				return nil, 0, errors.New("proxyproto: version 1 header has too few fields")
			}
		} else {
			f = rest
		}
		if len(f) == 0 {
			return nil, 0, errors.New("proxyproto: version 1 header has an empty field (two spaces in a row)")
		}
		fields[i] = f
	}
	v6 := string(proto) == "TCP6"
	var addrs [2]netip.Addr
	for i := range addrs {
		a, err := netip.ParseAddr(string(fields[i]))
		if err != nil || a.Zone() != "" || a.Is4() == v6 {
			return nil, 0, fmt.Errorf("proxyproto: version 1 %s header has an invalid address %q", proto, fields[i])
		}
		addrs[i] = a
	}
	var ports [2]uint16
	for i := range ports {
		p, err := parsePort(fields[2+i])
		if err != nil {
			return nil, 0, err
		}
		ports[i] = p
	}
	h.Source = net.TCPAddrFromAddrPort(netip.AddrPortFrom(addrs[0], ports[0]))
	h.Destination = net.TCPAddrFromAddrPort(netip.AddrPortFrom(addrs[1], ports[1]))
	return h, end + 1, nil
}

// parsePort reads a decimal port, 0 to 65535, without sign or leading zeros.
func parsePort(b []byte) (uint16, error) {
	if len(b) == 0 || len(b) > 5 || (b[0] == '0' && len(b) > 1) {
		return 0, fmt.Errorf("proxyproto: version 1 header has an invalid port %q", b)
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("proxyproto: version 1 header has an invalid port %q", b)
		}
	}
	p, err := strconv.Atoi(string(b))
	if err != nil || p > 65535 {
		return 0, fmt.Errorf("proxyproto: version 1 header has an invalid port %q", b)
	}
	return uint16(p), nil
}

// Address families and transports of version 2 headers.
const (
	famUnspec = 0x0
	famInet   = 0x1
	famInet6  = 0x2
	famUnix   = 0x3

	transUnspec = 0x0
	transStream = 0x1
	transDgram  = 0x2

	unixPathLength = 108
)

// parseV2 parses a binary version 2 header.
func parseV2(b []byte, maxV2 int) (*Header, int, error) {
	n := min(len(b), len(v2Signature))
	if !bytes.Equal(b[:n], v2Signature[:n]) {
		return nil, 0, ErrNoHeader
	}
	if len(b) < v2FixedLength {
		return nil, 0, ErrIncomplete
	}
	verCmd, famTrans := b[12], b[13]
	if verCmd>>4 != 2 {
		return nil, 0, fmt.Errorf("proxyproto: version 2 header with version %d", verCmd>>4)
	}
	cmd := Command(verCmd & 0xf)
	if cmd != Local && cmd != Proxy {
		return nil, 0, fmt.Errorf("proxyproto: version 2 header with unknown command %#x", byte(cmd))
	}
	total := v2FixedLength + int(binary.BigEndian.Uint16(b[14:16]))
	if total > maxV2 {
		return nil, 0, fmt.Errorf("proxyproto: version 2 header of %d bytes exceeds the limit of %d", total, maxV2)
	}
	if len(b) < total {
		return nil, 0, ErrIncomplete
	}
	body := b[v2FixedLength:total]
	h := &Header{Version: 2, Command: cmd}
	fam, trans := famTrans>>4, famTrans&0xf
	if trans == transDgram {
		return nil, 0, errors.New("proxyproto: version 2 header for a datagram connection on a stream listener")
	}
	if trans > transDgram || fam > famUnix {
		return nil, 0, fmt.Errorf("proxyproto: version 2 header with unknown family/transport %#x", famTrans)
	}
	var addrLen int
	switch fam {
	case famInet:
		addrLen = 12
	case famInet6:
		addrLen = 36
	case famUnix:
		addrLen = 2 * unixPathLength
	}
	if trans == transUnspec && fam != famUnspec && cmd == Proxy {
		return nil, 0, errors.New("proxyproto: version 2 header with an address family but no transport")
	}
	if len(body) < addrLen {
		return nil, 0, fmt.Errorf("proxyproto: version 2 header too short for its addresses (%d < %d bytes)", len(body), addrLen)
	}
	addrs, tlvBytes := body[:addrLen], body[addrLen:]
	// A Local command's addresses are to be ignored, as are those of an unspecified family.
	if cmd == Proxy {
		switch fam {
		case famInet:
			src, _ := netip.AddrFromSlice(addrs[0:4])
			dst, _ := netip.AddrFromSlice(addrs[4:8])
			h.Source = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, binary.BigEndian.Uint16(addrs[8:10])))
			h.Destination = net.TCPAddrFromAddrPort(netip.AddrPortFrom(dst, binary.BigEndian.Uint16(addrs[10:12])))
		case famInet6:
			src, _ := netip.AddrFromSlice(addrs[0:16])
			dst, _ := netip.AddrFromSlice(addrs[16:32])
			h.Source = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, binary.BigEndian.Uint16(addrs[32:34])))
			h.Destination = net.TCPAddrFromAddrPort(netip.AddrPortFrom(dst, binary.BigEndian.Uint16(addrs[34:36])))
		case famUnix:
			h.Source = &net.UnixAddr{Net: "unix", Name: cString(addrs[:unixPathLength])}
			h.Destination = &net.UnixAddr{Net: "unix", Name: cString(addrs[unixPathLength:])}
		}
	}
	tlvs, err := parseTLVs(tlvBytes)
	if err != nil {
		return nil, 0, err
	}
	h.TLVs = tlvs
	if off := valueOffset(tlvBytes, TypeCRC32C); off >= 0 {
		sum := tlvBytes[off:]
		if binary.BigEndian.Uint16(tlvBytes[off-2:off]) != 4 {
			return nil, 0, errors.New("proxyproto: CRC32C TLV is not 4 bytes")
		}
		if got := checksum(b[:total], v2FixedLength+addrLen+off); got != binary.BigEndian.Uint32(sum) {
			return nil, 0, errors.New("proxyproto: version 2 header fails its CRC32C check")
		}
	}
	return h, total, nil
}

// castagnoli is the CRC32C table.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum is the CRC32C of hdr with the 4 bytes at off taken as zero.
func checksum(hdr []byte, off int) uint32 {
	c := crc32.Update(0, castagnoli, hdr[:off])
	c = crc32.Update(c, castagnoli, []byte{0, 0, 0, 0})
	return crc32.Update(c, castagnoli, hdr[off+4:])
}

// valueOffset returns the offset in b, a valid TLV list, of the value of the first TLV of
// type t, or -1.
func valueOffset(b []byte, t byte) int {
	for i := 0; i+3 <= len(b); {
		if b[i] == t {
			return i + 3
		}
		i += 3 + int(binary.BigEndian.Uint16(b[i+1:i+3]))
	}
	return -1
}

// cString returns b up to its first NUL byte.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// parseTLVs splits b into TLVs; the values alias b.
func parseTLVs(b []byte) ([]TLV, error) {
	var out []TLV
	for len(b) > 0 {
		if len(b) < 3 {
			return nil, errors.New("proxyproto: truncated TLV")
		}
		n := int(binary.BigEndian.Uint16(b[1:3]))
		if len(b) < 3+n {
			return nil, fmt.Errorf("proxyproto: TLV %#x of %d bytes overruns the header", b[0], n)
		}
		out = append(out, TLV{Type: b[0], Value: b[3 : 3+n : 3+n]})
		b = b[3+n:]
	}
	return out, nil
}
