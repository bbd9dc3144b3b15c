// Package upstream describes the servers a proxy connects to: Peer, its
// connection Options and the hash that decides which connections it may
// reuse.
package upstream

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Networks of a Peer.
const (
	// NetworkTCP reaches the peer over TCP at "host:port".
	NetworkTCP = "tcp"
	// NetworkUnix reaches the peer over a Unix domain socket path.
	NetworkUnix = "unix"
)

// ErrInvalidAddress matches, with errors.Is, the *AddrError that NewPeer and
// NewUnixPeer return for an address they cannot use.
var ErrInvalidAddress = errors.New("upstream: invalid address")

// Peer is an upstream server and how to connect to it (the reference's
// HttpPeer). The upstream_peer phase returns one per attempt; the connector
// reuses an idle connection only for a peer with the same ReuseHash.
//
// Build it with NewPeer or NewUnixPeer, then set Options and the other
// fields as needed. A Peer must not change while the connector uses it.
type Peer struct {
	// Network is NetworkTCP or NetworkUnix; empty means NetworkTCP.
	Network string
	// Addr is "host:port" for TCP, where host is an IP literal or a name
	// resolved when connecting, or the socket path for Unix.
	Addr string
	// TLS makes the connection speak TLS (scheme https).
	TLS bool
	// SNI is the TLS server name. Empty sends none and, as in nginx,
	// skips certificate verification.
	SNI string
	// GroupKey isolates otherwise identical peers from sharing
	// connections.
	GroupKey uint64
	// Proxy, when set, reaches the peer through a CONNECT tunnel.
	Proxy *Proxy
	// Options are the connection options.
	Options Options
}

// Proxy is a local forward proxy, reached over a Unix socket, through which
// a peer is reached with an HTTP CONNECT request.
type Proxy struct {
	// NextHop is the Unix socket path of the proxy.
	NextHop string
	// Host and Port are the CONNECT target.
	Host string
	Port uint16
	// Headers are added to the CONNECT request, in order.
	Headers []ProxyHeader
}

// ProxyHeader is one header field of a CONNECT request.
type ProxyHeader struct {
	Name, Value string
}

// NewPeer returns a TCP peer for addr, a "host:port" whose host is an IP
// literal (IPv6 in brackets, with an optional zone) or a DNS name. Unlike
// the reference, NewPeer does not resolve names: that would block without a
// deadline; the connector resolves them when it dials. An IP literal is
// stored in canonical form (see AddrPort); a name is only checked for the
// characters a host name may hold.
func NewPeer(addr string, tls bool, sni string) (*Peer, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &AddrError{Addr: addr, Reason: err.Error()}
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return nil, &AddrError{Addr: addr, Reason: "port must be 1 to 65535"}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		addr = netip.AddrPortFrom(ip, uint16(port)).String()
	} else if validHostname(host) && !strings.HasPrefix(addr, "[") {
		addr = net.JoinHostPort(strings.ToLower(host), strconv.FormatUint(port, 10))
	} else {
		return nil, &AddrError{Addr: addr, Reason: "host is neither an IP address nor a host name"}
	}
	return &Peer{Network: NetworkTCP, Addr: addr, TLS: tls, SNI: sni}, nil
}

// NewUnixPeer returns a peer reached through the Unix domain socket at path.
func NewUnixPeer(path string, tls bool, sni string) (*Peer, error) {
	if path == "" || strings.IndexByte(path, 0) >= 0 {
		return nil, &AddrError{Addr: path, Reason: "socket path is empty or holds a NUL byte"}
	}
	return &Peer{Network: NetworkUnix, Addr: path, TLS: tls, SNI: sni}, nil
}

// AddrError is an address NewPeer or NewUnixPeer rejected. It matches
// ErrInvalidAddress with errors.Is.
type AddrError struct {
	Addr   string
	Reason string
}

// Error returns the address and why it was rejected.
func (e *AddrError) Error() string {
	return "upstream: invalid address " + strconv.Quote(e.Addr) + ": " + e.Reason
}

// Is reports whether target is ErrInvalidAddress.
func (e *AddrError) Is(target error) bool { return target == ErrInvalidAddress }

// validHostname reports whether host is made of DNS labels: ASCII letters,
// digits, '-' and '_' separated by single dots, at most 253 bytes.
func validHostname(host string) bool {
	if host == "" || len(host) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(host); i++ {
		switch c := host[i]; {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
			label++
			if label > 63 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// network returns p.Network with the empty default applied.
func (p *Peer) network() string {
	if p.Network == "" {
		return NetworkTCP
	}
	return p.Network
}

// AddrPort returns the peer's IP address and port when it is a TCP peer
// whose host is an IP literal; ok is false for a name or a Unix socket. It
// parses Addr on each call (without allocating), so it never disagrees
// with Addr.
func (p *Peer) AddrPort() (ap netip.AddrPort, ok bool) {
	if p.network() != NetworkTCP {
		return ap, false
	}
	ap, err := netip.ParseAddrPort(p.Addr)
	return ap, err == nil
}

// String describes p for logs: "addr=10.0.0.1:443 tls=true sni=example.com",
// with "unix:" before a socket path and the group key and CONNECT target
// when set.
func (p *Peer) String() string {
	var b strings.Builder
	b.WriteString("addr=")
	if p.network() != NetworkTCP {
		b.WriteString(p.network())
		b.WriteByte(':')
	}
	b.WriteString(p.Addr)
	b.WriteString(" tls=")
	b.WriteString(strconv.FormatBool(p.TLS))
	b.WriteString(" sni=")
	b.WriteString(p.SNI)
	if p.GroupKey != 0 {
		b.WriteString(" group=")
		b.WriteString(strconv.FormatUint(p.GroupKey, 10))
	}
	if p.Proxy != nil {
		b.WriteString(" proxy=")
		b.WriteString(net.JoinHostPort(p.Proxy.Host, strconv.Itoa(int(p.Proxy.Port))))
		b.WriteString(" via=")
		b.WriteString(p.Proxy.NextHop)
	}
	return b.String()
}
