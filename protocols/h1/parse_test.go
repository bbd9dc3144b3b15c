package h1

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
)

const browserRequest = "GET /wiki/Hypertext_Transfer_Protocol?action=view HTTP/1.1\r\n" +
	"Host: en.wikipedia.org\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Referer: https://www.google.com/\r\n" +
	"Connection: keep-alive\r\n" +
	"Cookie: session=9f2c1a7b3e; theme=dark\r\n" +
	"Upgrade-Insecure-Requests: 1\r\n" +
	"Sec-Fetch-Dest: document\r\n" +
	"\r\n"

const typicalResponse = "HTTP/1.1 200 OK\r\n" +
	"Date: Mon, 25 Nov 2026 20:00:00 GMT\r\n" +
	"Content-Type: text/html; charset=UTF-8\r\n" +
	"Content-Length: 84211\r\n" +
	"Connection: keep-alive\r\n" +
	"Cache-Control: private, s-maxage=0, max-age=0, must-revalidate\r\n" +
	"Content-Encoding: gzip\r\n" +
	"Vary: Accept-Encoding,Cookie\r\n" +
	"Last-Modified: Sun, 24 Nov 2026 09:12:41 GMT\r\n" +
	"Server: ATS/9.2.5\r\n" +
	"X-Cache: cp3066 miss, cp3066 hit/3\r\n" +
	"\r\n"

func TestParseRequestAccepts(t *testing.T) {
	tests := []struct {
		name, in        string
		method, target  string
		version         header.Version
		fields          string // "name=value|..."
		consumedTrailer string // bytes after the head, not consumed
	}{
		{"minimal", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "/", header.HTTP11, "Host=a", ""},
		{"1.0 without host", "GET /x HTTP/1.0\r\n\r\n", "GET", "/x", header.HTTP10, "", ""},
		{"leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "/", header.HTTP11, "Host=a", ""},
		{"body follows", "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", "POST", "/p", header.HTTP11,
			"Host=a|Content-Length=3", "abc"},
		{"ows trimmed, empty value, case kept", "GET / HTTP/1.1\r\nhOsT:  a \t\r\nX-Empty:\r\nX-Sp: \r\n\r\n", "GET", "/", header.HTTP11,
			"hOsT=a|X-Empty=|X-Sp=", ""},
		{"inner whitespace kept", "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: A  B\tC\r\n\r\n", "GET", "/", header.HTTP11,
			"Host=a|User-Agent=A  B\tC", ""},
		{"obs-text in value", "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n", "GET", "/", header.HTTP11, "Host=a|X=caf\xc3\xa9", ""},
		{"absolute form", "GET http://a.example/x?y HTTP/1.1\r\nHost: a.example\r\n\r\n", "GET", "http://a.example/x?y", header.HTTP11,
			"Host=a.example", ""},
		{"authority form", "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", "CONNECT", "a.example:443", header.HTTP11,
			"Host=a.example:443", ""},
		{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "OPTIONS", "*", header.HTTP11, "Host=a", ""},
		{"extension method", "M-SEARCH! / HTTP/1.1\r\nHost: a\r\n\r\n", "M-SEARCH!", "/", header.HTTP11, "Host=a", ""},
		{"token chars in name", "GET / HTTP/1.1\r\nHost: a\r\n!#$%&'*+-.^_`|~09az: v\r\n\r\n", "GET", "/", header.HTTP11,
			"Host=a|!#$%&'*+-.^_`|~09az=v", ""},
		{"pipelined", "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "/1", header.HTTP11,
			"Host=a", "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req header.RequestHeader
			n, err := ParseRequest([]byte(tt.in), &req, nil)
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			if got := tt.in[n:]; got != tt.consumedTrailer {
				t.Errorf("rest after head = %q, want %q", got, tt.consumedTrailer)
			}
			if string(req.Method()) != tt.method || string(req.Target()) != tt.target || req.Version != tt.version {
				t.Errorf("start line = %q %q %v", req.Method(), req.Target(), req.Version)
			}
			if got := fieldDump(&req.Fields); got != tt.fields {
				t.Errorf("fields = %q, want %q", got, tt.fields)
			}
			if _, err := RequestFraming(&req); err != nil {
				t.Errorf("RequestFraming: %v", err)
			}
		})
	}
}

func fieldDump(f *header.Fields) string {
	var parts []string
	for _, fl := range f.All() {
		parts = append(parts, string(fl.Name)+"="+string(fl.Value))
	}
	return strings.Join(parts, "|")
}

// parseAndFrame runs what a server does with a request head: parse, then validate framing.
func parseAndFrame(in string, lim *Limits) error {
	var req header.RequestHeader
	if _, err := ParseRequest([]byte(in), &req, lim); err != nil {
		return err
	}
	_, err := RequestFraming(&req)
	return err
}

func TestParseRequestRejects(t *testing.T) {
	const ok = "GET / HTTP/1.1\r\nHost: a\r\n"
	tests := []struct {
		name, in string
		status   int
	}{
		// Framing (RFC 9112 §6).
		{"CL and TE", ok + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"TE and CL", ok + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400},
		{"differing CL lines", ok + "Content-Length: 3\r\nContent-Length: 4\r\n\r\n", 400},
		{"differing CL list", ok + "Content-Length: 3, 4\r\n\r\n", 400},
		{"negative CL", ok + "Content-Length: -1\r\n\r\n", 400},
		{"plus CL", ok + "Content-Length: +1\r\n\r\n", 400},
		{"hex CL", ok + "Content-Length: 0x10\r\n\r\n", 400},
		{"empty CL", ok + "Content-Length:\r\n\r\n", 400},
		{"CL with inner space", ok + "Content-Length: 1 2\r\n\r\n", 400},
		{"overflowing CL", ok + "Content-Length: 99999999999999999999\r\n\r\n", 400},
		{"TE last not chunked", ok + "Transfer-Encoding: chunked, gzip\r\n\r\n", 400},
		{"TE identity", ok + "Transfer-Encoding: identity\r\n\r\n", 400},
		{"TE lines last not chunked", ok + "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
		{"TE other codings", ok + "Transfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"TE chunked twice", ok + "Transfer-Encoding: chunked, chunked\r\n\r\n", 400},
		{"TE chunked twice over two lines", ok + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"TE on 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"missing Host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400},
		{"repeated Host", ok + "Host: a\r\n\r\n", 400},
		{"repeated Host case", ok + "HOST: b\r\n\r\n", 400},
		{"Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
		// Field syntax (RFC 9112 §5, RFC 9110 §5.5).
		{"obs-fold space", ok + "X: a\r\n b\r\n\r\n", 400},
		{"obs-fold tab", ok + "X: a\r\n\tb\r\n\r\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
		{"tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400},
		{"leading space first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400},
		{"no colon", ok + "X\r\n\r\n", 400},
		{"empty name", ok + ": v\r\n\r\n", 400},
		{"NUL in name", ok + "X\x00Y: v\r\n\r\n", 400},
		{"NUL in value", ok + "X: a\x00b\r\n\r\n", 400},
		{"NUL at value start", ok + "X: \x00\r\n\r\n", 400},
		{"control in name", ok + "X\x01Y: v\r\n\r\n", 400},
		{"DEL in name", ok + "X\x7fY: v\r\n\r\n", 400},
		{"space inside name", ok + "X Y: v\r\n\r\n", 400},
		{"NUL in Host", "GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n", 400},
		{"control in value", ok + "X: a\x01b\r\n\r\n", 400},
		{"DEL in value", ok + "X: a\x7fb\r\n\r\n", 400},
		{"bare CR in value", ok + "X: a\rb\r\n\r\n", 400},
		{"bare CR ending value", ok + "X: a\r\r\n\r\n", 400},
		{"bare CR in name", ok + "X\rY: v\r\n\r\n", 400},
		{"bare CR line", ok + "\r\r\n\r\n", 400},
		{"invalid name char paren", ok + "X(Y): v\r\n\r\n", 400},
		{"invalid name char slash", ok + "X/Y: v\r\n\r\n", 400},
		{"non-ASCII name", ok + "X\xc3\xa9: v\r\n\r\n", 400},
		{"bare LF in fields", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400},
		{"bare LF ending head", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400},
		{"bare LF all", "GET / HTTP/1.1\nHost: a\n\n", 400},
		// Request line (RFC 9112 §3).
		{"bare LF request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
		{"bare CR request line", "GET / HTTP/1.1\rX\r\nHost: a\r\n\r\n", 400},
		{"bare CR in method", "G\rET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"bare CR in target", "GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"bare CR before version", "GET / \rHTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"version without HTTP", "GET / 1.1\r\nHost: a\r\n\r\n", 400},
		{"missing version", "GET /\r\nHost: a\r\n\r\n", 400},
		{"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400},
		{"short version", "GET / HTTP/1\r\nHost: a\r\n\r\n", 400},
		{"long version", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400},
		{"version letters", "GET / HTTP/a.b\r\nHost: a\r\n\r\n", 400},
		{"HTTP/0.9 line", "GET /\r\n\r\n", 400},
		{"version 1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505},
		{"version 2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"version 0.9", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505},
		{"trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
		{"double space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"tab separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"leading space", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"missing target", "GET HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"empty request line", "\r\nX\r\n\r\n", 400},
		{"method with slash", "GE/T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"method with NUL", "GE\x00T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"method with colon", "GE:T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"method with quote", "GE\"T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"method non-ASCII", "G\xc3\x89T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"target with control", "GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"target with DEL", "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"target with NUL", "GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		// Limits.
		{"request line too long", "GET /" + strings.Repeat("a", DefaultMaxRequestLine) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
		{"request line too long, incomplete", "GET /" + strings.Repeat("a", DefaultMaxRequestLine), 414},
		{"too many fields", ok + strings.Repeat("X: y\r\n", DefaultMaxHeaders) + "\r\n", 431},
		{"head too large", ok + strings.Repeat("X: "+strings.Repeat("y", 1000)+"\r\n", DefaultMaxHeadSize/1000) + "\r\n", 431},
		{"incomplete and too large", ok + strings.Repeat("X: "+strings.Repeat("y", 1000)+"\r\n", DefaultMaxHeadSize/1000), 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := parseAndFrame(tt.in, nil)
			if err == nil {
				t.Fatalf("accepted %q", tt.in)
			}
			if got := perr.StatusFor(err); got != tt.status {
				t.Fatalf("status %d, want %d (err %v)", got, tt.status, err)
			}
			if e, ok := perr.As(err); !ok || e.Source != perr.Downstream {
				t.Fatalf("error %v is not a downstream *perr.Error", err)
			}
		})
	}
}

func TestParseRequestLimits(t *testing.T) {
	lim := &Limits{MaxRequestLine: 32, MaxHeaders: 2, MaxHeadSize: 100}
	tests := []struct {
		name, in string
		status   int
	}{
		{"fits", "GET /0123456789012345 HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n", 0},
		{"line too long", "GET /0123456789012345678 HTTP/1.1\r\nHost: a\r\n\r\n", 414},
		{"fields over count", "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\nZ: z\r\n\r\n", 431},
		{"head over size", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("y", 80) + "\r\n\r\n", 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := perr.StatusFor(parseAndFrame(tt.in, lim)); got != tt.status {
				t.Fatalf("status %d, want %d", got, tt.status)
			}
		})
	}
}

func TestParseRequestIncomplete(t *testing.T) {
	full := browserRequest
	for i := 0; i < len(full); i++ {
		var req header.RequestHeader
		if _, err := ParseRequest([]byte(full[:i]), &req, nil); err != errIncomplete {
			t.Fatalf("prefix of %d bytes: err %v, want incomplete", i, err)
		}
	}
}

func TestParseResponseAccepts(t *testing.T) {
	tests := []struct {
		name, in string
		status   int
		reason   string
		version  header.Version
		fields   string
	}{
		{"typical", typicalResponse, 200, "OK", header.HTTP11,
			"Date=Mon, 25 Nov 2026 20:00:00 GMT|Content-Type=text/html; charset=UTF-8|Content-Length=84211|" +
				"Connection=keep-alive|Cache-Control=private, s-maxage=0, max-age=0, must-revalidate|Content-Encoding=gzip|" +
				"Vary=Accept-Encoding,Cookie|Last-Modified=Sun, 24 Nov 2026 09:12:41 GMT|Server=ATS/9.2.5|X-Cache=cp3066 miss, cp3066 hit/3"},
		{"1.0 custom reason", "HTTP/1.0 404 Nothing Here\r\nserver: x\r\n\r\n", 404, "Nothing Here", header.HTTP10, "server=x"},
		{"empty reason with SP", "HTTP/1.1 204 \r\n\r\n", 204, "", header.HTTP11, ""},
		{"empty reason without SP", "HTTP/1.1 204\r\n\r\n", 204, "", header.HTTP11, ""},
		{"bare LF everywhere", "HTTP/1.1 200 OK\nA: b\nC: d\n\n", 200, "OK", header.HTTP11, "A=b|C=d"},
		{"mixed line endings", "HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\n", 200, "OK", header.HTTP11, "A=b|C=d"},
		{"obs-text reason", "HTTP/1.1 200 \xc3\xa9t\xc3\xa9\r\n\r\n", 200, "\xc3\xa9t\xc3\xa9", header.HTTP11, ""},
		{"interim", "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", 103, "Early Hints", header.HTTP11,
			"Link=</s.css>; rel=preload"},
		{"unknown code", "HTTP/1.1 599 Whatever\r\n\r\n", 599, "Whatever", header.HTTP11, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp header.ResponseHeader
			n, err := ParseResponse([]byte(tt.in+"body"), &resp, nil)
			if err != nil {
				t.Fatalf("ParseResponse: %v", err)
			}
			if n != len(tt.in) {
				t.Errorf("consumed %d, want %d", n, len(tt.in))
			}
			if resp.Status != tt.status || string(resp.Reason()) != tt.reason || resp.Version != tt.version {
				t.Errorf("status line = %d %q %v", resp.Status, resp.Reason(), resp.Version)
			}
			if got := fieldDump(&resp.Fields); got != tt.fields {
				t.Errorf("fields = %q, want %q", got, tt.fields)
			}
		})
	}
}

func TestParseResponseRejects(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", "\r\n\r\n"},
		{"HTTP/2", "HTTP/2 200 OK\r\n\r\n"},
		{"version 1.2", "HTTP/1.2 200 OK\r\n\r\n"},
		{"lower-case version", "http/1.1 200 OK\r\n\r\n"},
		{"two-digit status", "HTTP/1.1 20 OK\r\n\r\n"},
		{"four-digit status", "HTTP/1.1 2000 OK\r\n\r\n"},
		{"status with letter", "HTTP/1.1 2x0 OK\r\n\r\n"},
		{"status 0xx", "HTTP/1.1 099 OK\r\n\r\n"},
		{"no space after version", "HTTP/1.1\t200 OK\r\n\r\n"},
		{"control in reason", "HTTP/1.1 200 O\x01K\r\n\r\n"},
		{"bare CR in reason", "HTTP/1.1 200 O\rK\r\n\r\n"},
		{"obs-fold", "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n"},
		{"space before colon", "HTTP/1.1 200 OK\r\nA : b\r\n\r\n"},
		{"NUL in value", "HTTP/1.1 200 OK\r\nA: b\x00\r\n\r\n"},
		{"bare CR in value", "HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n"},
		{"invalid name", "HTTP/1.1 200 OK\r\nA@B: c\r\n\r\n"},
		{"too many fields", "HTTP/1.1 200 OK\r\n" + strings.Repeat("A: b\r\n", DefaultMaxHeaders+1) + "\r\n"},
		{"status line too long", "HTTP/1.1 200 " + strings.Repeat("K", DefaultMaxRequestLine) + "\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp header.ResponseHeader
			_, err := ParseResponse([]byte(tt.in), &resp, nil)
			if err == nil {
				t.Fatalf("accepted %q", tt.in)
			}
			e, ok := perr.As(err)
			if !ok || e.Source != perr.Upstream {
				t.Fatalf("error %v is not an upstream *perr.Error", err)
			}
			if got := perr.StatusFor(err); got != 502 {
				t.Fatalf("status %d, want 502", got)
			}
		})
	}
}

func TestParseResponseHeadTooLarge(t *testing.T) {
	lim := &Limits{MaxHeadSize: 64}
	big := "HTTP/1.1 200 OK\r\nA: " + strings.Repeat("b", 64) + "\r\n"
	for _, in := range []string{big, big + "\r\n"} {
		var resp header.ResponseHeader
		if _, err := ParseResponse([]byte(in), &resp, lim); err == nil || err == errIncomplete {
			t.Fatalf("head over MaxHeadSize: err %v", err)
		}
	}
}

// TestRoundTrip checks that parsing then serializing a head in canonical form ("Name: value",
// CRLF) gives back the same bytes.
func TestRoundTrip(t *testing.T) {
	requests := []string{
		browserRequest,
		"POST /upload HTTP/1.0\r\nContent-Length: 5\r\nx-lower: v\r\nX-Empty: \r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\nA: 1\r\na: 2\r\nA: 3\r\n\r\n",
	}
	for _, in := range requests {
		var req header.RequestHeader
		n, err := ParseRequest([]byte(in), &req, nil)
		if err != nil || n != len(in) {
			t.Fatalf("ParseRequest(%q) = %d, %v", in, n, err)
		}
		if got := string(req.AppendH1(nil)); got != in {
			t.Errorf("request round trip:\n got %q\nwant %q", got, in)
		}
	}
	responses := []string{
		typicalResponse,
		"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\n",
		"HTTP/1.1 299 \r\nX: y\r\n\r\n",
	}
	for _, in := range responses {
		var resp header.ResponseHeader
		n, err := ParseResponse([]byte(in), &resp, nil)
		if err != nil || n != len(in) {
			t.Fatalf("ParseResponse(%q) = %d, %v", in, n, err)
		}
		if got := string(resp.AppendH1(nil)); got != in {
			t.Errorf("response round trip:\n got %q\nwant %q", got, in)
		}
	}
}

// TestRoundTripNormalizes pins down what serialization does not keep byte for byte (see the
// header package): the whitespace around values, empty lines before a request line, and in
// responses bare-LF line endings and a missing space before an empty reason phrase. Names,
// their order and the values themselves are kept.
func TestRoundTripNormalizes(t *testing.T) {
	requests := []struct{ in, want string }{
		{"GET / HTTP/1.1\r\nHost:a\r\nX-A:\t v \t\r\nx-a:  w\r\n\r\n",
			"GET / HTTP/1.1\r\nHost: a\r\nX-A: v\r\nx-a: w\r\n\r\n"},
		{"\r\n\r\nGET / HTTP/1.0\r\nX:\r\n\r\n", "GET / HTTP/1.0\r\nX: \r\n\r\n"},
	}
	for _, tt := range requests {
		var req header.RequestHeader
		if _, err := ParseRequest([]byte(tt.in), &req, nil); err != nil {
			t.Fatalf("ParseRequest(%q): %v", tt.in, err)
		}
		if got := req.String(); got != tt.want {
			t.Errorf("request %q serialized as %q, want %q", tt.in, got, tt.want)
		}
	}
	responses := []struct{ in, want string }{
		{"HTTP/1.1 200 OK\nServer:x\nA: b  \n\n", "HTTP/1.1 200 OK\r\nServer: x\r\nA: b\r\n\r\n"},
		{"HTTP/1.0 204\r\n\r\n", "HTTP/1.0 204 \r\n\r\n"},
	}
	for _, tt := range responses {
		var resp header.ResponseHeader
		if _, err := ParseResponse([]byte(tt.in), &resp, nil); err != nil {
			t.Fatalf("ParseResponse(%q): %v", tt.in, err)
		}
		if got := resp.String(); got != tt.want {
			t.Errorf("response %q serialized as %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestParseReferencesBuffer checks the in-place promise: names and values are slices of the
// input, not copies.
func TestParseReferencesBuffer(t *testing.T) {
	buf := []byte(browserRequest)
	var req header.RequestHeader
	if _, err := ParseRequest(buf, &req, nil); err != nil {
		t.Fatal(err)
	}
	host, _ := req.Get("Host")
	host[0] = 'E'
	if buf[len("GET /wiki/Hypertext_Transfer_Protocol?action=view HTTP/1.1\r\nHost: ")] != 'E' {
		t.Fatal("Host value is not a slice of the read buffer")
	}
}

func TestParseAllocs(t *testing.T) {
	reqBuf, respBuf := []byte(browserRequest), []byte(typicalResponse)
	var req header.RequestHeader
	var resp header.ResponseHeader
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ParseRequest(reqBuf, &req, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := RequestFraming(&req); err != nil {
			t.Fatal(err)
		}
		if _, err := ParseResponse(respBuf, &resp, nil); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ResponseFraming(&resp, false, false, false); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("parsing allocates %.1f times per run, want 0", allocs)
	}
}

func TestFindHeadEndIncremental(t *testing.T) {
	inputs := []string{browserRequest, typicalResponse, "HTTP/1.1 200 OK\nA: b\n\n", "GET / HTTP/1.1\r\n\r\n"}
	for _, in := range inputs {
		want, _ := findHeadEnd([]byte(in), 0)
		if want != len(in) {
			t.Fatalf("findHeadEnd(%q) = %d, want %d", in, want, len(in))
		}
		for step := 1; step < 8; step++ {
			scan := 0
			got := -1
			for n := 0; got < 0; n += step {
				m := min(n, len(in))
				got, scan = findHeadEnd([]byte(in[:m]), scan)
				if m == len(in) {
					break
				}
			}
			if got != want {
				t.Fatalf("step %d over %q: end %d, want %d", step, in, got, want)
			}
		}
	}
}

// TestAllIn compares the word-at-a-time class check with the byte table for every byte value
// at every position of a word and in the tail.
func TestAllIn(t *testing.T) {
	classes := []struct {
		name  string
		class *[256]bool
		lo    byte
	}{{"value", &isValueByte, 0x20}, {"target", &isTargetByte, 0x21}}
	for _, cl := range classes {
		for n := 1; n <= 19; n++ {
			for pos := 0; pos < n; pos++ {
				for c := 0; c < 256; c++ {
					b := bytes.Repeat([]byte{'a'}, n)
					b[pos] = byte(c)
					if got := allIn(b, cl.class, cl.lo); got != cl.class[c] {
						t.Fatalf("%s: allIn(%q) = %v, want %v", cl.name, b, got, cl.class[c])
					}
				}
			}
		}
		mixed := []byte("\x80\xff\x7e\x21 \t\xc3\xa9abcdefgh\x7f")
		if allIn(mixed, cl.class, cl.lo) {
			t.Fatalf("%s: DEL after a word not found", cl.name)
		}
	}
}
