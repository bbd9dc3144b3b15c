package proxyproto

import (
	"bytes"
	"encoding/binary"
	"net"
	"strings"
	"testing"
)

func TestParseV1(t *testing.T) {
	tests := []struct {
		in       string
		src, dst string
	}{
		{"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", "192.168.0.1:56324", "192.168.0.11:443"},
		{"PROXY TCP6 2001:db8::1 ::1 0 65535\r\n", "[2001:db8::1]:0", "[::1]:65535"},
		{"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
			"[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"},
		{"PROXY UNKNOWN\r\n", "", ""},
		{"PROXY UNKNOWN ffff::1 ::1 1 2\r\n", "", ""},
	}
	for _, tt := range tests {
		in := tt.in + "GET / HTTP/1.1\r\n"
		h, n, err := Parse([]byte(in), 0)
		if err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		if n != len(tt.in) {
			t.Errorf("%q: length %d, want %d", tt.in, n, len(tt.in))
		}
		if h.Version != 1 || h.Command != Proxy {
			t.Errorf("%q: version %d command %d", tt.in, h.Version, h.Command)
		}
		if got := addrString(h.Source); got != tt.src {
			t.Errorf("%q: source %q, want %q", tt.in, got, tt.src)
		}
		if got := addrString(h.Destination); got != tt.dst {
			t.Errorf("%q: destination %q, want %q", tt.in, got, tt.dst)
		}
		// Every proper prefix is incomplete, never an error or a header.
		for i := 1; i < len(tt.in); i++ {
			if _, _, err := Parse([]byte(tt.in[:i]), 0); err != ErrIncomplete {
				t.Fatalf("%q prefix %d: %v, want ErrIncomplete", tt.in, i, err)
			}
		}
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func TestParseV1Rejects(t *testing.T) {
	bad := []string{
		"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n",    // LF without CR
		"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 \r\n", // trailing space
		"PROXY TCP4  192.168.0.1 192.168.0.11 56324 443\r\n", // two spaces
		"PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n",      // a field missing
		"PROXY TCP4 ::1 ::1 1 2\r\n",                         // IPv6 in TCP4
		"PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n",                 // IPv4 in TCP6
		"PROXY TCP4 192.168.0.01 192.168.0.11 1 2\r\n",       // leading zero in an octet
		"PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n",  // port out of range
		"PROXY TCP4 192.168.0.1 192.168.0.11 -1 443\r\n",     // negative port
		"PROXY TCP4 192.168.0.1 192.168.0.11 0443 443\r\n",   // leading zero in a port
		"PROXY TCP4 192.168.0.1 192.168.0.11 +44 443\r\n",    // sign
		"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",                // zone
		"PROXY UDP4 192.168.0.1 192.168.0.11 56324 443\r\n",  // not TCP
		"PROXY tcp4 192.168.0.1 192.168.0.11 56324 443\r\n",  // case
		"PROXY \r\n", // nothing
		"PROXY TCP4 " + strings.Repeat("1", 100) + "\r\n",       // too long
		"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\x00\r\n", // NUL
	}
	for _, in := range bad {
		if h, _, err := Parse([]byte(in), 0); err == nil || err == ErrIncomplete {
			t.Errorf("%q: accepted (%+v, %v)", in, h, err)
		}
	}
	// A line longer than 107 bytes without its end is refused before it ends.
	long := "PROXY TCP6 " + strings.Repeat("a", 120)
	if _, _, err := Parse([]byte(long), 0); err == nil || err == ErrIncomplete {
		t.Errorf("unterminated long line: %v", err)
	}
	for _, in := range []string{"GET / HTTP/1.1\r\n", "PRI * HTTP/2.0\r\n", "\x16\x03\x01", "PROXZ"} {
		if _, _, err := Parse([]byte(in), 0); err != ErrNoHeader {
			t.Errorf("%q: %v, want ErrNoHeader", in, err)
		}
	}
}

// v2 builds a version 2 header by hand, independently of Append.
func v2(verCmd, famTrans byte, body []byte) []byte {
	b := append([]byte{}, v2Signature...)
	b = append(b, verCmd, famTrans)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

func TestParseV2(t *testing.T) {
	inet := []byte{10, 0, 0, 1, 10, 0, 0, 2, 0x30, 0x39, 0x01, 0xbb}
	tlvs := []byte{TypeALPN, 0, 2, 'h', '2', TypeAuthority, 0, 11}
	tlvs = append(tlvs, "example.com"...)
	tlvs = append(tlvs, TypeNoop, 0, 3, 0, 0, 0)
	in := v2(0x21, 0x11, append(append([]byte{}, inet...), tlvs...))
	h, n, err := Parse(append(in, "GET"...), 0)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(in) || h.Version != 2 || h.Command != Proxy {
		t.Fatalf("n=%d version=%d command=%d", n, h.Version, h.Command)
	}
	if h.Source.String() != "10.0.0.1:12345" || h.Destination.String() != "10.0.0.2:443" {
		t.Fatalf("addresses %v %v", h.Source, h.Destination)
	}
	if h.ALPN() != "h2" || h.Authority() != "example.com" || len(h.TLVs) != 3 {
		t.Fatalf("TLVs %+v", h.TLVs)
	}
	for i := 1; i < len(in); i++ {
		if _, _, err := Parse(in[:i], 0); err != ErrIncomplete {
			t.Fatalf("prefix %d: %v", i, err)
		}
	}

	inet6 := make([]byte, 36)
	inet6[15], inet6[31], inet6[33], inet6[35] = 1, 2, 80, 81
	h, _, err = Parse(v2(0x21, 0x21, inet6), 0)
	if err != nil || h.Source.String() != "[::1]:80" || h.Destination.String() != "[::2]:81" {
		t.Fatalf("inet6: %v %v %v", h, err, h.Source)
	}

	unix := make([]byte, 216)
	copy(unix, "/run/client.sock")
	copy(unix[108:], "/run/server.sock")
	h, _, err = Parse(v2(0x21, 0x31, unix), 0)
	if err != nil || h.Source.String() != "/run/client.sock" || h.Destination.String() != "/run/server.sock" {
		t.Fatalf("unix: %+v %v", h, err)
	}

	// LOCAL: addresses, if any, are ignored.
	h, _, err = Parse(v2(0x20, 0x11, inet), 0)
	if err != nil || h.Command != Local || h.Source != nil {
		t.Fatalf("local: %+v %v", h, err)
	}
	h, _, err = Parse(v2(0x20, 0x00, nil), 0)
	if err != nil || h.Command != Local || h.Source != nil {
		t.Fatalf("local unspec: %+v %v", h, err)
	}
	// PROXY with an unspecified family: no addresses.
	h, _, err = Parse(v2(0x21, 0x00, []byte{TypeNoop, 0, 0}), 0)
	if err != nil || h.Source != nil || len(h.TLVs) != 1 {
		t.Fatalf("proxy unspec: %+v %v", h, err)
	}
}

func TestParseV2SSL(t *testing.T) {
	ssl := []byte{0x07, 0, 0, 0, 0}
	ssl = append(ssl, SubTypeSSLVersion, 0, 7)
	ssl = append(ssl, "TLSv1.3"...)
	ssl = append(ssl, SubTypeSSLCN, 0, 6)
	ssl = append(ssl, "client"...)
	body := []byte{127, 0, 0, 1, 127, 0, 0, 1, 0, 1, 0, 2, TypeSSL}
	body = binary.BigEndian.AppendUint16(body, uint16(len(ssl)))
	body = append(body, ssl...)
	h, _, err := Parse(v2(0x21, 0x11, body), 0)
	if err != nil {
		t.Fatal(err)
	}
	info, ok := h.SSL()
	if !ok || info.Client != 7 || info.Verify != 0 || info.Version != "TLSv1.3" || info.CN != "client" {
		t.Fatalf("SSL %+v %v", info, ok)
	}
}

func TestParseV2Rejects(t *testing.T) {
	inet := []byte{10, 0, 0, 1, 10, 0, 0, 2, 0x30, 0x39, 0x01, 0xbb}
	bad := map[string][]byte{
		"version 1 nibble":         v2(0x11, 0x11, inet),
		"version 3 nibble":         v2(0x31, 0x11, inet),
		"unknown command":          v2(0x22, 0x11, inet),
		"datagram":                 v2(0x21, 0x12, inet),
		"unknown family":           v2(0x21, 0x41, inet),
		"unknown transport":        v2(0x21, 0x13, inet),
		"family without transport": v2(0x21, 0x10, inet),
		"short inet":               v2(0x21, 0x11, inet[:11]),
		"short inet6":              v2(0x21, 0x21, make([]byte, 35)),
		"short unix":               v2(0x21, 0x31, make([]byte, 215)),
		"truncated TLV":            v2(0x21, 0x11, append(append([]byte{}, inet...), 1, 0)),
		"TLV overrun":              v2(0x21, 0x11, append(append([]byte{}, inet...), 1, 0, 5, 'a')),
		"CRC of 3 bytes":           v2(0x21, 0x11, append(append([]byte{}, inet...), TypeCRC32C, 0, 3, 1, 2, 3)),
		"wrong CRC":                v2(0x21, 0x11, append(append([]byte{}, inet...), TypeCRC32C, 0, 4, 1, 2, 3, 4)),
		"bad signature":            append([]byte("\r\n\r\n\x00\r\nQUIZ\n"), 0x21, 0x11, 0, 0),
	}
	for name, in := range bad {
		if h, _, err := Parse(in, 0); err == nil || err == ErrIncomplete {
			t.Errorf("%s: accepted (%+v, %v)", name, h, err)
		}
	}
	// The announced length is checked against the limit before the body arrives.
	body := append(append([]byte{}, inet...), 0xE0, 0x13, 0x7d) // one TLV of 4989 bytes
	big := v2(0x21, 0x11, append(body, make([]byte, 4989)...))
	if _, _, err := Parse(big[:16], 0); err == nil || err == ErrIncomplete {
		t.Errorf("5000-byte header under the 4096 default: %v", err)
	}
	if _, _, err := Parse(big, 8192); err != nil {
		t.Errorf("5000-byte header under a 8192 limit: %v", err)
	}
}

func TestAppendRoundTrip(t *testing.T) {
	src4 := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 40000}
	dst4 := &net.TCPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 443}
	src6 := &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 1}
	dst6 := &net.TCPAddr{IP: net.ParseIP("2001:db8::2"), Port: 65535}
	headers := []*Header{
		{Version: 1, Command: Proxy, Source: src4, Destination: dst4},
		{Version: 1, Command: Proxy, Source: src6, Destination: dst6},
		{Version: 1, Command: Proxy},
		{Version: 2, Command: Proxy, Source: src4, Destination: dst4},
		{Version: 2, Command: Proxy, Source: src6, Destination: dst6},
		{Version: 2, Command: Local},
		{Version: 2, Command: Proxy, Source: &net.UnixAddr{Name: "/a", Net: "unix"}, Destination: &net.UnixAddr{Name: "/b", Net: "unix"}},
		{Version: 2, Command: Proxy, Source: src4, Destination: dst4, TLVs: []TLV{
			{Type: TypeALPN, Value: []byte("http/1.1")}, {Type: TypeUniqueID, Value: []byte{1, 2, 3}},
			{Type: TypeCRC32C, Value: make([]byte, 4)}, {Type: 0xE0, Value: bytes.Repeat([]byte{9}, 300)}}},
	}
	for _, h := range headers {
		b, err := Append([]byte("x"), h)
		if err != nil {
			t.Fatalf("%+v: %v", h, err)
		}
		got, n, err := Parse(b[1:], 0)
		if err != nil || n != len(b)-1 {
			t.Fatalf("%+v: %q: n=%d %v", h, b, n, err)
		}
		if addrString(got.Source) != addrString(h.Source) || addrString(got.Destination) != addrString(h.Destination) ||
			got.Command != h.Command || got.Version != h.Version || len(got.TLVs) != len(h.TLVs) {
			t.Fatalf("round trip of %+v gave %+v", h, got)
		}
		if h.Version == 1 && !bytes.HasSuffix(b, []byte("\r\n")) {
			t.Fatalf("%q", b)
		}
	}
	b, _ := Append(nil, headers[0])
	if string(b) != "PROXY TCP4 192.0.2.1 198.51.100.7 40000 443\r\n" {
		t.Fatalf("v1 text %q", b)
	}
	// A flipped bit anywhere in a header with a CRC32C is caught, except in the CRC TLV's
	// type (which turns it into a TLV that is not checked).
	b, _ = Append(nil, headers[len(headers)-1])
	crcType := bytes.Index(b, []byte{TypeCRC32C, 0, 4})
	for i := 16; i < len(b); i++ {
		if i == crcType {
			continue
		}
		c := bytes.Clone(b)
		c[i] ^= 0x01
		if _, _, err := Parse(c, 0); err == nil {
			t.Fatalf("bit flip at %d accepted", i)
		}
	}
	if _, err := Append(nil, &Header{Version: 3}); err == nil {
		t.Fatal("version 3 encoded")
	}
	if _, err := Append(nil, &Header{Version: 1, Command: Proxy, Source: &net.UnixAddr{Name: "/a"}, Destination: &net.UnixAddr{Name: "/b"}}); err == nil {
		t.Fatal("unix addresses in version 1")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(v2(0x21, 0x11, []byte{10, 0, 0, 1, 10, 0, 0, 2, 0x30, 0x39, 0x01, 0xbb, 1, 0, 2, 'h', '2'}))
	f.Add(v2(0x20, 0x00, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := Parse(b, 0)
		if err != nil {
			if h != nil || n != 0 {
				t.Fatalf("error %v with a header", err)
			}
			if err == ErrIncomplete && len(b) >= MaxV1Length && b[0] == 'P' {
				t.Fatalf("incomplete after %d bytes", len(b))
			}
			return
		}
		if n > len(b) || n < 15 {
			t.Fatalf("length %d of %d", n, len(b))
		}
		// Whatever is accepted says the same after being written again.
		enc, err := Append(nil, h)
		if err != nil {
			t.Fatalf("accepted header %+v does not encode: %v", h, err)
		}
		h2, _, err := Parse(enc, 0)
		if err != nil {
			t.Fatalf("re-encoded %q: %v", enc, err)
		}
		if addrString(h2.Source) != addrString(h.Source) || addrString(h2.Destination) != addrString(h.Destination) ||
			h2.Command != h.Command || len(h2.TLVs) != len(h.TLVs) {
			t.Fatalf("%+v re-read as %+v", h, h2)
		}
	})
}
