package h1

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
)

func mustRequest(t testing.TB, fields string) *header.RequestHeader {
	t.Helper()
	var req header.RequestHeader
	in := "POST / HTTP/1.1\r\nHost: a\r\n" + fields + "\r\n"
	if _, err := ParseRequest([]byte(in), &req, nil); err != nil {
		t.Fatalf("ParseRequest(%q): %v", in, err)
	}
	return &req
}

func TestRequestFraming(t *testing.T) {
	tests := []struct {
		name, fields string
		want         Framing
		cl           string // Content-Length values left, joined by "|"
	}{
		{"none", "", Framing{Kind: BodyNone}, ""},
		{"zero length", "Content-Length: 0\r\n", Framing{Kind: BodyNone}, "0"},
		{"length", "Content-Length: 42\r\n", Framing{Kind: BodyLength, Length: 42}, "42"},
		{"leading zeros", "Content-Length: 007\r\n", Framing{Kind: BodyLength, Length: 7}, "007"},
		{"max length", "Content-Length: 999999999999999999\r\n", Framing{Kind: BodyLength, Length: 999999999999999999}, "999999999999999999"},
		{"same lines collapse", "Content-Length: 5\r\nContent-Length: 5\r\n", Framing{Kind: BodyLength, Length: 5}, "5"},
		{"same list collapses", "Content-Length: 5, 5,5\r\n", Framing{Kind: BodyLength, Length: 5}, "5"},
		{"chunked", "Transfer-Encoding: chunked\r\n", Framing{Kind: BodyChunked}, ""},
		{"chunked case", "transfer-encoding: CHUNKED\r\n", Framing{Kind: BodyChunked}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := mustRequest(t, tt.fields)
			got, err := RequestFraming(req)
			if err != nil || got != tt.want {
				t.Fatalf("RequestFraming = %+v, %v; want %+v", got, err, tt.want)
			}
			var cl []string
			req.Values("Content-Length", func(v []byte) bool { cl = append(cl, string(v)); return true })
			if strings.Join(cl, "|") != tt.cl {
				t.Fatalf("Content-Length fields = %q, want %q", cl, tt.cl)
			}
		})
	}
}

func TestRequestFramingRejectsBadLists(t *testing.T) {
	for _, v := range []string{"5,", ",5", "5,,5", "5, ", " , ", "5;5", "5 5"} {
		req := mustRequest(t, "Content-Length: "+v+"\r\n")
		if _, err := RequestFraming(req); perr.StatusFor(err) != 400 {
			t.Errorf("Content-Length %q: err %v, want 400", v, err)
		}
	}
}

func TestResponseFraming(t *testing.T) {
	tests := []struct {
		name          string
		head          string
		headReq, conn bool
		allowBad      bool
		want          Framing
		reuse         bool
		fields        string
		err           bool
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n", false, false, false, Framing{Kind: BodyLength, Length: 3}, true, "Content-Length=3", false},
		{"zero length", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", false, false, false, Framing{Kind: BodyNone}, true, "Content-Length=0", false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n", false, false, false, Framing{Kind: BodyChunked}, true, "Transfer-Encoding=chunked", false},
		{"gzip then chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n", false, false, false, Framing{Kind: BodyChunked}, true, "Transfer-Encoding=gzip, chunked", false},
		{"TE removes CL", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n", false, false, false, Framing{Kind: BodyChunked}, false, "Transfer-Encoding=chunked", false},
		{"TE not chunked reads until close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n", false, false, false, Framing{Kind: BodyUntilClose}, false, "Transfer-Encoding=gzip", false},
		{"no length", "HTTP/1.1 200 OK\r\n", false, false, false, Framing{Kind: BodyUntilClose}, false, "", false},
		{"HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n", true, false, false, Framing{Kind: BodyNone}, true, "Content-Length=3", false},
		{"204", "HTTP/1.1 204 No Content\r\n", false, false, false, Framing{Kind: BodyNone}, true, "", false},
		{"304 with length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n", false, false, false, Framing{Kind: BodyNone}, true, "Content-Length=9", false},
		{"1xx", "HTTP/1.1 103 Early Hints\r\n", false, false, false, Framing{Kind: BodyNone}, true, "", false},
		{"101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n", false, false, false, Framing{Kind: BodyRaw}, false, "Upgrade=websocket", false},
		{"CONNECT 200", "HTTP/1.1 200 OK\r\n", false, true, false, Framing{Kind: BodyRaw}, false, "", false},
		{"CONNECT 407", "HTTP/1.1 407 Auth\r\nContent-Length: 1\r\n", false, true, false, Framing{Kind: BodyLength, Length: 1}, true, "Content-Length=1", false},
		{"conflicting lengths", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n", false, false, false, Framing{}, false, "", true},
		{"invalid length", "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n", false, false, false, Framing{}, false, "", true},
		{"invalid length allowed", "HTTP/1.1 200 OK\r\nContent-Length: x\r\n", false, false, true, Framing{Kind: BodyUntilClose}, false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp header.ResponseHeader
			if _, err := ParseResponse([]byte(tt.head+"\r\n"), &resp, nil); err != nil {
				t.Fatal(err)
			}
			f, reuse, err := ResponseFraming(&resp, tt.headReq, tt.conn, tt.allowBad)
			if tt.err {
				if perr.StatusFor(err) != 502 {
					t.Fatalf("err %v, want an upstream error", err)
				}
				return
			}
			if err != nil || f != tt.want || reuse != tt.reuse {
				t.Fatalf("ResponseFraming = %+v, %v, %v; want %+v, %v", f, reuse, err, tt.want, tt.reuse)
			}
			if got := fieldDump(&resp.Fields); got != tt.fields {
				t.Fatalf("fields after framing = %q, want %q", got, tt.fields)
			}
		})
	}
}

func TestChunkedDecode(t *testing.T) {
	tests := []struct {
		name, in, body, trailers string
	}{
		{"empty", "0\r\n\r\n", "", ""},
		{"one", "5\r\nhello\r\n0\r\n\r\n", "hello", ""},
		{"several, hex upper and lower", "a\r\n0123456789\r\nA\r\n0123456789\r\n1f\r\n" + strings.Repeat("x", 31) + "\r\n0\r\n\r\n",
			"01234567890123456789" + strings.Repeat("x", 31), ""},
		{"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello", ""},
		{"extensions", "5;a\r\nhello\r\n5 ; b = c ;d=\"q \\\" \t\"\r\nworld\r\n0;last\r\n\r\n", "helloworld", ""},
		{"trailers", "3\r\nabc\r\n0\r\nX-Sum: 1\r\nx-other:  v \r\n\r\n", "abc", "X-Sum=1|x-other=v"},
		{"CRLF data", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n", ""},
	}
	for _, tt := range tests {
		for _, step := range []int{0, 1, 2, 3, 7} {
			body, br, err := readAllBody([]byte(tt.in+"NEXT"), step, Framing{Kind: BodyChunked}, nil)
			if err != nil {
				t.Fatalf("%s step %d: %v", tt.name, step, err)
			}
			if string(body) != tt.body {
				t.Fatalf("%s step %d: body %q, want %q", tt.name, step, body, tt.body)
			}
			if got := fieldDump(&br.trailers); got != tt.trailers {
				t.Fatalf("%s step %d: trailers %q, want %q", tt.name, step, got, tt.trailers)
			}
		}
	}
}

func TestChunkedRejects(t *testing.T) {
	tests := []struct {
		name, in string
		lim      *Limits
		closed   bool // a truncation (ConnectionClosed), not a framing error
	}{
		{"empty size", "\r\nabc\r\n0\r\n\r\n", nil, false},
		{"non-hex size", "g\r\n", nil, false},
		{"negative size", "-1\r\nx\r\n0\r\n\r\n", nil, false},
		{"plus size", "+1\r\nx\r\n0\r\n\r\n", nil, false},
		{"0x prefix", "0x1\r\nx\r\n0\r\n\r\n", nil, false},
		{"overflow", "10000000000000000\r\n", nil, false},
		{"overflow max", "ffffffffffffffff\r\n", nil, false},
		{"space before size", " 1\r\nx\r\n0\r\n\r\n", nil, false},
		{"bare LF after size", "1\nx\r\n0\r\n\r\n", nil, false},
		{"bare CR in size line", "1\r\r\nx\r\n0\r\n\r\n", nil, false},
		{"data not followed by CRLF", "1\r\nxy\r\n0\r\n\r\n", nil, false},
		{"data followed by LF", "1\r\nx\n0\r\n\r\n", nil, false},
		{"ext without semicolon", "1 a\r\nx\r\n0\r\n\r\n", nil, false},
		{"ext empty name", "1;\r\nx\r\n0\r\n\r\n", nil, false},
		{"ext empty value", "1;a=\r\nx\r\n0\r\n\r\n", nil, false},
		{"ext bad name", "1;a@b\r\nx\r\n0\r\n\r\n", nil, false},
		{"ext unterminated quote", "1;a=\"b\r\nx\r\n0\r\n\r\n", nil, false},
		{"ext control in quote", "1;a=\"b\x01\"\r\nx\r\n0\r\n\r\n", nil, false},
		{"ext NUL", "1;a\x00\r\nx\r\n0\r\n\r\n", nil, false},
		{"size line too long", "1;" + strings.Repeat("a", DefaultMaxChunkLine) + "\r\nx\r\n0\r\n\r\n", nil, false},
		{"trailer obs-fold", "0\r\nA: b\r\n c\r\n\r\n", nil, false},
		{"trailer bad name", "0\r\nA B: c\r\n\r\n", nil, false},
		{"trailer bare LF", "0\r\nA: b\n\r\n", nil, false},
		{"trailers too large", "0\r\n" + strings.Repeat("A: bbbbbbbb\r\n", 10) + "\r\n", &Limits{MaxTrailerSize: 64}, false},
		{"too many trailers", "0\r\n" + strings.Repeat("A: b\r\n", 3) + "\r\n", &Limits{MaxHeaders: 2}, false},
		{"truncated in data", "5\r\nab", nil, true},
		{"truncated in size", "5", nil, true},
		{"truncated before trailers end", "0\r\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, step := range []int{0, 1} {
				_, _, err := readAllBody([]byte(tt.in), step, Framing{Kind: BodyChunked}, tt.lim)
				e, ok := perr.As(err)
				if !ok {
					t.Fatalf("step %d: err %v, want a *perr.Error", step, err)
				}
				want := perr.InvalidHTTPHeader
				if tt.closed {
					want = perr.ConnectionClosed
				}
				if e.Type != want {
					t.Fatalf("step %d: err %v, want type %v", step, err, want.Name())
				}
			}
		})
	}
}

func TestLengthAndCloseBodies(t *testing.T) {
	body, _, err := readAllBody([]byte("hello world, and more"), 3, Framing{Kind: BodyLength, Length: 11}, nil)
	if err != nil || string(body) != "hello world" {
		t.Fatalf("length body = %q, %v", body, err)
	}
	_, _, err = readAllBody([]byte("short"), 0, Framing{Kind: BodyLength, Length: 11}, nil)
	if e, ok := perr.As(err); !ok || e.Type != perr.ConnectionClosed {
		t.Fatalf("short length body: err %v, want ConnectionClosed", err)
	}
	body, _, err = readAllBody([]byte("until the end"), 4, Framing{Kind: BodyUntilClose}, nil)
	if err != nil || string(body) != "until the end" {
		t.Fatalf("close-delimited body = %q, %v", body, err)
	}
	body, _, err = readAllBody([]byte("ignored"), 0, Framing{Kind: BodyNone}, nil)
	if err != nil || len(body) != 0 {
		t.Fatalf("no body = %q, %v", body, err)
	}
}

// chunkedEncode frames pieces with bodyWriter, as the sessions do.
func chunkedEncode(t testing.TB, pieces [][]byte, trailers *header.Fields) []byte {
	conn := &memConn{}
	wr := &writer{conn: conn}
	var bw bodyWriter
	bw.reset(Framing{Kind: BodyChunked})
	for _, p := range pieces {
		if err := bw.write(wr, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.finish(wr, trailers); err != nil {
		t.Fatal(err)
	}
	if err := wr.flush(); err != nil {
		t.Fatal(err)
	}
	return conn.out.Bytes()
}

func TestChunkedRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 5000)
	var tr header.Fields
	tr.Append("X-Checksum", "abc")
	tr.Append("x-count", "3")
	tests := []struct {
		name     string
		pieces   [][]byte
		trailers *header.Fields
	}{
		{"no pieces", nil, nil},
		{"empty piece skipped", [][]byte{{}, []byte("a"), {}}, nil},
		{"small", [][]byte{[]byte("hello"), []byte(" "), []byte("world")}, &tr},
		{"large", [][]byte{big, big[:17], big[:BufferSize]}, &tr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wire := chunkedEncode(t, tt.pieces, tt.trailers)
			for _, step := range []int{0, 5, 1000} {
				body, br, err := readAllBody(wire, step, Framing{Kind: BodyChunked}, nil)
				if err != nil {
					t.Fatalf("step %d: %v (wire %.80q)", step, err, wire)
				}
				if want := bytes.Join(tt.pieces, nil); !bytes.Equal(body, want) {
					t.Fatalf("step %d: body of %d bytes, want %d", step, len(body), len(want))
				}
				want := ""
				if tt.trailers != nil {
					want = fieldDump(tt.trailers)
				}
				if got := fieldDump(&br.trailers); got != want {
					t.Fatalf("step %d: trailers %q, want %q", step, got, want)
				}
			}
		})
	}
	if got := string(chunkedEncode(t, [][]byte{[]byte("hi")}, &tr)); got != "2\r\nhi\r\n0\r\nX-Checksum: abc\r\nx-count: 3\r\n\r\n" {
		t.Fatalf("wire = %q", got)
	}
}

func TestBodyWriterLength(t *testing.T) {
	conn := &memConn{}
	wr := &writer{conn: conn}
	var bw bodyWriter
	bw.reset(Framing{Kind: BodyLength, Length: 4})
	if err := bw.write(wr, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := bw.write(wr, []byte("de")); err == nil {
		t.Fatal("write past Content-Length accepted")
	}
	if err := bw.finish(wr, nil); err == nil {
		t.Fatal("short body finished without error")
	}
	if err := bw.write(wr, []byte("d")); err == nil {
		t.Fatal("write after finish accepted")
	}
}

func TestParseChunkSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1a", 26, true},
		{"FfFf", 65535, true},
		{"7fffffffffffffff", 0, false},
		{"3ffffffffffffff", 0x3ffffffffffffff, true},
		{"1 ", 1, true},
		{"1\t;a", 1, true},
		{"", 0, false},
		{";a", 0, false},
	}
	for _, tt := range tests {
		n, err := parseChunkSize([]byte(tt.in))
		if (err == nil) != tt.ok || tt.ok && n != tt.want {
			t.Errorf("parseChunkSize(%q) = %d, %v; want %d ok=%v", tt.in, n, err, tt.want, tt.ok)
		}
	}
}
