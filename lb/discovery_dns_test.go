package lb

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsServer is a tiny authoritative DNS server on 127.0.0.1 (UDP and TCP on
// the same port) whose answers a test sets and changes.
type dnsServer struct {
	addr string

	mu       sync.Mutex // guards following fields
	answers  map[dnsmessage.Question][]dnsmessage.Resource
	extra    map[dnsmessage.Question][]dnsmessage.Resource
	rcode    dnsmessage.RCode
	truncate bool // UDP replies carry TC and no records
	queries  int
	at       []time.Time // when each query arrived
}

func startDNS(t testing.TB) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		t.Skipf("TCP port of the UDP DNS server is taken: %v", err)
	}
	s := &dnsServer{
		addr:    pc.LocalAddr().String(),
		answers: make(map[dnsmessage.Question][]dnsmessage.Resource),
		extra:   make(map[dnsmessage.Question][]dnsmessage.Resource),
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if reply := s.reply(buf[:n], true); reply != nil {
				pc.WriteTo(reply, from)
			}
		}
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				var size [2]byte
				if _, err := io.ReadFull(c, size[:]); err != nil {
					return
				}
				q := make([]byte, binary.BigEndian.Uint16(size[:]))
				if _, err := io.ReadFull(c, q); err != nil {
					return
				}
				if reply := s.reply(q, false); reply != nil {
					c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(reply))))
					c.Write(reply)
				}
			})
		}
	})
	t.Cleanup(func() {
		pc.Close()
		ln.Close()
		wg.Wait()
	})
	return s
}

func question(name string, t dnsmessage.Type) dnsmessage.Question {
	return dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: t, Class: dnsmessage.ClassINET}
}

// set replaces the answer (and additional records) to name and type.
func (s *dnsServer) set(name string, t dnsmessage.Type, answers, extra []dnsmessage.Resource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := question(name, t)
	s.answers[q], s.extra[q] = answers, extra
}

func (s *dnsServer) reply(query []byte, udp bool) []byte {
	var m dnsmessage.Message
	if err := m.Unpack(query); err != nil || len(m.Questions) != 1 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries++
	s.at = append(s.at, time.Now())
	q := m.Questions[0]
	q.Name = dnsmessage.MustNewName(strings.ToLower(q.Name.String()))
	r := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: m.Header.ID, Response: true, Authoritative: true, RCode: s.rcode},
		Questions: m.Questions,
	}
	if udp && s.truncate {
		r.Header.Truncated = true
	} else {
		r.Answers, r.Additionals = s.answers[q], s.extra[q]
	}
	b, err := r.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

func aRec(name string, ttl uint32, ip string) dnsmessage.Resource {
	a := netip.MustParseAddr(ip)
	h := dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Class: dnsmessage.ClassINET, TTL: ttl}
	if a.Is4() {
		return dnsmessage.Resource{Header: h, Body: &dnsmessage.AResource{A: a.As4()}}
	}
	return dnsmessage.Resource{Header: h, Body: &dnsmessage.AAAAResource{AAAA: a.As16()}}
}

func srvRec(name string, ttl uint32, prio, weight, port uint16, target string) dnsmessage.Resource {
	return dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Class: dnsmessage.ClassINET, TTL: ttl},
		Body:   &dnsmessage.SRVResource{Priority: prio, Weight: weight, Port: port, Target: dnsmessage.MustNewName(target)},
	}
}

func cnameRec(name string, ttl uint32, target string) dnsmessage.Resource {
	return dnsmessage.Resource{
		Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Class: dnsmessage.ClassINET, TTL: ttl},
		Body:   &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName(target)},
	}
}

func TestDNSDiscover(t *testing.T) {
	srv := startDNS(t)
	srv.set("web.test.", dnsmessage.TypeA, []dnsmessage.Resource{aRec("web.test.", 30, "10.0.0.2"), aRec("web.test.", 20, "10.0.0.1")}, nil)
	srv.set("web.test.", dnsmessage.TypeAAAA, []dnsmessage.Resource{aRec("web.test.", 60, "fd00::1")}, nil)
	srv.set("alias.test.", dnsmessage.TypeA, []dnsmessage.Resource{cnameRec("alias.test.", 7, "web.test."), aRec("web.test.", 30, "10.0.0.3")}, nil)
	srv.set("_http._tcp.svc.test.", dnsmessage.TypeSRV, []dnsmessage.Resource{
		srvRec("_http._tcp.svc.test.", 40, 10, 5, 8080, "a.svc.test."),
		srvRec("_http._tcp.svc.test.", 40, 10, 0, 8081, "b.svc.test."),
		srvRec("_http._tcp.svc.test.", 40, 20, 9, 9090, "backup.svc.test."),
	}, []dnsmessage.Resource{aRec("a.svc.test.", 15, "10.1.0.1")})
	srv.set("b.svc.test.", dnsmessage.TypeA, []dnsmessage.Resource{aRec("b.svc.test.", 25, "10.1.0.2")}, nil)

	tests := []struct {
		name    string
		d       DNS
		want    []Backend
		wantTTL time.Duration
		wantErr error
	}{
		{
			name:    "A and AAAA",
			d:       DNS{Name: "web.test", Port: 80},
			want:    []Backend{{Addr: "10.0.0.2:80"}, {Addr: "10.0.0.1:80"}, {Addr: "[fd00::1]:80"}},
			wantTTL: 20 * time.Second,
		},
		{
			name:    "A only, weighted",
			d:       DNS{Name: "web.test.", Port: 443, Network: "ip4", Weight: 3},
			want:    []Backend{{Addr: "10.0.0.2:443", Weight: 3}, {Addr: "10.0.0.1:443", Weight: 3}},
			wantTTL: 20 * time.Second,
		},
		{
			name:    "AAAA only, TTL raised to MinTTL",
			d:       DNS{Name: "web.test", Port: 80, Network: "ip6", MinTTL: 2 * time.Minute},
			want:    []Backend{{Addr: "[fd00::1]:80"}},
			wantTTL: 2 * time.Minute,
		},
		{
			name:    "TTL capped by MaxTTL",
			d:       DNS{Name: "web.test", Port: 80, MaxTTL: 5 * time.Second},
			want:    []Backend{{Addr: "10.0.0.2:80"}, {Addr: "10.0.0.1:80"}, {Addr: "[fd00::1]:80"}},
			wantTTL: 5 * time.Second,
		},
		{
			name:    "CNAME chain",
			d:       DNS{Name: "alias.test", Port: 80, Network: "ip4"},
			want:    []Backend{{Addr: "10.0.0.3:80"}},
			wantTTL: 7 * time.Second,
		},
		{
			name: "SRV: lowest priority, weights, additional and resolved targets",
			d:    DNS{Name: "_http._tcp.svc.test", SRV: true, Network: "ip4"},
			want: []Backend{{Addr: "10.1.0.1:8080", Weight: 5}, {Addr: "10.1.0.2:8081", Weight: 1}},
			// The resolved target's TTL (25) is above the additional record's (15).
			wantTTL: 15 * time.Second,
		},
		{
			name:    "no records",
			d:       DNS{Name: "missing.test", Port: 80},
			wantErr: ErrNoRecords,
		},
		{
			name: "no port",
			d:    DNS{Name: "web.test"},
		},
		{
			name:    "bad network",
			d:       DNS{Name: "web.test", Port: 80, Network: "tcp"},
			wantErr: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.d.Resolver = srv.addr
			got, ttl, err := tt.d.Discover(context.Background())
			if tt.want == nil {
				if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, tt.want, func(a, b Backend) bool { return a.Addr == b.Addr && a.Weight == b.Weight }) {
				t.Errorf("backends = %v, want %v", got, tt.want)
			}
			if ttl != tt.wantTTL {
				t.Errorf("ttl = %v, want %v", ttl, tt.wantTTL)
			}
		})
	}
}

func TestDNSErrors(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(s *dnsServer)
		wantErr error
	}{
		{"server failure", func(s *dnsServer) { s.rcode = dnsmessage.RCodeServerFailure }, ErrDNSReply},
		{"name error", func(s *dnsServer) { s.rcode = dnsmessage.RCodeNameError }, ErrDNSReply},
		{"empty answer", func(*dnsServer) {}, ErrNoRecords},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startDNS(t)
			srv.mu.Lock()
			tt.setup(srv)
			srv.mu.Unlock()
			d := DNS{Name: "web.test", Port: 80, Resolver: srv.addr}
			if _, _, err := d.Discover(context.Background()); !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestDNSTruncatedFallsBackToTCP(t *testing.T) {
	srv := startDNS(t)
	srv.set("web.test.", dnsmessage.TypeA, []dnsmessage.Resource{aRec("web.test.", 30, "10.0.0.9")}, nil)
	srv.mu.Lock()
	srv.truncate = true
	srv.mu.Unlock()
	d := DNS{Name: "web.test", Port: 80, Network: "ip4", Resolver: srv.addr}
	got, _, err := d.Discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Addr != "10.0.0.9:80" {
		t.Fatalf("backends = %v", got)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.queries != 2 {
		t.Fatalf("queries = %d, want a UDP and a TCP one", srv.queries)
	}
}

func TestDNSIgnoresMismatchedReply(t *testing.T) {
	// A resolver that first sends a reply with the wrong ID, then the right
	// one: the first must be dropped.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 1500)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		var m dnsmessage.Message
		if m.Unpack(buf[:n]) != nil {
			return
		}
		for _, id := range []uint16{m.Header.ID + 1, m.Header.ID} {
			ip := "10.9.9.9"
			if id == m.Header.ID {
				ip = "10.0.0.1"
			}
			r := dnsmessage.Message{
				Header:    dnsmessage.Header{ID: id, Response: true},
				Questions: m.Questions,
				Answers:   []dnsmessage.Resource{aRec("web.test.", 1, ip)},
			}
			b, _ := r.Pack()
			pc.WriteTo(b, from)
		}
	}()
	d := DNS{Name: "web.test", Port: 80, Network: "ip4", Resolver: pc.LocalAddr().String()}
	got, _, err := d.Discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Addr != "10.0.0.1:80" {
		t.Fatalf("backends = %v", got)
	}
}

func TestDNSTimeout(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	d := DNS{Name: "web.test", Port: 80, Resolver: pc.LocalAddr().String(), Timeout: 20 * time.Millisecond}
	if _, _, err := d.Discover(context.Background()); !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
		t.Fatalf("err = %v, want a timeout", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func FuzzParseReply(f *testing.F) {
	q := question("web.test.", dnsmessage.TypeA)
	for _, r := range [][]dnsmessage.Resource{
		{aRec("web.test.", 5, "10.0.0.1"), aRec("web.test.", 5, "fd00::2")},
		{cnameRec("web.test.", 5, "x.test."), cnameRec("x.test.", 5, "web.test.")},
		{srvRec("web.test.", 5, 1, 2, 80, "a.test."), srvRec("web.test.", 5, 0, 2, 81, ".")},
	} {
		m := dnsmessage.Message{Header: dnsmessage.Header{ID: 7, Response: true}, Questions: []dnsmessage.Question{q}, Answers: r}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseReply(b, 7, q)
		if err != nil {
			return
		}
		for _, network := range []string{"ip", "ip4", "ip6"} {
			addrs, _ := addrRecords(m.Answers, q.Name, network)
			for _, a := range addrs {
				if !a.IsValid() {
					t.Fatalf("invalid address from %x", b)
				}
			}
		}
		srvRecords(m)
	})
}
