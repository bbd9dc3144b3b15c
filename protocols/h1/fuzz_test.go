package h1

import (
	"bytes"
	"io"
	"testing"

	"github.com/pingora-go/pingora/header"
)

func sameRequest(a, b *header.RequestHeader) bool {
	return bytes.Equal(a.Method(), b.Method()) && bytes.Equal(a.Target(), b.Target()) &&
		a.Version == b.Version && fieldDump(&a.Fields) == fieldDump(&b.Fields)
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		browserRequest,
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"\r\nPOST /x?y HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var req header.RequestHeader
		n, err := ParseRequest(in, &req, nil)
		if err != nil {
			return
		}
		if n <= 0 || n > len(in) {
			t.Fatalf("consumed %d of %d bytes", n, len(in))
		}
		// The session finds the end of a head before parsing it: both must agree.
		skip := skipEmptyLines(in)
		if end, _ := findHeadEnd(in[skip:], 0); skip+end != n {
			t.Fatalf("parser consumed %d bytes, findHeadEnd says %d", n, skip+end)
		}
		// The session also parses a head as it arrives: every part of a good head is
		// incomplete, never refused.
		for i := range n {
			var part header.RequestHeader
			if _, err := ParseRequest(in[:i], &part, nil); err != errIncomplete {
				t.Fatalf("the first %d of %d bytes of a good head: %v", i, n, err)
			}
		}
		wire := req.AppendH1(nil)
		var again header.RequestHeader
		m, err := ParseRequest(wire, &again, nil)
		if err != nil || m != len(wire) {
			t.Fatalf("re-parse of %q: %d, %v", wire, m, err)
		}
		if !sameRequest(&req, &again) {
			t.Fatalf("re-parse differs:\n%q\n%q", req.String(), again.String())
		}
		// Framing must decide the same way on both, and never panic.
		f1, err1 := RequestFraming(&req)
		f2, err2 := RequestFraming(&again)
		if f1 != f2 || (err1 == nil) != (err2 == nil) {
			t.Fatalf("framing differs: %+v %v / %+v %v", f1, err1, f2, err2)
		}
		checkRequestFraming(t, in)
	})
}

func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		typicalResponse,
		"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\n",
		"HTTP/1.1 204\r\n\r\n",
		"HTTP/1.1 200 OK\nA: b\n\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var resp header.ResponseHeader
		n, err := ParseResponse(in, &resp, nil)
		if err != nil {
			return
		}
		if n <= 0 || n > len(in) {
			t.Fatalf("consumed %d of %d bytes", n, len(in))
		}
		if end, _ := findHeadEnd(in, 0); end != n {
			t.Fatalf("parser consumed %d bytes, findHeadEnd says %d", n, end)
		}
		for i := range n {
			var part header.ResponseHeader
			if _, err := ParseResponse(in[:i], &part, nil); err != errIncomplete {
				t.Fatalf("the first %d of %d bytes of a good head: %v", i, n, err)
			}
		}
		wire := resp.AppendH1(nil)
		var again header.ResponseHeader
		m, err := ParseResponse(wire, &again, nil)
		if err != nil || m != len(wire) {
			t.Fatalf("re-parse of %q: %d, %v", wire, m, err)
		}
		if resp.Status != again.Status || resp.Version != again.Version ||
			!bytes.Equal(resp.Reason(), again.Reason()) || fieldDump(&resp.Fields) != fieldDump(&again.Fields) {
			t.Fatalf("re-parse differs:\n%q\n%q", resp.String(), again.String())
		}
		checkResponseFraming(t, in)
	})
}

// decodeChunked decodes a chunked body delivered step bytes per read, failing the test if the
// decoder stops making progress.
func decodeChunked(t *testing.T, in []byte, step int) ([]byte, *bodyReader, error) {
	rd := &reader{conn: &memConn{in: in, step: step}}
	rd.startMessage()
	var br bodyReader
	br.reset(Framing{Kind: BodyChunked})
	var body []byte
	for idle := 0; ; {
		p, err := br.next(rd, &defaultLimits)
		body = append(body, p...)
		if err == io.EOF {
			return body, &br, nil
		}
		if err != nil {
			return body, &br, err
		}
		if len(p) == 0 {
			if idle++; idle > len(in)+2 {
				t.Fatalf("decoder makes no progress on %q", in)
			}
		}
	}
}

func FuzzChunked(f *testing.F) {
	for _, s := range []string{
		"0\r\n\r\n",
		"5\r\nhello\r\n0\r\n\r\n",
		"5;a=b;c=\"d\\\"e\"\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
		"ffffffffffffffff\r\n",
		"1\r\nx\n0\r\n\r\n",
		"0\r\nA: b\r\n c\r\n\r\n",
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		body, br, err := decodeChunked(t, in, int(step))
		// How the bytes are split into reads must not change the verdict or the result.
		whole, brWhole, errWhole := decodeChunked(t, in, 0)
		if (err == nil) != (errWhole == nil) {
			t.Fatalf("%d-byte reads: %v; one read: %v", step, err, errWhole)
		}
		if err != nil {
			return
		}
		if !bytes.Equal(body, whole) || fieldDump(&br.trailers) != fieldDump(&brWhole.trailers) {
			t.Fatalf("%d-byte reads and one read decode differently: %q %q / %q %q",
				step, body, fieldDump(&br.trailers), whole, fieldDump(&brWhole.trailers))
		}
		var pieces [][]byte
		for p := body; len(p) > 0; {
			k := min(len(p), 1+int(step)*3)
			pieces = append(pieces, p[:k])
			p = p[k:]
		}
		wire := chunkedEncode(t, pieces, &br.trailers)
		body2, br2, err := decodeChunked(t, wire, 0)
		if err != nil {
			t.Fatalf("re-decode of %q: %v", wire, err)
		}
		if !bytes.Equal(body, body2) || fieldDump(&br.trailers) != fieldDump(&br2.trailers) {
			t.Fatalf("re-decode differs: %q %q / %q %q", body, fieldDump(&br.trailers), body2, fieldDump(&br2.trailers))
		}
	})
}
