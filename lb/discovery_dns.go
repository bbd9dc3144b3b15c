package lb

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Defaults of DNS.
const (
	// DefaultDNSTimeout bounds one DNS exchange.
	DefaultDNSTimeout = 2 * time.Second
	// DefaultMinTTL is the shortest refresh interval a DNS answer may ask
	// for; shorter TTLs (including 0) are raised to it.
	DefaultMinTTL = time.Second
	// DefaultMaxTTL is the longest time a DNS answer is kept.
	DefaultMaxTTL = 5 * time.Minute
)

// udpPayload is the EDNS0 UDP payload size offered to the resolver: the
// size the DNS flag day 2020 settled on to avoid IP fragmentation.
const udpPayload = 1232

// Errors of DNS discovery.
var (
	// ErrNoRecords reports an answer without usable records. The previous
	// backend set stays: an empty set would fail every request.
	ErrNoRecords = errors.New("lb: dns: no records")
	// ErrDNSReply reports a reply that does not answer the query or carries
	// an error code.
	ErrDNSReply = errors.New("lb: dns: bad reply")
)

// DNS discovers backends by asking a DNS resolver directly, over UDP (and
// TCP when the answer is truncated), and refreshes them when the answer's
// TTL runs out.
//
// Without SRV, Name's A and AAAA records become backends at Port, each of
// Weight. With SRV, Name's SRV records of the lowest priority become
// backends at the addresses of their targets (taken from the reply's
// additional section or resolved), with the SRV port and weight.
type DNS struct {
	// Name is the host name (or, with SRV, the service name such as
	// "_http._tcp.example.com") to resolve.
	Name string
	// Port is the port of A/AAAA backends.
	Port int
	// Weight is the weight of A/AAAA backends; zero means 1.
	Weight int
	// SRV looks up SRV records instead of addresses.
	SRV bool
	// Network is "ip" (A and AAAA records, the default), "ip4" (A only)
	// or "ip6" (AAAA only).
	Network string
	// Resolver is the DNS server's "host:port"; empty means the first
	// nameserver of /etc/resolv.conf, or 127.0.0.1:53.
	Resolver string
	// Timeout bounds each exchange with the resolver; zero means
	// DefaultDNSTimeout.
	Timeout time.Duration
	// MinTTL and MaxTTL clamp the TTL Discover returns; zero means
	// DefaultMinTTL and DefaultMaxTTL.
	MinTTL, MaxTTL time.Duration
}

// Discover resolves the backends. The TTL it returns is the smallest TTL of
// the records used, clamped to [MinTTL, MaxTTL].
func (d *DNS) Discover(ctx context.Context) ([]Backend, time.Duration, error) {
	name, err := dnsmessage.NewName(fqdn(d.Name))
	if err != nil {
		return nil, 0, fmt.Errorf("lb: dns: name %q: %w", d.Name, err)
	}
	if !d.SRV && (d.Port < 1 || d.Port > 65535) {
		return nil, 0, fmt.Errorf("lb: dns: port %d out of range", d.Port)
	}
	var (
		list []Backend
		ttl  uint32
	)
	if d.SRV {
		list, ttl, err = d.discoverSRV(ctx, name)
	} else {
		var addrs []netip.Addr
		addrs, ttl, err = d.lookupAddrs(ctx, name)
		for _, a := range addrs {
			list = append(list, Backend{Addr: netip.AddrPortFrom(a, uint16(d.Port)).String(), Weight: d.Weight})
		}
	}
	if err != nil {
		return nil, 0, err
	}
	if len(list) == 0 {
		return nil, 0, fmt.Errorf("%w for %s", ErrNoRecords, d.Name)
	}
	t := time.Duration(ttl) * time.Second
	return list, min(max(t, orDefault(d.MinTTL, DefaultMinTTL)), orDefault(d.MaxTTL, DefaultMaxTTL)), nil
}

func fqdn(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}

// discoverSRV resolves SRV records and their targets.
func (d *DNS) discoverSRV(ctx context.Context, name dnsmessage.Name) ([]Backend, uint32, error) {
	m, err := d.exchange(ctx, name, dnsmessage.TypeSRV)
	if err != nil {
		return nil, 0, err
	}
	srvs, ttl := srvRecords(m)
	var list []Backend
	seen := make(map[string]bool)
	for _, s := range srvs {
		addrs, attl := addrRecords(m.Additionals, s.Target, d.network())
		if len(addrs) == 0 {
			addrs, attl, err = d.lookupAddrs(ctx, s.Target)
			if err != nil {
				return nil, 0, fmt.Errorf("lb: dns: SRV target %s: %w", s.Target, err)
			}
		}
		ttl = min(ttl, attl)
		for _, a := range addrs {
			addr := netip.AddrPortFrom(a, s.Port).String()
			if !seen[addr] {
				seen[addr] = true
				list = append(list, Backend{Addr: addr, Weight: max(int(s.Weight), 1)})
			}
		}
	}
	return list, ttl, nil
}

// srvRecords returns the SRV records of the lowest priority in m's answer,
// skipping the "." target that means "no service", and their smallest TTL.
func srvRecords(m *dnsmessage.Message) ([]dnsmessage.SRVResource, uint32) {
	var out []dnsmessage.SRVResource
	ttl := uint32(1<<32 - 1)
	for _, r := range m.Answers {
		s, ok := r.Body.(*dnsmessage.SRVResource)
		if !ok || s.Target.Length <= 1 {
			continue
		}
		if len(out) > 0 && s.Priority > out[0].Priority {
			continue
		}
		if len(out) > 0 && s.Priority < out[0].Priority {
			out, ttl = out[:0], uint32(1<<32-1)
		}
		out = append(out, *s)
		ttl = min(ttl, r.Header.TTL)
	}
	return out, ttl
}

func (d *DNS) network() string {
	return cmp.Or(d.Network, "ip")
}

// lookupAddrs queries name's A and/or AAAA records and returns the
// addresses and their smallest TTL. A failure of one of the two queries is
// ignored when the other gives addresses.
func (d *DNS) lookupAddrs(ctx context.Context, name dnsmessage.Name) ([]netip.Addr, uint32, error) {
	var types []dnsmessage.Type
	switch d.network() {
	case "ip4":
		types = []dnsmessage.Type{dnsmessage.TypeA}
	case "ip6":
		types = []dnsmessage.Type{dnsmessage.TypeAAAA}
	case "ip":
		types = []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA}
	default:
		return nil, 0, fmt.Errorf("lb: dns: network %q is not ip, ip4 or ip6", d.Network)
	}
	var (
		addrs   []netip.Addr
		ttl     = uint32(1<<32 - 1)
		lastErr error
	)
	for _, t := range types {
		m, err := d.exchange(ctx, name, t)
		if err != nil {
			lastErr = err
			continue
		}
		got, gttl := addrRecords(m.Answers, name, d.network())
		addrs = append(addrs, got...)
		ttl = min(ttl, gttl)
	}
	if len(addrs) == 0 && lastErr != nil {
		return nil, 0, lastErr
	}
	return addrs, ttl, nil
}

// addrRecords returns the addresses of name among rs, following CNAME
// records, and the smallest TTL of the records on the way.
func addrRecords(rs []dnsmessage.Resource, name dnsmessage.Name, network string) ([]netip.Addr, uint32) {
	var addrs []netip.Addr
	ttl := uint32(1<<32 - 1)
	// A CNAME chain longer than the records cannot be followed; the bound
	// also stops loops.
	for range len(rs) + 1 {
		var next *dnsmessage.Name
		for _, r := range rs {
			if !strings.EqualFold(r.Header.Name.String(), name.String()) {
				continue
			}
			switch b := r.Body.(type) {
			case *dnsmessage.AResource:
				if network != "ip6" {
					addrs = append(addrs, netip.AddrFrom4(b.A))
					ttl = min(ttl, r.Header.TTL)
				}
			case *dnsmessage.AAAAResource:
				if network != "ip4" {
					addrs = append(addrs, netip.AddrFrom16(b.AAAA))
					ttl = min(ttl, r.Header.TTL)
				}
			case *dnsmessage.CNAMEResource:
				if next == nil {
					ttl = min(ttl, r.Header.TTL)
					next = &b.CNAME
				}
			}
		}
		if len(addrs) > 0 || next == nil {
			break
		}
		name = *next
	}
	return addrs, ttl
}

// exchange sends one query and returns the reply, over TCP when the UDP
// reply is truncated.
func (d *DNS) exchange(ctx context.Context, name dnsmessage.Name, t dnsmessage.Type) (*dnsmessage.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, orDefault(d.Timeout, DefaultDNSTimeout))
	defer cancel()
	q := dnsmessage.Question{Name: name, Type: t, Class: dnsmessage.ClassINET}
	id := uint16(rand.Uint32())
	query, err := buildQuery(id, q)
	if err != nil {
		return nil, err
	}
	server := d.Resolver
	if server == "" {
		server = systemResolver()
	}
	m, err := exchangeUDP(ctx, server, query[2:], id, q)
	if err == nil && m.Header.Truncated {
		m, err = exchangeTCP(ctx, server, query, id, q)
	}
	if err != nil {
		return nil, fmt.Errorf("lb: dns: %s %s at %s: %w", t, name, server, err)
	}
	return m, nil
}

// buildQuery packs a recursive query with an EDNS0 record, behind two bytes
// left for the TCP length prefix.
func buildQuery(id uint16, q dnsmessage.Question) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 2, 64+len(q.Name.Data)), dnsmessage.Header{ID: id, RecursionDesired: true})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAdditionals(); err != nil {
		return nil, err
	}
	var opt dnsmessage.ResourceHeader
	if err := opt.SetEDNS0(udpPayload, dnsmessage.RCodeSuccess, false); err != nil {
		return nil, err
	}
	if err := b.OPTResource(opt, dnsmessage.OPTResource{}); err != nil {
		return nil, err
	}
	msg, err := b.Finish()
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint16(msg, uint16(len(msg)-2))
	return msg, nil
}

// dialDNS connects to server, ties the connection's deadline to ctx and sends query. stop
// closes the connection.
func dialDNS(ctx context.Context, network, server string, query []byte) (net.Conn, func(), error) {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, network, server)
	if err != nil {
		return nil, nil, err
	}
	unhook := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	stop := func() {
		unhook()
		conn.Close()
	}
	if _, err := conn.Write(query); err != nil {
		stop()
		return nil, nil, err
	}
	return conn, stop, nil
}

func exchangeUDP(ctx context.Context, server string, query []byte, id uint16, q dnsmessage.Question) (*dnsmessage.Message, error) {
	conn, stop, err := dialDNS(ctx, "udp", server, query)
	if err != nil {
		return nil, err
	}
	defer stop()
	buf := make([]byte, udpPayload)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, err
		}
		m, err := parseReply(buf[:n], id, q)
		// A datagram that does not answer this query (a late reply to an
		// earlier one, or a spoofing attempt) is dropped; wait for the
		// right one until the deadline.
		if errors.Is(err, errMismatch) {
			continue
		}
		return m, err
	}
}

func exchangeTCP(ctx context.Context, server string, query []byte, id uint16, q dnsmessage.Question) (*dnsmessage.Message, error) {
	conn, stop, err := dialDNS(ctx, "tcp", server, query)
	if err != nil {
		return nil, err
	}
	defer stop()
	var size [2]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return nil, err
	}
	buf := make([]byte, binary.BigEndian.Uint16(size[:]))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return nil, err
	}
	return parseReply(buf, id, q)
}

var errMismatch = fmt.Errorf("%w: reply does not match the query", ErrDNSReply)

// parseReply decodes a reply and checks that it answers the query with id
// and q without an error code.
func parseReply(b []byte, id uint16, q dnsmessage.Question) (*dnsmessage.Message, error) {
	var m dnsmessage.Message
	if err := m.Unpack(b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDNSReply, err)
	}
	if !m.Header.Response || m.Header.ID != id || len(m.Questions) != 1 ||
		m.Questions[0].Type != q.Type || m.Questions[0].Class != q.Class ||
		!strings.EqualFold(m.Questions[0].Name.String(), q.Name.String()) {
		return nil, errMismatch
	}
	if m.Header.RCode != dnsmessage.RCodeSuccess {
		return nil, fmt.Errorf("%w: %s", ErrDNSReply, m.Header.RCode)
	}
	return &m, nil
}

// systemResolver returns the first nameserver of /etc/resolv.conf.
func systemResolver() string {
	const fallback = "127.0.0.1:53"
	f, err := os.Open("/etc/resolv.conf")
	if err != nil {
		return fallback
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "nameserver" {
			if ip, err := netip.ParseAddr(fields[1]); err == nil {
				return net.JoinHostPort(ip.String(), "53")
			}
		}
	}
	return fallback
}
